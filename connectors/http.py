"""The one HTTP layer: a requests Session per source with timeouts, retries, pacing and redaction.

- 429, 5xx and network errors are retried (tenacity), honouring Retry-After, else exponential backoff with
  jitter capped at 60 s; when the retries are spent a `TemporaryError` (exit 75) is raised.
- 401 calls `auth.refresh()` once where the auth has one, then `AuthError` (exit 3); 403 is `AuthError`.
- Other 4xx raise `ApiError` unless the connector's `classify` hook says otherwise (Meta throttles with 400).
- Pacing: at most `max_requests` per `per_seconds` (a sliding window), below the API's documented limit.
- HTTPS verification stays on and uses the CA bundle the environment names (see `setup_ca_bundle`).
- Every message goes through `redact`: no token, key or secret ever reaches a log or an error.

SDK-based connectors (HubSpot, Mailchimp, GA4) wrap their SDK calls in `with_retries` for the same policy.
"""
from __future__ import annotations

import collections
import email.utils
import os
import re
import tempfile
import threading
import time
from typing import Any, Callable, Iterable

import requests
from tenacity import RetryCallState, retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from connectors.errors import ApiError, AuthError, ConnectorError, TemporaryError

SLEEP: Callable[[float], None] = time.sleep  # tests replace it: they never sleep
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 8
TIMEOUT = (10, 120)

_SECRET_PARAMS = re.compile(
    r"(?i)((?:access_token|api_key|apikey|hapikey|client_secret|refresh_token|assertion|password|token|key|sig)"
    r"[\"']?\s*[=:]\s*[\"']?)([^&\s\"',}]+)"
)
_BEARER = re.compile(r"(?i)(bearer|oauth|apikey|basic)\s+[A-Za-z0-9._~+/=-]{6,}")


def redact(text: Any, secrets: Iterable[str] = ()) -> str:
    """Remove secret values and anything shaped like a credential from a message."""
    out = str(text)
    for secret in secrets:
        if secret and len(str(secret)) >= 4:
            out = out.replace(str(secret), "***")
    out = _SECRET_PARAMS.sub(lambda m: m.group(1) + "***", out)
    return _BEARER.sub(lambda m: m.group(1) + " ***", out)


# ---- CA bundle ---------------------------------------------------------------------------------------------

_CA_LOCK = threading.Lock()


def setup_ca_bundle(environ: dict[str, str] | None = None) -> str | None:
    """Make SSL_CERT_FILE, REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE work for every HTTP library underneath.

    requests honours only REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE, urllib3-based SDKs (HubSpot) only SSL_CERT_FILE or an
    explicit `ssl_ca_cert`. When the variables name different files, they are concatenated into one PEM; the
    result is exported under all three names and returned (None when none is set).
    """
    env = os.environ if environ is None else environ
    with _CA_LOCK:
        files: list[str] = []
        for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            path = env.get(var)
            if path and os.path.isfile(path) and os.path.realpath(path) not in [os.path.realpath(f) for f in files]:
                files.append(path)
        if not files:
            return None
        if len(files) == 1:
            bundle = files[0]
        else:
            fd, bundle = tempfile.mkstemp(prefix="funnelsync-ca-", suffix=".pem")
            with os.fdopen(fd, "wb") as out:
                for path in files:
                    with open(path, "rb") as f:
                        out.write(f.read().rstrip(b"\n") + b"\n")
        for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            env[var] = bundle
        return bundle


