"""Write cassettes/linkedin_ads/*.yaml: synthesized from LinkedIn's documented requests and responses.

    /work/venv/bin/python tests/cassette_builders/linkedin_ads.py

Shapes (LinkedIn Marketing API, versioned REST, https://learn.microsoft.com/en-us/linkedin/marketing/):
- Every request: `Authorization: Bearer` (filtered to REDACTED as funnelsync/replay.py would),
  `LinkedIn-Version: YYYYMM`, `X-Restli-Protocol-Version: 2.0.0`; responses `Content-Type: application/json`,
  `x-restli-protocol-version: 2.0.0`, `x-li-uuid`, `x-li-fabric`.
- GET /rest/adAccounts/{id} (integrations/ads/account-structure/create-and-manage-accounts): {id, name, currency,
  reference, status, type, test, servingStatuses, notifiedOn..., version.versionTag, changeAuditStamps}.
- Search finders GET /rest/adAccounts/{id}/adCampaignGroups|adCampaigns?q=search&pageSize=N[&pageToken=T]
  (create-and-manage-campaign-groups, create-and-manage-campaigns; cursor-based-pagination: from version 202401
  `metadata.nextPageToken`, no token on the last page): {"elements": [...], "metadata": {"nextPageToken": ...}}.
  Group: {id, account urn, name, status, runSchedule{start,end epoch ms}, totalBudget{amount string, currencyCode},
  servingStatuses, backfilled, test, changeAuditStamps}. Campaign: {id, account, campaignGroup urn, name, status,
  type, costType, objectiveType, dailyBudget/totalBudget/unitCost{amount string, currencyCode}, runSchedule,
  locale, format, offsiteDeliveryEnabled, audienceExpansionEnabled, creativeSelection, servingStatuses, test,
  version, changeAuditStamps} (targetingCriteria left out for size).
- GET /rest/adAnalytics?q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY&dateRange=(start:(year:..,month:..,day:..),
  end:(...))&accounts=List(urn%3Ali%3AsponsoredAccount%3A{id})&fields=... (integrations/ads-reporting/ads-reporting):
  {"paging": {"start": 0, "count": 10, "links": []}, "elements": [{"dateRange": {"start": {"year", "month",
  "day"}, "end": {...}}, "pivotValues": ["urn:li:sponsoredCampaign:{id}"], <only the requested metrics>}]};
  counts are integers, cost metrics BigDecimal strings; no pagination; at most 20 fields per request.
- Errors: {"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access
  token"} (the shape LinkedIn's REST errors share: status, serviceErrorCode, code, message).

URIs are written as funnelsync sends them (Rest.li `( ) : ,` literal, URNs encoded); vcrpy matches queries after
decoding, so a cassette recorded through the query-parameter filter (which re-encodes the URI) matches the same.
Numbers come from a seeded generator: plausible B2B LinkedIn figures (CPM ~$35-60, CTR ~0.6 %).
"""
from __future__ import annotations

import json
import random
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from vcr.serializers import yamlserializer  # noqa: E402

from connectors.linkedin_ads import DEFAULT_VERSION, METRICS  # noqa: E402  (what the connector asks for)

OUT = ROOT / "cassettes" / "linkedin_ads"
BASE = "https://api.linkedin.com/rest"
EUR_USD = 1.08  # costInUsd of a EUR account's spend

ACCOUNTS = {
    "508000000": {"name": "Funnelsync Demo Co - US", "currency": "USD", "org": 10450001},
    "508000001": {"name": "Funnelsync Demo Co - EMEA", "currency": "EUR", "org": 10450001},
}
GROUPS = {  # id: (account, name, status, start, end, total budget)
    600000001: ("508000000", "Q1 2024 Demand Gen", "ACTIVE", "2024-01-01", "2024-04-01", "25000"),
    600000002: ("508000000", "Brand Awareness 2024", "ACTIVE", "2024-01-01", None, None),
    600000101: ("508000001", "EMEA Pipeline Q1", "ACTIVE", "2024-01-15", "2024-04-01", "8000"),
}
CAMPAIGNS = {  # id: (group, name, status, objective, costType, start, end, daily budget)
    700000001: (600000001, "Q1 Demand Gen - Sponsored Content - IT Directors", "ACTIVE", "WEBSITE_VISIT", "CPM",
                "2024-01-01", "2024-04-01", "150.00"),
    700000002: (600000001, "Q1 Demand Gen - Lead Gen Form - Dark Funnel Ebook", "ACTIVE", "LEAD_GENERATION", "CPC",
                "2024-02-01", "2024-04-01", "120.00"),
    700000003: (600000002, "Brand - Video - Product Tour", "ACTIVE", "VIDEO_VIEW", "CPM",
                "2024-03-01", None, "80.00"),
    700000004: (600000002, "Brand - Draft - Customer Stories", "REMOVED", "BRAND_AWARENESS", "CPM",
                "2024-03-15", None, "50.00"),
    700000101: (600000101, "EMEA - Sponsored Content - Webinar Promo", "ACTIVE", "WEBSITE_VISIT", "CPC",
                "2024-01-15", "2024-04-01", "90.00"),
}


