"""Google Ads campaign-day rows (GAQL `FROM campaign`, segmented by date) -> `campaigns` + daily `ad_*` aggregates.

Pure: no I/O, no clock, no config reads. One raw record = one GoogleAdsRow as the REST API returns it
(`campaign.{id,name,advertisingChannelType,status}`, `customer.currencyCode`, `segments.date`,
`metrics.{impressions,clicks,costMicros,conversions}`; int64 values as strings) plus the connector's `_id`
(`customer|date|campaign`) and `_customer_id`.

- `campaigns` row `google_ads:<campaign id>`: name, channel by advertising channel type (SEARCH, SHOPPING,
  PERFORMANCE_MAX -> paid_search; DISPLAY, VIDEO, DEMAND_GEN and any other -> other, spec §1.4 / [D-21]),
  platform_type = the channel type, currency, and `utm_campaign` = the normalized campaign name (GA4 reports
  auto-tagged Google Ads traffic under the campaign's name, so tagged touches join the platform campaign).
- Aggregates at `segments.date` (the account's day): `ad_impressions`, `ad_clicks` (`metrics.clicks`),
  `ad_conversions` (quantities) and `ad_spend` (amount = costMicros / 1e6 in `customer.currencyCode`; money stays
  in the source currency, KPIs convert through fx_rates). Zero measures produce no row. Channel = the campaign's.
"""
from __future__ import annotations

from normalize.classify import nv
from normalize.events import Malformed, Row, aggregate
from normalize.model import Context

SOURCE_SYSTEM = "google_ads"
SOURCE_OBJECT = "campaign_day"
PAID_SEARCH_TYPES = frozenset({"SEARCH", "SHOPPING", "PERFORMANCE_MAX"})


def channel_of(channel_type: str | None) -> str:
    return "paid_search" if (channel_type or "").upper() in PAID_SEARCH_TYPES else "other"


def _int(metrics: dict, name: str) -> int:
    value = metrics.get(name)
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Malformed(f"metrics.{name} is not an integer: {value!r}") from None


def campaign_day(record: dict, ctx: Context) -> list[Row]:
    """One campaign-day -> its campaign row and up to four aggregates."""
    campaign = record.get("campaign") or {}
    campaign_id = str(campaign.get("id") or "")
    day = (record.get("segments") or {}).get("date")
    source_id = record.get("_id")
    if not campaign_id or not day or not source_id:
        raise Malformed("Google Ads row without campaign.id, segments.date or _id")
    metrics = record.get("metrics") or {}
    currency = (record.get("customer") or {}).get("currencyCode") or ctx.currency
    channel_type = campaign.get("advertisingChannelType")
    channel = channel_of(channel_type)
    key = f"{SOURCE_SYSTEM}:{campaign_id}"
    rows = [Row("campaigns", {
        "campaign_key": key,
        "source_system": SOURCE_SYSTEM,
        "source_campaign_id": campaign_id,
        "name": campaign.get("name"),
        "channel": channel,
        "platform_type": channel_type,
        "utm_campaign": nv(campaign.get("name")),
        "currency": currency,
    })]
    try:
        conversions = float(metrics.get("conversions") or 0)
    except (TypeError, ValueError):
        raise Malformed(f"metrics.conversions is not a number: {metrics.get('conversions')!r}") from None
    common = {"campaign_key": key, "channel": channel}
    for event_type, quantity in (("ad_impressions", _int(metrics, "impressions")),
                                 ("ad_clicks", _int(metrics, "clicks")),
                                 ("ad_conversions", conversions)):
        row = aggregate(event_type, day, SOURCE_SYSTEM, SOURCE_OBJECT, source_id, quantity, **common)
        if row is not None:
            rows.append(row)
    cost_micros = _int(metrics, "costMicros")
    if cost_micros:
        rows.append(aggregate("ad_spend", day, SOURCE_SYSTEM, SOURCE_OBJECT, source_id, 1.0,
                              amount=cost_micros / 1e6, currency=currency, **common))
    return rows


NORMALIZERS = {"campaign_day": campaign_day}
