"""The shape of one sandboxed API: authentication, the handler, and its own throttle / error / expiry answers."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .server import Request, Response, json_response

if TYPE_CHECKING:  # pragma: no cover
    from . import Sandbox


class Api:
    name = ""

    def __init__(self, sandbox: "Sandbox"):
        self.sandbox = sandbox
        self.malformed: set[int] = set()  # indices of records generated without a required field

    # sizes: `Sandbox(sizes={"hubspot.contacts": 25000}, scale=...)`
    def size(self, what: str, default: int) -> int:
        override = self.sandbox.sizes.get(f"{self.name}.{what}")
        if override is not None:
            return int(override)
        return max(1, int(round(default * self.sandbox.scale)))

    @property
    def base_url(self) -> str:
        return f"{self.sandbox.url}/{self.name}"

    def is_token_endpoint(self, req: Request) -> bool:
        return False

    def authenticate(self, req: Request) -> Response | None:
        """None when the request's credentials are good, else the API's 401 answer."""
        state = self.sandbox.tokens.check(self.name, self.credential(req))
        if state == "ok":
            return None
        return self.expired(req) if state == "expired" else self.unauthorized(req)

    def credential(self, req: Request) -> str | None:
        return req.bearer()

    def handle(self, req: Request) -> Response:
        return self.not_found(req)

    def decorate(self, req: Request, resp: Response) -> None:
        """Add the headers every response of this API carries (usage, limits)."""

    def source(self, **overrides: Any) -> dict:
        raise NotImplementedError

    # ---- answers; each API overrides them with its documented bodies ----

    def not_found(self, req: Request) -> Response:
        return json_response(404, {"message": f"sandbox: no {req.method} {req.path} in {self.name}"})

    def throttle(self, req: Request, retry_after: float) -> Response:
        return json_response(429, {"message": "rate limited"}, {"Retry-After": str(int(retry_after + 0.999))})

    def error(self, req: Request, status: int) -> Response:
        return json_response(status, {"message": "internal error"})

    def unauthorized(self, req: Request) -> Response:
        return json_response(401, {"message": "unauthorized"})

    def expired(self, req: Request) -> Response:
        return self.unauthorized(req)
