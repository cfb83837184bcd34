"""LinkedIn Ads connector: Rest.li queries, headers, cursor paging, field chunks merged into whole rows, re-read
windows, currencies per account, 401. Replays cassettes/linkedin_ads/ (tests/cassette_builders/linkedin_ads.py)."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from connectors import linkedin_ads as li
from connectors.core import Page, Replace, Run
from connectors.errors import ApiError, AuthError
from normalize.linkedin_ads import ad_analytics as normalize_row
from normalize.model import Context

NOW = datetime(2024, 4, 1, tzinfo=timezone.utc)
TOKEN = "test-token-linkedin"


@pytest.fixture
def cassette(vcr):
    """`with cassette("linkedin_ads/x.yaml"):` replays (never records)."""
    return vcr.use_cassette


def source(**kw) -> dict:
    return {"name": "linkedin_ads", "type": "linkedin_ads", "access_token": TOKEN,
            "account_ids": ["508000000", "508000001"], **kw}


def run_stream(name: str, src: dict, *, state=None, start=date(2024, 3, 29), now=NOW, sent=None):
    client = li.connect(src)
    if sent is not None:
        client.http.session.hooks["response"].append(lambda r, *a, **k: sent.append(r.request))
    pages = list(li.STREAMS[name].fetch(client, Run(source=src, state=state, start=start, now=now)))
    return client, pages


# ---- Rest.li query building ---------------------------------------------------------------------------------


def test_analytics_query_keeps_restli_syntax_and_encodes_urns():
    q = li.analytics_query("508000000", date(2024, 1, 1), date(2024, 1, 31), ("dateRange", "pivotValues", "clicks"))
    assert q == ("q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY"
                 "&dateRange=(start:(year:2024,month:1,day:1),end:(year:2024,month:1,day:31))"
                 "&accounts=List(urn%3Ali%3AsponsoredAccount%3A508000000)&fields=dateRange,pivotValues,clicks")


def test_field_chunks_respect_the_20_field_limit():
    chunks = li.field_chunks(li.METRICS)
    assert len(li.METRICS) + 2 > 20  # the default metric list needs more than one request
    assert len(chunks) == 2
    assert all(len(c) <= 20 and c[:2] == ("dateRange", "pivotValues") for c in chunks)
    assert [m for c in chunks for m in c[2:]] == list(li.METRICS)
    small = li.field_chunks(li.METRICS, 9)
    assert [len(c) for c in small] == [9, 9, 9, 3]
    assert li.field_chunks(li.METRICS, 50) == chunks  # never above LinkedIn's limit


def test_account_ids_accept_urns():
    assert li.account_id("urn:li:sponsoredAccount:508000000") == "508000000"
    assert li.account_id(508000001) == "508000001"


# ---- ad_analytics -------------------------------------------------------------------------------------------


def test_ad_analytics_two_accounts_field_chunks_merged_into_whole_rows(cassette):
    sent = []
    with cassette("linkedin_ads/ad_analytics_two_accounts.yaml"):
        client, pages = run_stream("ad_analytics", source(), sent=sent)
    # one window 03-29..03-31 (yesterday is the newest day), one page per account
    assert [len(p.records) for p in pages] == [9, 3]
    assert pages[0].replace == Replace("ad_analytics", "2024-03-29", "2024-03-31")
    assert pages[1].replace is None
    assert pages[0].state is None and pages[1].state == {"last_day": "2024-03-31"}
    assert client.requests == 6  # per account: the account lookup + two field chunks
    rows = {r["_id"]: r for p in pages for r in p.records}
    assert len(rows) == 12
    for row in rows.values():  # every metric of both chunks on one row
        assert set(li.METRICS) <= set(row)
    row = rows["2024-03-29|700000001"]
    assert row["pivotValues"] == ["urn:li:sponsoredCampaign:700000001"]
    assert row["dateRange"]["start"] == {"year": 2024, "month": 3, "day": 29}
    assert (row["impressions"], row["landingPageClicks"], row["clicks"]) == (3672, 19, 23)
    assert row["costInLocalCurrency"] == "199.1068"
    assert (row["externalWebsiteConversions"], row["oneClickLeads"], row["viralImpressions"]) == (2, 0, 114)
    assert (row["_account_id"], row["_currency"]) == ("508000000", "USD")
    eur = rows["2024-03-31|700000101"]
    assert (eur["_account_id"], eur["_currency"], eur["impressions"], eur["viralImpressions"]) == \
        ("508000001", "EUR", 1881, 18)
    # what went over the wire: Rest.li syntax literal, URN encoded, the required headers
    analytics = [r for r in sent if "/adAnalytics?" in r.url]
    assert len(analytics) == 4
    assert "&dateRange=(start:(year:2024,month:3,day:29),end:(year:2024,month:3,day:31))&" in analytics[0].url
    assert "&accounts=List(urn%3Ali%3AsponsoredAccount%3A508000000)&" in analytics[0].url
    assert analytics[0].url.endswith("fields=dateRange,pivotValues,impressions,landingPageClicks,clicks,"
                                     "costInLocalCurrency,costInUsd,externalWebsiteConversions,oneClickLeads,"
                                     "totalEngagements,likes,comments,shares,follows,reactions,companyPageClicks,"
                                     "otherEngagements,videoViews,videoCompletions,oneClickLeadFormOpens")
    for r in sent:
        assert r.headers["LinkedIn-Version"] == li.DEFAULT_VERSION
        assert r.headers["X-Restli-Protocol-Version"] == "2.0.0"
        assert r.headers["Authorization"] == f"Bearer {TOKEN}"


def test_ad_analytics_small_chunks_merge(cassette):
    with cassette("linkedin_ads/ad_analytics_small_chunks.yaml"):
        client, pages = run_stream("ad_analytics", source(account_ids=["508000000"], fields_per_request=9),
                                   start=date(2024, 3, 30))
    assert client.requests == 5  # account lookup + four chunks of 2 key fields and up to 7 metrics
    rows = {r["_id"]: r for r in pages[0].records}
    assert sorted(rows) == ["2024-03-30|700000001", "2024-03-30|700000002", "2024-03-30|700000003",
                            "2024-03-31|700000001", "2024-03-31|700000002", "2024-03-31|700000003"]
    row = rows["2024-03-31|700000002"]
    assert set(li.METRICS) <= set(row)
    assert (row["impressions"], row["landingPageClicks"], row["clicks"], row["costInLocalCurrency"],
            row["oneClickLeads"], row["viralImpressions"]) == (1703, 1, 7, "98.7591", 1, 30)


def test_reread_window_replaces_restated_days(cassette):
    src = source(account_ids=["508000000"], reread_days=3)
    with cassette("linkedin_ads/ad_analytics_two_accounts.yaml"):
        _, first_pages = run_stream("ad_analytics", source())
    with cassette("linkedin_ads/ad_analytics_reread.yaml"):
        _, pages = run_stream("ad_analytics", src, state={"last_day": "2024-03-31"},
                              now=datetime(2024, 4, 2, 6, tzinfo=timezone.utc), start=date(2024, 1, 1))
    # saved 03-31, now 04-02, re-read 3 days: 03-30..04-01 in one window, replaced as a whole
    assert len(pages) == 1
    assert pages[0].replace == Replace("ad_analytics", "2024-03-30", "2024-04-01")
    assert pages[0].state == {"last_day": "2024-04-01"}
    rows = {r["_id"]: r for r in pages[0].records}
    assert len(rows) == 7 and "2024-04-01|700000003" in rows  # two restated days and a new one
    before = {r["_id"]: r for p in first_pages for r in p.records}["2024-03-30|700000001"]
    after = rows["2024-03-30|700000001"]
    assert (before["impressions"], after["impressions"]) == (1378, 1463)  # LinkedIn restated the day
    # the restated day maps to the same event ids, now with the new numbers
    ctx = Context()
    old = {r.values["event_type"]: r.values for r in normalize_row(before, ctx)}
    new = {r.values["event_type"]: r.values for r in normalize_row(after, ctx)}
    assert old["ad_impressions"]["event_id"] == new["ad_impressions"]["event_id"]
    assert (old["ad_impressions"]["quantity"], new["ad_impressions"]["quantity"]) == (1378.0, 1463.0)
    assert new["ad_spend"]["amount"] == pytest.approx(75.767)


def test_report_range():
    today = datetime(2024, 4, 1, tzinfo=timezone.utc)
    first = Run(source={}, state=None, start=date(2024, 1, 1), now=today)
    assert li.report_range(first, 7) == (date(2024, 1, 1), date(2024, 3, 31))
    later = Run(source={}, state={"last_day": "2024-03-20"}, start=date(2024, 1, 1), now=today)
    assert li.report_range(later, 7) == (date(2024, 3, 21), date(2024, 3, 31))
    behind = Run(source={}, state={"last_day": "2024-03-30"}, start=date(2024, 1, 1), now=today)
    assert li.report_range(behind, 7) == (date(2024, 3, 25), date(2024, 3, 31))
    backfill = Run(source={}, state={"last_day": "2024-03-30"}, start=date(2024, 2, 1), end=date(2024, 5, 1), now=today)
    assert li.report_range(backfill, 7) == (date(2024, 2, 1), date(2024, 3, 31))


def test_an_empty_window_still_replaces_and_saves_its_day():
    window = Replace("ad_analytics", "2024-03-01", "2024-03-31")
    out = list(li.mark_window(iter([]), window, {"last_day": "2024-03-31"}))
    assert len(out) == 1 and out[0].records == []
    assert out[0].replace == Replace("ad_analytics", "2024-03-01", "2024-03-31")
    assert out[0].state == {"last_day": "2024-03-31"}
    two = list(li.mark_window(iter([Page([{"a": 1}]), Page([{"b": 2}])]), Replace("x", "a", "b"), {"last_day": "b"}))
    assert [(p.replace is not None, p.state) for p in two] == [(True, None), (False, {"last_day": "b"})]


# ---- campaign structure -------------------------------------------------------------------------------------


def test_campaign_groups_and_campaigns_of_two_accounts_with_cursor_paging(cassette):
    sent = []
    with cassette("linkedin_ads/structure_two_accounts.yaml"):
        client = li.connect(source())
        client.http.session.hooks["response"].append(lambda r, *a, **k: sent.append(r.request))
        run = Run(source=source(), state=None, start=date(2024, 1, 1), now=NOW)
        groups = list(li.STREAMS["campaign_groups"].fetch(client, run))
        campaigns = list(li.STREAMS["campaigns"].fetch(client, run))
    assert [[g["id"] for g in p.records] for p in groups] == [[600000001, 600000002], [600000101]]
    assert [[c["id"] for c in p.records] for p in campaigns] == [[700000001, 700000002], [700000003, 700000004],
                                                                 [700000101]]
    assert all(p.state is None and p.replace is None for p in groups + campaigns)
    assert [c["_account_id"] for p in campaigns for c in p.records] == ["508000000"] * 4 + ["508000001"]
    first = campaigns[0].records[0]
    assert first["campaignGroup"] == "urn:li:sponsoredCampaignGroup:600000001"
    assert first["dailyBudget"] == {"amount": "150.00", "currencyCode": "USD"}
    # the second page was asked for with the first page's metadata.nextPageToken
    assert sent[3].url == ("https://api.linkedin.com/rest/adAccounts/508000000/adCampaigns?q=search&pageSize=100"
                           "&pageToken=DgGerr1iVQreCJVjZDOW_grcp63nueBDipsS4DJpvJo")
    assert client.requests == 5


def test_401_is_an_auth_error_without_the_token(cassette):
    with cassette("linkedin_ads/unauthorized.yaml"):
        with pytest.raises(AuthError) as err:
            run_stream("campaign_groups", source())
    assert err.value.exit_code == 3
    assert "401" in str(err.value) and "INVALID_ACCESS_TOKEN" in str(err.value)
    assert TOKEN not in str(err.value)


def test_a_retired_version_names_the_setting_to_change():
    import json

    import requests

    client = li.connect(source(linkedin_version="202409"))
    r = requests.Response()
    r.status_code = 426
    r._content = json.dumps({"status": 426, "code": "NONEXISTENT_VERSION",
                             "message": "Requested version 20240901 is not active"}).encode()
    err = client.classify(r)
    assert isinstance(err, ApiError) and err.exit_code == 1
    assert "202409" in str(err) and "linkedin_version" in str(err)
    r.status_code, r._content = 400, b'{"status": 400, "code": "ILLEGAL_ARGUMENT", "message": "x"}'
    assert client.classify(r) is None  # everything else: the shared HTTP policy


def test_connect_needs_a_token():
    with pytest.raises(AuthError):
        li.connect(source(access_token=""))


def test_base_url_and_version_are_honoured():
    client = li.connect(source(base_url="https://sandbox.example/rest/", linkedin_version="202403"))
    assert client.http.url("adAnalytics") == "https://sandbox.example/rest/adAnalytics"
    assert client.http.session.headers["LinkedIn-Version"] == "202403"
    assert li.connect(source(requests_per_second=0.5)).http.pacer.per_seconds == 2.0


# ---- the demo cassette --------------------------------------------------------------------------------------


def test_demo_cassette_covers_q1(cassette):
    src = {**source(account_ids=["508000000"]), "start_date": "2024-01-01"}
    with cassette("linkedin_ads/demo.yaml"):
        client = li.connect(src)
        run = Run(source=src, state=None, start=date(2024, 1, 1), now=NOW)
        groups = [r for p in li.STREAMS["campaign_groups"].fetch(client, run) for r in p.records]
        campaigns = [r for p in li.STREAMS["campaigns"].fetch(client, run) for r in p.records]
        pages = list(li.STREAMS["ad_analytics"].fetch(client, run))
    assert len(groups) == 2 and len(campaigns) == 4
    assert [p.replace for p in pages] == [Replace("ad_analytics", "2024-01-01", "2024-01-31"),
                                          Replace("ad_analytics", "2024-02-01", "2024-03-02"),
                                          Replace("ad_analytics", "2024-03-03", "2024-03-31")]
    assert [p.state for p in pages] == [{"last_day": "2024-01-31"}, {"last_day": "2024-03-02"},
                                        {"last_day": "2024-03-31"}]
    rows = [r for p in pages for r in p.records]
    assert len(rows) == 182 and all(r["_currency"] == "USD" for r in rows)
    per_campaign = {}
    for r in rows:
        per_campaign[r["_id"].split("|")[1]] = per_campaign.get(r["_id"].split("|")[1], 0) + 1
    assert per_campaign == {"700000001": 91, "700000002": 60, "700000003": 31}  # the drafted 700000004 never ran
    assert len({r["_id"] for r in rows}) == 182