# ---- cassette plumbing -------------------------------------------------------------------------------------


def request_headers(version: str = DEFAULT_VERSION) -> dict:
    return {
        "User-Agent": ["funnelsync/0.1"],
        "Accept-Encoding": ["gzip, deflate"],
        "Accept": ["*/*"],
        "Connection": ["keep-alive"],
        "LinkedIn-Version": [version],
        "X-Restli-Protocol-Version": ["2.0.0"],
        "Authorization": ["REDACTED"],
    }


_uuid = random.Random("li-uuid")


def response(body: dict, status: int = 200, message: str = "OK") -> dict:
    text = json.dumps(body, separators=(",", ":"))
    return {
        "status": {"code": status, "message": message},
        "headers": {
            "Content-Type": ["application/json"],
            "x-restli-protocol-version": ["2.0.0"],
            "x-li-fabric": ["prod-lva1"],
            "x-li-uuid": [f"AAYV{_uuid.getrandbits(64):016x}"],
            "Content-Length": [str(len(text.encode()))],
            "Date": ["Mon, 01 Apr 2024 00:00:05 GMT"],
        },
        "body": {"string": text},
    }


def interaction(path_and_query: str, resp: dict, version: str = DEFAULT_VERSION) -> dict:
    return {"request": {"body": None, "headers": request_headers(version), "method": "GET",
                        "uri": f"{BASE}/{path_and_query}"}, "response": resp}


def write(name: str, interactions: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(yamlserializer.serialize({"version": 1, "interactions": interactions}))
    print(f"{OUT / name}: {len(interactions)} interactions")


# ---- API shapes --------------------------------------------------------------------------------------------


def ms(day: str | None) -> int | None:
    if day is None:
        return None
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)


def stamps(created: str) -> dict:
    t = ms(created) - 30 * 86_400_000
    return {"created": {"actor": "urn:li:person:Xy12AbCdEf", "time": t},
            "lastModified": {"actor": "urn:li:person:Xy12AbCdEf", "time": t + 3_600_000}}


def account_body(account: str) -> dict:
    a = ACCOUNTS[account]
    return {"test": False, "notifiedOnCreativeRejection": True, "notifiedOnNewFeaturesEnabled": False,
            "notifiedOnEndOfCampaign": True, "servingStatuses": ["RUNNABLE"], "notifiedOnCampaignOptimization": False,
            "type": "BUSINESS", "version": {"versionTag": "4"}, "reference": f"urn:li:organization:{a['org']}",
            "notifiedOnCreativeApproval": False, "changeAuditStamps": stamps("2023-06-01"), "name": a["name"],
            "currency": a["currency"], "id": int(account), "status": "ACTIVE"}


def group_body(gid: int) -> dict:
    account, name, status, start, end, budget = GROUPS[gid]
    body = {"runSchedule": {"start": ms(start)}, "test": False, "changeAuditStamps": stamps(start), "name": name,
            "servingStatuses": ["RUNNABLE"], "backfilled": False, "id": gid,
            "account": f"urn:li:sponsoredAccount:{account}", "status": status}
    if end:
        body["runSchedule"]["end"] = ms(end)
    if budget:
        body["totalBudget"] = {"amount": budget, "currencyCode": ACCOUNTS[account]["currency"]}
    return body


