"""Meta Ads: Graph API Marketing insights, https://graph.facebook.com/v21.0.

Auth: a long-lived user or system-user access token with ads_read, sent as the `access_token` query parameter
(redacted from every message; the recorded-HTTP config filters it). Error 190 (invalid / expired token), 102
and the permission errors 10 and 200-299 end as AuthError (exit 3).

Stream `insights` (raw object "insights"), per ad account in `account_ids` ("act_123" or "123"):
  GET /act_{id}/insights?level=campaign&time_increment=1&time_range={"since":..,"until":..}&fields=...&limit=N
  https://developers.facebook.com/docs/marketing-api/insights
One row per campaign and day with delivery; numbers are strings ("1234", "45.12"); `actions` is a list of
{action_type, value}. Dates are in the ad account's time zone and are kept as reported. Cursor paging:
`paging.cursors.after` is sent back as `after` while the response has a `paging.next` link (no `next` = last
page); the `next` URL itself is not followed because it embeds the access token. Each row gets
`_account_id` (digits), `_id` = "{account id}|{date_start}|{campaign_id}" and `_conversion_actions` (the
source's `conversion_actions`, which the sync loop defaults to `[model] meta_conversion_actions`), so the
normalizer stays pure.
Conversions and leads use the API's defaults for attribution (no `action_attribution_windows` or
`action_report_time` is sent); late conversions are credited to days already reported, so recent days restate.
Daily windows (`window_days`, default 31) from `start_date`; later runs re-read `reread_days` (default 28:
Meta's attribution windows restate conversions for weeks). Each window is one `Replace("insights", first, last)`
on its first page (all accounts) and the state `{"last_day": "YYYY-MM-DD"}` on its last page; the newest day
pulled is yesterday (UTC).

Throttling (https://developers.facebook.com/docs/marketing-api/overview/rate-limiting, .../insights/best-practices):
- Meta answers HTTP 400 (not 429) with error code 17, 4, 32, 613 or 80000-80014 (subcode 2446079), or an
  error marked `is_transient`. The Http `classify` hook makes those TemporaryError, so they are retried with
  backoff (the 400 is not a failure).
- Every response may carry usage headers: `x-business-use-case-usage` {"<business id>": [{"type", "call_count",
  "total_cputime", "total_time", "estimated_time_to_regain_access" (minutes)}]}, `x-ad-account-usage`
  {"acc_id_util_pct", "reset_time_duration" (seconds)}, `x-app-usage` {"call_count", "total_cputime",
  "total_time"}, `x-fb-ads-insights-throttle` {"app_id_util_pct", "acc_id_util_pct"} (all percentages).
  At `usage_threshold` % (default 75) and above, the source pauses proportionally, up to `max_usage_pause`
  seconds (default 60) at 100 %. When Meta names a time to regain access, the source pauses that long if it is
  at most `max_regain_wait` seconds (default 300); a longer wait stops the run with QuotaError (exit 75, the
  next run resumes) instead of sleeping for an hour.
"""
from __future__ import annotations

import json
from datetime import date
from typing import Any, Callable, Iterator

import requests

from connectors.core import Page, Replace, Run, Stream, day_windows, mark_window, report_range
from connectors.errors import ApiError, AuthError, QuotaError, TemporaryError
from connectors.http import Http, pacing

TYPE = "meta_ads"
DEFAULT_BASE_URL = "https://graph.facebook.com/v21.0"
OBJECT = "insights"
FIELDS = ("campaign_id", "campaign_name", "account_currency", "impressions", "inline_link_clicks", "clicks", "spend",
          "actions", "date_start", "date_stop")

THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
THROTTLE_SUBCODES = frozenset({2446079, 1487742, 1504022, 1504039})
TRANSIENT_CODES = frozenset({1, 2})
AUTH_CODES = frozenset({10, 102, 190, *range(200, 300)})
USAGE_HEADERS = ("x-business-use-case-usage", "x-ad-account-usage", "x-app-usage", "x-fb-ads-insights-throttle")
PERCENT_KEYS = ("call_count", "total_cputime", "total_time", "acc_id_util_pct", "app_id_util_pct")


class _WaitTooLong(Exception):
    """Raised from the response hooks (outside ConnectorError, so Http does not retry it): Meta asks for a longer
    wait than we are willing to sleep. `Client.get` turns it into QuotaError."""


def account_id(value: Any) -> str:
    """"act_123", "123" or 123 -> "123"."""
    text = str(value).strip()
    return text[4:] if text.startswith("act_") else text


def usage(headers: Any) -> tuple[float, float]:
    """(highest usage percentage, seconds until access is regained) from Meta's usage headers."""
    pct = 0.0
    regain = 0.0
    for name in USAGE_HEADERS:
        raw = headers.get(name)
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        entries: list = []
        if name == "x-business-use-case-usage" and isinstance(data, dict):
            for value in data.values():
                entries.extend(value if isinstance(value, list) else [value])
        else:
            entries.append(data)
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            for key in PERCENT_KEYS:
                value = entry.get(key)
                if isinstance(value, (int, float)):
                    pct = max(pct, float(value))
            minutes = entry.get("estimated_time_to_regain_access")
            if isinstance(minutes, (int, float)) and minutes > 0:
                regain = max(regain, float(minutes) * 60)
            reset = entry.get("reset_time_duration")
            util = entry.get("acc_id_util_pct")
            if isinstance(reset, (int, float)) and isinstance(util, (int, float)) and util >= 100 and reset > 0:
                regain = max(regain, float(reset))
    return pct, regain


