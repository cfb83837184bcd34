"""GA4 connector: replays cassettes/ga4 (built by tests/cassette_builders/ga4.py) through the real SDK client."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from connectors import ga4
from connectors.core import Replace, Run
from connectors.errors import ApiError, AuthError, QuotaError, TemporaryError
from normalize import Context
from normalize.ga4 import run_report

PROPERTY = "123456789"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    """A service-account key generated for this test run (never committed: no key material in the repo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path_factory.mktemp("ga4") / "key.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "funnelsync-test", "private_key_id": "0123456789abcdef",
        "private_key": pem, "client_email": "funnelsync@funnelsync-test.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token"}))
    return str(path)


def source(**kw) -> dict:
    return {"name": "ga4", "type": "ga4", "property_id": PROPERTY, **kw}


def fetch(settings: dict, now: datetime, start: date, state: dict | None = None, end: date | None = None):
    client = ga4.connect(settings)
    return client, ga4.fetch_report(client, Run(source=settings, state=state, start=start, end=end, now=now))


def at(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_two_pages_with_a_service_account_key(vcr, key_file):
    settings = source(credentials_file=key_file, page_size=3)
    with vcr.use_cassette("ga4/two_pages.yaml") as cassette:
        _, pages = fetch(settings, at(2024, 3, 8, 6), date(2024, 3, 1))
        pages = list(pages)
    assert cassette.all_played and cassette.play_count == 3  # token + two runReport pages
    assert [len(p.records) for p in pages] == [3, 2]
    assert pages[0].replace == Replace("run_report", "2024-03-01", "2024-03-07") and pages[1].replace is None
    assert pages[0].state is None
    assert pages[1].state == {"last_day": "2024-03-07", "provisional_from": "2024-03-05"}
    first = pages[0].records[0]
    assert first["_id"] == "2024-03-02|(direct)|(none)|(not set)|(not set)|(not set)|/blog/dark-funnel-guide"
    assert first["sessions"] == "6" and first["userEngagementDuration"] == "240"
    assert first["_property_id"] == PROPERTY
    days = {r["_id"].split("|")[0]: r["_provisional"] for p in pages for r in p.records}
    assert days == {"2024-03-02": False, "2024-03-04": False, "2024-03-06": True}


def apply(pages, store: dict) -> None:
    """What the sync loop does with a daily-report page: Replace deletes the day range, then each record's rows."""
    ctx = Context()
    for page in pages:
        if page.replace:
            for key in [k for k, row in store.items()
                        if page.replace.start <= row["event_date"] <= page.replace.end]:
                del store[key]
        for record in page.records:
            for row in run_report(record, ctx):
                store[row.values["event_id"]] = row.values


def sessions(store: dict) -> dict:
    return {(r["event_date"], r["landing_path"]): (r["quantity"], json.loads(r["properties"])["provisional"])
            for r in store.values() if r["event_type"] == "web_sessions"}


def test_reread_replaces_restated_days_and_a_provisional_day_becomes_final(vcr):
    store: dict = {}
    settings = source(access_token="test-token-ga4")
    with vcr.use_cassette("ga4/reread.yaml") as cassette:
        _, first = fetch(settings, at(2024, 3, 10, 5), date(2024, 3, 5))
        first = list(first)
        apply(first, store)
        assert first[-1].state == {"last_day": "2024-03-09", "provisional_from": "2024-03-07"}
        assert sessions(store) == {
            ("2024-03-05", "/"): (20.0, False),
            ("2024-03-07", "/pricing"): (10.0, True),
            ("2024-03-08", "/blog/x"): (5.0, True),
            ("2024-03-09", "/pricing"): (8.0, True),
        }
        # Two days later: re-read from the first provisional day (03-07), not just the last 3 days.
        _, second = fetch(settings, at(2024, 3, 12, 5), date(2024, 3, 5), state=first[-1].state)
        second = list(second)
        apply(second, store)
    assert cassette.all_played
    assert second[0].replace == Replace("run_report", "2024-03-07", "2024-03-11")
    assert second[-1].state == {"last_day": "2024-03-11", "provisional_from": "2024-03-09"}
    assert sessions(store) == {
        ("2024-03-05", "/"): (20.0, False),                   # outside the re-read: kept as it was
        ("2024-03-07", "/pricing"): (12.0, False),            # restated and now final
        ("2024-03-08", "/blog/dark-funnel-guide"): (5.0, False),  # the row moved: the old one is gone
        ("2024-03-09", "/pricing"): (9.0, True),
        ("2024-03-10", "/blog/x"): (3.0, True),
        ("2024-03-11", "/pricing"): (7.0, True),
    }


def test_quota_stop_commits_the_window_done_and_the_next_run_resumes(vcr):
    settings = source(access_token="test-token-ga4", window_days=7)
    with vcr.use_cassette("ga4/quota_stop.yaml") as cassette:
        _, pages = fetch(settings, at(2024, 3, 15, 6), date(2024, 3, 1))
        done = []
        with pytest.raises(QuotaError) as stop:
            for page in pages:
                done.append(page)
        assert stop.value.exit_code == 75 and "tokensPerHour" in str(stop.value)
        assert cassette.play_count == 1  # stopped before sending the second window's request
        assert [len(p.records) for p in done] == [1]
        assert done[0].state == {"last_day": "2024-03-07"}
        _, resumed = fetch(settings, at(2024, 3, 15, 7, 5), date(2024, 3, 1), state=done[0].state)
        resumed = list(resumed)
    assert cassette.all_played
    assert resumed[0].replace == Replace("run_report", "2024-03-08", "2024-03-14")
    assert resumed[0].records[0]["_id"].startswith("2024-03-10|google|cpc|brand")
    assert resumed[-1].state == {"last_day": "2024-03-14", "provisional_from": "2024-03-12"}


def test_401_fetches_a_new_token_once(vcr, key_file):
    with vcr.use_cassette("ga4/token_refresh.yaml") as cassette:
        _, pages = fetch(source(credentials_file=key_file), at(2024, 3, 8, 6), date(2024, 3, 1))
        pages = list(pages)
    assert cassette.all_played and cassette.play_count == 4  # token, 401, token, 200
    assert [len(p.records) for p in pages] == [2]


def test_429_resource_exhausted_stops_without_retrying(vcr):
    with vcr.use_cassette("ga4/rate_limited.yaml") as cassette:
        _, pages = fetch(source(access_token="test-token-ga4"), at(2024, 3, 8, 6), date(2024, 3, 1))
        with pytest.raises(QuotaError) as err:
            list(pages)
    assert cassette.play_count == 1
    assert "429" in str(err.value) and err.value.exit_code == 75
    assert "test-token-ga4" not in str(err.value)


def test_503_is_retried(vcr):
    with vcr.use_cassette("ga4/server_error.yaml") as cassette:
        client, pages = fetch(source(access_token="test-token-ga4"), at(2024, 3, 8, 6), date(2024, 3, 1))
        pages = list(pages)
    assert cassette.all_played and client.requests == 2
    assert [len(p.records) for p in pages] == [1] and pages[0].requests == 2


def test_demo_cassette_replays_the_quarter(vcr):
    with vcr.use_cassette("ga4/demo.yaml") as cassette:
        _, pages = fetch(source(access_token="demo-token-ga4"), at(2024, 4, 1), date(2024, 1, 1))
        pages = list(pages)
    assert cassette.all_played
    assert [p.replace for p in pages] == [Replace("run_report", a, b) for a, b in (
        ("2024-01-01", "2024-01-30"), ("2024-01-31", "2024-02-29"), ("2024-03-01", "2024-03-30"),
        ("2024-03-31", "2024-03-31"))]
    records = [r for p in pages for r in p.records]
    assert 200 <= len(records) <= 400
    assert len({r["_id"] for r in records}) == len(records)
    assert {(r["sessionSource"], r["sessionMedium"]) for r in records} >= {
        ("(direct)", "(none)"), ("l.messenger.com", "referral"), ("lnkd.in", "referral"), ("google", "cpc"),
        ("linkedin", "paid_social")}
    assert pages[-1].state == {"last_day": "2024-03-31", "provisional_from": "2024-03-29"}


# ---- pure parts ---------------------------------------------------------------------------------------------


def test_quota_problem_share_and_margin():
    healthy = {"tokensPerDay": {"consumed": 1000, "remaining": 199000},
               "tokensPerHour": {"consumed": 100, "remaining": 39900}}
    assert ga4.quota_problem(healthy, 0.9, 500) is None
    assert ga4.quota_problem(None, 0.9, 500) is None
    hourly = {**healthy, "tokensPerHour": {"consumed": 36000, "remaining": 4000}}
    assert "tokensPerHour" in ga4.quota_problem(hourly, 0.9, 500)
    assert ga4.quota_problem(hourly, 0.95, 500) is None
    nearly_out = {"tokensPerDay": {"consumed": 10, "remaining": 300}}
    assert "tokensPerDay" in ga4.quota_problem(nearly_out, 0.9, 500)
    assert ga4.quota_problem({"concurrentRequests": {}}, 0.9, 500) is None


@pytest.mark.parametrize("state, now, expected", [
    (None, at(2024, 3, 20), date(2024, 3, 1)),                                      # first sync: start_date
    ({"last_day": "2024-03-18"}, at(2024, 3, 20), date(2024, 3, 17)),               # re-read the last 3 days
    ({"last_day": "2024-03-10"}, at(2024, 3, 20), date(2024, 3, 11)),               # resume after a gap
    ({"last_day": "2024-03-10", "provisional_from": "2024-03-08"}, at(2024, 3, 20), date(2024, 3, 8)),
    ({"last_day": "2024-02-10"}, at(2024, 3, 20), date(2024, 3, 1)),                # never before start_date
])
def test_first_day(state, now, expected):
    run = Run(source={}, state=state, start=date(2024, 3, 1), now=now)
    assert ga4.first_day(run, 3) == expected


def test_backfill_ignores_state_and_stops_at_its_end():
    run = Run(source={}, state={"last_day": "2024-03-18"}, start=date(2024, 1, 1), end=date(2024, 1, 31),
              now=at(2024, 3, 20))
    assert ga4.first_day(run, 3) == date(2024, 1, 1)


def test_static_token_cannot_be_refreshed():
    credentials = ga4.make_credentials(token="test-token-ga4")
    assert credentials.valid
    with pytest.raises(AuthError):
        credentials.refresh(None)


def test_sdk_errors_map_to_connector_errors():
    from google.api_core import exceptions as gexc

    assert isinstance(ga4._classify(gexc.Unauthorized("bad token")), AuthError)
    assert isinstance(ga4._classify(gexc.PermissionDenied("no access to property")), AuthError)
    assert isinstance(ga4._classify(gexc.ServiceUnavailable("down")), TemporaryError)
    assert isinstance(ga4._classify(gexc.InternalServerError("oops")), TemporaryError)
    spent = ga4._classify(gexc.TooManyRequests("Exhausted property tokens per day"))
    assert isinstance(spent, ApiError) and not isinstance(spent, TemporaryError)  # never retried
    assert type(ga4._classify(gexc.BadRequest("Field foo is not valid"))) is ApiError
    assert ga4._classify(ValueError("not ours")) is None


def test_connect_needs_a_property_and_a_credential(tmp_path):
    with pytest.raises(ApiError):
        ga4.connect({"name": "ga4", "type": "ga4", "access_token": "x"})
    with pytest.raises(ApiError):
        ga4.connect({"name": "ga4", "type": "ga4", "property_id": "1"})
    bad = tmp_path / "key.json"
    bad.write_text('{"type": "authorized_user"}')
    with pytest.raises(ApiError):
        ga4.connect({"name": "ga4", "type": "ga4", "property_id": "1", "credentials_file": str(bad)})
