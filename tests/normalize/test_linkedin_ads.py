"""LinkedIn Ads normalizers (spec §1.4, D-15, D-16): campaign groups and campaigns -> campaigns rows, daily
adAnalytics rows -> ad_* aggregates. The golden files (tests/golden/linkedin_ads.*) cover whole cassette records."""
from __future__ import annotations

import time

import pytest

from normalize.events import Delete, Malformed, Row, event_id
from normalize.linkedin_ads import NORMALIZERS, ad_analytics, campaign_groups, campaigns
from normalize.model import Context, Model

CTX = Context()


def row(**kw) -> dict:
    base = {
        "dateRange": {"start": {"year": 2024, "month": 2, "day": 5}, "end": {"year": 2024, "month": 2, "day": 5}},
        "pivotValues": ["urn:li:sponsoredCampaign:700000002"],
        "impressions": 3997, "landingPageClicks": 5, "clicks": 27, "costInLocalCurrency": "147.2664",
        "costInUsd": "147.2664", "externalWebsiteConversions": 1, "oneClickLeads": 2, "likes": 9,
        "_id": "2024-02-05|700000002", "_account_id": "508000000", "_currency": "USD",
    }
    base.update(kw)
    return base


def by_type(rows: list) -> dict:
    return {r.values["event_type"]: r.values for r in rows}


def test_analytics_row_gives_the_five_measures():
    out = ad_analytics(row(), CTX)
    assert all(isinstance(r, Row) and r.table == "events" for r in out)
    ev = by_type(out)
    assert set(ev) == {"ad_impressions", "ad_clicks", "ad_spend", "ad_conversions", "ad_leads"}
    assert ev["ad_impressions"]["quantity"] == 3997.0
    assert ev["ad_clicks"]["quantity"] == 5.0  # D-15: landingPageClicks, not the 27 clicks
    assert ev["ad_conversions"]["quantity"] == 1.0
    assert ev["ad_leads"]["quantity"] == 2.0
    assert (ev["ad_spend"]["amount"], ev["ad_spend"]["currency"], ev["ad_spend"]["quantity"]) == (147.2664, "USD", 1.0)
    for v in ev.values():
        assert v["event_date"] == "2024-02-05" and v["occurred_at"] == "2024-02-05T00:00:00Z"
        assert (v["source_system"], v["source_object"], v["source_id"]) == \
            ("linkedin_ads", "ad_analytics", "2024-02-05|700000002")
        assert v["campaign_key"] == "linkedin_ads:700000002" and v["channel"] == "paid_social"
        assert v["is_aggregate"] == 1 and v["person_key"] is None
        assert v["event_id"] == event_id("linkedin_ads", "ad_analytics", "2024-02-05|700000002", v["event_type"],
                                         "2024-02-05T00:00:00Z")
    assert ev["ad_impressions"]["currency"] is None and ev["ad_impressions"]["amount"] is None


def test_zero_measures_make_no_rows():
    ev = by_type(ad_analytics(row(landingPageClicks=0, oneClickLeads=0, externalWebsiteConversions=0,
                                  costInLocalCurrency="0.0"), CTX))
    assert set(ev) == {"ad_impressions"}
    assert ad_analytics(row(impressions=0, landingPageClicks=0, oneClickLeads=0, externalWebsiteConversions=0,
                            costInLocalCurrency="0"), CTX) == []


def test_missing_metrics_count_as_zero_and_currency_falls_back_to_the_source_setting():
    record = row(_currency=None)
    for k in ("oneClickLeads", "externalWebsiteConversions", "landingPageClicks"):
        record.pop(k)
    ev = by_type(ad_analytics(record, Context(model=Model(reporting_currency="GBP"), settings={"currency": "EUR"})))
    assert set(ev) == {"ad_impressions", "ad_spend"}
    assert ev["ad_spend"]["currency"] == "EUR"
    ev = by_type(ad_analytics(row(_currency=None), Context(model=Model(reporting_currency="GBP"))))
    assert ev["ad_spend"]["currency"] == "GBP"


