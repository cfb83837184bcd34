"""Google Ads API v18, REST: `POST {base_url}/customers/{customer_id}/googleAds:searchStream` with a GAQL query.

Docs: https://developers.google.com/google-ads/api/rest/reference/rest/v18/customers.googleAds/searchStream,
https://developers.google.com/google-ads/api/docs/rest/auth, .../docs/best-practices/quotas.
The official Python library is gRPC-only, so this connector uses requests through `connectors.http.Http`.

Auth: OAuth 2.0 refresh-token flow — `POST {token_uri}` (default https://oauth2.googleapis.com/token) with
grant_type=refresh_token, client_id, client_secret, refresh_token → access_token (or a static `access_token`).
Every call sends `Authorization: Bearer`, `developer-token` and, when set, `login-customer-id` (the manager
account). A 401 refreshes the token once (Http's auth.refresh()), then AuthError (exit 3).

Report: `campaign_day` — one GAQL query per customer and day window:
`SELECT campaign.id, campaign.name, campaign.advertising_channel_type, campaign.status, customer.currency_code,
segments.date, metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions FROM campaign
WHERE segments.date BETWEEN 'a' AND 'b' ORDER BY segments.date`. The response is a JSON array of batches
`{results: [GoogleAdsRow], fieldMask, requestId[, queryResourceConsumption]}`, int64 values (ids, clicks,
impressions, costMicros) as strings. One raw record per row (the GoogleAdsRow verbatim) with `_id` =
`{customer_id}|{date}|{campaign_id}` and `_customer_id`. Dates are in the customer's time zone.

Re-read: conversions and invalid-click credits restate for weeks, so every sync re-reads the last `reread_days`
(default 30) days up to yesterday, in windows of `window_days` (default 30). The warehouse deletes by source name
+ source_object + day range, so the `Replace("campaign_day", a, b)` on the first page of a window covers every
customer of this source: all customers' rows of the window are fetched before the state
`{"last_day": "YYYY-MM-DD"}` goes on the window's last page.

Errors: bodies are `{"error": {code, message, status, details: [GoogleAdsFailure {errors: [{errorCode, message,
details}], requestId}]}}` (searchStream wraps them in an array). QUOTA_ERROR RESOURCE_EXHAUSTED /
RESOURCE_TEMPORARILY_EXHAUSTED are retried after `quotaErrorDetails.retryDelay`; a delay longer than
`max_retry_delay` (default 300 s: the daily operations budget) stops the stream with QuotaError (exit 75).
AUTHENTICATION_ERROR with an expired/invalid token refreshes once; other authentication/authorization errors are
AuthError (exit 3). 5xx and network errors are retried.

Settings read ([sources.NAME]): developer_token, customer_ids, login_customer_id, client_id, client_secret,
refresh_token | access_token, token_uri, base_url (default https://googleads.googleapis.com/v18), window_days,
reread_days, max_retry_delay.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

from connectors.core import Page, Replace, Run, Stream, day_windows, mark_window, report_range
from connectors.errors import ApiError, AuthError, QuotaError, TemporaryError
from connectors.http import REFRESH_TOKEN, Http, oauth_error, pacing

TYPE = "google_ads"
BASE_URL = "https://googleads.googleapis.com/v18"
TOKEN_URI = "https://oauth2.googleapis.com/token"
SOURCE_OBJECT = "campaign_day"
FIELDS = ("campaign.id", "campaign.name", "campaign.advertising_channel_type", "campaign.status",
          "customer.currency_code", "segments.date", "metrics.impressions", "metrics.clicks", "metrics.cost_micros",
          "metrics.conversions")
REFRESHABLE = frozenset({"OAUTH_TOKEN_EXPIRED", "OAUTH_TOKEN_INVALID", "OAUTH_TOKEN_HEADER_INVALID"})
QUOTA_CODES = frozenset({"RESOURCE_EXHAUSTED", "RESOURCE_TEMPORARILY_EXHAUSTED",
                         "EXCESSIVE_SHORT_TERM_QUERY_RESOURCE_CONSUMPTION",
                         "EXCESSIVE_LONG_TERM_QUERY_RESOURCE_CONSUMPTION"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def gaql(start: str, end: str) -> str:
    return (f"SELECT {', '.join(FIELDS)} FROM campaign WHERE segments.date BETWEEN '{start}' AND '{end}' "
            f"ORDER BY segments.date")


def customer_id(value: Any) -> str:
    """`123-456-7890`, `customers/1234567890` or 1234567890 -> `1234567890`."""
    digits = re.sub(r"\D", "", str(value).rsplit("/", 1)[-1])
    if not digits:
        raise ApiError(f"Google Ads customer id {value!r} is not a number")
    return digits


# ---- auth --------------------------------------------------------------------------------------------------


class OAuth:
    """Bearer auth from the refresh-token flow; `refresh()` is called by Http once on a 401."""

    def __init__(self, source: dict):
        self.static = source.get("access_token")
        self.client_id = source.get("client_id")
        self.client_secret = source.get("client_secret")
        self.refresh_token = source.get("refresh_token")
        if not self.static and not (self.client_id and self.client_secret and self.refresh_token):
            raise ApiError("Google Ads source needs client_id, client_secret and refresh_token (or access_token)")
        self.token_http = Http(source.get("token_uri") or TOKEN_URI, classify=oauth_error("the refresh token; create a new refresh_token"), attempts=4,
                               secrets=[self.client_secret, self.refresh_token])
        self.token: str | None = self.static
        self.refreshes = 0

    def secrets(self) -> list[str]:
        return [s for s in (self.token, self.static, self.client_secret, self.refresh_token) if s]

    def headers(self) -> dict[str, str]:
        if not self.token:
            self.refresh()
        return {"Authorization": f"Bearer {self.token}"}

    def refresh(self) -> None:
        if not self.refresh_token:
            raise AuthError("Google Ads rejected the access_token (HTTP 401): set a fresh one or configure the "
                            "refresh-token flow (client_id, client_secret, refresh_token)")
        self.refreshes += 1
        body = self.token_http.request("POST", "", data={
            "grant_type": "refresh_token", "client_id": self.client_id, "client_secret": self.client_secret,
            "refresh_token": self.refresh_token}).json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthError("Google Ads: the token endpoint answered without an access_token")
        self.token = token


# ---- errors ------------------------------------------------------------------------------------------------


class _DailyQuota(ApiError):
    """Internal: a quota whose retryDelay is too long to wait for; not retried, re-raised as QuotaError."""


def failures(body: Any) -> tuple[dict, list[dict]]:
    """(error, GoogleAdsFailure.errors) of an error body; searchStream wraps it in an array."""
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return {}, []
    errors: list[dict] = []
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("GoogleAdsFailure"):
            errors.extend(e for e in detail.get("errors") or [] if isinstance(e, dict))
    return error, errors


def retry_delay(errors: list[dict]) -> float | None:
    for e in errors:
        text = ((e.get("details") or {}).get("quotaErrorDetails") or {}).get("retryDelay")
        m = _DURATION.match(str(text)) if text else None
        if m:
            return float(m.group(1))
    return None


def make_classify(max_retry_delay: float):
    def classify(response) -> Exception | object | None:
        """Read GoogleAdsFailure codes: quota (retry / stop), token expiry (refresh), auth (AuthError)."""
        try:
            body = response.json()
        except ValueError:
            return None
        error, errors = failures(body)
        codes = [(k, v) for e in errors for k, v in (e.get("errorCode") or {}).items()]
        detail = "; ".join(f"{k}={v}: {e.get('message', '')}" for e in errors for k, v in (e.get("errorCode") or {}).items())
        detail = detail or f"{error.get('status', '')}: {error.get('message', '')}"
        if any(k == "quotaError" and v in QUOTA_CODES for k, v in codes) or error.get("status") == "RESOURCE_EXHAUSTED":
            delay = retry_delay(errors)
            if delay is not None and delay > max_retry_delay:
                return _DailyQuota(f"Google Ads quota spent ({detail}); retry in {delay:.0f} s — the next run resumes",
                                   response.status_code)
            return TemporaryError(f"Google Ads quota ({detail})", delay)
        auth = [v for k, v in codes if k == "authenticationError"]
        if auth and all(v in REFRESHABLE for v in auth):
            return REFRESH_TOKEN
        if auth or any(k == "authorizationError" for k, _ in codes):
            return AuthError(f"Google Ads refused the request: HTTP {response.status_code} {detail}")
        if response.status_code >= 400 and response.status_code not in (401, 403, 429) and response.status_code < 500:
            return ApiError(f"Google Ads: HTTP {response.status_code} {detail}", response.status_code)
        return None

    return classify


# ---- client ------------------------------------------------------------------------------------------------


@dataclass
class Client:
    http: Http
    auth: OAuth
    customer_ids: list[str]

    def search_stream(self, cid: str, start: str, end: str) -> list[dict]:
        """All rows of one customer and window (every batch of the stream)."""
        try:
            response = self.http.request("POST", f"customers/{cid}/googleAds:searchStream",
                                         json={"query": gaql(start, end)})
        except _DailyQuota as exc:
            raise QuotaError(str(exc)) from None
        batches = response.json()
        if isinstance(batches, dict):  # tolerate a non-streamed (search) shaped answer
            batches = [batches]
        rows: list[dict] = []
        for batch in batches:
            if not isinstance(batch, dict):
                continue
            if "error" in batch:  # an error after the stream started: the partial answer is unusable
                _, errors = failures([batch])
                raise TemporaryError(f"Google Ads searchStream broke off: {batch['error'].get('status', '')}",
                                     retry_delay(errors))
            rows.extend(batch.get("results") or [])
        return rows


def connect(source: dict) -> Client:
    developer_token = source.get("developer_token")
    if not developer_token:
        raise ApiError("Google Ads source needs developer_token")
    ids = source.get("customer_ids") or ([source["customer_id"]] if source.get("customer_id") else [])
    if isinstance(ids, (str, int)):
        ids = [ids]
    if not ids:
        raise ApiError("Google Ads source needs customer_ids")
    auth = OAuth(source)
    headers = {"developer-token": developer_token}
    if source.get("login_customer_id"):
        headers["login-customer-id"] = customer_id(source["login_customer_id"])
    http = Http(source.get("base_url") or BASE_URL, headers=headers, auth=auth,
                **pacing(source.get("requests_per_second"), 5.0), secrets=[developer_token], classify=make_classify(float(_setting(source, "max_retry_delay", 300))))
    return Client(http=http, auth=auth, customer_ids=[customer_id(c) for c in ids])


def _setting(source: dict, key: str, default: Any) -> Any:
    value = source.get(key)
    return default if value is None else value


# ---- the stream --------------------------------------------------------------------------------------------


def fetch_campaign_days(client: Client, run: Run) -> Iterator[Page]:
    """Per window: every customer's rows (Replace on the first page, state on the last)."""
    start, end = report_range(run, int(_setting(run.source, "reread_days", 30)))
    window = max(1, int(_setting(run.source, "window_days", 30)))
    for a, b in day_windows(start, end, window):
        first, last = a.isoformat(), b.isoformat()

        def pages(first: str = first, last: str = last) -> Iterator[Page]:
            for cid in client.customer_ids:
                before = client.http.requests + client.auth.token_http.requests
                records = [_record(cid, row) for row in client.search_stream(cid, first, last)]
                run.log(f"google_ads {cid} {first}..{last}: {len(records)} campaign-days")
                yield Page(records, requests=client.http.requests + client.auth.token_http.requests - before)

        yield from mark_window(pages(), Replace(SOURCE_OBJECT, first, last), {"last_day": last})


def _record(cid: str, row: dict) -> dict:
    day = (row.get("segments") or {}).get("date", "")
    campaign = (row.get("campaign") or {}).get("id", "")
    return {**row, "_id": f"{cid}|{day}|{campaign}", "_customer_id": cid}


STREAMS = {
    "campaign_day": Stream(name="campaign_day", object=SOURCE_OBJECT, key="_id", fetch=fetch_campaign_days,
                           cursor_field="segments.date"),
}
