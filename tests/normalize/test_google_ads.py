"""Google Ads normalizer: campaign-day rows -> campaigns + ad_* aggregates (spec §1.4)."""
from __future__ import annotations

import pytest

from normalize import Context, Malformed, Model
from normalize.google_ads import campaign_day, channel_of

CTX = Context()


def rec(channel_type="SEARCH", name="brand", campaign_id="11111111111", day="2024-01-15", currency="USD",
        impressions="10000", clicks="400", cost_micros="2000000000", conversions=8.0, customer="1234567890"):
    metrics = {"impressions": impressions, "clicks": clicks, "costMicros": cost_micros, "conversions": conversions}
    return {
        "customer": {"resourceName": f"customers/{customer}", "currencyCode": currency},
        "campaign": {"resourceName": f"customers/{customer}/campaigns/{campaign_id}", "status": "ENABLED",
                     "advertisingChannelType": channel_type, "name": name, "id": campaign_id},
        "metrics": {k: v for k, v in metrics.items() if v is not None},
        "segments": {"date": day},
        "_id": f"{customer}|{day}|{campaign_id}",
        "_customer_id": customer,
    }


def split(rows):
    campaigns = [r.values for r in rows if r.table == "campaigns"]
    events = {r.values["event_type"]: r.values for r in rows if r.table == "events"}
    return campaigns, events


def test_spec_worked_example_g1():
    """Spec §7: google_ads:G1 (SEARCH) impressions 10,000, clicks 400, spend 2,000, conversions 8 on 2024-01-15."""
    campaigns, events = split(campaign_day(rec(campaign_id="G1"), CTX))
    assert campaigns == [{"campaign_key": "google_ads:G1", "source_system": "google_ads", "source_campaign_id": "G1",
                          "name": "brand", "channel": "paid_search", "platform_type": "SEARCH",
                          "utm_campaign": "brand", "currency": "USD"}]
    assert {t: (e["quantity"], e["amount"], e["currency"]) for t, e in events.items()} == {
        "ad_impressions": (10000.0, None, None), "ad_clicks": (400.0, None, None),
        "ad_conversions": (8.0, None, None), "ad_spend": (1.0, 2000.0, "USD")}
    for e in events.values():
        assert e["campaign_key"] == "google_ads:G1" and e["channel"] == "paid_search"
        assert e["event_date"] == "2024-01-15" and e["occurred_at"] == "2024-01-15T00:00:00Z"
        assert e["source_system"] == "google_ads" and e["source_object"] == "campaign_day"
        assert e["source_id"] == "1234567890|2024-01-15|G1" and e["is_aggregate"] == 1


@pytest.mark.parametrize("channel_type, channel", [
    ("SEARCH", "paid_search"), ("SHOPPING", "paid_search"), ("PERFORMANCE_MAX", "paid_search"),
    ("DISPLAY", "other"), ("VIDEO", "other"), ("DEMAND_GEN", "other"), ("MULTI_CHANNEL", "other"), (None, "other"),
])
def test_channel_by_advertising_channel_type(channel_type, channel):
    assert channel_of(channel_type) == channel
    campaigns, events = split(campaign_day(rec(channel_type=channel_type), CTX))
    assert campaigns[0]["channel"] == channel and events["ad_clicks"]["channel"] == channel


def test_money_stays_in_the_account_currency():
    _, events = split(campaign_day(rec(currency="EUR", cost_micros="75250000"), CTX))
    assert (events["ad_spend"]["amount"], events["ad_spend"]["currency"]) == (75.25, "EUR")


def test_missing_currency_falls_back_to_the_source_setting():
    r = rec()
    del r["customer"]["currencyCode"]
    ctx = Context(model=Model(reporting_currency="GBP"), settings={"currency": "CAD"})
    campaigns, events = split(campaign_day(r, ctx))
    assert campaigns[0]["currency"] == "CAD" and events["ad_spend"]["currency"] == "CAD"


def test_zero_measures_produce_no_row_but_the_campaign_is_kept():
    campaigns, events = split(campaign_day(rec(clicks="0", cost_micros="0", conversions=0.0), CTX))
    assert set(events) == {"ad_impressions"} and len(campaigns) == 1
    campaigns, events = split(campaign_day(rec(clicks=None, cost_micros=None, conversions=None), CTX))
    assert set(events) == {"ad_impressions"}


def test_fractional_conversions():
    _, events = split(campaign_day(rec(conversions=1.5), CTX))
    assert events["ad_conversions"]["quantity"] == 1.5


@pytest.mark.parametrize("broken", [
    lambda r: r["campaign"].pop("id"),
    lambda r: r["segments"].pop("date"),
    lambda r: r.pop("_id"),
    lambda r: r["metrics"].update(clicks="lots"),
])
def test_malformed(broken):
    r = rec()
    broken(r)
    with pytest.raises(Malformed):
        campaign_day(r, CTX)
