"""A local HTTPS sandbox of the seven APIs funnelsync reads, for volume, fault and benchmark runs.

    from tests.sandbox import Sandbox, Fault, RateLimit
    with Sandbox(sizes={"hubspot.contacts": 25_000}) as sb:        # starts https://127.0.0.1:<port>
        os.environ.update(sb.ca_env())                              # SSL_CERT_FILE / REQUESTS_CA_BUNDLE = test CA
        source = sb.source("hubspot")                               # base_url + fake credentials
        sb.faults.append(Fault("throttle", api="hubspot", after=3, count=4))
        sb.rate_limits.append(RateLimit(100, 10.0))                 # sliding window: 429 + Retry-After beyond it
        ... funnelsync.sync.sync_source(wh, source, model, options) ...   (tests.sandbox.harness.sync does this)
        sb.stats.total("served"), sb.stats.total("rate_limited")

`python -m tests.sandbox [--scale X] [--size hubspot.contacts=25000]` serves it until Ctrl-C (for manual runs).

Connectors reach it exactly as a user reaches a proxy: every API is served under its own prefix on one server,
followed by the API's documented paths (`base_url`, `instance_url`, `login_url`, `token_uri` of the source), and TLS
is verified against a CA generated at start-up (tests/sandbox/certs.py, files in a temp dir, never committed).

What each API speaks is in its module's docstring: hubspot.py, salesforce.py, mailchimp.py, ga4.py (+ the Google
OAuth token endpoint in google_oauth.py), linkedin_ads.py, meta_ads.py, google_ads.py. Data are generated lazily and
deterministically per page from record indices (tests/sandbox/timeline.py), so 100x data costs the server no memory;
`sizes` ("<api>.<what>": n) and `scale` (a factor on every default size) set the volume, `<api>.change(...)` modifies
a share of the records (new versions, later cursor times), `<api>.malformed` names records generated without a
required field.

Switches (all thread-safe, changeable while the server runs):
- `faults`: `Fault(kind, api, match, after, count, every, status, retry_after)`, kinds "throttle" (the platform's own
  rate-limit answer), "error" (5xx burst), "drop" (half a body, then the connection closes), "reset" (half a body,
  then a TCP RST), "expire" (the platform's expired-token answer) — see server.Fault.
- `rate_limits`: `RateLimit(R, W, api=None)`: at most R requests per W seconds (sliding window), 429 (or the platform's
  throttle answer) with Retry-After beyond it; `stats` counts requests served ("served") and refused ("rate_limited").
- `tokens.ttl[api] = K`: every token of that API expires after K requests (401); the token endpoints (Salesforce
  client credentials, Google OAuth for GA4 / Google Ads) hand out new ones.
- `stats`: per API counters ("requests", "served", "throttle", "rate_limited", "error", "drop", "reset", "expire",
  "unauthorized", "status_NNN", "bug") and a request log (`stats.requests(api, path)`).
"""
from __future__ import annotations

import sys
import tempfile
import threading
import time
import traceback
from typing import Any

from .certs import Certificates, make_certificates
from .server import (
    Fault, LogEntry, RateLimit, Request, Response, Server, Stats, Tokens, json_response, split_target,
)

__all__ = ["Fault", "RateLimit", "Sandbox"]

APIS = ("hubspot", "salesforce", "mailchimp", "ga4", "google_oauth", "linkedin_ads", "meta_ads", "google_ads")


