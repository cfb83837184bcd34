"""Google Analytics 4 Data API v1beta, `properties/{id}:runReport`, through google-analytics-data (REST transport).

Docs: https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport,
quotas: https://developers.google.com/analytics/devguides/reporting/data/v1/quotas.

Auth: a service-account key file (`credentials_file`) or a static `access_token`. For a key file we sign the
JWT assertion ourselves and POST it to the key's `token_uri` (grant_type jwt-bearer) with requests, because the
stock client signs a self-issued JWT and never calls `token_uri` (sdk-notes). Both are a small credentials class
derived from the base `google.auth.credentials.Credentials`, which also keeps google-auth's regional access
boundary lookup (a background call to iamcredentials.googleapis.com) from starting. A 401 makes google-auth's
AuthorizedSession refresh once (a new assertion); a static token cannot be refreshed (AuthError, exit 3).

Report: one fixed report, `run_report` — dimensions `date, sessionSource, sessionMedium, sessionCampaignName,
sessionManualAdContent, sessionManualTerm, sessionDefaultChannelGroup, landingPage` (8 of the 9 allowed) and
metrics `sessions, engagedSessions, newUsers, screenPageViews, keyEvents, userEngagementDuration`
(`conversions` on properties that reject `keyEvents`). The dimension set is fixed on purpose: never add a
dimension to a report whose totals that would change (a hit-scoped dimension splits sessions, more dimensions
make GA4 fold rows into "(other)" and threshold more), and a changed set changes every row's natural key, so it
needs `--full-refresh`. One raw record per row, `_id` = `YYYY-MM-DD|source|medium|campaign|content|term|landing`
(the channel group is a function of source/medium/campaign, so it is not part of the key).

Windows and re-reads: day windows of `window_days` (default 30) from the start to yesterday (the last complete
day; dates are in the property's time zone). GA4 keeps processing data for 24-72 h, so every sync re-reads the
last `reread_days` (default 3) and every day still marked provisional: the first page of each window carries
`Replace("run_report", first, last)` so those days are replaced exactly, the last page carries the state
`{"last_day": "YYYY-MM-DD", "provisional_from": "YYYY-MM-DD"}` (the second key only while the window holds
provisional days). Rows of days within `reread_days` of now get `_provisional: true`; a later sync re-reads them
and writes them final. Paging: `limit` (`page_size`, default 100000) / `offset` until `rowCount`, rows ordered by
every dimension so offsets are stable.

Quota: requests ask for `returnPropertyQuota`. Before each further request the last reported `tokensPerDay`,
`tokensPerHour` and `tokensPerProjectPerHour` are checked: when one has `consumed / (consumed + remaining)` >=
`quota_stop_share` (default 0.9) or fewer than `quota_min_tokens` (default 500) remaining, the stream stops with
`QuotaError` (exit 75) between pages; the loop commits what it has and the next run resumes at the saved window.
A 429 RESOURCE_EXHAUSTED is a spent token bucket, not a blip: `QuotaError` without retrying. 5xx and network
errors are retried (`connectors.http.with_retries`), 401/403 are `AuthError`.

Settings read ([sources.NAME]): property_id, credentials_file | access_token, token_uri (overrides the key's),
base_url (default https://analyticsdata.googleapis.com), window_days, reread_days, page_size, quota_stop_share,
quota_min_tokens.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterator

from connectors.core import Page, Replace, Run, Stream, day_windows
from connectors.errors import ApiError, AuthError, QuotaError, TemporaryError
from connectors.http import Http, oauth_error, parse_retry_after, redact, with_retries

TYPE = "ga4"
BASE_URL = "https://analyticsdata.googleapis.com"
TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

DIMENSIONS = ("date", "sessionSource", "sessionMedium", "sessionCampaignName", "sessionManualAdContent",
              "sessionManualTerm", "sessionDefaultChannelGroup", "landingPage")
METRICS = ("sessions", "engagedSessions", "newUsers", "screenPageViews", "keyEvents", "userEngagementDuration")
KEY_DIMENSIONS = ("sessionSource", "sessionMedium", "sessionCampaignName", "sessionManualAdContent",
                  "sessionManualTerm", "landingPage")
QUOTAS = (("tokens_per_day", "tokensPerDay"), ("tokens_per_hour", "tokensPerHour"),
          ("tokens_per_project_per_hour", "tokensPerProjectPerHour"))
SOURCE_OBJECT = "run_report"


# ---- credentials -------------------------------------------------------------------------------------------


class _TokenClient:
    """Fetch access tokens from a service-account key's token_uri with a self-signed JWT assertion."""

    def __init__(self, info: dict, token_uri: str):
        for key in ("client_email", "private_key"):
            if not info.get(key):
                raise ApiError(f"GA4 credentials_file has no {key}: it must be a service-account key (JSON)")
        self.info = info
        self.token_uri = token_uri
        self.http = Http(token_uri, classify=oauth_error("the service-account key"), attempts=4)

    def assertion(self) -> str:
        from google.auth import crypt, jwt

        signer = crypt.RSASigner.from_service_account_info(self.info)
        now = int(time.time())
        payload = {"iss": self.info["client_email"], "scope": SCOPE, "aud": self.token_uri,
                   "iat": now, "exp": now + 3600}
        token = jwt.encode(signer, payload)
        return token.decode("ascii") if isinstance(token, bytes) else token

    def fetch(self) -> tuple[str, int | None]:
        body = self.http.request("POST", "", data={"grant_type": JWT_BEARER, "assertion": self.assertion()}).json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthError("GA4: the token endpoint answered without an access_token")
        expires = body.get("expires_in")
        return token, int(expires) if expires is not None else None


