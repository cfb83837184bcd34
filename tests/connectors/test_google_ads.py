"""Google Ads connector: replays cassettes/google_ads (built by tests/cassette_builders/google_ads.py)."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from connectors import google_ads
from connectors.core import Replace, Run
from connectors.errors import ApiError, AuthError, QuotaError, TemporaryError
from connectors.http import REFRESH_TOKEN

CREDENTIALS = {"developer_token": "test-developer-token", "client_id": "test-client-id.apps.googleusercontent.com",
               "client_secret": "test-client-secret", "refresh_token": "test-refresh-token"}
NOW = datetime(2024, 3, 15, 6, tzinfo=timezone.utc)


def source(**kw) -> dict:
    return {"name": "google_ads", "type": "google_ads", **CREDENTIALS, "customer_ids": ["1234567890"], **kw}


def fetch(settings: dict, state: dict | None = None, now: datetime = NOW, start: date = date(2024, 1, 1)):
    client = google_ads.connect(settings)
    return client, google_ads.fetch_campaign_days(client, Run(source=settings, state=state, start=start, now=now))


def test_two_customers_share_one_replace_and_the_state_waits_for_the_last(vcr):
    settings = source(customer_ids=["123-456-7890", "9876543210"], login_customer_id="111-222-3333")
    with vcr.use_cassette("google_ads/two_customers.yaml") as cassette:
        client, pages = fetch(settings, state={"last_day": "2024-03-14"})
        pages = list(pages)
    assert cassette.all_played and cassette.play_count == 3  # token + one searchStream per customer
    # re-read: the last 30 days up to yesterday, one window for both customers
    assert [p.replace for p in pages] == [Replace("campaign_day", "2024-02-14", "2024-03-14"), None]
    assert [p.state for p in pages] == [None, {"last_day": "2024-03-14"}]
    assert [len(p.records) for p in pages] == [3, 1]  # customer A's two stream batches are joined
    first = pages[0].records[0]
    assert first["_id"] == "1234567890|2024-02-14|11111111111"
    assert first["_customer_id"] == "1234567890"
    assert first["campaign"]["advertisingChannelType"] == "SEARCH"
    assert first["metrics"]["costMicros"] == "52500000"
    eur = pages[1].records[0]
    assert eur["_id"] == "9876543210|2024-03-01|22222222221" and eur["customer"]["currencyCode"] == "EUR"
    assert client.auth.refreshes == 1


def test_401_refreshes_the_token_once(vcr):
    with vcr.use_cassette("google_ads/token_refresh.yaml") as cassette:
        client, pages = fetch(source(reread_days=3), state={"last_day": "2024-03-14"})
        pages = list(pages)
    assert cassette.all_played and cassette.play_count == 4  # token, 401, token, 200
    assert client.auth.refreshes == 2
    assert [len(p.records) for p in pages] == [1] and pages[0].requests == 4


def test_quota_error_waits_for_retry_delay_then_retries(vcr, monkeypatch):
    import connectors.http

    slept = []
    monkeypatch.setattr(connectors.http, "SLEEP", slept.append)
    with vcr.use_cassette("google_ads/quota_retry.yaml") as cassette:
        _, pages = fetch(source(reread_days=3), state={"last_day": "2024-03-14"})
        pages = list(pages)
    assert cassette.all_played
    assert 12.0 in slept
    assert [len(p.records) for p in pages] == [1]


def test_daily_quota_stops_the_stream(vcr):
    with vcr.use_cassette("google_ads/quota_daily.yaml") as cassette:
        _, pages = fetch(source(reread_days=3), state={"last_day": "2024-03-14"})
        with pytest.raises(QuotaError) as err:
            list(pages)
    assert cassette.play_count == 2  # token + one searchStream: a 10-hour retryDelay is not waited for
    assert err.value.exit_code == 75


def test_permission_denied_is_an_auth_error(vcr):
    with vcr.use_cassette("google_ads/permission_denied.yaml"):
        _, pages = fetch(source(reread_days=3), state={"last_day": "2024-03-14"})
        with pytest.raises(AuthError) as err:
            list(pages)
    assert "USER_PERMISSION_DENIED" in str(err.value)
    assert "test-developer-token" not in str(err.value)


def test_revoked_refresh_token_is_an_auth_error(vcr):
    with vcr.use_cassette("google_ads/invalid_grant.yaml"):
        _, pages = fetch(source(reread_days=3), state={"last_day": "2024-03-14"})
        with pytest.raises(AuthError) as err:
            list(pages)
    assert err.value.exit_code == 3
    assert "test-refresh-token" not in str(err.value) and "test-client-secret" not in str(err.value)


def test_demo_cassette_replays_the_quarter(vcr):
    settings = {"name": "google_ads", "type": "google_ads", "developer_token": "demo-developer-token",
                "client_id": "demo-client-id.apps.googleusercontent.com", "client_secret": "demo-client-secret",
                "refresh_token": "demo-refresh-token", "customer_ids": ["1234567890"]}
    with vcr.use_cassette("google_ads/demo.yaml") as cassette:
        _, pages = fetch(settings, now=datetime(2024, 4, 1, tzinfo=timezone.utc))
        pages = list(pages)
    assert cassette.all_played
    assert [p.replace.start for p in pages] == ["2024-01-01", "2024-01-31", "2024-03-01", "2024-03-31"]
    records = [r for p in pages for r in p.records]
    assert len(records) == 91 + 60  # brand all quarter, display from February
    assert {r["campaign"]["name"] for r in records} == {"brand", "retargeting-display"}
    assert {r["customer"]["currencyCode"] for r in records} == {"USD"}
    assert pages[-1].state == {"last_day": "2024-03-31"}


# ---- pure parts ---------------------------------------------------------------------------------------------


def test_gaql_query():
    assert google_ads.gaql("2024-01-01", "2024-01-30") == (
        "SELECT campaign.id, campaign.name, campaign.advertising_channel_type, campaign.status, "
        "customer.currency_code, segments.date, metrics.impressions, metrics.clicks, metrics.cost_micros, "
        "metrics.conversions FROM campaign WHERE segments.date BETWEEN '2024-01-01' AND '2024-01-30' "
        "ORDER BY segments.date")


@pytest.mark.parametrize("value", ["123-456-7890", "1234567890", 1234567890, "customers/1234567890"])
def test_customer_id(value):
    assert google_ads.customer_id(value) == "1234567890"


class FakeResponse:
    def __init__(self, status: int, body):
        self.status_code = status
        self._body = body

    def json(self):
        return self._body


def failure(status: int, code: str, error_code: dict, details: dict | None = None) -> list:
    err = {"errorCode": error_code, "message": "x"}
    if details:
        err["details"] = details
    return [{"error": {"code": status, "status": code, "message": "m", "details": [
        {"@type": "type.googleapis.com/google.ads.googleads.v18.errors.GoogleAdsFailure", "errors": [err]}]}}]


def test_error_bodies_map_to_actions():
    classify = google_ads.make_classify(300)
    quota = classify(FakeResponse(429, failure(429, "RESOURCE_EXHAUSTED", {"quotaError": "RESOURCE_EXHAUSTED"},
                                               {"quotaErrorDetails": {"retryDelay": "30s"}})))
    assert isinstance(quota, TemporaryError) and quota.retry_after == 30.0
    daily = classify(FakeResponse(429, failure(429, "RESOURCE_EXHAUSTED", {"quotaError": "RESOURCE_EXHAUSTED"},
                                               {"quotaErrorDetails": {"retryDelay": "86400s"}})))
    assert isinstance(daily, ApiError)  # not retried; the client turns it into QuotaError
    expired = classify(FakeResponse(401, failure(401, "UNAUTHENTICATED", {"authenticationError": "OAUTH_TOKEN_EXPIRED"})))
    assert expired is REFRESH_TOKEN
    not_ads_user = classify(FakeResponse(401, failure(401, "UNAUTHENTICATED", {"authenticationError": "NOT_ADS_USER"})))
    assert isinstance(not_ads_user, AuthError)
    bad_query = classify(FakeResponse(400, failure(400, "INVALID_ARGUMENT", {"queryError": "PROHIBITED_FIELD"})))
    assert type(bad_query) is ApiError and "PROHIBITED_FIELD" in str(bad_query)
    assert classify(FakeResponse(503, {"error": {"code": 503, "status": "UNAVAILABLE"}})) is None  # Http retries


def test_connect_validates_settings():
    with pytest.raises(ApiError):
        google_ads.connect({"name": "g", "customer_ids": ["1234567890"], **{**CREDENTIALS, "developer_token": ""}})
    with pytest.raises(ApiError):
        google_ads.connect({"name": "g", **CREDENTIALS})
    with pytest.raises(ApiError):
        google_ads.connect({"name": "g", "customer_ids": ["1"], "developer_token": "d"})
    client = google_ads.connect(source(login_customer_id="111-222-3333", base_url="https://proxy.example/ads/v18/"))
    assert client.http.session.headers["login-customer-id"] == "1112223333"
    assert client.http.url("customers/1/googleAds:searchStream") == \
        "https://proxy.example/ads/v18/customers/1/googleAds:searchStream"
