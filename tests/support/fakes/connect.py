"""A CloudBlue Connect public API on 127.0.0.1, written from the API's documented
behaviour (connect-python-openapi-client, connect-cli fixtures, the OpenAPI spec).

- paths under `/public/v1`: `/accounts`, `/products/{id}`, `/products/{id}/templates`,
  `/marketplaces/{id}`;
- `Authorization` must carry the key verbatim, `ApiKey SU-…:…`; missing or wrong →
  401 `{"error_code": "AUTH_001", "errors": ["API request is unauthorized."]}`;
- unknown ids → 404 with the same error shape; collections honour `limit`/`offset`
  and answer `Content-Range: items <first>-<last>/<count>`;
- templates carry `scope` (asset, tier1, tier2) and, for asset scope, `type`
  (fulfillment, pending, inquire); products carry `capabilities.ppu`, null unless
  pay-as-you-go is enabled (connect-cli tests/fixtures/{product,templates}_response.json
  @5b107754 / @862ab4a6).
Faults (status, slowness, resets) come from FakeService.
"""

from __future__ import annotations

from typing import Any

from fakes.server import FakeService, Reply, Request

PREFIX = "/public/v1"
UNAUTHORIZED = {"error_code": "AUTH_001", "errors": ["API request is unauthorized."]}


def not_found(what: str) -> Reply:
    return Reply.json({"error_code": "NFND_000", "errors": [f"{what} not found."]}, 404)


class FakeConnect(FakeService):
    def __init__(self, api_key: str = "ApiKey SU-123-456-789:0f1e2d3c4b5a69788796a5b4c3d2e1f0"
                 ) -> None:
        super().__init__()
        self.api_key = api_key
        self.products: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, list[dict[str, Any]]] = {}
        self.marketplaces: dict[str, dict[str, Any]] = {}
        self.account = {"id": "VA-392-495", "name": "Vendor", "type": "vendor"}

    def add_product(self, product_id: str, *templates: str | tuple[str, str, str | None],
                    ppu: dict[str, Any] | None = None) -> None:
        """A product with its templates: an id alone is an asset-scope fulfillment
        template; (id, scope, type) gives another kind (tier1/tier2 templates have no
        type, as in connect-cli's templates_response.json). `ppu` is the pay-as-you-go
        capability: None (disabled, as Connect shows `"ppu": null`) or e.g.
        `{"schema": "QT", "dynamic": False, "future": False}` (connect-cli
        plugins/product/sync/capabilities.py)."""
        self.products[product_id] = {
            "id": product_id, "name": f"Product {product_id}", "status": "published",
            "owner": {"id": self.account["id"], "name": self.account["name"]},
            "capabilities": {
                "ppu": ppu, "reservation": {"consumption": False},
                "cart": {"validation": False}, "inquiring": {"validation": False},
                "tiers": {"updates": False, "configs": None, "validation": False},
                "subscription": {"hold": False, "schema": "evergreen"}},
            "visibility": {"owner": True, "listing": True, "syndication": False,
                           "catalog": True}}
        listed = []
        for i, template in enumerate(templates):
            tid, scope, kind = (template, "asset", "fulfillment") if isinstance(
                template, str) else template
            record: dict[str, Any] = {
                "id": tid, "title": f"Template {tid}", "name": f"Template {tid}",
                "scope": scope, "body": "Access granted to {{ asset.id }}",
                "position": 10000 * (i + 1)}
            if kind is not None:
                record["type"] = kind
            listed.append(record)
        self.templates[product_id] = listed

    def add_marketplace(self, marketplace_id: str) -> None:
        self.marketplaces[marketplace_id] = {"id": marketplace_id, "name": "Test marketplace"}

    @property
    def endpoint(self) -> str:
        return self.url + PREFIX

    def _page(self, req: Request, items: list[dict[str, Any]]) -> Reply:
        limit = int(req.arg("limit") or 100)
        offset = int(req.arg("offset") or 0)
        page = items[offset:offset + limit]
        reply = Reply.json(page)
        if page:
            reply.headers["Content-Range"] = (
                f"items {offset}-{offset + len(page) - 1}/{len(items)}")
        else:
            reply.headers["Content-Range"] = f"items 0-0/{len(items)}"
        return reply

    def handle(self, req: Request) -> Reply:
        if req.headers.get("authorization") != self.api_key:
            return Reply.json(UNAUTHORIZED, 401)
        if req.method != "GET" or not req.path.startswith(PREFIX + "/"):
            return not_found("Resource")
        parts = req.path[len(PREFIX) + 1:].strip("/").split("/")
        match parts:
            case ["accounts"]:
                return self._page(req, [self.account])
            case ["products", pid]:
                product = self.products.get(pid)
                return Reply.json(product) if product else not_found(f"Product {pid}")
            case ["products", pid, "templates"]:
                if pid not in self.products:
                    return not_found(f"Product {pid}")
                return self._page(req, self.templates.get(pid, []))
            case ["marketplaces", mid]:
                market = self.marketplaces.get(mid)
                return Reply.json(market) if market else not_found(f"Marketplace {mid}")
        return not_found("Resource")