def make_credentials(fetch=None, token: str | None = None):
    """A `google.auth.credentials.Credentials` that gets its token from `fetch()` (or holds a static one)."""
    from google.auth import _helpers
    from google.auth import credentials as ga_credentials

    class FunnelsyncCredentials(ga_credentials.Credentials):
        def __init__(self):
            super().__init__()
            self.token = token
            self._fetch = fetch

        def refresh(self, request):  # google-auth calls it before the first request and on a 401
            if self._fetch is None:
                raise AuthError("GA4 rejected the access_token (HTTP 401): set a fresh access_token or use a "
                                "service-account credentials_file")
            value, expires_in = self._fetch()
            self.token = value
            self.expiry = (_helpers.utcnow() + timedelta(seconds=max(0, expires_in - 60))) if expires_in else None

    return FunnelsyncCredentials()


# ---- client ------------------------------------------------------------------------------------------------


@dataclass
class Client:
    sdk: Any
    property_id: str
    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    quota: dict | None = None  # last propertyQuota: {"tokensPerDay": {"consumed": n, "remaining": n}, ...}
    requests: int = 0

    def run_report(self, start: date, end: date, offset: int, limit: int) -> Any:
        """One runReport page (retried on 5xx/network errors; the SDK's own retry is off)."""
        try:
            return self._run(start, end, offset, limit)
        except ApiError as exc:
            # Properties created before the keyEvents rename (March 2024) may still only know `conversions`.
            if "keyEvents" in self.metrics and "keyEvents" in str(exc):
                self.metrics = ["conversions" if m == "keyEvents" else m for m in self.metrics]
                return self._run(start, end, offset, limit)
            raise

    def _run(self, start: date, end: date, offset: int, limit: int) -> Any:
        from google.analytics.data_v1beta.types import DateRange, Dimension, Metric, OrderBy, RunReportRequest

        request = RunReportRequest(
            property=f"properties/{self.property_id}",
            dimensions=[Dimension(name=d) for d in DIMENSIONS],
            metrics=[Metric(name=m) for m in self.metrics],
            date_ranges=[DateRange(start_date=start.isoformat(), end_date=end.isoformat())],
            order_bys=[OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name=d)) for d in DIMENSIONS],
            limit=limit,
            offset=offset,
            keep_empty_rows=False,
            return_property_quota=True,
        )

        def call():
            self.requests += 1
            return self.sdk.run_report(request=request, retry=None, timeout=120)

        try:
            response = with_retries(call, classify=_classify)
        except _QuotaSpent as exc:
            raise QuotaError(str(exc)) from None
        self.quota = _quota_of(response)
        return response


class _QuotaSpent(ApiError):
    """Internal: a 429 RESOURCE_EXHAUSTED — not retried (ApiError), re-raised as QuotaError by the caller."""


def _classify(exc: BaseException) -> Exception | None:
    """Map google.api_core / requests exceptions to connector errors (TemporaryError = retry)."""
    from google.api_core import exceptions as gexc
    import requests

    if isinstance(exc, gexc.GoogleAPICallError):
        message = redact(f"GA4 runReport: HTTP {exc.code}: {exc.message}")
        if isinstance(exc, (gexc.Unauthorized, gexc.Forbidden)):
            return AuthError(message)
        if isinstance(exc, gexc.TooManyRequests):
            return _QuotaSpent(message + " (property quota spent; the next run resumes)", 429)
        if isinstance(exc, gexc.ServerError):
            response = getattr(exc, "response", None)
            retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
            return TemporaryError(message, retry_after)
        return ApiError(message, exc.code if isinstance(exc.code, int) else None)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return TemporaryError(f"GA4 runReport: network error: {type(exc).__name__}")
    if type(exc).__module__.startswith("google.auth"):
        return TemporaryError(redact(f"GA4 auth transport error: {exc}"))
    return None


def _quota_of(response: Any) -> dict | None:
    pb = type(response).pb(response)
    if not pb.HasField("property_quota"):
        return None
    out = {}
    for attr, name in QUOTAS:
        if pb.property_quota.HasField(attr):
            status = getattr(pb.property_quota, attr)
            out[name] = {"consumed": status.consumed, "remaining": status.remaining}
    return out


