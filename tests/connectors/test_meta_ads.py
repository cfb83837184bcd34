"""Meta Ads connector: cursor paging, several accounts, throttling (HTTP 400 code 17 retried; usage headers slow the
source down; a long regain time stops with exit 75), re-read windows, token errors. Replays cassettes/meta_ads/
(tests/cassette_builders/meta_ads.py); a fake clock stands in for time so pauses are asserted, never slept."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

import connectors.http
from connectors import meta_ads as meta
from connectors.core import Replace, Run
from connectors.errors import ApiError, AuthError, QuotaError, TemporaryError

NOW = datetime(2024, 4, 1, tzinfo=timezone.utc)
TOKEN = "test-token-meta"


@pytest.fixture
def cassette(vcr):
    """`with cassette("meta_ads/x.yaml"):` replays (never records)."""
    return vcr.use_cassette


@pytest.fixture
def clock(monkeypatch):
    """A fake monotonic clock that SLEEP advances; records every sleep."""
    t = {"now": 1000.0}
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        t["now"] += seconds

    monkeypatch.setattr(connectors.http, "SLEEP", sleep)
    return SimpleNamespace(now=lambda: t["now"], sleeps=sleeps)


def source(**kw) -> dict:
    return {"name": "meta_ads", "type": "meta_ads", "access_token": TOKEN, "account_ids": ["act_1234567890"],
            "conversion_actions": ["offsite_conversion.fb_pixel_lead"], **kw}


def fetch(src: dict, *, state=None, start=date(2024, 3, 30), now=NOW, clock=None, sent=None, into=None):
    client = meta.connect(src)
    if clock is not None:
        client.http.pacer.clock = clock.now
    if sent is not None:
        client.http.session.hooks["response"].append(lambda r, *a, **k: sent.append(r.request))
    pages = into if into is not None else []
    for page in meta.STREAMS["insights"].fetch(client, Run(source=src, state=state, start=start, now=now)):
        pages.append(page)
    return client, pages


def fake_response(status: int, body: dict, headers: dict | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = json.dumps(body).encode()
    r.headers.update(headers or {})
    return r


# ---- paging and accounts ------------------------------------------------------------------------------------


def test_cursor_paging(cassette):
    sent = []
    with cassette("meta_ads/insights_two_pages.yaml"):
        client, pages = fetch(source(page_size=2), sent=sent)
    assert [len(p.records) for p in pages] == [2, 1]
    assert pages[0].replace == Replace("insights", "2024-03-30", "2024-03-31") and pages[1].replace is None
    assert pages[0].state is None and pages[1].state == {"last_day": "2024-03-31"}
    assert client.requests == 2
    # page 2 = the same request plus after=<paging.cursors.after>; the token never appears in the `next` link
    assert "after=MQZDZD" in sent[1].url and "after=" not in sent[0].url
    assert f"access_token={TOKEN}" in sent[1].url
    first = pages[0].records[0]
    assert first["_id"] == "1234567890|2024-03-30|120210000000001"
    assert first["_account_id"] == "1234567890"
    assert first["_conversion_actions"] == ["offsite_conversion.fb_pixel_lead"]
    assert (first["impressions"], first["inline_link_clicks"], first["spend"]) == ("4844", "66", "41.62")
    assert [r["_id"] for r in pages[1].records] == ["1234567890|2024-03-31|120210000000001"]
    params = dict(parse_qsl(urlsplit(sent[0].url).query))
    assert params["level"] == "campaign" and params["time_increment"] == "1" and params["limit"] == "2"
    assert json.loads(params["time_range"]) == {"since": "2024-03-30", "until": "2024-03-31"}
    assert params["fields"].split(",") == list(meta.FIELDS)


def test_two_accounts_in_one_window(cassette):
    with cassette("meta_ads/insights_two_accounts.yaml"):
        client, pages = fetch(source(account_ids=["act_1234567890", "act_2345678901"]), start=date(2024, 3, 31))
    assert [len(p.records) for p in pages] == [2, 1]
    assert pages[0].replace == Replace("insights", "2024-03-31", "2024-03-31")
    assert [p.state for p in pages] == [None, {"last_day": "2024-03-31"}]
    assert [(r["_account_id"], r["account_currency"]) for p in pages for r in p.records] == \
        [("1234567890", "EUR"), ("1234567890", "EUR"), ("2345678901", "USD")]
    us = pages[1].records[0]
    assert (us["campaign_id"], us["impressions"], us["spend"]) == ("120210000000101", "2859", "25.25")


# ---- throttling ---------------------------------------------------------------------------------------------


def test_400_code_17_is_retried_not_failed(cassette, clock):
    with cassette("meta_ads/insights_throttled_then_ok.yaml"):
        client, pages = fetch(source(), start=date(2024, 3, 31), clock=clock)
    assert client.requests == 2  # the throttled call, then the same call again
    assert [len(p.records) for p in pages] == [2]
    assert pages[0].state == {"last_day": "2024-03-31"}
    # the throttle named 1 minute to regain access: the source paused 60 s before retrying
    assert client.pauses == [60.0]
    assert sum(clock.sleeps) == pytest.approx(60.0, abs=0.01)


def test_usage_headers_slow_the_source_down(cassette, clock):
    with cassette("meta_ads/insights_usage_headers.yaml"):
        client, pages = fetch(source(page_size=2), start=date(2024, 3, 29), clock=clock)
    assert [len(p.records) for p in pages] == [2, 2, 1]
    # 85 % (BUC call_count) -> 60 s x (85-75)/25 = 24 s; 95 % (x-app-usage total_time) -> 48 s; 10 % -> none
    assert client.pauses == [pytest.approx(24.0), pytest.approx(48.0)]
    assert [round(s, 3) for s in clock.sleeps if s] == [24.0, 48.0]  # each held the next request back


def test_a_long_regain_time_stops_with_exit_75_instead_of_sleeping(cassette, clock):
    pages = []
    with cassette("meta_ads/insights_regain_too_long.yaml"):
        with pytest.raises(QuotaError) as err:
            fetch(source(page_size=2), clock=clock, into=pages)
    assert err.value.exit_code == 75
    assert "90 min" in str(err.value) and TOKEN not in str(err.value)
    assert not any(s >= 300 for s in clock.sleeps)  # never slept for the hour
    # what was fetched before the stop is handed over (with the window's Replace, without its state)
    assert [len(p.records) for p in pages] == [2]
    assert pages[0].replace == Replace("insights", "2024-03-30", "2024-03-31") and pages[0].state is None


def test_a_long_regain_on_a_good_response_keeps_its_data_and_stops_before_the_next_call():
    client = meta.connect(source())
    ok = fake_response(200, {"data": []}, {"x-business-use-case-usage": json.dumps(
        {"1": [{"type": "ads_insights", "call_count": 100, "estimated_time_to_regain_access": 45}]})})
    client.on_response(ok)  # no exception: this response's data is kept
    with pytest.raises(QuotaError):
        client.get("act_1234567890/insights", {})


def test_usage_parser():
    headers = {
        "x-business-use-case-usage": json.dumps({"1": [{"type": "ads_insights", "call_count": 30, "total_cputime": 81,
                                                        "total_time": 12, "estimated_time_to_regain_access": 0}],
                                                 "2": [{"type": "ads_management", "call_count": 5,
                                                        "estimated_time_to_regain_access": 3}]}),
        "x-app-usage": json.dumps({"call_count": 10, "total_cputime": 2, "total_time": 3}),
    }
    assert meta.usage(headers) == (81.0, 180.0)
    assert meta.usage({"x-ad-account-usage": '{"acc_id_util_pct": 100, "reset_time_duration": 240}'}) == (100.0, 240.0)
    assert meta.usage({"x-ad-account-usage": '{"acc_id_util_pct": 9.67, "reset_time_duration": 100}'}) == (9.67, 0.0)
    assert meta.usage({"x-fb-ads-insights-throttle": '{"app_id_util_pct": 77.5, "acc_id_util_pct": 3}'}) == (77.5, 0.0)
    assert meta.usage({"x-app-usage": "not json"}) == (0.0, 0.0)


@pytest.mark.parametrize("code,subcode,expected", [
    (17, 2446079, TemporaryError), (613, 1487742, TemporaryError), (80004, 2446079, TemporaryError),
    (4, None, TemporaryError), (2, None, TemporaryError), (190, 463, AuthError), (200, None, AuthError),
    (100, 1504018, ApiError),
])
def test_classify(code, subcode, expected):
    client = meta.connect(source())
    error = {"message": "x", "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}
    if subcode:
        error["error_subcode"] = subcode
    mapped = client.classify(fake_response(400, {"error": error}))
    assert type(mapped) is expected
    assert f"{code}" in str(mapped) and "AbC" in str(mapped)


# ---- windows and errors -------------------------------------------------------------------------------------


def test_reread_window(cassette):
    with cassette("meta_ads/insights_reread.yaml"):
        client, pages = fetch(source(), state={"last_day": "2024-03-31"}, start=date(2024, 1, 1),
                              now=datetime(2024, 4, 2, 6, tzinfo=timezone.utc))
    # saved 03-31, now 04-02, reread_days 28 (the default): 03-05..04-01, one 28-day window
    assert len(pages) == 1
    assert pages[0].replace == Replace("insights", "2024-03-05", "2024-04-01")
    assert pages[0].state == {"last_day": "2024-04-01"}
    days = sorted(r["date_start"] for r in pages[0].records)
    assert days[0] == "2024-03-05" and days[-1] == "2024-03-31" and len(days) == 27


def test_expired_token_is_an_auth_error(cassette):
    with cassette("meta_ads/invalid_token.yaml"):
        with pytest.raises(AuthError) as err:
            fetch(source(), start=date(2024, 3, 31))
    assert err.value.exit_code == 3
    assert "190/463" in str(err.value) and "has expired" in str(err.value)
    assert TOKEN not in str(err.value)


def test_account_ids_and_base_url():
    assert meta.account_id("act_1234567890") == "1234567890" and meta.account_id(42) == "42"
    client = meta.connect(source(base_url="https://graph.example/v21.0"))
    assert client.http.url("act_1/insights") == "https://graph.example/v21.0/act_1/insights"
    with pytest.raises(AuthError):
        meta.connect(source(access_token=None))


def test_demo_cassette_covers_q1(cassette):
    with cassette("meta_ads/demo.yaml"):
        client, pages = fetch({**source(), "start_date": "2024-01-01"}, start=date(2024, 1, 1))
    assert [p.state for p in pages] == [{"last_day": "2024-01-31"}, {"last_day": "2024-03-02"},
                                        {"last_day": "2024-03-31"}]
    rows = [r for p in pages for r in p.records]
    assert len(rows) == 180 and {r["account_currency"] for r in rows} == {"EUR"}
    assert len({r["_id"] for r in rows}) == 180
    assert client.pauses == []  # the demo's usage stays low
