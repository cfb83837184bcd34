"""GA4 Data API v1beta runReport over REST (base_url = https://127.0.0.1:PORT/ga4).

POST /v1beta/properties/{id}:runReport, JSON body as the SDK's REST transport sends it (`dimensions`, `metrics`,
`dateRanges[{startDate, endDate}]`, `orderBys`, `limit`/`offset` as int64 strings, `returnPropertyQuota`) ->
{dimensionHeaders[{name}], metricHeaders[{name, type}], rows[{dimensionValues[{value}], metricValues[{value}]}],
rowCount, metadata{currencyCode, timeZone}, propertyQuota{tokensPerDay, tokensPerHour, concurrentRequests,
serverErrorsPerProjectPerHour, potentiallyThresholdedRequestsPerHour, tokensPerProjectPerHour: {consumed,
remaining}}, kind} (proto3 JSON: no `rows` / `rowCount` on an empty report). `rows_per_day` rows per day, ordered
by date then the other dimensions. Every request costs `tokens_per_request` tokens of each bucket; an empty bucket
answers 429 RESOURCE_EXHAUSTED (the connector stops with exit 75 before that, reading propertyQuota).
Auth: Bearer token from the Google token endpoint (google_oauth.py, service-account JWT flow) or the static
`test-token-ga4`; 401 UNAUTHENTICATED. Errors: google.rpc.Status {"error": {code, message, status}}.
`restate(days)` bumps the numbers of those days (GA4 finishing processing). Malformed rows: row numbers in
`malformed` carry a non-numeric `sessions` value.
Docs: developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport, .../quotas.
"""
from __future__ import annotations

import re
import threading
from datetime import date, timedelta
from typing import Any

from .base import Api
from .certs import make_service_account
from .common import SOURCES, h
from .server import Request, Response, json_response

PROPERTY = "123456789"
METRIC_TYPES = {"sessions": "TYPE_INTEGER", "engagedSessions": "TYPE_INTEGER", "newUsers": "TYPE_INTEGER",
                "screenPageViews": "TYPE_INTEGER", "keyEvents": "TYPE_FLOAT", "conversions": "TYPE_FLOAT",
                "userEngagementDuration": "TYPE_SECONDS", "totalUsers": "TYPE_INTEGER"}
CHANNEL_GROUP = {"cpc": "Paid Search", "organic": "Organic Search", "paid_social": "Paid Social", "email": "Email",
                 "referral": "Referral", "(none)": "Direct"}
FIRST_DAY = date(2023, 1, 1)


