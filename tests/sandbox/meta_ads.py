"""Meta Marketing API insights (base_url = https://127.0.0.1:PORT/meta_ads/v21.0).

GET /act_{id}/insights?level=campaign&time_increment=1&time_range={"since","until"}&fields=...&limit=N[&after=C]
&access_token=T -> {data[{<requested fields>, date_start, date_stop}], paging{cursors{before, after}, next}}: one row
per campaign and day (ordered by day, then campaign), numbers as strings, `actions` a list of {action_type, value};
`next` (a full URL embedding the access token) only while more rows remain.
Every response carries `x-business-use-case-usage` {"<business id>": [{type, call_count, total_cputime, total_time,
estimated_time_to_regain_access}]}, `x-ad-account-usage` and `x-fb-ads-insights-throttle` (percentages: the share of
the sandbox's rate-limit window in use, else a low 1-5 %).
Auth: `access_token` query parameter; a bad token is HTTP 400 OAuthException code 190, an expired one 190/463.
Throttle: HTTP 400 (not 429) {"error": {"code": 17, "error_subcode": 2446079, "is_transient": true, ...}} with the
usage header at 100 % and estimated_time_to_regain_access = ceil(retry_after / 60) minutes. 5xx: code 1/2 transient.
`restate(days)` bumps numbers; malformed rows (by row number in `malformed`) have no campaign_id.
Docs: developers.facebook.com/docs/marketing-api/insights, .../overview/rate-limiting, .../insights/best-practices.
"""
from __future__ import annotations

import json
import math
import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from .base import Api
from .common import h, token, untoken
from .server import Request, Response, json_response

FIRST_DAY = date(2023, 1, 1)
BUSINESS = "1000000000001"


