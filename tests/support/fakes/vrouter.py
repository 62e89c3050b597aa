"""A CloudStack virtual router's metadata service on 127.0.0.1.

As the router serves it (runbook; systemvm `cloud-set-guest-*`, VR's
/var/www/html/{userdata,metadata}/<guest ip>/ tree): plain-text bodies at
`/latest/user-data` and `/latest/meta-data/<type>`, the older `/latest/<type>`
for the same values, 404 for anything it does not hold. `new_urls=False` makes
it an old router that only answers the old URLs.
"""

from __future__ import annotations

from fakes.server import FakeService, Reply, Request


class FakeRouter(FakeService):
    def __init__(self, user_data: str | None, meta_data: dict[str, str],
                 new_urls: bool = True) -> None:
        super().__init__()
        self.user_data = user_data
        self.meta_data = dict(meta_data)
        self.new_urls = new_urls

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def handle(self, req: Request) -> Reply:
        if req.method != "GET":
            return Reply.text("Method Not Allowed", 405)
        path = req.path
        if path == "/latest/user-data" and self.user_data is not None:
            return Reply(200, self.user_data.encode(), "text/plain")
        kind = None
        if path.startswith("/latest/meta-data/") and self.new_urls:
            kind = path.removeprefix("/latest/meta-data/")
        elif path.startswith("/latest/") and path.count("/") == 2:
            kind = path.removeprefix("/latest/")
        if kind in self.meta_data:
            return Reply(200, self.meta_data[kind].encode(), "text/plain")
        return Reply.text("<html><body><h1>404 Not Found</h1></body></html>", 404)
