"""LinkedIn Ads: Marketing API, versioned REST (Rest.li 2.0) at https://api.linkedin.com/rest.

Auth: a 3-legged OAuth access token with r_ads + r_ads_reporting (valid 60 days; no refresh here), sent as
`Authorization: Bearer`. Every call carries `LinkedIn-Version: YYYYMM` (source `linkedin_version`; each version is
served for about a year, then LinkedIn answers 426) and `X-Restli-Protocol-Version: 2.0.0`.

Streams (one request set per ad account in `account_ids`):
- campaign_groups  GET /adAccounts/{id}/adCampaignGroups?q=search  (full refresh, no state)
- campaigns        GET /adAccounts/{id}/adCampaigns?q=search       (full refresh, no state)
  Search finders page by cursor since version 202401: `pageSize` (default 100, max 1000) and `pageToken` =
  the previous response's `metadata.nextPageToken`; no token means the last page.
  https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads/cursor-based-pagination
  No `search=` criteria is sent, so archived / completed campaigns come too (their spend history needs names).
- ad_analytics     GET /adAnalytics?q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY&dateRange=(...)&accounts=List(urn)
  https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads-reporting/ads-reporting
  No pagination (one response per request); at most 20 `fields` per request, so the metrics are requested in
  chunks (each with `dateRange` and `pivotValues`) and the chunks are merged into whole rows keyed by
  (pivotValues, dateRange.start). Dates are UTC days; cost metrics are BigDecimal strings ("152.37").
  The account's currency (GET /adAccounts/{id} `currency`) is attached to each row as `_currency`, the row id
  as `_id` = "{YYYY-MM-DD}|{campaign id}".
  Daily windows (`window_days`, default 31) from `start_date`, later runs from the saved day minus `reread_days`
  (default 7: LinkedIn restates recent days). Each window is one `Replace("ad_analytics", first, last)` on its
  first page (all accounts of the source) and the state `{"last_day": "YYYY-MM-DD"}` on its last page. The
  newest day pulled is yesterday (UTC), the last complete day.

Rest.li query syntax: `( ) : ,` must stay literal while URNs inside are percent-encoded
(`List(urn%3Ali%3AsponsoredAccount%3A508000000)`); requests' `params=` would encode the parentheses and LinkedIn
answers 400, so the query strings are built here and passed as `Http.request(query=...)`.

Rate limits: per-application and per-member daily quotas (Developer Portal > Analytics), HTTP 429 when exceeded:
retried by connectors.http with backoff. Error bodies: {"status": 401, "serviceErrorCode": 65600,
"code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token"}; 401/403 end as AuthError (exit 3). A retired
version answers 426 {"status": 426, "code": "NONEXISTENT_VERSION", "message": "Requested version 20240901 is not
active"}: an ApiError that names the `linkedin_version` setting.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Iterable, Iterator
from urllib.parse import quote

from connectors.core import Page, Replace, Run, Stream, day_windows, mark_window, report_range
from connectors.errors import ApiError, AuthError
from connectors.http import Bearer, Http, pacing

TYPE = "linkedin_ads"
DEFAULT_BASE_URL = "https://api.linkedin.com/rest"
DEFAULT_VERSION = "202510"  # LinkedIn serves each monthly version for about a year; override with `linkedin_version`
ANALYTICS_OBJECT = "ad_analytics"

KEY_FIELDS = ("dateRange", "pivotValues")
# What the normalizer maps (spec §1.4) ...
REQUIRED_METRICS = (
    "impressions", "landingPageClicks", "clicks", "costInLocalCurrency", "costInUsd",
    "externalWebsiteConversions", "oneClickLeads",
)
# ... and additive metrics kept raw for analysis. Together more than 20 fields: two requests per window.
EXTRA_METRICS = (
    "totalEngagements", "likes", "comments", "shares", "follows", "reactions", "companyPageClicks",
    "otherEngagements", "videoViews", "videoCompletions", "oneClickLeadFormOpens",
    "externalWebsitePostClickConversions", "externalWebsitePostViewConversions",
    "conversionValueInLocalCurrency", "viralImpressions",
)
METRICS = REQUIRED_METRICS + EXTRA_METRICS
MAX_FIELDS_PER_REQUEST = 20  # LinkedIn's documented limit


def account_id(value: Any) -> str:
    """`508000000`, "508000000" or "urn:li:sponsoredAccount:508000000" -> "508000000"."""
    text = str(value).strip()
    return text.rsplit(":", 1)[-1] if text.startswith("urn:") else text


def urn(kind: str, ident: str) -> str:
    """A URN percent-encoded for use inside a Rest.li value: urn%3Ali%3A{kind}%3A{id}."""
    return quote(f"urn:li:{kind}:{ident}", safe="")


def restli_date(d: date) -> str:
    return f"(year:{d.year},month:{d.month},day:{d.day})"


def field_chunks(metrics: Iterable[str], fields_per_request: int = MAX_FIELDS_PER_REQUEST) -> list[tuple[str, ...]]:
    """Split `metrics` into field lists of at most `fields_per_request`, each led by dateRange and pivotValues."""
    size = max(1, min(fields_per_request, MAX_FIELDS_PER_REQUEST) - len(KEY_FIELDS))
    metrics = [m for m in metrics if m not in KEY_FIELDS]
    return [KEY_FIELDS + tuple(metrics[i:i + size]) for i in range(0, len(metrics), size)]


def analytics_query(account: str, start: date, end: date, fields: Iterable[str]) -> str:
    """The adAnalytics query string, Rest.li syntax kept literal (see the module docstring)."""
    return "&".join((
        "q=analytics",
        "pivot=CAMPAIGN",
        "timeGranularity=DAILY",
        f"dateRange=(start:{restli_date(start)},end:{restli_date(end)})",
        f"accounts=List({urn('sponsoredAccount', account)})",
        "fields=" + ",".join(fields),
    ))


def day_of(value: Any) -> str | None:
    """A Rest.li Date {year, month, day} as YYYY-MM-DD."""
    try:
        return f"{int(value['year']):04d}-{int(value['month']):02d}-{int(value['day']):02d}"
    except (TypeError, KeyError, ValueError):
        return None


class Client:
    """One LinkedIn source: its Http session, ad accounts and settings."""

    def __init__(self, source: dict):
        token = source.get("access_token")
        if not token:
            raise AuthError(f"{source.get('name', TYPE)}: access_token is not set")
        self.account_ids = [account_id(a) for a in source.get("account_ids") or []]
        if not self.account_ids:
            raise ApiError(f"{source.get('name', TYPE)}: account_ids is empty")
        self.version = str(source.get("linkedin_version") or DEFAULT_VERSION)
        self.page_size = int(source.get("page_size", 100))
        self.window_days = max(1, int(source.get("window_days", 31)))
        self.chunks = field_chunks(METRICS, int(source.get("fields_per_request", MAX_FIELDS_PER_REQUEST)))
        self.http = Http(
            source.get("base_url") or DEFAULT_BASE_URL,
            headers={"LinkedIn-Version": self.version, "X-Restli-Protocol-Version": "2.0.0"},
            auth=Bearer(token),
            **pacing(source.get("requests_per_second"), default=10.0),
            secrets=[token],
            classify=self.classify,
        )
        self._currencies: dict[str, str | None] = {}

    def classify(self, response) -> Exception | None:
        """A retired LinkedIn-Version answers 426 NONEXISTENT_VERSION: say which setting to change."""
        try:
            code = (response.json() or {}).get("code")
        except ValueError:
            code = None
        if response.status_code == 426 or code in ("NONEXISTENT_VERSION", "VERSION_MISSING"):
            return ApiError(self.http.redact(
                f"LinkedIn does not serve LinkedIn-Version {self.version} any more (HTTP {response.status_code} "
                f"{code}): set linkedin_version to a current YYYYMM version "
                "(https://learn.microsoft.com/en-us/linkedin/marketing/versioning)"), response.status_code)
        return None  # the default policy: 401/403 AuthError, 429/5xx retried, other 4xx ApiError

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included (the sync loop reports them)."""
        return self.http.requests

    def get(self, path: str, query: str | None = None) -> dict:
        return self.http.request("GET", path, query=query).json()

    def currency(self, account: str) -> str | None:
        """The ad account's currency (cached): costInLocalCurrency is in it."""
        if account not in self._currencies:
            self._currencies[account] = self.get(f"adAccounts/{account}").get("currency")
        return self._currencies[account]

    def search(self, path: str) -> Iterator[list[dict]]:
        """Follow a search finder's cursor pages (`metadata.nextPageToken`)."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            query = f"q=search&pageSize={self.page_size}"
            if token:
                query += "&pageToken=" + quote(token, safe="")
            body = self.get(path, query)
            yield list(body.get("elements") or [])
            token = (body.get("metadata") or {}).get("nextPageToken")
            if not token:
                return
            if token in seen:
                raise ApiError(f"{path}: pagination loop (the same nextPageToken twice)")
            seen.add(token)

    def analytics_rows(self, account: str, start: date, end: date) -> list[dict]:
        """Whole daily campaign rows of one account: every field chunk merged by (pivotValues, start day)."""
        currency = self.currency(account)
        merged: dict[tuple, dict] = {}
        for fields in self.chunks:
            body = self.get("adAnalytics", analytics_query(account, start, end, fields))
            for element in body.get("elements") or []:
                key = (tuple(element.get("pivotValues") or ()), day_of((element.get("dateRange") or {}).get("start")))
                row = merged.get(key)
                if row is None:
                    merged[key] = dict(element)
                else:
                    row.update(element)
        rows = []
        for (pivots, day), row in merged.items():
            campaign = pivots[0].rsplit(":", 1)[-1] if pivots else ""
            row["_id"] = f"{day}|{campaign}"
            row["_account_id"] = account
            row["_currency"] = currency
            rows.append(row)
        return rows


def connect(source: dict) -> Client:
    return Client(source)


# ---- streams ----------------------------------------------------------------------------------------------


def _search_stream(resource: str):
    def fetch(client: Client, run: Run) -> Iterator[Page]:
        for account in client.account_ids:
            before = client.http.requests
            for elements in client.search(f"adAccounts/{account}/{resource}"):
                for element in elements:
                    element["_account_id"] = account
                if elements:
                    yield Page(elements, requests=client.http.requests - before)
                before = client.http.requests

    return fetch


def fetch_ad_analytics(client: Client, run: Run) -> Iterator[Page]:
    start, end = report_range(run, int(run.setting("reread_days", 7)))
    for first, last in day_windows(start, end, client.window_days):

        def pages(first: date = first, last: date = last) -> Iterator[Page]:
            for account in client.account_ids:
                before = client.http.requests
                rows = client.analytics_rows(account, first, last)
                yield Page(rows, requests=client.http.requests - before)

        yield from mark_window(pages(), Replace(ANALYTICS_OBJECT, first.isoformat(), last.isoformat()),
                               {"last_day": last.isoformat()})


STREAMS = {
    "campaign_groups": Stream("campaign_groups", "campaign_group", "id", _search_stream("adCampaignGroups")),
    "campaigns": Stream("campaigns", "campaign", "id", _search_stream("adCampaigns")),
    "ad_analytics": Stream("ad_analytics", ANALYTICS_OBJECT, "_id", fetch_ad_analytics, cursor_field="dateRange.start"),
}