class MetaAds(Api):
    name = "meta_ads"
    token = "test-token-meta"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        n_accounts = self.size("accounts", 1) if "meta_ads.accounts" in sandbox.sizes else 1
        self.accounts = [str(1234567890 + k) for k in range(n_accounts)]
        self.n_campaigns = self.size("campaigns", 6)
        self.versions: dict[date, int] = {}
        self.regain_minutes: int | None = None  # what a throttle answer names (None: from the fault's retry_after)
        sandbox.tokens.static[self.name].add(self.token)

    @property
    def base_url(self) -> str:
        return f"{self.sandbox.url}/{self.name}/v21.0"

    def source(self, **overrides: Any) -> dict:
        return {"name": "meta_ads", "type": "meta_ads", "access_token": self.token,
                "account_ids": [f"act_{a}" for a in self.accounts], "base_url": self.base_url,
                "start_date": "2024-01-01", **overrides}

    def credential(self, req: Request) -> str | None:
        return req.q("access_token") or req.bearer()

    def restate(self, days: list[date]) -> None:
        for d in days:
            self.versions[d] = self.versions.get(d, 0) + 1

    _PATH = re.compile(r"^/v\d+\.\d/act_(?P<account>\d+)/insights$")

    def handle(self, req: Request) -> Response:
        m = self._PATH.match(req.path)
        if not m or req.method != "GET":
            return self.fb_error(400, 100, "Unsupported get request. Object does not exist, cannot be loaded due to "
                                 "missing permissions, or does not support this operation", "GraphMethodException", 33)
        account = m.group("account")
        if account not in self.accounts:
            return self.fb_error(400, 100, f"Unsupported get request. Object with ID 'act_{account}' does not exist",
                                 "GraphMethodException", 33)
        if req.q("level") != "campaign" or req.q("time_increment") != "1":
            return self.fb_error(400, 100, "sandbox: level=campaign&time_increment=1 only", "OAuthException")
        try:
            tr = json.loads(req.q("time_range") or "")
            first, last = date.fromisoformat(tr["since"]), date.fromisoformat(tr["until"])
        except (ValueError, KeyError, TypeError):
            return self.fb_error(400, 100, "(#100) time_range must be {'since':YYYY-MM-DD,'until':YYYY-MM-DD}",
                                 "OAuthException")
        fields = req.q_list("fields")
        limit = min(5000, int(req.q("limit") or 25))
        offset = untoken(req.q("after"))
        n_days = max(0, (last - first).days + 1)
        total = n_days * self.n_campaigns
        rows = []
        for k in range(offset, min(total, offset + limit)):
            d = first + timedelta(days=k // self.n_campaigns)
            rows.append(self.row(account, k % self.n_campaigns, d, fields))
        body: dict[str, Any] = {"data": rows}
        end = offset + len(rows)
        if rows:
            body["paging"] = {"cursors": {"before": token(offset), "after": token(end)}}
            if end < total:
                query = {k: v[0] for k, v in req.query.items()}
                query["after"] = token(end)
                body["paging"]["next"] = f"{self.base_url}/act_{account}/insights?{urlencode(query)}"
        return json_response(200, body, content_type="application/json; charset=UTF-8")

    def row(self, account: str, c: int, d: date, fields: list[str]) -> dict:
        v = self.versions.get(d, 0)
        seed = h("meta", account, c, d)
        impressions = 800 + seed % 5000 + v * 25
        clicks = impressions // 90 + v
        values: dict[str, Any] = {
            "campaign_id": str(23850000000000000 + self.accounts.index(account) * 1000 + c),
            "campaign_name": f"Sandbox Meta campaign {c}", "account_currency": "USD",
            "account_id": account, "impressions": str(impressions), "inline_link_clicks": str(clicks - clicks // 4),
            "clicks": str(clicks), "spend": f"{(impressions * 11 + seed % 500) / 1000:.2f}",
            "actions": [{"action_type": "link_click", "value": str(clicks - clicks // 4)},
                        {"action_type": "lead", "value": str((seed >> 7) % 4 + v)},
                        {"action_type": "offsite_conversion.fb_pixel_lead", "value": str((seed >> 11) % 3)}],
        }
        out = {f: values[f] for f in fields if f in values}
        out["date_start"] = d.isoformat()
        out["date_stop"] = d.isoformat()
        if (d - FIRST_DAY).days * self.n_campaigns + c in self.malformed:
            out.pop("campaign_id", None)
        return out

    # ---- answers ----------------------------------------------------------------------------------------------

    def usage_headers(self, pct: float, regain_minutes: int = 0) -> dict[str, str]:
        p = int(round(pct))
        return {
            "x-business-use-case-usage": json.dumps({BUSINESS: [{
                "type": "ads_insights", "call_count": p, "total_cputime": max(1, p // 2), "total_time": max(1, p // 2),
                "estimated_time_to_regain_access": regain_minutes, "ads_api_access_tier": "standard_access"}]}),
            "x-ad-account-usage": json.dumps({"acc_id_util_pct": p, "reset_time_duration": 0,
                                              "ads_api_access_tier": "standard_access"}),
            "x-fb-ads-insights-throttle": json.dumps({"app_id_util_pct": max(0, p - 1), "acc_id_util_pct": p,
                                                      "ads_api_access_tier": "standard_access"}),
        }

    def decorate(self, req: Request, resp: Response) -> None:
        if "x-business-use-case-usage" in resp.headers:
            return
        share = self.sandbox.window_used(self.name)
        pct = share * 100 if share is not None else 1 + req.number % 5
        resp.headers.update(self.usage_headers(pct))

    def fb_error(self, status: int, code: int, message: str, kind: str = "OAuthException", subcode: int | None = None,
                 transient: bool = False, headers: dict | None = None) -> Response:
        err: dict[str, Any] = {"message": message, "type": kind, "code": code}
        if subcode is not None:
            err["error_subcode"] = subcode
        if transient:
            err["is_transient"] = True
        err["fbtrace_id"] = f"Asandbox{h('fbtrace', message) % 10**8}"
        return json_response(status, {"error": err}, headers, content_type="application/json; charset=UTF-8")

    def throttle(self, req: Request, retry_after: float) -> Response:
        minutes = self.regain_minutes if self.regain_minutes is not None else math.ceil(retry_after / 60)
        return self.fb_error(400, 17, "(#17) User request limit reached", subcode=2446079, transient=True,
                             headers=self.usage_headers(100, minutes))

    def error(self, req: Request, status: int) -> Response:
        return self.fb_error(status, 1 if status == 500 else 2, "An unknown error occurred" if status == 500 else
                             "Service temporarily unavailable", transient=True)

    def unauthorized(self, req: Request) -> Response:
        return self.fb_error(400, 190, "Invalid OAuth access token - Cannot parse access token")

    def expired(self, req: Request) -> Response:
        return self.fb_error(400, 190, "Error validating access token: Session has expired on Monday, 01-Apr-24 "
                             "00:00:00 PDT.", subcode=463)
