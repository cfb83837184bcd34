"""The sandbox's HTTPS server: routing by API prefix, fault switches, a sliding-window rate limiter, tokens, stats.

One `ThreadingHTTPServer` (HTTP/1.1 keep-alive, TLS from a test CA) on 127.0.0.1 serves every API under its own
prefix, so a connector reaches it exactly as it would reach a proxy: `base_url = https://127.0.0.1:PORT/<api>/...`
followed by the API's documented paths. See tests/sandbox/__init__.py for the user-facing description.
"""
from __future__ import annotations

import collections
import json
import math
import socket
import ssl
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

# ---- requests and responses ----------------------------------------------------------------------------------


@dataclass
class Request:
    api: str
    method: str
    path: str  # after the API prefix, without the query string, percent-decoded
    raw_query: str  # exactly as sent (LinkedIn's Rest.li syntax is checked on it)
    headers: Any  # email.message.Message (case-insensitive get)
    body: bytes
    root: str  # https://127.0.0.1:PORT
    number: int = 0  # 1-based request number of this API

    @property
    def base(self) -> str:
        return f"{self.root}/{self.api}"

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)

    def q(self, name: str, default: Any = None) -> Any:
        values = self.query.get(name)
        return values[0] if values else default

    def q_list(self, name: str) -> list[str]:
        out: list[str] = []
        for v in self.query.get(name, []):
            out.extend(x for x in v.split(",") if x)
        return out

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        return value[7:].strip() if value.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def streamed(self) -> bool:
        return not isinstance(self.body, (bytes, bytearray))


def json_response(status: int, payload: Any, headers: dict | None = None,
                  content_type: str = "application/json;charset=utf-8") -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(),
                    {"Content-Type": content_type, **(headers or {})})


# ---- switches --------------------------------------------------------------------------------------------------

FAULT_KINDS = ("throttle", "error", "drop", "reset", "expire")


@dataclass
class Fault:
    """Fail matching requests: `kind` is
    - "throttle": the API's own rate-limit answer (HubSpot/LinkedIn/Mailchimp 429 + Retry-After and their headers,
      Meta HTTP 400 code 17 + x-business-use-case-usage, Salesforce 403 REQUEST_LIMIT_EXCEEDED + Sforce-Limit-Info,
      GA4 429 RESOURCE_EXHAUSTED, Google Ads 429 QUOTA_ERROR with retryDelay);
    - "error": an HTTP `status` (5xx) with the API's error body;
    - "drop": the status line, headers and half the body, then the connection is closed (TLS close_notify);
    - "reset": half the body, then a TCP reset (SO_LINGER 0);
    - "expire": the API's 401 / expired-token answer (as if the token expired now).
    The `after` first matching requests pass, then `count` in a row fail; with `every`, that burst repeats every
    `every` matching requests. Token endpoints are skipped unless `match` names them."""

    kind: str
    api: str | None = None  # None: every API
    match: str | None = None  # substring of the path (after the API prefix)
    after: int = 0
    count: int = 1
    every: int | None = None
    status: int = 503
    retry_after: float = 1.0
    seen: int = 0  # matching requests so far
    fired: int = 0

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r}; one of {FAULT_KINDS}")

    def hit(self) -> bool:
        self.seen += 1
        n = self.seen - self.after
        if n <= 0:
            return False
        fire = ((n - 1) % self.every) < self.count if self.every else n <= self.count
        if fire:
            self.fired += 1
        return fire


@dataclass
class RateLimit:
    """At most `max_requests` served per `per_seconds` (sliding window); beyond it the API's throttle answer with
    Retry-After = seconds until the window has room again (rounded up)."""

    max_requests: int
    per_seconds: float
    api: str | None = None  # None: one window shared by every API
    sent: collections.deque = field(default_factory=collections.deque)

    def admit(self, now: float) -> float:
        """0 when the request may be served (and counts it), else seconds until there is room."""
        while self.sent and now - self.sent[0] >= self.per_seconds:
            self.sent.popleft()
        if len(self.sent) < self.max_requests:
            self.sent.append(now)
            return 0.0
        return max(0.001, self.per_seconds - (now - self.sent[0]))

    def used(self, now: float) -> float:
        """Share of the window in use (0..1)."""
        while self.sent and now - self.sent[0] >= self.per_seconds:
            self.sent.popleft()
        return len(self.sent) / self.max_requests


# ---- tokens ----------------------------------------------------------------------------------------------------


