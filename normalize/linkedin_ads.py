"""LinkedIn Ads raw records -> campaigns rows and daily ad aggregates (spec §1.4, D-15, D-16). Pure.

- campaign_groups: `campaigns` row keyed "linkedin_ads_group:{id}" (the cross-platform campaign level, D-16).
- campaigns: `campaigns` row keyed "linkedin_ads:{id}", parent "linkedin_ads_group:{group id}", channel
  paid_social. REMOVED / PENDING_DELETION campaigns (LinkedIn only deletes drafts, which never served) are
  deleted; archived, completed and canceled ones stay, since their spend history needs their channel.
- ad_analytics (pivot CAMPAIGN, DAILY; `_id` = "{day}|{campaign id}", `_currency` = the ad account's currency):
  ad_impressions = impressions, ad_clicks = landingPageClicks (D-15: clicks that reach the site),
  ad_spend = costInLocalCurrency in `_currency`, ad_conversions = externalWebsiteConversions,
  ad_leads = oneClickLeads. event_date = dateRange.start (LinkedIn reports UTC days). Zero measures: no row.
"""
from __future__ import annotations

from datetime import datetime, timezone

from normalize.events import Delete, Malformed, Row, aggregate, number
from normalize.model import Context

SYSTEM = "linkedin_ads"
GROUP_PREFIX = "linkedin_ads_group"
CHANNEL = "paid_social"
OBJECT = "ad_analytics"
GONE = frozenset({"REMOVED", "PENDING_DELETION"})


def _id_of(value) -> str | None:
    """The id at the end of a URN ("urn:li:sponsoredCampaignGroup:600000001" -> "600000001") or a bare id."""
    if value is None or value == "":
        return None
    return str(value).rsplit(":", 1)[-1]


def _epoch_day(ms, exclusive: bool = False) -> str | None:
    """A runSchedule bound (epoch milliseconds, UTC) as a date; an exclusive end is the day before it."""
    if ms in (None, ""):
        return None
    try:
        ms = int(ms) - (1 if exclusive else 0)
    except (TypeError, ValueError):
        raise Malformed(f"runSchedule bound is not epoch milliseconds: {ms!r}") from None
    return datetime.fromtimestamp(ms / 1000, timezone.utc).date().isoformat()


def _budget(record: dict) -> tuple[float | None, str | None]:
    total = record.get("totalBudget") or {}
    daily = record.get("dailyBudget") or {}
    amount = total.get("amount")
    currency = total.get("currencyCode") or daily.get("currencyCode") or record.get("_currency")
    return (None if amount in (None, "") else number(amount, "totalBudget.amount")), currency


def _campaign_row(record: dict, key: str, platform_type: str | None, parent: str | None) -> Row:
    schedule = record.get("runSchedule") or {}
    budget, currency = _budget(record)
    return Row("campaigns", {
        "campaign_key": key,
        "source_system": SYSTEM,
        "source_campaign_id": key.split(":", 1)[1],
        "name": record.get("name"),
        "channel": CHANNEL,
        "platform_type": platform_type,
        "parent_campaign_key": parent,
        "start_date": _epoch_day(schedule.get("start")),
        "end_date": _epoch_day(schedule.get("end"), exclusive=True),
        "budgeted_cost": budget,
        "currency": currency,
    })


def campaign_groups(record: dict, ctx: Context) -> list:
    ident = _id_of(record.get("id"))
    if not ident:
        raise Malformed("campaign group without id")
    key = f"{GROUP_PREFIX}:{ident}"
    if record.get("status") in GONE:
        return [Delete("campaigns", {"campaign_key": key})]
    return [_campaign_row(record, key, "campaign_group", None)]


def campaigns(record: dict, ctx: Context) -> list:
    ident = _id_of(record.get("id"))
    if not ident:
        raise Malformed("campaign without id")
    key = f"{SYSTEM}:{ident}"
    if record.get("status") in GONE:
        return [Delete("campaigns", {"campaign_key": key})]
    group = _id_of(record.get("campaignGroup"))
    parent = f"{GROUP_PREFIX}:{group}" if group else None
    return [_campaign_row(record, key, record.get("type"), parent)]


def ad_analytics(record: dict, ctx: Context) -> list:
    pivots = record.get("pivotValues") or ()
    campaign = _id_of(pivots[0]) if pivots else None
    if not campaign:
        raise Malformed("ad analytics row without a campaign in pivotValues")
    start = (record.get("dateRange") or {}).get("start") or {}
    try:
        day = "%04d-%02d-%02d" % (start["year"], start["month"], start["day"])
    except (TypeError, KeyError):
        raise Malformed("ad analytics row without a valid dateRange.start") from None
    source_id = record.get("_id") or f"{day}|{campaign}"
    key = f"{SYSTEM}:{campaign}"
    currency = record.get("_currency") or ctx.currency
    common = {"campaign_key": key, "channel": CHANNEL}
    rows = [
        aggregate("ad_impressions", day, SYSTEM, OBJECT, source_id, number(record.get("impressions"), "impressions"),
                  **common),
        aggregate("ad_clicks", day, SYSTEM, OBJECT, source_id,
                  number(record.get("landingPageClicks"), "landingPageClicks"), **common),
        aggregate("ad_conversions", day, SYSTEM, OBJECT, source_id,
                  number(record.get("externalWebsiteConversions"), "externalWebsiteConversions"), **common),
        aggregate("ad_leads", day, SYSTEM, OBJECT, source_id, number(record.get("oneClickLeads"), "oneClickLeads"),
                  **common),
    ]
    spend = number(record.get("costInLocalCurrency"), "costInLocalCurrency")
    if spend:
        rows.append(aggregate("ad_spend", day, SYSTEM, OBJECT, source_id, 1.0, amount=spend, currency=currency,
                              **common))
    return [r for r in rows if r is not None]


NORMALIZERS = {
    "campaign_groups": campaign_groups,
    "campaigns": campaigns,
    "ad_analytics": ad_analytics,
}
