"""Meta Ads insights rows -> campaigns rows and daily ad aggregates (spec §1.4, D-15). Pure.

One insights row (level campaign, time_increment 1; `_id` = "{account id}|{date_start}|{campaign_id}") gives:
- a `campaigns` row "meta_ads:{campaign_id}" (paid_social, campaign_name, account_currency);
- ad_impressions = impressions, ad_clicks = inline_link_clicks (D-15: link clicks that reach the site, not all
  clicks), ad_spend = spend in account_currency;
- ad_conversions = sum of the `actions` whose action_type is configured: `_conversion_actions` attached by the
  connector (the source's `conversion_actions`, defaulting to `[model] meta_conversion_actions`), else the
  context's settings / model;
- ad_leads = the `lead` action (Meta's total of on-Facebook lead-form leads and website pixel leads); only when
  a row has no `lead` entry, `onsite_conversion.lead_grouped` + `offsite_conversion.fb_pixel_lead`, the two
  parts it totals (never both, so nothing is counted twice).
event_date = date_start, the day in the ad account's time zone, kept as reported (spec §0, D-01).
Numbers arrive as strings. Zero measures produce no row.
"""
from __future__ import annotations

from datetime import date

from normalize.events import Malformed, Row, aggregate, number
from normalize.model import Context

SYSTEM = "meta_ads"
OBJECT = "insights"
CHANNEL = "paid_social"
LEAD = "lead"
LEAD_PARTS = frozenset({"onsite_conversion.lead_grouped", "offsite_conversion.fb_pixel_lead"})


def _conversion_types(record: dict, ctx: Context):
    """The action types counted as conversions: attached by the connector, else the settings, else the model."""
    return (record.get("_conversion_actions") or ctx.settings.get("conversion_actions")
            or ctx.model.meta_conversion_actions)


def _actions(actions, conversion_types) -> tuple[float, float]:
    """(conversions, leads) from an insights `actions` list."""
    conversions = 0.0
    lead = None
    parts = 0.0
    for action in actions or ():
        kind = action.get("action_type")
        value = action.get("value")
        if kind in conversion_types:
            conversions += number(value, f"actions[{kind}]")
        if kind == LEAD:
            lead = number(value, "actions[lead]")
        elif kind in LEAD_PARTS:
            parts += number(value, f"actions[{kind}]")
    return conversions, (parts if lead is None else lead)


def insights(record: dict, ctx: Context) -> list:
    campaign = record.get("campaign_id")
    day = record.get("date_start")
    if not campaign:
        raise Malformed("insights row without campaign_id")
    try:
        date.fromisoformat(day)
    except (TypeError, ValueError):
        raise Malformed(f"insights row without a valid date_start: {day!r}") from None
    key = f"{SYSTEM}:{campaign}"
    source_id = record.get("_id") or f"{record.get('_account_id', '')}|{day}|{campaign}"
    currency = record.get("account_currency") or ctx.currency
    conversions, leads = _actions(record.get("actions"), _conversion_types(record, ctx))
    common = {"campaign_key": key, "channel": CHANNEL}
    rows = [
        Row("campaigns", {
            "campaign_key": key,
            "source_system": SYSTEM,
            "source_campaign_id": str(campaign),
            "name": record.get("campaign_name"),
            "channel": CHANNEL,
            "platform_type": "campaign",
            "currency": currency,
        }),
        aggregate("ad_impressions", day, SYSTEM, OBJECT, source_id, number(record.get("impressions"), "impressions"),
                  **common),
        aggregate("ad_clicks", day, SYSTEM, OBJECT, source_id,
                  number(record.get("inline_link_clicks"), "inline_link_clicks"), **common),
        aggregate("ad_conversions", day, SYSTEM, OBJECT, source_id, conversions, **common),
        aggregate("ad_leads", day, SYSTEM, OBJECT, source_id, leads, **common),
    ]
    spend = number(record.get("spend"), "spend")
    if spend:
        rows.append(aggregate("ad_spend", day, SYSTEM, OBJECT, source_id, 1.0, amount=spend, currency=currency,
                              **common))
    return [r for r in rows if r is not None]


NORMALIZERS = {"insights": insights}
