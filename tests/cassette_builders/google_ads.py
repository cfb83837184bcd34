"""Build cassettes/google_ads/*.yaml: run the real connector against an in-process fake Google Ads REST API and keep
each request it sent with the answer the fake gave (same capture and vcrpy filters as tests/cassette_builders/ga4.py).

Run from the repository root: `/work/venv/bin/python tests/cassette_builders/google_ads.py`.

The fake checks every request independently of the connector: the exact GAQL text written out below, the
customer in the path, the `developer-token` / `login-customer-id` / `Authorization` headers, and the OAuth form.

Shapes, from the API reference:
- searchStream: POST https://googleads.googleapis.com/v18/customers/{customerId}/googleAds:searchStream, body
  {"query": GAQL}; response a JSON array of SearchGoogleAdsStreamResponse {results[GoogleAdsRow], fieldMask,
  requestId, queryResourceConsumption (int64, last batch)} (developers.google.com/google-ads/api/rest/reference/
  rest/v18/customers.googleAds/searchStream). GoogleAdsRow JSON is lowerCamelCase (`advertisingChannelType`,
  `currencyCode`, `costMicros`), int64 values (id, clicks, impressions, costMicros) are strings, double
  (conversions) a number, enums their names; each selected resource carries its `resourceName`.
- errors: {"error": {code, message, status, details: [{"@type": "type.googleapis.com/google.ads.googleads.v18.
  errors.GoogleAdsFailure", errors: [{errorCode: {quotaError|authenticationError|authorizationError: ...},
  message, details: {quotaErrorDetails: {rateScope, rateName, retryDelay}}}], requestId}]}}, wrapped in an array
  by searchStream (developers.google.com/google-ads/api/docs/rest/..., reference/rpc/v18/QuotaErrorDetails).
- token: POST https://oauth2.googleapis.com/token, form grant_type=refresh_token, client_id, client_secret,
  refresh_token -> {"access_token", "expires_in", "scope", "token_type": "Bearer"}; a revoked refresh token
  answers 400 {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
  (developers.google.com/identity/protocols/oauth2/web-server#offline).
"""
from __future__ import annotations

import importlib.util
import json
import random
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_spec = importlib.util.spec_from_file_location("ga4_builder", HERE / "ga4.py")
gb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gb)

from connectors import google_ads  # noqa: E402
from connectors.core import Run  # noqa: E402
from connectors.errors import AuthError, QuotaError  # noqa: E402

BASE = "https://googleads.googleapis.com/v18"
TOKEN_URI = "https://oauth2.googleapis.com/token"
JSON_HEADERS = {"Content-Type": "application/json; charset=UTF-8", "Vary": "Origin, X-Origin, Referer",
                "Server": "ESF", "X-Content-Type-Options": "nosniff", "Date": gb.DATE_HEADER}
FIELD_MASK = ("campaign.id,campaign.name,campaign.advertisingChannelType,campaign.status,customer.currencyCode,"
              "segments.date,metrics.impressions,metrics.clicks,metrics.costMicros,metrics.conversions")
TEST_SOURCE = {"developer_token": "test-developer-token", "client_id": "test-client-id.apps.googleusercontent.com",
               "client_secret": "test-client-secret", "refresh_token": "test-refresh-token"}
DEMO_SOURCE = {"developer_token": "demo-developer-token", "client_id": "demo-client-id.apps.googleusercontent.com",
               "client_secret": "demo-client-secret", "refresh_token": "demo-refresh-token",
               "customer_ids": ["1234567890"]}


def expected_gaql(start: str, end: str) -> str:
    return ("SELECT campaign.id, campaign.name, campaign.advertising_channel_type, campaign.status, "
            "customer.currency_code, segments.date, metrics.impressions, metrics.clicks, metrics.cost_micros, "
            f"metrics.conversions FROM campaign WHERE segments.date BETWEEN '{start}' AND '{end}' "
            "ORDER BY segments.date")


