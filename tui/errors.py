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
    """A secret is needed and no source could provide it without a terminal."""


class Interrupted(OperatorError):
    """The operator interrupted the run (exit 130); state was saved."""

    exit_code = 130
