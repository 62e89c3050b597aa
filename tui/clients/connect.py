"""CloudBlue Connect public API client: the read-only calls that validate a connector's
configuration (account, products, product templates, marketplaces).

Written from cloudblue/connect-python-openapi-client (`constants.py`, `fluent.py`,
`exceptions.py`, `models/iterators.py`) and connect-cli's fixtures. Quirks kept in mind:
- the API key goes verbatim into `Authorization`, *including* its `ApiKey ` prefix
  (`ApiKey SU-XXX-XXX-XXX:<key>`), never as `Bearer`;
- errors are `{"error_code": "AUTH_001", "errors": ["API request is unauthorized."]}`;
  an unknown id answers 404;
- collections page with `limit`/`offset` and say how many there are in
  `Content-Range: items <first>-<last>/<count>`.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx

from tui.http import ApiClient, RemoteError, json_body, make_client, request

DEFAULT_ENDPOINT = "https://api.connect.cloudblue.com/public/v1"
PAGE = 100
_RANGE = re.compile(r"items\s+(\d+)-(\d+)/(\d+)")
KEY_PATTERN = re.compile(r"SU-[A-Za-z0-9-]+:\S+")


def authorization(api_key: str) -> str:
    """The `Authorization` value: the key as Connect shows it, `ApiKey SU-…:…`.
    A key given without its prefix gets it (the API refuses the bare `SU-…:…`)."""
    key = api_key.strip()
    bare = key.removeprefix("ApiKey ").strip()
    if not KEY_PATTERN.fullmatch(bare):
        raise ValueError("is not a Connect API key; copy it from Integrations > Tokens > "
                         "API Key, e.g. 'ApiKey SU-XXX-XXX-XXX:<key>'")
    return f"ApiKey {bare}"


def explain(payload: str) -> str:
    """Connect's error body as one phrase: `AUTH_001: API request is unauthorized.`"""
    try:
        data = json.loads(payload)
    except ValueError:
        return payload[:160]
    if not isinstance(data, dict):
        return payload[:160]
    errors = data.get("errors") or []
    text = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(errors)
    code = data.get("error_code")
    return f"{code}: {text}" if code and text else str(code or text or payload[:160])


class ConnectClient(ApiClient):
    def __init__(self, base_url: str, api_key: str, *, ca_file: str | None = None,
                 transport: httpx.BaseTransport | None = None, backoff: float = 0.25) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = make_client(self.base_url, ca_file=ca_file, transport=transport,
                                headers={"Authorization": authorization(api_key),
                                         "Accept": "application/json"},
                                backoff=backoff)

    # ------------------------------------------------------------ helpers

    def _get(self, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        try:
            return request(self.http, "GET", path, ok=ok, **kwargs)
        except RemoteError as exc:
            if exc.status == 401:
                raise RemoteError(
                    f"CloudBlue Connect at {self.base_url} refused the API key (401 "
                    f"{explain(exc.body)}); check cloudblue_token: the whole 'ApiKey "
                    "SU-…:…' value from Integrations > Tokens", status=401,
                    body=exc.body) from None
            if exc.status == 403:
                raise RemoteError(
                    f"CloudBlue Connect at {self.base_url} denied GET {path} (403 "
                    f"{explain(exc.body)}); give the token access to this module in "
                    "Integrations > Tokens", status=403, body=exc.body) from None
            raise

    def _one(self, path: str) -> dict[str, Any] | None:
        response = self._get(path, ok=(200, 404))
        if response.status_code == 404:
            return None
        data = json_body(response)
        if not isinstance(data, dict):
            raise RemoteError(f"GET {self.base_url}{path} answered {type(data).__name__}, "
                              "not an object; check api_endpoint points at /public/v1")
        return data

    def _all(self, path: str) -> list[dict[str, Any]] | None:
        """Every item of a collection, page by page; None when its parent is unknown."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            response = self._get(path, ok=(200, 404), params={"limit": PAGE, "offset": offset})
            if response.status_code == 404:
                return None
            page = json_body(response)
            if not isinstance(page, list):
                raise RemoteError(f"GET {self.base_url}{path} answered {type(page).__name__}, "
                                  "not a list; check api_endpoint points at /public/v1")
            items.extend(page)
            match = _RANGE.search(response.headers.get("Content-Range", ""))
            if not match or not page or int(match.group(2)) >= int(match.group(3)) - 1:
                return items
            offset = int(match.group(2)) + 1

    # ------------------------------------------------------------ resources

    def accounts(self) -> list[dict[str, Any]]:
        """The accounts the key belongs to: proves the key and the endpoint."""
        return self._all("/accounts") or []

    def product(self, product_id: str) -> dict[str, Any] | None:
        return self._one(f"/products/{quote(product_id, safe='')}")

    def templates(self, product_id: str) -> list[dict[str, Any]] | None:
        return self._all(f"/products/{quote(product_id, safe='')}/templates")

    def marketplace(self, marketplace_id: str) -> dict[str, Any] | None:
        return self._one(f"/marketplaces/{quote(marketplace_id, safe='')}")