def ca_bundle() -> str | bool:
    """The `verify=` value for requests: the configured bundle, else True (system default)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


# ---- pacing ------------------------------------------------------------------------------------------------


class Pacer:
    """At most `max_requests` in any `per_seconds` window (sliding), shared by the threads of one source."""

    def __init__(self, max_requests: int | None, per_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.max_requests = max_requests
        self.per_seconds = per_seconds
        self.clock = clock
        self.sent: collections.deque[float] = collections.deque()
        self.lock = threading.Lock()
        self.paused_until = 0.0

    def wait(self) -> None:
        while True:
            with self.lock:
                now = self.clock()
                delay = max(0.0, self.paused_until - now)
                if not delay and self.max_requests:
                    while self.sent and now - self.sent[0] >= self.per_seconds:
                        self.sent.popleft()
                    if len(self.sent) >= self.max_requests:
                        delay = self.per_seconds - (now - self.sent[0]) + 0.001
                if not delay:
                    self.sent.append(now)
                    return
            SLEEP(delay)

    def pause(self, seconds: float) -> None:
        """Hold every request of this source for `seconds` (a platform's usage header said slow down)."""
        with self.lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)


# ---- retries -----------------------------------------------------------------------------------------------


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return min(float(retry_after), 300.0)
    return wait_random_exponential(multiplier=1, max=60)(state)


class _Retry(TemporaryError):
    """Internal: one failed attempt that may be retried."""


def with_retries(call: Callable[[], Any], attempts: int = MAX_ATTEMPTS, classify: Callable[[BaseException], Exception | None] | None = None) -> Any:
    """Run `call`; retry what `classify` (or the raised `TemporaryError`) marks temporary; re-raise the rest.

    `classify(exc)` maps an SDK exception to a connector error (TemporaryError to retry, AuthError, ApiError)
    or returns None to let it propagate unchanged.
    """

    @retry(retry=retry_if_exception_type(TemporaryError), wait=_wait, stop=stop_after_attempt(attempts),
           sleep=lambda s: SLEEP(s), reraise=True)
    def attempt() -> Any:
        try:
            return call()
        except ConnectorError:
            raise
        except Exception as exc:  # noqa: BLE001 - classify decides; unknown errors propagate unchanged
            mapped = classify(exc) if classify else None
            if mapped is None:
                raise
            raise mapped from None

    try:
        return attempt()
    except _Retry as exc:
        raise TemporaryError(str(exc), exc.retry_after) from None


# ---- small pieces every connector needs ----------------------------------------------------------------------


class Bearer:
    """`Authorization: Bearer <token>` for Http; a connector with a refresh flow subclasses it with `refresh()`."""

    def __init__(self, token: str):
        self.token = token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def secrets(self) -> list[str]:
        return [self.token]


def pacing(requests_per_second: float | None, default: float | None) -> dict:
    """Http pacing arguments for a source's `requests_per_second` (else `default`; None = no pacing).
    Whole rates pace per second; fractional ones per 10 s (9.5/s = 95 per 10 s); below 1: one per 1/rps s."""
    rps = float(requests_per_second or default or 0)
    if rps <= 0:
        return {}
    if rps >= 1 and rps == int(rps):
        return {"max_requests": int(rps), "per_seconds": 1.0}
    if rps >= 1:
        return {"max_requests": round(rps * 10), "per_seconds": 10.0}
    return {"max_requests": 1, "per_seconds": 1.0 / rps}


OAUTH_CREDENTIAL_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"})


def oauth_error(what: str) -> Callable[[requests.Response], Exception | None]:
    """A `classify` hook for OAuth token endpoints: 400/401 `invalid_grant`/`invalid_client`/... mean the
    credentials were rejected (AuthError, exit 3), not a transient failure. `what` ends the message."""

    def classify(response: requests.Response) -> Exception | None:
        if response.status_code not in (400, 401):
            return None
        try:
            err = response.json().get("error")
        except (ValueError, AttributeError):
            err = None
        if err in OAUTH_CREDENTIAL_ERRORS or response.status_code == 401:
            return AuthError(f"the OAuth token endpoint rejected {what} ({err or 'HTTP 401'})")
        return None

    return classify


# ---- the client --------------------------------------------------------------------------------------------


