"""GA4 runReport rows -> daily `web_*` aggregate events (spec §1.4, §3). Pure: no I/O, no clock, no config reads.

One raw record = one report row: `date` (YYYYMMDD, the property's day), the session source / medium / campaign /
manual ad content / manual term, `sessionDefaultChannelGroup`, `landingPage`, the metric values (strings), and the
connector's `_id` (natural key), `_property_id`, `_provisional`. Each non-zero metric becomes one aggregate event
(source_object `run_report`, source_id = `_id`): `sessions -> web_sessions, engagedSessions -> web_engaged_sessions,
newUsers -> web_new_users, screenPageViews -> web_page_views, keyEvents (conversions on unmigrated properties) ->
web_key_events, userEngagementDuration -> web_engagement_seconds`.

Channel: §3 via `classify.touch` with the landing path (web_* events take part in R21): GA4's `(direct)/(none)`
become NULL, so a direct session on a deep landing page is dark_social. A `referral` medium names the referring
host in the source: it is passed as the referrer too (R15), and stored as `referrer_domain`. GA4's own channel
group is kept for reference in `properties.ga_channel_group` [D-07]; `properties.provisional` says whether GA4 may
still restate the day (it is re-read and rewritten final by a later sync).
"""
from __future__ import annotations

from normalize.classify import norm_medium, touch
from normalize.events import Malformed, Row, aggregate, event_id, number
from normalize.model import Context

SOURCE_SYSTEM = "ga4"
SOURCE_OBJECT = "run_report"
MEASURES = (
    ("sessions", "web_sessions"),
    ("engagedSessions", "web_engaged_sessions"),
    ("newUsers", "web_new_users"),
    ("screenPageViews", "web_page_views"),
    ("keyEvents", "web_key_events"),
    ("userEngagementDuration", "web_engagement_seconds"),
)
_NOT_SET = frozenset({"", "(not set)"})


def _number(record: dict, name: str) -> float:
    value = record.get(name)
    if value is None and name == "keyEvents":  # unmigrated properties still call them conversions
        value = record.get("conversions")
    return number(value, f"metric {name}")


def run_report(record: dict, ctx: Context) -> list[Row]:
    """One report row -> up to six `web_*` aggregates sharing the row's channel, UTMs and landing path."""
    source_id = record.get("_id")
    raw_day = str(record.get("date") or "")
    if not source_id:
        raise Malformed("GA4 row without _id")
    if len(raw_day) != 8 or not raw_day.isdigit():
        raise Malformed(f"GA4 row without a YYYYMMDD date: {raw_day!r}")
    day = f"{raw_day[:4]}-{raw_day[4:6]}-{raw_day[6:]}"
    source, medium = record.get("sessionSource"), record.get("sessionMedium")
    landing = record.get("landingPage")
    t = touch(
        ctx.model,
        referrer=source if norm_medium(medium) == "referral" else None,
        source=source,
        medium=medium,
        campaign=record.get("sessionCampaignName"),
        content=record.get("sessionManualAdContent"),
        term=record.get("sessionManualTerm"),
        landing_path=None if landing in _NOT_SET else landing,
        with_path=True,
    )
    properties = {"provisional": bool(record.get("_provisional"))}
    group = record.get("sessionDefaultChannelGroup")
    if group not in _NOT_SET and group is not None:
        properties["ga_channel_group"] = group
    rows: list[Row] = []
    occurred_at = f"{day}T00:00:00Z"
    for metric, event_type in MEASURES:
        quantity = _number(record, metric)
        if not quantity:
            continue  # zero measures produce no row [D-04]
        if rows:  # same row but for type, id and quantity: skip re-serializing the properties
            values = dict(rows[0].values)
            values["event_type"] = event_type
            values["event_id"] = event_id(SOURCE_SYSTEM, SOURCE_OBJECT, source_id, event_type, occurred_at)
            values["quantity"] = quantity
            rows.append(Row("events", values))
        else:
            rows.append(aggregate(event_type, day, SOURCE_SYSTEM, SOURCE_OBJECT, source_id, quantity,
                                  channel=t.channel, utm=t.utm, referrer_domain=t.referrer_domain,
                                  landing_path=t.landing_path, properties=properties))
    return rows


NORMALIZERS = {"run_report": run_report}
