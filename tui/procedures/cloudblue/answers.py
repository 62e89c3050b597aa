"""The cloudblue answers: the keys of its answers files (a public contract).

Ids follow Connect's formats (connect-cli fixtures): product `PRD-ddd-ddd-ddd`,
template `TL-ddd-ddd-ddd`, marketplace `MP-` + digits. Cross-field rules sit on the
later field of each pair, so an error names the field the operator must change.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from tui.answers import AbsPath, Answers, ask, is_hostname, matches
from tui.clients.connect import DEFAULT_ENDPOINT

LOOPBACK = {"127.0.0.1", "localhost"}
PRODUCT_EXAMPLE = "PRD-576-330-536"
TEMPLATE_EXAMPLE = "TL-757-345-804"
ProductId = Annotated[str, matches(
    r"PRD-\d{3}-\d{3}-\d{3}", f"Connect product id (PRD-ddd-ddd-ddd, e.g. {PRODUCT_EXAMPLE})")]
TemplateId = Annotated[str, matches(
    r"TL-\d{3}-\d{3}-\d{3}", f"Connect template id (TL-ddd-ddd-ddd, e.g. {TEMPLATE_EXAMPLE})")]
MarketplaceId = Annotated[str, matches(
    r"MP-\d+", "Connect marketplace id (MP- and digits, e.g. MP-43209)")]


def _dns_name(value: str) -> str:
    value = value.strip().rstrip(".")
    labels = value.split(".")
    if not is_hostname(value) or len(labels) < 2 or labels[-1].isdigit():
        raise ValueError(f"{value!r} is not a DNS name such as virtuozzo.com")
    return value.lower()


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if any(ord(c) < 0x20 for c in value):
        raise ValueError("cannot contain line breaks or control characters")
    return value


def _revoke(value: str) -> str:
    """A template id, or the message text shown when access is revoked."""
    if value.upper().startswith("TL-") and not re.fullmatch(r"TL-\d{3}-\d{3}-\d{3}", value):
        raise ValueError(f"{value!r} looks like a template id but is not one "
                         f"(TL-ddd-ddd-ddd, e.g. {TEMPLATE_EXAMPLE}); or give message text")
    if not value.strip():
        raise ValueError("must be a template id or a message text, not empty")
    return value


DnsName = Annotated[str, AfterValidator(_dns_name)]
Text = Annotated[str, AfterValidator(_text)]


class Templates(BaseModel):
    """The templates Connect shows when a fulfillment is approved or cancelled."""

    model_config = ConfigDict(extra="forbid")
    grant: TemplateId
    revoke: Annotated[str, AfterValidator(_revoke)]

    def revoke_is_template(self) -> bool:
        return bool(re.fullmatch(r"TL-\d{3}-\d{3}-\d{3}", self.revoke))


class CloudBlueAnswers(Answers):
    """What the cloudblue runbook asks of the operator (keys are the answers contract)."""

    config_dir: AbsPath = ask(
        "/etc/cloudblue-connector", title="Connector directory",
        help="Where the connector keeps config.json, config-logging.json and its password "
             "store (passwords_db.sqlite3).", example="/etc/cloudblue-connector")
    vap_infra_domain: DnsName = ask(
        title="Platform domain",
        help="The Application Management platform's domain name (vap_infra_domain).",
        example="virtuozzo.com")
    vap_user_group: Text = ask(
        title="User group",
        help="The platform user group for users registered via CloudBlue Connect "
             "(vap_user_group); its quotas are set in the admin panel.", example="beta")
    hide_passwords_in_log: bool = ask(
        True, title="Hide passwords in log",
        help="Wipe plain-text passwords from the connector's event output "
             "(misc.hidePasswordsInLog).", example=True)
    test_mode: bool = ask(
        False, title="Test mode",
        help="Process only asset requests from the test marketplace and ignore the rest "
             "(misc.testMode).", example=False)
    test_marketplace_id: MarketplaceId | None = ask(
        None, title="Test marketplace",
        help="Marketplace whose asset requests are processed in test mode "
             "(misc.testMarketplaceId). Not set: requests from all marketplaces are "
             "processed, whatever test_mode says.", example="MP-43209",
        validate_default=True)
    billing_stat_delay_hours: int = ask(
        1, title="Usage delay (hours)",
        help="How many hours back usage data is requested, so the platform has generated "
             "it: with 1, at 6:00 the connector asks for 5:00 (misc.billingStatDelayInHours).",
        example=1, ge=0)
    api_endpoint: str = ask(
        DEFAULT_ENDPOINT, title="Connect API endpoint",
        help="The CloudBlue Connect API URL (apiEndpoint); a reseller's own Connect "
             "instance has its own.", example=DEFAULT_ENDPOINT)
    products: list[ProductId] = ask(
        title="Products", help="Connect product ids the connector serves (products).",
        example=[PRODUCT_EXAMPLE], min_length=1)
    report_usage: list[ProductId] = ask(
        [], title="Pay-as-you-go products",
        help="Products with the pay-as-you-go resource model, whose usage is reported "
             "(report_usage); each must also be in products.", example=[PRODUCT_EXAMPLE],
        validate_default=True)
    templates: dict[str, Templates] = ask(
        title="Templates",
        help="For every product: `grant`, the template id shown when a fulfillment is "
             "approved, and `revoke`, a template id or the message shown when it is "
             "cancelled (Products > Embedding > Approved Templates).",
        example={PRODUCT_EXAMPLE: {"grant": TEMPLATE_EXAMPLE,
                                   "revoke": "Access to Application Management Platform "
                                             "has been revoked"}})
    cloudblue_token: SecretStr | None = ask(
        title="Connect API key", secret=True,
        help="The Connect API key, 'ApiKey SU-…:…' (Integrations > Tokens > API Key). "
             "CloudRig reads Connect with it and types it into cloudblue-password-manager.",
        example="ApiKey SU-XXX-XXX-XXX:<key>")
    vap_token: SecretStr | None = ask(
        title="Application Management admin token", secret=True,
        help="The access token of the platform's admin user, typed into "
             "cloudblue-password-manager.", example="an admin access token")

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        match = re.fullmatch(r"(https?)://([^/\s:]+)(:\d{1,5})?(/\S*)?", value.strip())
        if not match or not is_hostname(match.group(2)):
            raise ValueError(f"{value!r} is not an https URL of a Connect API")
        if match.group(1) == "http" and match.group(2) not in LOOPBACK:
            # Plain http only to this host (a local proxy, a test double): the key
            # would otherwise cross the network in clear text.
            raise ValueError(f"{value!r} is not an https URL of a Connect API (plain http "
                             "is refused: the API key would travel in clear text)")
        return value.strip().rstrip("/")

    @field_validator("products")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        dupes = sorted({p for p in value if value.count(p) > 1})
        if dupes:
            raise ValueError(f"lists {', '.join(dupes)} more than once")
        return value

    @field_validator("test_marketplace_id")
    @classmethod
    def _test_mode(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("test_mode"):
            raise ValueError(
                "is not set while test_mode is true: the connector then processes asset "
                "requests from all marketplaces, test mode or not; give the test "
                "marketplace, or set test_mode: false")
        return value

    @field_validator("report_usage")
    @classmethod
    def _subset(cls, value: list[str], info: ValidationInfo) -> list[str]:
        products = info.data.get("products")
        if products is None:
            return value  # products itself is wrong: that error is reported
        stray = [p for p in value if p not in products]
        if stray:
            raise ValueError(f"{', '.join(stray)} not in products; report_usage lists "
                             "pay-as-you-go products among products")
        return value

    @field_validator("templates")
    @classmethod
    def _every_product(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        products = info.data.get("products")
        if products is None:
            return value
        missing = [p for p in products if p not in value]
        if missing:
            raise ValueError(f"has no entry for {', '.join(missing)}; every product needs "
                             "a grant template and a revoke template or message")
        stray = [p for p in value if p not in products]
        if stray:
            raise ValueError(f"has an entry for {', '.join(stray)}, which is not in products")
        return value