class Tokens:
    """The OAuth endpoint: hands out numbered tokens; the API steps check the latest is used."""

    def __init__(self, source: dict):
        self.source = source
        self.issued = 0

    def step(self, request) -> tuple:
        assert request.url == TOKEN_URI, request.url
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        assert form == {"grant_type": "refresh_token", "client_id": self.source["client_id"],
                        "client_secret": self.source["client_secret"],
                        "refresh_token": self.source["refresh_token"]}, form
        self.issued += 1
        body = {"access_token": f"ya29.a0-fake-{self.issued}", "expires_in": 3599,
                "scope": "https://www.googleapis.com/auth/adwords", "token_type": "Bearer"}
        return 200, {"Content-Type": "application/json; charset=utf-8", "Date": gb.DATE_HEADER}, json.dumps(body)

    def invalid_grant(self, request) -> tuple:
        assert request.url == TOKEN_URI, request.url
        body = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        return 400, {"Content-Type": "application/json; charset=utf-8", "Date": gb.DATE_HEADER}, json.dumps(body)


def check_call(request, tokens: Tokens, customer: str, start: str, end: str, login: str | None) -> None:
    assert request.url == f"{BASE}/customers/{customer}/googleAds:searchStream", request.url
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["developer-token"] == tokens.source["developer_token"]
    assert request.headers.get("login-customer-id") == login, request.headers.get("login-customer-id")
    assert request.headers["Authorization"] == f"Bearer ya29.a0-fake-{tokens.issued}"
    assert json.loads(request.body) == {"query": expected_gaql(start, end)}, request.body


def result(customer: str, currency: str, campaign: tuple, day: str, metrics: dict) -> dict:
    campaign_id, name, channel_type, status = campaign
    m = {"clicks": str(metrics["clicks"]), "conversions": float(metrics["conversions"]),
         "costMicros": str(metrics["cost_micros"]), "impressions": str(metrics["impressions"])}
    return {"customer": {"resourceName": f"customers/{customer}", "currencyCode": currency},
            "campaign": {"resourceName": f"customers/{customer}/campaigns/{campaign_id}", "status": status,
                         "advertisingChannelType": channel_type, "name": name, "id": campaign_id},
            "metrics": m,
            "segments": {"date": day}}


def stream_step(tokens: Tokens, customer: str, start: str, end: str, results: list[dict], login: str | None = None,
                batch_size: int = 10_000) -> Callable:
    def step(request) -> tuple:
        check_call(request, tokens, customer, start, end, login)
        batches = []
        chunks = [results[i:i + batch_size] for i in range(0, len(results), batch_size)] or [[]]
        for i, chunk in enumerate(chunks):
            batch: dict = {}
            if chunk:
                batch["results"] = chunk
            batch["fieldMask"] = FIELD_MASK
            batch["requestId"] = f"fsync{customer[-4:]}{start.replace('-', '')}{i}"
            if i == len(chunks) - 1:
                batch["queryResourceConsumption"] = str(40 + 5 * len(results))
            batches.append(batch)
        return 200, JSON_HEADERS, json.dumps(batches, separators=(",", ":"))

    return step


def error_step(tokens: Tokens, customer: str, start: str, end: str, status: int, code: str, message: str,
               error_code: dict, error_message: str, details: dict | None = None) -> Callable:
    def step(request) -> tuple:
        check_call(request, tokens, customer, start, end, None)
        err: dict = {"errorCode": error_code, "message": error_message}
        if details:
            err["details"] = details
        body = [{"error": {"code": status, "message": message, "status": code, "details": [
            {"@type": "type.googleapis.com/google.ads.googleads.v18.errors.GoogleAdsFailure", "errors": [err],
             "requestId": f"fsyncerr{status}"}]}}]
        return status, JSON_HEADERS, json.dumps(body)

    return step


def fetch(source: dict, now: datetime, start: date, state: dict | None = None, end: date | None = None):
    settings = {"name": "google_ads", "type": "google_ads", **source}
    client = google_ads.connect(settings)
    return list(google_ads.fetch_campaign_days(client, Run(source=settings, state=state, start=start, end=end,
                                                             now=now)))


def daily(customer: str, currency: str, campaign: tuple, days: list[str], base: dict) -> list[dict]:
    out = []
    for i, day in enumerate(days):
        k = 1 + (i % 3) / 10
        out.append(result(customer, currency, campaign, day, {key: (round(v * k, 1) if key == "conversions" else
                                                                    int(v * k)) for key, v in base.items()}))
    return out


BRAND = ("11111111111", "brand", "SEARCH", "ENABLED")
DISPLAY = ("11111111112", "retargeting-display", "DISPLAY", "ENABLED")
PMAX = ("22222222221", "pmax-emea", "PERFORMANCE_MAX", "PAUSED")