def test_source_id_is_rebuilt_when_absent():
    ev = by_type(ad_analytics(row(_id=None), CTX))
    assert ev["ad_impressions"]["source_id"] == "2024-02-05|700000002"


@pytest.mark.parametrize("change,reason", [
    ({"pivotValues": []}, "pivotValues"),
    ({"dateRange": {}}, "dateRange"),
    ({"dateRange": {"start": {"year": 2024, "month": "feb", "day": 5}}}, "dateRange"),
    ({"impressions": "lots"}, "impressions"),
])
def test_malformed_rows(change, reason):
    with pytest.raises(Malformed, match=reason):
        ad_analytics(row(**change), CTX)


def campaign(**kw) -> dict:
    base = {
        "id": 700000001, "account": "urn:li:sponsoredAccount:508000000", "name": "Q1 Demand Gen - IT Directors",
        "campaignGroup": "urn:li:sponsoredCampaignGroup:600000001", "status": "ACTIVE", "type": "SPONSORED_UPDATES",
        "costType": "CPM", "dailyBudget": {"amount": "150.00", "currencyCode": "USD"},
        "runSchedule": {"start": 1704067200000, "end": 1711929600000}, "_account_id": "508000000",
    }
    base.update(kw)
    return base


def test_campaign_row_keeps_its_group_as_parent():
    [out] = campaigns(campaign(), CTX)
    assert out.table == "campaigns"
    assert out.values == {
        "campaign_key": "linkedin_ads:700000001", "source_system": "linkedin_ads", "source_campaign_id": "700000001",
        "name": "Q1 Demand Gen - IT Directors", "channel": "paid_social", "platform_type": "SPONSORED_UPDATES",
        "parent_campaign_key": "linkedin_ads_group:600000001",  # D-16
        "start_date": "2024-01-01", "end_date": "2024-03-31",  # runSchedule.end is exclusive (2024-04-01T00:00Z)
        "budgeted_cost": None, "currency": "USD",
    }
    [total] = campaigns(campaign(totalBudget={"amount": "4000", "currencyCode": "EUR"}, dailyBudget=None), CTX)
    assert (total.values["budgeted_cost"], total.values["currency"]) == (4000.0, "EUR")


def test_removed_campaigns_and_groups_are_deleted_archived_ones_stay():
    gone = Delete("campaigns", {"campaign_key": "linkedin_ads:700000001"})
    assert campaigns(campaign(status="REMOVED"), CTX) == [gone]
    assert campaigns(campaign(status="ARCHIVED"), CTX)[0].table == "campaigns"
    group = {"id": 600000001, "name": "Q1 Demand Gen", "status": "PENDING_DELETION"}
    assert campaign_groups(group, CTX) == [Delete("campaigns", {"campaign_key": "linkedin_ads_group:600000001"})]


def test_group_row():
    [out] = campaign_groups({"id": 600000001, "name": "Q1 Demand Gen", "status": "ACTIVE",
                             "runSchedule": {"start": 1704067200000},
                             "totalBudget": {"amount": "25000", "currencyCode": "USD"}}, CTX)
    v = out.values
    assert (v["campaign_key"], v["source_campaign_id"], v["parent_campaign_key"], v["platform_type"]) == \
        ("linkedin_ads_group:600000001", "600000001", None, "campaign_group")
    assert (v["start_date"], v["end_date"], v["budgeted_cost"], v["currency"]) == ("2024-01-01", None, 25000.0, "USD")
    with pytest.raises(Malformed):
        campaign_groups({"name": "no id"}, CTX)


def test_registry():
    assert set(NORMALIZERS) == {"campaign_groups", "campaigns", "ad_analytics"}


def test_analytics_normalizer_is_fast():
    record = row()
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        ad_analytics(record, CTX)
    per_record = (time.perf_counter() - started) / n
    assert per_record < 100e-6  # ~5 rows per record; generous bound for slow CI machines