def quota_problem(quota: dict | None, stop_share: float, min_tokens: int) -> str | None:
    """Why the next request should not be sent (a token bucket is nearly spent), or None."""
    for name, status in (quota or {}).items():
        consumed, remaining = int(status.get("consumed", 0)), int(status.get("remaining", 0))
        limit = consumed + remaining
        if limit <= 0:
            continue
        if remaining < min_tokens or consumed / limit >= stop_share:
            return (f"GA4 property quota {name}: {consumed} of {limit} tokens used (stop at "
                    f"{stop_share:.0%} or < {min_tokens} left); stopping, the next run resumes")
    return None


def connect(source: dict) -> Client:
    """Build the SDK client for one property (REST transport, our credentials, base_url honoured)."""
    from google.analytics.data_v1beta import BetaAnalyticsDataClient

    property_id = str(source.get("property_id") or "").strip()
    if property_id.startswith("properties/"):
        property_id = property_id.split("/", 1)[1]
    if not property_id:
        raise ApiError("GA4 source needs property_id")
    if source.get("credentials_file"):
        try:
            with open(source["credentials_file"], encoding="utf-8") as f:
                info = json.load(f)
        except (OSError, ValueError) as exc:
            raise ApiError(f"GA4 credentials_file cannot be read: {type(exc).__name__}") from None
        tokens = _TokenClient(info, source.get("token_uri") or info.get("token_uri") or TOKEN_URI)
        credentials = make_credentials(fetch=tokens.fetch)
    elif source.get("access_token"):
        credentials = make_credentials(token=source["access_token"])
    else:
        raise ApiError("GA4 source needs credentials_file or access_token")
    base_url = (source.get("base_url") or BASE_URL).rstrip("/")
    sdk = BetaAnalyticsDataClient(credentials=credentials, transport="rest",
                                  client_options={"api_endpoint": base_url, "scopes": [SCOPE]})
    return Client(sdk=sdk, property_id=property_id)


# ---- the stream --------------------------------------------------------------------------------------------


def _setting(run: Run, key: str, default: Any) -> Any:
    value = run.setting(key)
    return default if value is None else value


def first_day(run: Run, reread_days: int) -> date:
    """Resume after the saved day, but re-read the last `reread_days` and every day still provisional."""
    state = run.state or {}
    if run.backfill or not state.get("last_day"):
        return run.start
    candidates = [date.fromisoformat(state["last_day"]) + timedelta(days=1), run.today - timedelta(days=reread_days)]
    if state.get("provisional_from"):
        candidates.append(date.fromisoformat(state["provisional_from"]))
    return max(run.start, min(candidates))


def fetch_report(client: Client, run: Run) -> Iterator[Page]:
    """Yield the report window by window: Replace on each window's first page, state on its last."""
    reread = int(_setting(run, "reread_days", 3))
    window = max(1, int(_setting(run, "window_days", 30)))
    limit = max(1, min(250_000, int(_setting(run, "page_size", 100_000))))
    stop_share = float(_setting(run, "quota_stop_share", 0.9))
    min_tokens = int(_setting(run, "quota_min_tokens", 500))
    end = run.end if run.backfill else run.today - timedelta(days=1)
    provisional_from = run.today - timedelta(days=reread)  # days on or after it may still change
    start = first_day(run, reread)
    sent = 0
    for a, b in day_windows(start, end, window):
        offset, first = 0, True
        while True:
            if sent:
                problem = quota_problem(client.quota, stop_share, min_tokens)
                if problem:
                    raise QuotaError(problem)
            before = client.requests
            response = client.run_report(a, b, offset, limit)
            sent += 1
            records = [_record(client, response, row, provisional_from) for row in response.rows]
            offset += len(records)
            done = not records or offset >= response.row_count
            state = None
            if done:
                state = {"last_day": b.isoformat()}
                if provisional_from <= b:  # the first provisional day this run wrote (windows go in order)
                    state["provisional_from"] = max(start, provisional_from).isoformat()
            run.log(f"ga4 {a}..{b} offset {offset - len(records)}: {len(records)} of {response.row_count} rows")
            replace = Replace(SOURCE_OBJECT, a.isoformat(), b.isoformat()) if first else None
            yield Page(records, state=state, replace=replace, requests=client.requests - before)
            first = False
            if done:
                break


def _record(client: Client, response: Any, row: Any, provisional_from: date) -> dict:
    """One report row as a flat dict named by the response headers, plus `_id`, `_property_id`, `_provisional`."""
    rec: dict[str, Any] = {}
    for header, value in zip(response.dimension_headers, row.dimension_values):
        rec[header.name] = value.value
    for header, value in zip(response.metric_headers, row.metric_values):
        rec[header.name] = value.value
    raw_day = rec.get("date") or ""
    day = f"{raw_day[:4]}-{raw_day[4:6]}-{raw_day[6:8]}" if len(raw_day) == 8 else raw_day
    rec["_id"] = "|".join([day, *(rec.get(d, "") for d in KEY_DIMENSIONS)])
    rec["_property_id"] = client.property_id
    try:
        rec["_provisional"] = date.fromisoformat(day) >= provisional_from
    except ValueError:
        rec["_provisional"] = False
    return rec


STREAMS = {
    "run_report": Stream(name="run_report", object=SOURCE_OBJECT, key="_id", fetch=fetch_report, cursor_field="date"),
}