class Http:
    """A requests Session bound to one source: base URL, default headers, auth, pacing, redaction, counting.

    `auth` is an object with `headers() -> dict` and optionally `refresh()` (called once on a 401).
    `classify(response)` may turn a non-2xx response into an error (or None for the default handling); connectors
    use it for APIs that signal throttling or expiry unusually (Meta's 400 + code 17, Salesforce's session errors).
    """

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None, auth: Any = None,
                 max_requests: int | None = None, per_seconds: float = 1.0, secrets: Iterable[str] = (),
                 classify: Callable[[requests.Response], Exception | None] | None = None,
                 on_response: Callable[[requests.Response], None] | None = None, session: requests.Session | None = None,
                 attempts: int = MAX_ATTEMPTS):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.verify = ca_bundle()
        self.session.headers.update({"User-Agent": "funnelsync/0.1", **(headers or {})})
        self.auth = auth
        self.pacer = Pacer(max_requests, per_seconds)
        self.secrets = [s for s in secrets if s]
        self.classify = classify
        self.on_response = on_response
        self.attempts = attempts
        self.requests = 0  # every request sent, retries included

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def redact(self, text: Any) -> str:
        secrets = list(self.secrets)
        if self.auth is not None:
            secrets += [v for v in getattr(self.auth, "secrets", lambda: [])() if v]
        return redact(text, secrets)

    def request(self, method: str = "GET", url: str = "", *, params: dict | None = None, json: Any = None,
                data: Any = None, headers: dict | None = None, query: str | None = None,
                stream: bool = False) -> requests.Response:
        """Send one request with the retry policy. `query` is a pre-encoded query string appended as is
        (LinkedIn Rest.li needs `( ) : ,` unencoded). `stream=True` leaves a 2xx body unread, for
        `iter_content` (large CSV exports); close the response when done."""
        full = self.url(url)
        if query:
            full += ("&" if "?" in full else "?") + query
        refreshed = False

        def attempt() -> requests.Response:
            nonlocal refreshed
            self.pacer.wait()
            hdrs = dict(headers or {})
            if self.auth is not None:
                hdrs.update(self.auth.headers())
            self.requests += 1
            try:
                response = self.session.request(method, full, params=params, json=json, data=data, headers=hdrs,
                                                timeout=TIMEOUT, stream=stream)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                raise _Retry(self.redact(f"{method} {full}: network error: {type(exc).__name__}")) from None
            if self.on_response:
                self.on_response(response)
            if response.status_code < 400:
                return response
            status = response.status_code
            mapped = self.classify(response) if self.classify else None
            if mapped is REFRESH_TOKEN:
                status = 401
            elif isinstance(mapped, TemporaryError):
                raise _Retry(self.redact(str(mapped)), mapped.retry_after)
            elif mapped is not None:
                raise mapped
            if status == 401:
                if not refreshed and self.auth is not None and hasattr(self.auth, "refresh"):
                    refreshed = True
                    self.auth.refresh()
                    raise _Retry("token refreshed", retry_after=0)
                raise AuthError(self.redact(f"{describe(method, full)} was rejected: HTTP {status} {_snippet(response)}"))
            if status == 403:
                raise AuthError(self.redact(f"{describe(method, full)} was refused: HTTP 403 {_snippet(response)}"))
            if status in RETRY_STATUSES:
                raise _Retry(self.redact(f"{describe(method, full)}: HTTP {status} {_snippet(response)}"),
                             parse_retry_after(response.headers.get("Retry-After")))
            raise ApiError(self.redact(f"{describe(method, full)}: HTTP {status} {_snippet(response)}"), status)

        return with_retries(attempt, attempts=self.attempts)

    def get_json(self, url: str = "", **kw: Any) -> Any:
        return self.request("GET", url, **kw).json()


class _RefreshToken(Exception):
    """Returned by a `classify` hook: this response means the token expired (refresh once, then AuthError)."""


REFRESH_TOKEN = _RefreshToken()


def describe(method: str, url: str) -> str:
    """`GET https://host/path` without the query string (which may hold secrets or PII)."""
    return f"{method} {url.split('?', 1)[0]}"


def _snippet(response: requests.Response, limit: int = 300) -> str:
    text = (response.text or "").strip().replace("\n", " ")
    return text[:limit]
