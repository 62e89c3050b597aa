"""A sixth runbook made of declarations only, defined in the tests (tests/test_kit.py):
one page, one file step and one remote — a greeting written to a file and stored in
Consul's KV store (the fake in tests/fakes/consul.py, from Consul's HTTP API
documentation, on 127.0.0.1). Nothing of the engine, the CLI or the screens knows it:
the test registers it in tui.registry.REGISTRY, as a line there would."""

from __future__ import annotations

from argparse import ArgumentParser, Namespace

from pydantic import BaseModel, SecretStr

from tui.answers import ask
from tui.clients.consul import ConsulClient
from tui.context import Context
from tui.model import (
    CheckResult,
    CliVerb,
    FileWrite,
    Page,
    PlanItem,
    Procedure,
    Remote,
    Status,
    Step,
)
from tui.procedures.wire import api_call

KEY = "kit/greeting"


class KitAnswers(BaseModel):
    consul_url: str = ask("http://127.0.0.1:8500", title="Consul URL",
                          help="The Consul agent's HTTP API.", example="http://127.0.0.1:8500")
    consul_token: SecretStr | None = ask(None, title="Consul token", help="An ACL token "
                                         "that may write the key.", example="a-token",
                                         secret=True)
    target_dir: str = ask("/etc/kit", title="Directory", help="Where greeting.txt goes.",
                          example="/etc/kit")
    greeting: str = ask(title="Greeting", help="Written to the file and the key.",
                        example="hello", min_length=1)


Ctx = Context[KitAnswers]

CONSUL: Remote[KitAnswers, ConsulClient] = Remote(
    key="consul", name="Consul", secret="consul_token",
    client=lambda a, token: ConsulClient(a.consul_url, token),
    base_url=lambda a: a.consul_url)


class GreetingFile(Step[KitAnswers]):
    id, title, summary = "file", "greeting.txt", "The greeting, in a file"

    def files(self, ctx: Ctx) -> list[FileWrite]:
        return [FileWrite(path=f"{ctx.answers.target_dir}/greeting.txt",
                          content=ctx.answers.greeting + "\n", description="the greeting")]


class GreetingKey(Step[KitAnswers]):
    id, title, summary = "kv", "Greeting in Consul KV", f"PUT /v1/kv/{KEY}"

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {CONSUL.secret}

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        request = ConsulClient.kv_put_request(KEY, ctx.answers.greeting.encode())
        if not ctx.reads(CONSUL):
            return [CONSUL.placeholder(ctx, "PUT", request.path, "store the greeting")]
        client = ctx.client(CONSUL)
        if client.kv_get(KEY) == ctx.answers.greeting.encode():
            return []
        return [api_call(client, request, "store the greeting")]

    def check(self, ctx: Ctx) -> CheckResult:
        stored = ctx.client(CONSUL).kv_get(KEY)
        if stored == ctx.answers.greeting.encode():
            return CheckResult(status=Status.DONE, detail=f"{KEY} holds the greeting")
        return CheckResult(status=Status.PENDING if stored is None else Status.DRIFTED,
                           detail=f"{KEY} is {'absent' if stored is None else 'different'}")


def _key_arguments(p: ArgumentParser) -> None:
    p.add_argument("--upper", action="store_true", help="in capitals")


def _key(args: Namespace) -> int:
    print(KEY.upper() if args.upper else KEY)
    return 0


KEY_VERB = CliVerb(name="kit-key", help="the KV key the greeting goes to",
                   arguments=_key_arguments, run=_key)


PROCEDURE = Procedure(
    id="kit", title="Kit greeting", summary="A greeting in a file and in Consul KV",
    runbook="none", answers_model=KitAnswers,
    pages=(Page("Greeting", "Where it goes.",
                ("consul_url", "consul_token", "target_dir", "greeting")),),
    steps=(GreetingFile(), GreetingKey()), remotes=(CONSUL,), cli_verbs=(KEY_VERB,))
