"""Meta Ads insights normalizer (spec §1.4, D-15): one campaign-day row -> a campaigns row and ad_* aggregates.
The golden file (tests/golden/meta_ads.insights.*) covers whole cassette records."""
from __future__ import annotations

import pytest

from normalize.events import Malformed, event_id
from normalize.meta_ads import NORMALIZERS, insights
from normalize.model import Context, Model

CTX = Context()


def row(**kw) -> dict:
    base = {
        "campaign_id": "120210000000002", "campaign_name": "Q1 Lead Ads - Dark Funnel Ebook",
        "account_currency": "EUR", "impressions": "7110", "inline_link_clicks": "92", "clicks": "131",
        "spend": "74.69",
        "actions": [{"action_type": "link_click", "value": "92"},
                    {"action_type": "lead", "value": "10"},
                    {"action_type": "onsite_conversion.lead_grouped", "value": "9"},
                    {"action_type": "offsite_conversion.fb_pixel_lead", "value": "1"},
                    {"action_type": "offsite_conversion.fb_pixel_complete_registration", "value": "2"}],
        "date_start": "2024-03-29", "date_stop": "2024-03-29",
        "_account_id": "1234567890", "_id": "1234567890|2024-03-29|120210000000002",
        "_conversion_actions": ["offsite_conversion.fb_pixel_lead",
                                "offsite_conversion.fb_pixel_complete_registration"],
    }
    base.update(kw)
    return base


def split(out: list) -> tuple[dict, dict]:
    campaigns = [r.values for r in out if r.table == "campaigns"]
    assert len(campaigns) == 1
    return campaigns[0], {r.values["event_type"]: r.values for r in out if r.table == "events"}


def test_insights_row():
    campaign, ev = split(insights(row(), CTX))
    assert campaign == {"campaign_key": "meta_ads:120210000000002", "source_system": "meta_ads",
                        "source_campaign_id": "120210000000002", "name": "Q1 Lead Ads - Dark Funnel Ebook",
                        "channel": "paid_social", "platform_type": "campaign", "currency": "EUR"}
    assert ev["ad_impressions"]["quantity"] == 7110.0
    assert ev["ad_clicks"]["quantity"] == 92.0  # D-15: inline_link_clicks, not the 131 clicks
    assert (ev["ad_spend"]["amount"], ev["ad_spend"]["currency"]) == (74.69, "EUR")
    assert ev["ad_conversions"]["quantity"] == 3.0  # the two configured pixel actions: 1 + 2
    assert ev["ad_leads"]["quantity"] == 10.0  # the `lead` total, not lead + its parts
    for v in ev.values():
        assert (v["event_date"], v["occurred_at"]) == ("2024-03-29", "2024-03-29T00:00:00Z")  # account-zone day kept
        assert (v["source_system"], v["source_object"], v["source_id"]) == \
            ("meta_ads", "insights", "1234567890|2024-03-29|120210000000002")
        assert (v["campaign_key"], v["channel"], v["is_aggregate"]) == ("meta_ads:120210000000002", "paid_social", 1)
        assert v["event_id"] == event_id("meta_ads", "insights", "1234567890|2024-03-29|120210000000002",
                                         v["event_type"], "2024-03-29T00:00:00Z")


def test_leads_fall_back_to_their_parts_without_a_lead_total():
    actions = [{"action_type": "onsite_conversion.lead_grouped", "value": "4"},
               {"action_type": "offsite_conversion.fb_pixel_lead", "value": "1"}]
    _, ev = split(insights(row(actions=actions), CTX))
    assert ev["ad_leads"]["quantity"] == 5.0


def test_conversion_actions_come_from_the_record_then_settings_then_model():
    record = row()
    record.pop("_conversion_actions")
    _, ev = split(insights(record, Context(settings={"conversion_actions": ["lead"]})))
    assert ev["ad_conversions"]["quantity"] == 10.0
    _, ev = split(insights(record, Context(model=Model(meta_conversion_actions=("offsite_conversion.fb_pixel_lead",)))))
    assert ev["ad_conversions"]["quantity"] == 1.0
    _, ev = split(insights(record, CTX))  # Model default: fb_pixel_lead + fb_pixel_purchase
    assert ev["ad_conversions"]["quantity"] == 1.0


def test_no_actions_and_zero_measures_make_no_rows():
    campaign, ev = split(insights(row(actions=None, inline_link_clicks="0", spend="0.00"), CTX))
    assert set(ev) == {"ad_impressions"}
    record = row(spend="12.30", account_currency=None)
    record.pop("actions")
    _, ev = split(insights(record, Context(settings={"currency": "USD"})))
    assert set(ev) == {"ad_impressions", "ad_clicks", "ad_spend"}
    assert ev["ad_spend"]["currency"] == "USD"


@pytest.mark.parametrize("change,reason", [
    ({"campaign_id": None}, "campaign_id"),
    ({"date_start": "03/29/2024"}, "date_start"),
    ({"date_start": None}, "date_start"),
    ({"spend": "12,30"}, "spend"),
    ({"actions": [{"action_type": "lead", "value": "many"}]}, "lead"),
])
def test_malformed(change, reason):
    with pytest.raises(Malformed, match=reason):
        insights(row(**change), CTX)


def test_registry():
    assert set(NORMALIZERS) == {"insights"}