def campaign_body(cid: int) -> dict:
    gid, name, status, objective, cost_type, start, end, daily = CAMPAIGNS[cid]
    account = GROUPS[gid][0]
    currency = ACCOUNTS[account]["currency"]
    schedule = {"start": ms(start)}
    if end:
        schedule["end"] = ms(end)
    return {
        "account": f"urn:li:sponsoredAccount:{account}",
        "associatedEntity": f"urn:li:organization:{ACCOUNTS[account]['org']}",
        "audienceExpansionEnabled": False,
        "campaignGroup": f"urn:li:sponsoredCampaignGroup:{gid}",
        "changeAuditStamps": stamps(start),
        "costType": cost_type,
        "creativeSelection": "OPTIMIZED",
        "dailyBudget": {"amount": daily, "currencyCode": currency},
        "format": "SINGLE_VIDEO" if objective == "VIDEO_VIEW" else "STANDARD_UPDATE",
        "id": cid,
        "locale": {"country": "US", "language": "en"},
        "name": name,
        "objectiveType": objective,
        "offsiteDeliveryEnabled": False,
        "runSchedule": schedule,
        "servingStatuses": ["RUNNABLE"] if status == "ACTIVE" else ["CAMPAIGN_STATUS_NOT_ACTIVE"],
        "status": status,
        "test": False,
        "type": "SPONSORED_UPDATES",
        "unitCost": {"amount": "8.50" if cost_type == "CPC" else "42.00", "currencyCode": currency},
        "version": {"versionTag": "3"},
    }


def search_body(elements: list[dict], next_token: str | None = None) -> dict:
    body: dict = {"elements": elements}
    body["metadata"] = {"nextPageToken": next_token} if next_token else {}
    return body


