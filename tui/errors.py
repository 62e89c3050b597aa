"""Errors an operator can act on: each carries one sentence, never a traceback."""

from __future__ import annotations


class OperatorError(Exception):
    """A failure explained in one sentence: what failed, where, and what to check."""

    exit_code = 1

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence

    def __str__(self) -> str:
        return self.sentence


class UsageError(OperatorError):
    """Bad usage or invalid input (exit 2)."""

    exit_code = 2


class SecretMissing(UsageError):
    """A secret is needed and no source could provide it without a terminal.

    `secret` names the field when one is known (a check then reads "unknown — needs
    it"); `store_problem` is why the secret store could not be read, if it could not
    (e.g. it is locked: a front that owns a terminal can offer its passphrase)."""

    def __init__(self, sentence: str, secret: str | None = None,
                 store_problem: str | None = None) -> None:
        super().__init__(sentence)
        self.secret = secret
        self.store_problem = store_problem


class Interrupted(OperatorError):
    """The operator interrupted the run (exit 130); state was saved."""

    exit_code = 130


class ProcedureInvalid(ValueError):
    """A procedure's declaration breaks one of its invariants (a field on no page, two
    steps with one id, a template not shipped…): a mistake of its author, raised when
    the procedure is built, naming the procedure and the problem."""

    def __init__(self, procedure: str, problem: str) -> None:
        super().__init__(f"procedure {procedure!r}: {problem}")
        self.procedure = procedure
        self.problem = problem
