"""Google Ads API v18 REST searchStream (base_url = https://127.0.0.1:PORT/google_ads/v18).

POST /customers/{customer_id}/googleAds:searchStream {"query": GAQL}, headers `developer-token` (required),
`login-customer-id` (optional), `Authorization: Bearer` (a token from the Google token endpoint, refresh-token
flow, or the static `test-token-google-ads`). The GAQL is checked for `FROM campaign` and read for its
`segments.date BETWEEN 'a' AND 'b'`. Answer: a JSON array of SearchGoogleAdsStreamResponse batches (<= 10,000 rows
each) {results[GoogleAdsRow], fieldMask, requestId, queryResourceConsumption (last batch)}; GoogleAdsRow is
lowerCamelCase with int64 values as strings: {customer{resourceName, currencyCode}, campaign{resourceName, id, name,
status, advertisingChannelType}, metrics{clicks, impressions, costMicros, conversions}, segments{date}}, one per
campaign and day, ordered by date.
Errors: an array around {"error": {code, message, status, details[{"@type": ...GoogleAdsFailure, errors[{errorCode,
message, details}], requestId}]}}: 401 authenticationError OAUTH_TOKEN_EXPIRED / OAUTH_TOKEN_INVALID, 429 quotaError
RESOURCE_TEMPORARILY_EXHAUSTED with quotaErrorDetails.retryDelay "<N>s" (the throttle fault), 503 UNAVAILABLE.
`restate(days)` bumps numbers; malformed rows (by row number in `malformed`) have no campaign.id.
"""
from __future__ import annotations

import math
import re
from datetime import date, timedelta
from typing import Any

from .base import Api
from .common import h
from .server import Request, Response, json_response

FIRST_DAY = date(2023, 1, 1)
FAILURE = "type.googleapis.com/google.ads.googleads.v18.errors.GoogleAdsFailure"
FIELD_MASK = ("campaign.id,campaign.name,campaign.advertisingChannelType,campaign.status,customer.currencyCode,"
              "segments.date,metrics.impressions,metrics.clicks,metrics.costMicros,metrics.conversions")
CHANNEL_TYPES = ("SEARCH", "DISPLAY", "PERFORMANCE_MAX", "VIDEO")