def error_401() -> dict:
    return response({"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                     "message": "Invalid access token"}, 401, "Unauthorized")


def search_path(account: str, resource: str, page_size: int = 100, token: str | None = None) -> str:
    q = f"adAccounts/{account}/{resource}?q=search&pageSize={page_size}"
    return q + (f"&pageToken={quote(token, safe='')}" if token else "")


# ---- analytics ---------------------------------------------------------------------------------------------


def metrics_for(cid: int, day: date, seed: str, account_currency: str) -> dict:
    """One campaign-day of all requested metrics."""
    r = random.Random(f"{seed}|{cid}|{day}")
    objective = CAMPAIGNS[cid][3]
    weekday = day.weekday() < 5
    impressions = int(r.uniform(2200, 4200) * (1.0 if weekday else 0.45))
    clicks = int(impressions * r.uniform(0.004, 0.009))
    landing = int(clicks * r.uniform(0.72, 0.9)) if objective != "LEAD_GENERATION" else int(clicks * 0.2)
    cost = impressions * r.uniform(32, 58) / 1000
    leads = int(clicks * r.uniform(0.05, 0.18)) if objective == "LEAD_GENERATION" else 0
    conversions = r.choice((0, 0, 0, 1, 1, 2)) if objective == "WEBSITE_VISIT" else r.choice((0, 0, 1))
    post_click = min(conversions, r.choice((0, 1, conversions)))
    video = int(impressions * r.uniform(0.18, 0.3)) if objective == "VIDEO_VIEW" else 0
    likes, comments, shares, follows = r.randint(2, 14), r.randint(0, 3), r.randint(0, 2), r.randint(0, 3)
    other = r.randint(0, 6)
    return {
        "impressions": impressions,
        "landingPageClicks": landing,
        "clicks": clicks,
        "costInLocalCurrency": f"{cost:.4f}",
        "costInUsd": f"{cost * (EUR_USD if account_currency == 'EUR' else 1):.4f}",
        "externalWebsiteConversions": conversions,
        "oneClickLeads": leads,
        "totalEngagements": clicks + likes + comments + shares + follows + other,
        "likes": likes,
        "comments": comments,
        "shares": shares,
        "follows": follows,
        "reactions": likes + r.randint(0, 3),
        "companyPageClicks": r.randint(0, 4),
        "otherEngagements": other,
        "videoViews": video,
        "videoCompletions": int(video * r.uniform(0.2, 0.35)),
        "oneClickLeadFormOpens": int(leads * r.uniform(2.5, 4)) if leads else 0,
        "externalWebsitePostClickConversions": post_click,
        "externalWebsitePostViewConversions": conversions - post_click,
        "conversionValueInLocalCurrency": "0",
        "viralImpressions": r.randint(0, 120),
    }


def runs_on(cid: int, day: date) -> bool:
    _, _, status, _, _, start, end, _ = CAMPAIGNS[cid]
    return status == "ACTIVE" and date.fromisoformat(start) <= day and (end is None or day < date.fromisoformat(end))


def analytics_rows(account: str, first: date, last: date, seed: str = "v1") -> list[dict]:
    """Whole rows (every metric) of the account's running campaigns, ordered by day then campaign."""
    rows = []
    day = first
    while day <= last:
        for cid in sorted(CAMPAIGNS):
            if GROUPS[CAMPAIGNS[cid][0]][0] == account and runs_on(cid, day):
                d = {"year": day.year, "month": day.month, "day": day.day}
                rows.append({"dateRange": {"start": d, "end": dict(d)},
                             "pivotValues": [f"urn:li:sponsoredCampaign:{cid}"],
                             **metrics_for(cid, day, seed, ACCOUNTS[account]["currency"])})
        day += timedelta(days=1)
    return rows


def chunks(fields_per_request: int = 20) -> list[list[str]]:
    size = fields_per_request - 2
    return [["dateRange", "pivotValues", *METRICS[i:i + size]] for i in range(0, len(METRICS), size)]


def analytics_path(account: str, first: date, last: date, fields: list[str]) -> str:
    urn = quote(f"urn:li:sponsoredAccount:{account}", safe="")
    return ("adAnalytics?q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY"
            f"&dateRange=(start:(year:{first.year},month:{first.month},day:{first.day}),"
            f"end:(year:{last.year},month:{last.month},day:{last.day}))"
            f"&accounts=List({urn})&fields={','.join(fields)}")


def analytics_interactions(account: str, first: date, last: date, seed: str = "v1", fields_per_request: int = 20,
                           shuffle_later_chunks: bool = False) -> list[dict]:
    """One response per field chunk, each holding only its fields (later chunks optionally in another order)."""
    rows = analytics_rows(account, first, last, seed)
    out = []
    for n, fields in enumerate(chunks(fields_per_request)):
        elements = [{k: row[k] for k in fields} for row in rows]
        if shuffle_later_chunks and n:
            elements.reverse()
        body = {"paging": {"start": 0, "count": 10, "links": []}, "elements": elements}
        out.append(interaction(analytics_path(account, first, last, fields), response(body)))
    return out


def account_interaction(account: str) -> dict:
    return interaction(f"adAccounts/{account}", response(account_body(account)))


# ---- scenarios ---------------------------------------------------------------------------------------------


def build() -> None:
    token = "DgGerr1iVQreCJVjZDOW_grcp63nueBDipsS4DJpvJo"
    write("structure_two_accounts.yaml", [
        interaction(search_path("508000000", "adCampaignGroups"),
                    response(search_body([group_body(600000001), group_body(600000002)]))),
        interaction(search_path("508000001", "adCampaignGroups"), response(search_body([group_body(600000101)]))),
        interaction(search_path("508000000", "adCampaigns"),
                    response(search_body([campaign_body(700000001), campaign_body(700000002)], token))),
        interaction(search_path("508000000", "adCampaigns", token=token),
                    response(search_body([campaign_body(700000003), campaign_body(700000004)]))),
        interaction(search_path("508000001", "adCampaigns"), response(search_body([campaign_body(700000101)]))),
    ])
    # first sync 2024-03-29..03-31 of two accounts (USD, EUR); chunk 2 lists the rows in reverse order
    first, last = date(2024, 3, 29), date(2024, 3, 31)
    write("ad_analytics_two_accounts.yaml", [
        account_interaction("508000000"),
        *analytics_interactions("508000000", first, last, shuffle_later_chunks=True),
        account_interaction("508000001"),
        *analytics_interactions("508000001", first, last, shuffle_later_chunks=True),
    ])
    # fields_per_request = 9: four requests of 2 key fields + up to 7 metrics
    write("ad_analytics_small_chunks.yaml", [
        account_interaction("508000000"),
        *analytics_interactions("508000000", date(2024, 3, 30), date(2024, 3, 31), fields_per_request=9),
    ])
    # the next sync (now 2024-04-02, reread_days 3): 03-30 and 03-31 come back restated, 04-01 is new
    write("ad_analytics_reread.yaml", [
        account_interaction("508000000"),
        *analytics_interactions("508000000", date(2024, 3, 30), date(2024, 4, 1), seed="v2-restated"),
    ])
    write("unauthorized.yaml", [interaction(search_path("508000000", "adCampaignGroups"), error_401())])
    # the demo: now 2024-04-01, start 2024-01-01, account 508000000 (USD), windows of 31 days
    demo = [
        interaction(search_path("508000000", "adCampaignGroups"),
                    response(search_body([group_body(600000001), group_body(600000002)]))),
        interaction(search_path("508000000", "adCampaigns"),
                    response(search_body([campaign_body(c) for c in (700000001, 700000002, 700000003, 700000004)]))),
        account_interaction("508000000"),
    ]
    for first, last in ((date(2024, 1, 1), date(2024, 1, 31)), (date(2024, 2, 1), date(2024, 3, 2)),
                        (date(2024, 3, 3), date(2024, 3, 31))):
        demo += analytics_interactions("508000000", first, last, seed="demo")
    write("demo.yaml", demo)


if __name__ == "__main__":
    build()
