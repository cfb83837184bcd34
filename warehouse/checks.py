"""Checks of what the warehouse holds against what a source says of itself; each returns warning lines.

Mailchimp (spec §1.2: "`/reports/{id}` totals only feed a reconciliation check"): the campaign reports are kept as raw
records only; every report's totals are compared with the events held for its campaign (campaign_key
"mailchimp:<id>"): `emails_sent` with email_sent events, hard + soft bounces with the persons who have an
email_bounced, `opens.unique_opens` / `clicks.unique_subscriber_clicks` / `unsubscribed` with the persons who have an
email_opened / email_clicked / email_unsubscribed. Reports and activity are re-read over the same window, so the two
agree unless pages were lost or records quarantined; a gap over max(1, 1%) of the report's figure is a warning.
"""
from __future__ import annotations

import json
from typing import Any

from warehouse.derive import in_list, query, stream

# (what the report counts, its fields (summed; "a.b" = nested), event type, count persons instead of events)
MAILCHIMP_TOTALS = (
    ("emails sent", ("emails_sent",), "email_sent", False),
    ("bounced recipients", ("bounces.hard_bounces", "bounces.soft_bounces"), "email_bounced", True),
    ("unique opens", ("opens.unique_opens",), "email_opened", True),
    ("unique clickers", ("clicks.unique_subscriber_clicks",), "email_clicked", True),
    ("unsubscribes", ("unsubscribed",), "email_unsubscribed", True),
)


def _field(report: dict, path: str) -> float | None:
    value: Any = report
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def mailchimp_report_gaps(conn: Any) -> list[str]:
    """Warnings for Mailchimp campaign reports whose totals the stored events do not match (see the module doc)."""
    held: dict[tuple, tuple[int, int]] = {}
    for camp, et, n, persons in query(
            conn, f"SELECT campaign_key, event_type, COUNT(*), COUNT(DISTINCT person_key) FROM events WHERE "
                  f"source_system = 'mailchimp' AND event_type IN {in_list(t for _, _, t, _ in MAILCHIMP_TOTALS)} "
                  f"GROUP BY campaign_key, event_type"):
        held[(camp, et)] = (n, persons)
    out = []
    for source_id, payload in stream(conn, "SELECT source_id, payload FROM raw_records WHERE source_system = "
                                           "'mailchimp' AND source_object = 'report' ORDER BY source_id"):
        report = payload if isinstance(payload, dict) else json.loads(payload or "{}")
        gaps = []
        for label, fields, event_type, persons in MAILCHIMP_TOTALS:
            values = [_field(report, f) for f in fields]
            if None in values:
                continue
            want = sum(values)
            n, p = held.get((f"mailchimp:{source_id}", event_type), (0, 0))
            have = p if persons else n
            if abs(have - want) > max(1.0, 0.01 * want):
                gaps.append(f"{label} {want:,.0f} in the report, {have:,} held")
        if gaps:
            out.append(f"mailchimp campaign {source_id}: {'; '.join(gaps)} (records quarantined or pages lost? "
                       f"`funnelsync backfill NAME --start --end` over its send date re-reads its reports)")
    return out