class GoogleAds(Api):
    name = "google_ads"
    token = "test-token-google-ads"
    developer_token = "sandbox-developer-token"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        n = self.size("customers", 1) if "google_ads.customers" in sandbox.sizes else 1
        self.customers = [str(1234567890 + k) for k in range(n)]
        self.n_campaigns = self.size("campaigns", 6)
        self.batch_size = 10_000
        self.versions: dict[date, int] = {}
        sandbox.tokens.static[self.name].add(self.token)

    @property
    def base_url(self) -> str:
        return f"{self.sandbox.url}/{self.name}/v18"

    def source(self, **overrides: Any) -> dict:
        oauth = self.sandbox.google_oauth
        src = {"name": "google_ads", "type": "google_ads", "developer_token": self.developer_token,
               "customer_ids": list(self.customers), "base_url": self.base_url, "start_date": "2024-01-01",
               "token_uri": oauth.token_uri}
        if overrides.pop("static_token", False):
            src["access_token"] = self.token
        else:
            src.update(client_id=oauth.client_id, client_secret=oauth.client_secret, refresh_token=oauth.refresh_token)
        return {**src, **overrides}

    def restate(self, days: list[date]) -> None:
        for d in days:
            self.versions[d] = self.versions.get(d, 0) + 1

    _PATH = re.compile(r"^/v\d+/customers/(?P<cid>\d+)/googleAds:searchStream$")
    _BETWEEN = re.compile(r"segments\.date\s+BETWEEN\s+'(\d{4}-\d{2}-\d{2})'\s+AND\s+'(\d{4}-\d{2}-\d{2})'", re.I)

    def authenticate(self, req: Request) -> Response | None:
        if req.headers.get("developer-token") != self.developer_token:
            return self.failure(401, "UNAUTHENTICATED", "The developer token is not valid.",
                                {"authenticationError": "DEVELOPER_TOKEN_INVALID"})
        return super().authenticate(req)

    def handle(self, req: Request) -> Response:
        m = self._PATH.match(req.path)
        if not m or req.method != "POST":
            return self.failure(404, "NOT_FOUND", "The requested URL was not found on this server.", None)
        cid = m.group("cid")
        if cid not in self.customers:
            return self.failure(403, "PERMISSION_DENIED", "User doesn't have permission to access customer.",
                                {"authorizationError": "USER_PERMISSION_DENIED"})
        query = (req.json() or {}).get("query") or ""
        between = self._BETWEEN.search(query)
        if " FROM campaign " not in f" {query} " or not between:
            return self.failure(400, "INVALID_ARGUMENT", "sandbox: FROM campaign WHERE segments.date BETWEEN only",
                                {"queryError": "UNEXPECTED_END_OF_QUERY"})
        first, last = date.fromisoformat(between.group(1)), date.fromisoformat(between.group(2))
        rows = []
        d = first
        while d <= last:
            rows += [self.row(cid, c, d) for c in range(self.n_campaigns)]
            d += timedelta(days=1)
        batches = []
        for b in range(0, max(1, len(rows)), self.batch_size):
            batch: dict[str, Any] = {}
            chunk = rows[b:b + self.batch_size]
            if chunk:
                batch["results"] = chunk
            batch["fieldMask"] = FIELD_MASK
            batch["requestId"] = f"sandbox{h('rid', req.number, b) % 10**12}"
            batches.append(batch)
        batches[-1]["queryResourceConsumption"] = str(40 + 5 * len(rows))
        return json_response(200, batches, content_type="application/json; charset=UTF-8")

    def row(self, cid: str, c: int, d: date) -> dict:
        v = self.versions.get(d, 0)
        seed = h("gads", cid, c, d)
        impressions = 1000 + seed % 8000 + v * 30
        clicks = impressions // 40 + v
        campaign_id = str(20000000000 + self.customers.index(cid) * 1000 + c)
        row = {"customer": {"resourceName": f"customers/{cid}", "currencyCode": "USD"},
               "campaign": {"resourceName": f"customers/{cid}/campaigns/{campaign_id}", "status": "ENABLED",
                            "advertisingChannelType": CHANNEL_TYPES[c % len(CHANNEL_TYPES)],
                            "name": f"Sandbox Google campaign {c}", "id": campaign_id},
               "metrics": {"clicks": str(clicks), "conversions": float((seed >> 9) % 5 + v),
                           "costMicros": str(clicks * 1_730_000 + seed % 1000 * 1000),
                           "impressions": str(impressions)},
               "segments": {"date": d.isoformat()}}
        if (d - FIRST_DAY).days * self.n_campaigns + c in self.malformed:
            del row["campaign"]["id"]
        return row

    # ---- answers ----------------------------------------------------------------------------------------------

    def failure(self, status: int, grpc: str, message: str, code: dict | None, details: dict | None = None) -> Response:
        error: dict[str, Any] = {"code": status, "message": message, "status": grpc}
        if code is not None:
            e: dict[str, Any] = {"errorCode": code, "message": message}
            if details:
                e["details"] = details
            error["details"] = [{"@type": FAILURE, "errors": [e], "requestId": f"sandboxerr{status}"}]
        return json_response(status, [{"error": error}], content_type="application/json; charset=UTF-8")

    def throttle(self, req: Request, retry_after: float) -> Response:
        seconds = max(1, math.ceil(retry_after))
        return self.failure(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).",
                            {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"},
                            {"quotaErrorDetails": {"rateScope": "DEVELOPER", "rateName": "Number of operations for "
                                                   "basic access", "retryDelay": f"{seconds}s"}})

    def error(self, req: Request, status: int) -> Response:
        return self.failure(status, "UNAVAILABLE" if status == 503 else "INTERNAL",
                            "The service is currently unavailable." if status == 503 else "Internal error encountered.",
                            None)

    def unauthorized(self, req: Request) -> Response:
        return self.failure(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.",
                            {"authenticationError": "OAUTH_TOKEN_INVALID"})

    def expired(self, req: Request) -> Response:
        return self.failure(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 "
                            "access token, login cookie or other valid authentication credential.",
                            {"authenticationError": "OAUTH_TOKEN_EXPIRED"})