def two_customers() -> list:
    source = {**TEST_SOURCE, "customer_ids": ["123-456-7890", "9876543210"], "login_customer_id": "111-222-3333"}
    tokens = Tokens(source)
    a = (daily("1234567890", "USD", BRAND, ["2024-02-14", "2024-02-15"],
               {"impressions": 1000, "clicks": 40, "cost_micros": 52_500_000, "conversions": 2})
         + daily("1234567890", "USD", DISPLAY, ["2024-02-14"],
                 {"impressions": 20000, "clicks": 35, "cost_micros": 18_000_000, "conversions": 0}))
    b = daily("9876543210", "EUR", PMAX, ["2024-03-01"],
              {"impressions": 3000, "clicks": 60, "cost_micros": 75_250_000, "conversions": 1.5})
    script = gb.Script([tokens.step,
                        stream_step(tokens, "1234567890", "2024-02-14", "2024-03-14", a, "1112223333", batch_size=2),
                        stream_step(tokens, "9876543210", "2024-02-14", "2024-03-14", b, "1112223333")])
    with gb.serve(script):
        pages = fetch(source, datetime(2024, 3, 15, 6, tzinfo=timezone.utc), date(2024, 1, 1),
                      state={"last_day": "2024-03-14"})
    assert [len(p.records) for p in pages] == [3, 1]
    return script.pairs


def token_refresh() -> list:
    source = {**TEST_SOURCE, "customer_ids": ["1234567890"]}
    tokens = Tokens(source)
    rows = daily("1234567890", "USD", BRAND, ["2024-03-12"],
                 {"impressions": 900, "clicks": 30, "cost_micros": 41_000_000, "conversions": 1})
    script = gb.Script([
        tokens.step,
        error_step(tokens, "1234567890", "2024-03-12", "2024-03-14", 401, "UNAUTHENTICATED",
                   "Request is missing required authentication credential. Expected OAuth 2 access token, login "
                   "cookie or other valid authentication credential.",
                   {"authenticationError": "OAUTH_TOKEN_EXPIRED"}, "OAuth token in the header has expired."),
        tokens.step,
        stream_step(tokens, "1234567890", "2024-03-12", "2024-03-14", rows),
    ])
    with gb.serve(script):
        pages = fetch({**source, "reread_days": 3}, datetime(2024, 3, 15, 6, tzinfo=timezone.utc), date(2024, 1, 1),
                      state={"last_day": "2024-03-14"})
    assert [len(p.records) for p in pages] == [1]
    return script.pairs


QUOTA_DETAILS = {"rateScope": "DEVELOPER", "rateName": "Number of operations for basic access"}