class Tokens:
    """Static tokens per API plus tokens issued by the token endpoints; with `ttl[api] = K` every token of that API
    is rejected (401 / expired) after K authenticated requests, until a new one is issued."""

    def __init__(self):
        self.static: dict[str, set[str]] = collections.defaultdict(set)
        self.issued: dict[str, str] = {}  # token -> api
        self.uses: collections.Counter = collections.Counter()
        self.ttl: dict[str, int] = {}
        self.counter = 0
        self.lock = threading.Lock()

    def issue(self, api: str, prefix: str) -> str:
        with self.lock:
            self.counter += 1
            token = f"{prefix}{self.counter}-{uuid.uuid4().hex[:8]}"
            self.issued[token] = api
            return token

    def check(self, api: str, token: str | None) -> str:
        """"ok", "expired" or "invalid"."""
        if not token:
            return "invalid"
        with self.lock:
            if token not in self.static[api] and self.issued.get(token) != api:
                return "invalid"
            self.uses[token] += 1
            ttl = self.ttl.get(api)
            if ttl is not None and self.uses[token] > ttl:
                return "expired"
            return "ok"


# ---- stats -----------------------------------------------------------------------------------------------------


@dataclass
class LogEntry:
    api: str
    method: str
    path: str
    query: str
    status: int
    at: float
    outcome: str  # "ok", "throttle", "error", "drop", "reset", "expire", "unauthorized", "rate_limited", ...
    body: bytes | None = None


class Stats:
    def __init__(self):
        self.counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.log: list[LogEntry] = []
        self.keep_bodies = False
        self.lock = threading.Lock()

    def add(self, entry: LogEntry) -> None:
        with self.lock:
            c = self.counts[entry.api]
            c["requests"] += 1
            c[entry.outcome] += 1
            c[f"status_{entry.status}"] += 1
            if entry.outcome == "ok":
                c["served"] += 1
            self.log.append(entry)

    def total(self, key: str, api: str | None = None) -> int:
        with self.lock:
            if api is not None:
                return self.counts[api][key]
            return sum(c[key] for c in self.counts.values())

    def requests(self, api: str | None = None, path: str | None = None) -> list[LogEntry]:
        with self.lock:
            return [e for e in self.log if (api is None or e.api == api) and (path is None or path in e.path)]

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.log.clear()


# ---- the HTTP server -------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "funnelsync-sandbox/1.0"
    disable_nagle_algorithm = True  # headers and body are separate writes: without it each answer waits ~40 ms

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.sandbox_dispatch(self, body)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def send(self, response: Response, cut: str | None = None) -> None:
        """Write `response`; `cut` = "drop" / "reset" stops half way through the body and closes the connection."""
        self.send_response(response.status)
        body = response.body
        if cut and response.streamed:
            body = b"".join(body)  # type: ignore[arg-type]
        if isinstance(body, (bytes, bytearray)):
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Date", self.date_time_string())
        if cut:
            self.send_header("Connection", "keep-alive")
        self.end_headers()
        if cut:
            self.wfile.write(body[: max(1, len(body) // 2)])  # type: ignore[index]
            self.wfile.flush()
            self._cut(cut)
            return
        if isinstance(body, (bytes, bytearray)):
            self.wfile.write(body)
        else:
            for chunk in body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self, how: str) -> None:
        self.close_connection = True
        sock = self.connection
        try:
            if how == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            else:
                try:
                    sock.unwrap()  # TLS close_notify: the client sees a clean EOF mid-body
                except (OSError, ValueError):
                    pass
                sock.close()
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:  # clients that hang up mid-way: not news
        pass


class Server:
    """Owns the listening socket and thread; calls `dispatch(handler, body)`."""

    def __init__(self, dispatch: Callable[[Any, bytes], None], cert_file: str, key_file: str, port: int = 0):
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.sandbox_dispatch = dispatch  # type: ignore[attr-defined]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="funnelsync-sandbox",
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def split_target(target: str) -> tuple[str, str, str]:
    """"/hubspot/crm/v3/x?a=1" -> ("hubspot", "/crm/v3/x", "a=1")."""
    parts = urlsplit(target)
    path = unquote(parts.path)
    _, _, rest = path.partition("/")
    api, slash, tail = rest.partition("/")
    return api, "/" + tail if slash else "/", parts.query


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def correlation_id() -> str:
    return str(uuid.uuid4())


def now() -> float:
    return time.monotonic()


def chunks(lines: Iterator[str], size: int = 1 << 16) -> Iterator[bytes]:
    """Group text lines into ~64 kB byte chunks (a chunked response body)."""
    buf: list[str] = []
    n = 0
    for line in lines:
        buf.append(line)
        n += len(line)
        if n >= size:
            yield "".join(buf).encode()
            buf, n = [], 0
    if buf:
        yield "".join(buf).encode()