def _error(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


class Client:
    """One Meta source: its Http session, ad accounts and throttling policy."""

    def __init__(self, source: dict):
        token = source.get("access_token")
        if not token:
            raise AuthError(f"{source.get('name', TYPE)}: access_token is not set")
        self.token = str(token)
        self.account_ids = [account_id(a) for a in source.get("account_ids") or []]
        if not self.account_ids:
            raise ApiError(f"{source.get('name', TYPE)}: account_ids is empty")
        # the sync loop puts `[model] meta_conversion_actions` here unless the source sets its own list
        self.conversion_actions = list(source.get("conversion_actions") or [])
        self.page_size = int(source.get("page_size", 500))
        self.window_days = max(1, int(source.get("window_days", 31)))
        self.threshold = float(source.get("usage_threshold", 75))
        self.max_usage_pause = float(source.get("max_usage_pause", 60))
        self.max_regain_wait = float(source.get("max_regain_wait", 300))
        self.log: Callable[[str], None] = lambda message: None
        self.pauses: list[float] = []  # every pause the usage headers asked for (seconds)
        self._regain = 0.0  # regain time the last response named
        self._stop: str | None = None  # set when Meta asked for a longer wait than max_regain_wait
        self.http = Http(
            source.get("base_url") or DEFAULT_BASE_URL,
            **pacing(source.get("requests_per_second"), default=10.0),
            secrets=[self.token],
            classify=self.classify,
            on_response=self.on_response,
        )

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included (the sync loop reports them)."""
        return self.http.requests

    # ---- hooks called by Http for each response ----

    def on_response(self, response: requests.Response) -> None:
        """Slow down when Meta's usage headers say the quota is nearly spent."""
        pct, regain = usage(response.headers)
        self._regain = regain
        if regain > 0:
            if regain > self.max_regain_wait:
                message = (f"Meta asks to wait {regain / 60:.0f} min before the next call (more than "
                           f"max_regain_wait {self.max_regain_wait:.0f} s); stopping, the next run resumes")
                if response.status_code >= 400:
                    raise _WaitTooLong(message)
                self._stop = message  # this response's data is good: stop before the next call
                return
            self._pause(regain, f"Meta estimated_time_to_regain_access {regain:.0f} s")
        elif pct >= self.threshold:
            span = max(1.0, 100.0 - self.threshold)
            seconds = max(1.0, min(1.0, (pct - self.threshold) / span) * self.max_usage_pause)
            self._pause(seconds, f"Meta usage at {pct:.0f}%")

    def _pause(self, seconds: float, why: str) -> None:
        self.pauses.append(seconds)
        self.log(f"meta_ads: {why}: pausing {seconds:.0f} s")
        self.http.pacer.pause(seconds)

    def classify(self, response: requests.Response) -> Exception | None:
        """Meta's throttles and token errors come as HTTP 400 with an error code: map them."""
        error = _error(response)
        code, subcode = error.get("code"), error.get("error_subcode")
        message = self.http.redact(
            f"Meta API error {code}" + (f"/{subcode}" if subcode else "")
            + f" (HTTP {response.status_code}): {error.get('message', '')}"
            + (f" [fbtrace_id {error['fbtrace_id']}]" if error.get("fbtrace_id") else ""))
        throttled = code in THROTTLE_CODES or subcode in THROTTLE_SUBCODES
        if throttled or code in TRANSIENT_CODES or error.get("is_transient"):
            # on_response has already paused the source for a named regain time: retry right after it;
            # otherwise let the retry policy back off exponentially.
            return TemporaryError(message, retry_after=0.0 if self._regain > 0 else None)
        if code in AUTH_CODES:
            return AuthError(message)
        if error:
            return ApiError(message, response.status_code) if response.status_code < 500 else None
        return None

    # ---- requests ----

    def get(self, path: str, params: dict) -> dict:
        if self._stop:
            raise QuotaError(self._stop)
        try:
            return self.http.request("GET", path, params={**params, "access_token": self.token}).json()
        except _WaitTooLong as exc:
            raise QuotaError(str(exc)) from None

    def insights_pages(self, account: str, first: date, last: date) -> Iterator[list[dict]]:
        """Pages of daily campaign rows of one account for [first, last]."""
        params = {
            "level": "campaign",
            "time_increment": "1",
            "time_range": json.dumps({"since": first.isoformat(), "until": last.isoformat()}, separators=(",", ":")),
            "fields": ",".join(FIELDS),
            "limit": str(self.page_size),
        }
        seen: set[str] = set()
        while True:
            body = self.get(f"act_{account}/insights", params)
            rows = list(body.get("data") or [])
            for row in rows:
                row["_account_id"] = account
                row["_id"] = f"{account}|{row.get('date_start')}|{row.get('campaign_id')}"
                if self.conversion_actions:
                    row["_conversion_actions"] = self.conversion_actions
            yield rows
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return
            if after in seen:
                raise ApiError(f"act_{account}/insights: pagination loop (the same cursor twice)")
            seen.add(after)
            params = {**params, "after": after}


def connect(source: dict) -> Client:
    return Client(source)


# ---- stream -----------------------------------------------------------------------------------------------


def fetch_insights(client: Client, run: Run) -> Iterator[Page]:
    client.log = run.log
    start, end = report_range(run, int(run.setting("reread_days", 28)))
    for first, last in day_windows(start, end, client.window_days):

        def pages(first: date = first, last: date = last) -> Iterator[Page]:
            for account in client.account_ids:
                before = client.http.requests
                for rows in client.insights_pages(account, first, last):
                    yield Page(rows, requests=client.http.requests - before)
                    before = client.http.requests

        yield from mark_window(pages(), Replace(OBJECT, first.isoformat(), last.isoformat()),
                               {"last_day": last.isoformat()})


STREAMS = {
    "insights": Stream("insights", OBJECT, "_id", fetch_insights, cursor_field="date_start"),
}