def quota_retry() -> list:
    source = {**TEST_SOURCE, "customer_ids": ["1234567890"]}
    tokens = Tokens(source)
    rows = daily("1234567890", "USD", BRAND, ["2024-03-13"],
                 {"impressions": 950, "clicks": 33, "cost_micros": 44_000_000, "conversions": 1})
    script = gb.Script([
        tokens.step,
        error_step(tokens, "1234567890", "2024-03-12", "2024-03-14", 429, "RESOURCE_EXHAUSTED",
                   "Resource has been exhausted (e.g. check quota).", {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"},
                   "Too many requests in a short amount of time. Retry in 12 seconds.",
                   {"quotaErrorDetails": {**QUOTA_DETAILS, "rateScope": "ACCOUNT", "rateName": "Requests per account",
                                          "retryDelay": "12s"}}),
        stream_step(tokens, "1234567890", "2024-03-12", "2024-03-14", rows),
    ])
    with gb.serve(script):
        pages = fetch({**source, "reread_days": 3}, datetime(2024, 3, 15, 6, tzinfo=timezone.utc), date(2024, 1, 1),
                      state={"last_day": "2024-03-14"})
    assert [len(p.records) for p in pages] == [1]
    return script.pairs


def quota_daily() -> list:
    source = {**TEST_SOURCE, "customer_ids": ["1234567890"]}
    tokens = Tokens(source)
    script = gb.Script([
        tokens.step,
        error_step(tokens, "1234567890", "2024-03-12", "2024-03-14", 429, "RESOURCE_EXHAUSTED",
                   "Resource has been exhausted (e.g. check quota).", {"quotaError": "RESOURCE_EXHAUSTED"},
                   "Too many requests. Retry in 38120 seconds.",
                   {"quotaErrorDetails": {**QUOTA_DETAILS, "retryDelay": "38120s"}}),
    ])
    with gb.serve(script):
        try:
            fetch({**source, "reread_days": 3}, datetime(2024, 3, 15, 6, tzinfo=timezone.utc), date(2024, 1, 1),
                  state={"last_day": "2024-03-14"})
        except QuotaError:
            pass
        else:
            raise AssertionError("the daily quota did not stop the stream")
    return script.pairs


def permission_denied() -> list:
    source = {**TEST_SOURCE, "customer_ids": ["1234567890"]}
    tokens = Tokens(source)
    script = gb.Script([
        tokens.step,
        error_step(tokens, "1234567890", "2024-03-12", "2024-03-14", 403, "PERMISSION_DENIED",
                   "The caller does not have permission", {"authorizationError": "USER_PERMISSION_DENIED"},
                   "User doesn't have permission to access customer. Note: If you're accessing a client customer, "
                   "the manager's customer id must be set in the 'login-customer-id' header."),
    ])
    with gb.serve(script):
        try:
            fetch({**source, "reread_days": 3}, datetime(2024, 3, 15, 6, tzinfo=timezone.utc), date(2024, 1, 1),
                  state={"last_day": "2024-03-14"})
        except AuthError:
            pass
        else:
            raise AssertionError("403 did not raise AuthError")
    return script.pairs


def invalid_grant() -> list:
    source = {**TEST_SOURCE, "customer_ids": ["1234567890"]}
    tokens = Tokens(source)
    script = gb.Script([tokens.invalid_grant])
    with gb.serve(script):
        try:
            fetch({**source, "reread_days": 3}, datetime(2024, 3, 15, 6, tzinfo=timezone.utc), date(2024, 1, 1),
                  state={"last_day": "2024-03-14"})
        except AuthError:
            pass
        else:
            raise AssertionError("invalid_grant did not raise AuthError")
    return script.pairs


# ---- demo: Q1 2024, one USD account, a SEARCH "brand" campaign all quarter and a DISPLAY one from February ------


def demo_results(start: str, end: str) -> list[dict]:
    rng = random.Random(f"google_ads-{start}")
    out = []
    day = date.fromisoformat(start)
    while day <= date.fromisoformat(end):
        iso = day.isoformat()
        weekend = day.weekday() >= 5
        impressions = rng.randint(250, 420) // (2 if weekend else 1)
        clicks = max(1, impressions * rng.randint(9, 14) // 100)
        out.append(result("1234567890", "USD", BRAND, iso, {
            "impressions": impressions, "clicks": clicks, "cost_micros": clicks * rng.randint(2_100_000, 3_400_000),
            "conversions": rng.choice([0, 0, 1, 1, 2])}))
        if day >= date(2024, 2, 1):
            impressions = rng.randint(6000, 11000) // (2 if weekend else 1)
            clicks = impressions * rng.randint(2, 5) // 1000
            out.append(result("1234567890", "USD", DISPLAY, iso, {
                "impressions": impressions, "clicks": clicks, "cost_micros": impressions * rng.randint(3000, 4500),
                "conversions": rng.choice([0, 0, 0, 1])}))
        day += timedelta(days=1)
    return out


def demo() -> list:
    tokens = Tokens(DEMO_SOURCE)
    windows = [("2024-01-01", "2024-01-30"), ("2024-01-31", "2024-02-29"), ("2024-03-01", "2024-03-30"),
               ("2024-03-31", "2024-03-31")]
    script = gb.Script([tokens.step] + [stream_step(tokens, "1234567890", a, b, demo_results(a, b))
                                        for a, b in windows])
    with gb.serve(script):
        pages = fetch(DEMO_SOURCE, datetime(2024, 4, 1, tzinfo=timezone.utc), date(2024, 1, 1))
    total = sum(len(p.records) for p in pages)
    print(f"demo: {total} Google Ads campaign-days")
    return script.pairs


SCENARIOS = {
    "google_ads/two_customers.yaml": two_customers,
    "google_ads/token_refresh.yaml": token_refresh,
    "google_ads/quota_retry.yaml": quota_retry,
    "google_ads/quota_daily.yaml": quota_daily,
    "google_ads/permission_denied.yaml": permission_denied,
    "google_ads/invalid_grant.yaml": invalid_grant,
    "google_ads/demo.yaml": demo,
}


def main(names: list[str]) -> None:
    import connectors.http

    connectors.http.SLEEP = lambda seconds: None
    for name, build in SCENARIOS.items():
        if names and name not in names:
            continue
        path = gb.write_cassette(name, build())
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
