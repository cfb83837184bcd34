"""LinkedIn Marketing API, versioned REST / Rest.li 2.0 (base_url = https://127.0.0.1:PORT/linkedin_ads/rest).

Every call needs `LinkedIn-Version: YYYYMM` (missing -> 400 VERSION_MISSING, older than 202401 or newer than the
sandbox's month -> 426 NONEXISTENT_VERSION) and Bearer auth (401 INVALID_ACCESS_TOKEN / EXPIRED_ACCESS_TOKEN).
- GET /adAccounts/{id} -> {id, name, currency, status, type, reference, test, ...}
- GET /adAccounts/{id}/adCampaignGroups|adCampaigns?q=search&pageSize=N[&pageToken=T] -> {elements, metadata
  {nextPageToken}} (cursor paging since 202401; no token on the last page).
- GET /adAnalytics?q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY&dateRange=(start:(year:Y,month:M,day:D),
  end:(...))&accounts=List(urn%3Ali%3AsponsoredAccount%3AID)&fields=a,b,...: Rest.li syntax is checked on the raw
  query — encoded parentheses/colons (what requests' `params=` produces) or a raw URN are 400 ILLEGAL_ARGUMENT, as
  LinkedIn answers; more than 20 `fields` is 400. Answer {paging{start, count, links}, elements[{dateRange{start,
  end}, pivotValues["urn:li:sponsoredCampaign:ID"], <the requested metrics>}]}: counts are integers, cost
  metrics BigDecimal strings. One element per campaign and UTC day. No pagination.
Throttle: 429 {"status": 429, "code": "TOO_MANY_REQUESTS"} + Retry-After. Errors {status, serviceErrorCode, code,
message}. `restate(days)` bumps numbers; malformed rows (by row number in `malformed`) have no pivotValues.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import unquote

from .base import Api
from .common import h, token, untoken
from .server import Request, Response, json_response, retry_after_header

FIRST_DAY = date(2023, 1, 1)
COST_METRICS = {"costInLocalCurrency", "costInUsd", "conversionValueInLocalCurrency"}
_DATE = r"\(year:(\d{4}),month:(\d{1,2}),day:(\d{1,2})\)"
_RANGE = re.compile(rf"^\(start:{_DATE},end:{_DATE}\)$")


class LinkedInAds(Api):
    name = "linkedin_ads"
    token = "test-token-linkedin"
    latest_version = "202410"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        n_accounts = self.size("accounts", 1) if "linkedin_ads.accounts" in sandbox.sizes else 1
        self.accounts = [str(508000000 + k) for k in range(n_accounts)]
        self.n_campaigns = self.size("campaigns", 6)
        self.n_groups = max(1, self.n_campaigns // 3)
        self.versions: dict[date, int] = {}
        sandbox.tokens.static[self.name].add(self.token)

    @property
    def base_url(self) -> str:
        return f"{self.sandbox.url}/{self.name}/rest"

    def source(self, **overrides: Any) -> dict:
        return {"name": "linkedin_ads", "type": "linkedin_ads", "access_token": self.token,
                "account_ids": list(self.accounts), "base_url": self.base_url, "start_date": "2024-01-01",
                "linkedin_version": "202409", **overrides}

    def restate(self, days: list[date]) -> None:
        for d in days:
            self.versions[d] = self.versions.get(d, 0) + 1

    def campaign_id(self, account: str, c: int) -> int:
        return 700000000 + self.accounts.index(account) * 10000 + c

    # ---- routing ----------------------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        version = req.headers.get("LinkedIn-Version")
        if not version:
            return self.li_error(400, 0, "VERSION_MISSING", "A version must be present. Please specify a version "
                                 "by adding the LinkedIn-Version header.")
        if not re.fullmatch(r"\d{6}", version) or not ("202401" <= version <= self.latest_version):
            return self.li_error(426, 0, "NONEXISTENT_VERSION", f"Requested version {version} is not active")
        parts = [p for p in req.path.split("/") if p]
        if not parts or parts[0] != "rest":
            return self.li_error(404, 0, "NOT_FOUND", "Not found")
        parts = parts[1:]
        if parts == ["adAnalytics"] and req.method == "GET":
            return self.analytics(req)
        if len(parts) >= 2 and parts[0] == "adAccounts":
            account = parts[1]
            if account not in self.accounts:
                return self.li_error(403, 100, "ACCESS_DENIED", f"Not enough permissions to access: "
                                     f"urn:li:sponsoredAccount:{account}")
            if len(parts) == 2:
                return json_response(200, self.account(account))
            if len(parts) == 3 and parts[2] in ("adCampaignGroups", "adCampaigns") and req.q("q") == "search":
                return self.search(req, account, parts[2])
        return self.li_error(404, 0, "NOT_FOUND", "Not found")

    def account(self, account: str) -> dict:
        k = self.accounts.index(account)
        return {"id": int(account), "name": f"Sandbox account {k}", "currency": "USD" if k % 2 == 0 else "EUR",
                "status": "ACTIVE", "type": "BUSINESS", "reference": "urn:li:organization:10450001", "test": False,
                "servingStatuses": ["RUNNABLE"], "notifiedOnCampaignOptimization": False,
                "notifiedOnCreativeApproval": False, "notifiedOnCreativeRejection": False,
                "notifiedOnEndOfCampaign": False, "notifiedOnNewFeaturesEnabled": False,
                "version": {"versionTag": "4"},
                "changeAuditStamps": {"created": {"time": 1700000000000}, "lastModified": {"time": 1700000000000}}}

    def search(self, req: Request, account: str, resource: str) -> Response:
        size = min(1000, int(req.q("pageSize") or 100))
        start = untoken(req.q("pageToken"))
        n = self.n_groups if resource == "adCampaignGroups" else self.n_campaigns
        elements = []
        for k in range(start, min(n, start + size)):
            if resource == "adCampaignGroups":
                elements.append({"id": 600000000 + self.accounts.index(account) * 1000 + k,
                                 "account": f"urn:li:sponsoredAccount:{account}", "name": f"Group {k}",
                                 "status": "ACTIVE", "runSchedule": {"start": 1704067200000},
                                 "servingStatuses": ["RUNNABLE"], "backfilled": False, "test": False})
            else:
                group = 600000000 + self.accounts.index(account) * 1000 + k % self.n_groups
                elements.append({"id": self.campaign_id(account, k), "account": f"urn:li:sponsoredAccount:{account}",
                                 "campaignGroup": f"urn:li:sponsoredCampaignGroup:{group}",
                                 "name": f"Sandbox campaign {k}", "status": "ACTIVE", "type": "SPONSORED_UPDATES",
                                 "costType": "CPM", "objectiveType": "WEBSITE_VISIT",
                                 "dailyBudget": {"amount": "100.00", "currencyCode": "USD"},
                                 "unitCost": {"amount": "35.00", "currencyCode": "USD"},
                                 "runSchedule": {"start": 1704067200000}, "locale": {"country": "US", "language": "en"},
                                 "format": "SINGLE_IMAGE", "offsiteDeliveryEnabled": False, "test": False,
                                 "servingStatuses": ["RUNNABLE"], "version": {"versionTag": "2"}})
        meta: dict[str, Any] = {}
        if start + size < n:
            meta["nextPageToken"] = token(start + size)
        return json_response(200, {"elements": elements, "metadata": meta}, {"x-restli-protocol-version": "2.0.0"})

    def analytics(self, req: Request) -> Response:
        raw: dict[str, str] = {}
        for part in req.raw_query.split("&"):
            k, _, v = part.partition("=")
            raw[k] = v
        if raw.get("q") != "analytics":
            return self.li_error(400, 0, "ILLEGAL_ARGUMENT", "q must be analytics")
        dr = raw.get("dateRange", "")
        m = _RANGE.match(dr)
        if not m:
            return self.li_error(400, 0, "ILLEGAL_ARGUMENT", f"Invalid param. Please see errorDetails for more "
                                 f"information. (dateRange={dr[:80]!r} is not Rest.li 2.0 syntax)")
        accounts = raw.get("accounts", "")
        am = re.fullmatch(r"List\((.*)\)", accounts)
        if not am or any(":" in item for item in am.group(1).split(",")):
            return self.li_error(400, 0, "ILLEGAL_ARGUMENT", "Invalid param: accounts must be List(urn%3A...) with "
                                 "encoded URNs")
        urns = [unquote(item) for item in am.group(1).split(",") if item]
        fields = [f for f in unquote(raw.get("fields", "")).split(",") if f]
        if len(fields) > 20:
            return self.li_error(400, 0, "ILLEGAL_ARGUMENT", "Too many fields requested: at most 20 are allowed")
        if raw.get("pivot") != "CAMPAIGN" or raw.get("timeGranularity") != "DAILY":
            return self.li_error(400, 0, "ILLEGAL_ARGUMENT", "sandbox: pivot=CAMPAIGN&timeGranularity=DAILY only")
        y1, m1, d1, y2, m2, d2 = (int(x) for x in m.groups())
        first, last = date(y1, m1, d1), date(y2, m2, d2)
        elements = []
        for u in urns:
            account = u.rsplit(":", 1)[-1]
            if account not in self.accounts:
                return self.li_error(403, 100, "ACCESS_DENIED", f"Not enough permissions to access: {u}")
            d = first
            while d <= last:
                for c in range(self.n_campaigns):
                    elements.append(self.element(account, c, d, fields))
                d += timedelta(days=1)
        return json_response(200, {"paging": {"start": 0, "count": 10, "links": []}, "elements": elements},
                             {"x-restli-protocol-version": "2.0.0"})

    def element(self, account: str, c: int, d: date, fields: list[str]) -> dict:
        v = self.versions.get(d, 0)
        seed = h("li", account, c, d)
        impressions = 500 + seed % 3000 + v * 10
        clicks = impressions // 150 + v
        cost = (impressions * 42 + seed % 997) / 1000
        values: dict[str, Any] = {
            "impressions": impressions, "clicks": clicks, "landingPageClicks": clicks - clicks // 5,
            "costInLocalCurrency": f"{cost:.2f}", "costInUsd": f"{cost:.2f}",
            "externalWebsiteConversions": (seed >> 9) % 4, "oneClickLeads": (seed >> 13) % 3,
            "conversionValueInLocalCurrency": "0",
        }
        out: dict[str, Any] = {}
        for f in fields:
            if f == "dateRange":
                dd = {"year": d.year, "month": d.month, "day": d.day}
                out[f] = {"start": dd, "end": dict(dd)}
            elif f == "pivotValues":
                out[f] = [f"urn:li:sponsoredCampaign:{self.campaign_id(account, c)}"]
            else:
                out[f] = values.get(f, "0" if f in COST_METRICS else (seed >> 17) % 7)
        row_no = (d - FIRST_DAY).days * self.n_campaigns + c
        if row_no in self.malformed:
            out.pop("pivotValues", None)
        return out

    # ---- answers ----------------------------------------------------------------------------------------------

    def li_error(self, status: int, service_code: int, code: str, message: str, headers: dict | None = None) -> Response:
        return json_response(status, {"status": status, "serviceErrorCode": service_code, "code": code,
                                      "message": message}, headers)

    def throttle(self, req: Request, retry_after: float) -> Response:
        return self.li_error(429, 0, "TOO_MANY_REQUESTS", "Resource level throttle APPLICATION MINUTE limit for "
                             "calls to this resource is reached.", {"Retry-After": retry_after_header(retry_after)})

    def error(self, req: Request, status: int) -> Response:
        return self.li_error(status, 0, "SERVER_ERROR" if status == 500 else "SERVICE_UNAVAILABLE",
                             "Internal Server Error" if status == 500 else "Service Unavailable")

    def unauthorized(self, req: Request) -> Response:
        return self.li_error(401, 65600, "INVALID_ACCESS_TOKEN", "Invalid access token")

    def expired(self, req: Request) -> Response:
        return self.li_error(401, 65601, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired")
