"""AWS CloudFormation as strict as AWS where moto is not, for the cloudcasa tests.

The tests run moto's server in this process (cloudcasa_rig.moto_server) and the CLI in
a subprocess pointed at it. moto creates and updates stacks with any parameters, and
never rolls one back. Real CloudFormation:

- refuses a parameter its template does not declare: ValidationError "Parameters:
  [X] do not exist in the template" (aws-samples/amazon-ec2-image-builder-samples#18,
  deep-security/cloudformation#29), and "Parameter values specified for a template
  which does not require them." when it declares none (aws/aws-toolkit-azure-devops#75);
- refuses a declared parameter without a Default that is not given: "Parameters: [X]
  must have values" (openedx-unsupported/configuration#1993);
- on a failed resource rolls the stack back to ROLLBACK_COMPLETE with the top-level
  reason "The following resource(s) failed to create: [X]. Rollback requested by
  user.", and DescribeStackEvents (newest first) holds the resource's CREATE_FAILED
  event with the real cause (API reference: DescribeStackEvents, StackEvent).

`strict_cloudformation()` patches moto's CloudFormation responses in this process for
the rules above; `roll_back(name, resource, reason)` makes the next CreateStack of
that stack fail like AWS does. Every CloudFormation request moto serves meanwhile is
kept in `Strictness.log` (a `fakes.server.Request`, its query the decoded parameters),
like the other fakes' request logs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

ROLLBACK_REASON = "The following resource(s) failed to create: [{resource}]. Rollback " \
                  "requested by user."


class Strictness:
    """What the patched responses do beyond moto: the pending rollbacks, by stack name."""

    def __init__(self) -> None:
        self.rollbacks: dict[str, tuple[str, str, str]] = {}
        self.refused: list[str] = []  # the ValidationError messages given
        self.log: list[Any] = []  # fakes.server.Request, one per action served

    def roll_back(self, stack_name: str, resource: str, reason: str,
                  resource_type: str = "AWS::IAM::Role") -> None:
        self.rollbacks[stack_name] = (resource, resource_type, reason)


def declared_parameters(template_body: str) -> dict[str, dict[str, Any]]:
    """The Parameters section as moto reads the template (YAML with !Ref, or JSON)."""
    from moto.cloudformation.responses import get_template_summary_response_from_template

    summary = get_template_summary_response_from_template(template_body)
    return {p["ParameterKey"]: p for p in summary.get("Parameters") or []}


def check_parameters(given: list[dict[str, Any]], template_body: str, previous: set[str],
                     strict: Strictness) -> None:
    from moto.cloudformation.exceptions import ValidationError

    declared = declared_parameters(template_body)
    names = [str(p.get("ParameterKey")) for p in given]
    unknown = [n for n in names if n not in declared]
    message = None
    if unknown and not declared:
        message = "Parameter values specified for a template which does not require them."
    elif unknown:
        message = f"Parameters: [{', '.join(unknown)}] do not exist in the template"
    else:
        missing = [n for n, p in declared.items() if p.get("DefaultValue") is None
                   and n not in names and n not in previous]
        if missing:
            message = f"Parameters: [{', '.join(missing)}] must have values"
    if message:
        strict.refused.append(message)
        raise ValidationError(message=message)


@contextlib.contextmanager
def strict_cloudformation() -> Iterator[Strictness]:
    from moto.cloudformation.responses import CloudFormationResponse

    from fakes.server import Request

    strict = Strictness()
    create, update = CloudFormationResponse.create_stack, CloudFormationResponse.update_stack
    call_action = CloudFormationResponse.call_action

    def logged(self: CloudFormationResponse) -> Any:
        query = {k: list(v) if isinstance(v, list) else [v]
                 for k, v in (self.querystring or {}).items()}
        body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
        strict.log.append(Request(self.method, self.path, query,
                                  {k.lower(): v for k, v in dict(self.headers).items()}, body))
        return call_action(self)

    def body(self: CloudFormationResponse, stack: Any = None) -> str:
        if stack is not None and self._get_bool_param("UsePreviousTemplate", False):
            return str(stack.template)
        url = self._get_param("TemplateURL")
        return self._get_stack_from_s3_url(url) if url else str(self._get_param("TemplateBody"))

    def strict_create(self: CloudFormationResponse) -> Any:
        check_parameters(self._get_param("Parameters", []), body(self), set(), strict)
        result = create(self)
        name = self._get_param("StackName")
        if name in strict.rollbacks:
            resource, kind, reason = strict.rollbacks.pop(name)
            stack = self.cloudformation_backend.get_stack(name)
            _roll_back(stack, resource, kind, reason)
        return result

    def strict_update(self: CloudFormationResponse) -> Any:
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        check_parameters(self._get_param("Parameters", []), body(self, stack),
                         set(stack.parameters), strict)
        return update(self)

    CloudFormationResponse.create_stack = strict_create  # type: ignore[method-assign]
    CloudFormationResponse.update_stack = strict_update  # type: ignore[method-assign]
    CloudFormationResponse.call_action = logged  # type: ignore[method-assign]
    try:
        yield strict
    finally:
        CloudFormationResponse.create_stack = create  # type: ignore[method-assign]
        CloudFormationResponse.update_stack = update  # type: ignore[method-assign]
        CloudFormationResponse.call_action = call_action  # type: ignore[method-assign]


def _roll_back(stack: Any, resource: str, kind: str, reason: str) -> None:
    """The events and status AWS leaves after a resource failed to create."""
    from moto.cloudformation.models import Event

    def event(logical: str, rtype: str, status: str, why: str | None) -> None:
        stack.events.append(Event(stack.stack_id, stack.name, logical, "", rtype, status,
                                  why, None))

    event(resource, kind, "CREATE_IN_PROGRESS", None)
    event(resource, kind, "CREATE_FAILED", reason)
    event(stack.name, "AWS::CloudFormation::Stack", "ROLLBACK_IN_PROGRESS",
          ROLLBACK_REASON.format(resource=resource))
    event(resource, kind, "DELETE_COMPLETE", None)
    event(stack.name, "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", None)
    stack.status = "ROLLBACK_COMPLETE"
    stack.status_reason = ROLLBACK_REASON.format(resource=resource)