class Sandbox:
    def __init__(self, *, sizes: dict[str, int] | None = None, scale: float = 1.0, directory: str | None = None,
                 port: int = 0):
        self.sizes = dict(sizes or {})
        self.scale = scale
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="funnelsync-sandbox-")
        self.dir = directory or self._tmp.name
        self.certs: Certificates = make_certificates(self.dir)
        self.tokens = Tokens()
        self.stats = Stats()
        self.faults: list[Fault] = []
        self.rate_limits: list[RateLimit] = []
        self.lock = threading.Lock()
        self.clock = time.monotonic
        self._numbers: dict[str, int] = {}
        self.server = Server(self._dispatch, self.certs.cert_file, self.certs.key_file, port)
        self.url = f"https://127.0.0.1:{self.server.port}"
        from . import google_ads, google_oauth, ga4, hubspot, linkedin_ads, mailchimp, meta_ads, salesforce

        self.hubspot = hubspot.HubSpot(self)
        self.salesforce = salesforce.Salesforce(self)
        self.mailchimp = mailchimp.Mailchimp(self)
        self.google_oauth = google_oauth.GoogleOAuth(self)
        self.ga4 = ga4.GA4(self)
        self.linkedin_ads = linkedin_ads.LinkedInAds(self)
        self.meta_ads = meta_ads.MetaAds(self)
        self.google_ads = google_ads.GoogleAds(self)
        self.apis = {name: getattr(self, name) for name in APIS}

    # ---- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> "Sandbox":
        self.server.start()
        self._started = True
        return self

    def stop(self) -> None:
        if getattr(self, "_started", False):
            self.server.stop()
            self._started = False
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- what clients need ----------------------------------------------------------------------------------

    @property
    def ca_file(self) -> str:
        return self.certs.ca_file

    def ca_env(self) -> dict[str, str]:
        """Environment variables that make every HTTP stack trust the sandbox (and only it)."""
        return {"SSL_CERT_FILE": self.ca_file, "REQUESTS_CA_BUNDLE": self.ca_file, "CURL_CA_BUNDLE": self.ca_file}

    def source(self, api: str, **overrides: Any) -> dict:
        """A [sources.NAME] settings dict pointing the connector of `api` at the sandbox (fake credentials)."""
        return self.apis[api].source(**overrides)

    def reset(self) -> None:
        """Clear faults, rate limits, token lifetimes and stats (the data stay)."""
        with self.lock:
            self.faults.clear()
            self.rate_limits.clear()
            self.tokens.ttl.clear()
        self.stats.reset()

    def window_used(self, api: str) -> float | None:
        """Share (0..1) of the rate-limit window of `api` in use, None without a rate limit."""
        with self.lock:
            for rl in self.rate_limits:
                if rl.api in (None, api):
                    return rl.used(self.clock())
        return None

    # ---- dispatch -------------------------------------------------------------------------------------------

    def _dispatch(self, handler: Any, body: bytes) -> None:
        api_name, path, raw_query = split_target(handler.path)
        api = self.apis.get(api_name)
        started = self.clock()
        if api is None:
            resp = json_response(404, {"message": f"sandbox: no API {api_name!r}; one of {', '.join(APIS)}"})
            self.stats.add(LogEntry(api_name, handler.command, path, raw_query, 404, started, "unknown_api"))
            handler.send(resp)
            return
        with self.lock:
            number = self._numbers[api_name] = self._numbers.get(api_name, 0) + 1
        req = Request(api_name, handler.command, path, raw_query, handler.headers, body, self.url, number)
        cut = None
        try:
            resp, outcome, cut = self._answer(api, req)
            api.decorate(req, resp)
        except Exception:  # noqa: BLE001 - a sandbox bug: answer 500 and make it visible to the test
            traceback.print_exc(file=sys.stderr)
            resp, outcome = json_response(500, {"message": "sandbox bug"}), "bug"
        self.stats.add(LogEntry(api_name, req.method, path, raw_query, resp.status, started, outcome,
                                body if self.stats.keep_bodies else None))
        handler.send(resp, cut)

    def _answer(self, api: Any, req: Request) -> tuple[Response, str, str | None]:
        token_endpoint = api.is_token_endpoint(req)
        with self.lock:
            if not token_endpoint:
                for rl in self.rate_limits:
                    if rl.api in (None, api.name):
                        wait = rl.admit(self.clock())
                        if wait:
                            return api.throttle(req, wait), "rate_limited", None
            fired = None
            for f in self.faults:
                if f.api not in (None, api.name):
                    continue
                if f.match is not None and f.match not in req.path:
                    continue
                if token_endpoint and f.match is None:
                    continue
                if f.hit() and fired is None:
                    fired = f
        if fired is not None:
            if fired.kind == "throttle":
                return api.throttle(req, fired.retry_after), "throttle", None
            if fired.kind == "error":
                return api.error(req, fired.status), "error", None
            if fired.kind == "expire":
                return api.expired(req), "expire", None
        if not token_endpoint:
            denied = api.authenticate(req)
            if denied is not None:
                return denied, "unauthorized", None
        resp = api.handle(req)
        if fired is not None:  # drop / reset: a good answer, cut half way
            return resp, fired.kind, fired.kind
        return resp, "ok" if resp.status < 400 else "client_error", None


def main() -> None:  # pragma: no cover - `python -m tests.sandbox`: serve until interrupted
    import argparse

    parser = argparse.ArgumentParser(description="Serve the funnelsync API sandbox until interrupted.")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--size", action="append", default=[], metavar="API.WHAT=N")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sizes = {k: int(v) for k, v in (s.split("=", 1) for s in args.size)}
    with Sandbox(sizes=sizes, scale=args.scale, port=args.port) as sb:
        print(f"sandbox at {sb.url}; CA {sb.ca_file}", flush=True)
        for name in APIS:
            if name != "google_oauth":
                print(f"  {name}: {sb.apis[name].base_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