class GA4(Api):
    name = "ga4"
    token = "test-token-ga4"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self.rows_per_day = self.size("rows_per_day", 20)
        combos = []
        for r in range(self.rows_per_day):
            src, med, camp, path, _ = SOURCES[r % len(SOURCES)]
            combos.append((src or "(direct)", med or "(none)", camp or "(not set)", f"v{r // len(SOURCES)}"
                           if r >= len(SOURCES) else "(not set)", "(not set)",
                           CHANNEL_GROUP.get(med or "(none)", "Unassigned"), path))
        self.combos = sorted(combos)
        self.versions: dict[date, int] = {}
        self.tokens_per_request = 10
        self.limits = {"tokensPerDay": 200_000, "tokensPerHour": 40_000, "tokensPerProjectPerHour": 14_000}
        self.consumed = {k: 0 for k in self.limits}
        self.lock = threading.Lock()
        self._credentials: str | None = None
        sandbox.tokens.static[self.name].add(self.token)

    def credentials_file(self) -> str:
        """A service-account key (fresh RSA key) whose token_uri is the sandbox's token endpoint."""
        if self._credentials is None:
            path = f"{self.sandbox.dir}/ga4-service-account.json"
            oauth = self.sandbox.google_oauth
            public = make_service_account(path, oauth.token_uri)
            oauth.service_accounts["sandbox@funnelsync-test.iam.gserviceaccount.com"] = public
            self._credentials = path
        return self._credentials

    def source(self, **overrides: Any) -> dict:
        src = {"name": "ga4", "type": "ga4", "property_id": PROPERTY, "base_url": self.base_url,
               "start_date": "2024-01-01"}
        if overrides.pop("static_token", False):
            src["access_token"] = self.token
        else:
            src["credentials_file"] = self.credentials_file()
        return {**src, **overrides}

    def restate(self, days: list[date]) -> None:
        for d in days:
            self.versions[d] = self.versions.get(d, 0) + 1

    def reset_quota(self) -> None:
        self.consumed = {k: 0 for k in self.limits}

    # ---- report -----------------------------------------------------------------------------------------------

    def row(self, d: date, r: int, dims: list[str], metrics: list[str]) -> dict:
        src, med, camp, content, term, group, path = self.combos[r]
        values = {"date": d.strftime("%Y%m%d"), "sessionSource": src, "sessionMedium": med,
                  "sessionCampaignName": camp, "sessionManualAdContent": content, "sessionManualTerm": term,
                  "sessionDefaultChannelGroup": group, "landingPage": path}
        v = self.versions.get(d, 0)
        seed = h("ga4", d, r)
        sessions = 5 + seed % 200 + v * 3
        m = {"sessions": str(sessions), "engagedSessions": str(sessions * 2 // 3), "newUsers": str(sessions // 2),
             "screenPageViews": str(sessions * 3), "keyEvents": str((seed >> 8) % 5),
             "conversions": str((seed >> 8) % 5), "userEngagementDuration": str(sessions * 47),
             "totalUsers": str(sessions - 1)}
        if (d - FIRST_DAY).days * self.rows_per_day + r in self.malformed:
            m["sessions"] = "n/a"
        return {"dimensionValues": [{"value": values.get(x, "(not set)")} for x in dims],
                "metricValues": [{"value": m.get(x, "0")} for x in metrics]}

    _PATH = re.compile(r"^/v1beta/properties/(?P<pid>\d+):runReport$")

    def handle(self, req: Request) -> Response:
        m = self._PATH.match(req.path)
        if not m or req.method != "POST":
            return self.status(404, "NOT_FOUND", "Requested entity was not found.")
        if m.group("pid") != PROPERTY:
            return self.status(403, "PERMISSION_DENIED", "User does not have sufficient permissions for this property.")
        body = req.json() or {}
        with self.lock:
            for bucket, limit in self.limits.items():
                if self.consumed[bucket] + self.tokens_per_request > limit:
                    return self.status(429, "RESOURCE_EXHAUSTED", f"Exhausted property tokens per "
                                       f"{'day' if 'Day' in bucket else 'hour'} for this property.")
            for bucket in self.consumed:
                self.consumed[bucket] += self.tokens_per_request
            consumed = dict(self.consumed)
        dims = [d["name"] for d in body.get("dimensions") or []]
        metrics = [x["name"] for x in body.get("metrics") or []]
        if len(dims) > 9 or len(metrics) > 10:
            return self.status(400, "INVALID_ARGUMENT", "Requests are limited to 9 dimensions and 10 metrics.")
        for x in metrics:
            if x not in METRIC_TYPES:
                return self.status(400, "INVALID_ARGUMENT", f"Field {x} is not a valid metric.")
        ranges = body.get("dateRanges") or []
        if len(ranges) != 1:
            return self.status(400, "INVALID_ARGUMENT", "sandbox: exactly one dateRange is supported")
        first, last = date.fromisoformat(ranges[0]["startDate"]), date.fromisoformat(ranges[0]["endDate"])
        limit = int(body.get("limit") or 10_000)
        offset = int(body.get("offset") or 0)
        n_days = max(0, (last - first).days + 1)
        total = n_days * self.rows_per_day
        rows = []
        for k in range(offset, min(total, offset + limit)):
            d = first + timedelta(days=k // self.rows_per_day)
            rows.append(self.row(d, k % self.rows_per_day, dims, metrics))
        out: dict[str, Any] = {"dimensionHeaders": [{"name": x} for x in dims],
                               "metricHeaders": [{"name": x, "type": METRIC_TYPES[x]} for x in metrics]}
        if rows:
            out["rows"] = rows
        if total:
            out["rowCount"] = total
        out["metadata"] = {"currencyCode": "USD", "timeZone": "America/New_York"}
        if body.get("returnPropertyQuota"):
            q = {b: {"consumed": self.tokens_per_request, "remaining": self.limits[b] - consumed[b]}
                 for b in self.limits}
            q["concurrentRequests"] = {"remaining": 10}
            q["serverErrorsPerProjectPerHour"] = {"remaining": 10}
            q["potentiallyThresholdedRequestsPerHour"] = {"remaining": 120}
            out["propertyQuota"] = q
        out["kind"] = "analyticsData#runReport"
        return json_response(200, out)

    # ---- answers ----------------------------------------------------------------------------------------------

    def status(self, code: int, status: str, message: str) -> Response:
        return json_response(code, {"error": {"code": code, "message": message, "status": status}},
                             content_type="application/json; charset=UTF-8")

    def throttle(self, req: Request, retry_after: float) -> Response:
        return self.status(429, "RESOURCE_EXHAUSTED", "Exhausted concurrent requests quota.")

    def error(self, req: Request, status: int) -> Response:
        return self.status(status, "UNAVAILABLE" if status == 503 else "INTERNAL",
                           "The service is currently unavailable." if status == 503 else "Internal error encountered.")

    def unauthorized(self, req: Request) -> Response:
        return self.status(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 "
                           "access token, login cookie or other valid authentication credential.")
