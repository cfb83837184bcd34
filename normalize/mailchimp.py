"""Mailchimp raw records -> campaigns, email events, person_sources (spec §1.4 Mailchimp). Pure: no I/O, no clock.

Every event's (source_object, source_id) is its raw record's, so a re-read record replaces its earlier rows:
- campaigns (campaign): one `campaigns` row, campaign_key "mailchimp:<id>", channel email, name = subject line
  (else title), utm_campaign = the Google Analytics tracking slug (Mailchimp's utm_campaign), start_date = the
  send date in the reporting zone.
- sent_to (sent_to): `email_sent` always, `email_delivered` when status "sent", `email_bounced` when "hard" or
  "soft" (properties.bounce_type), all at the campaign's send_time (`_send_time`, added by the connector).
- email_activity (email_activity): per activity item, open -> `email_opened`, click -> `email_clicked`
  (properties.url), bounce -> `email_bounced` (properties.bounce_type), at the item's timestamp. Two identical
  actions in the same second become one event with quantity 2 (same event_id).
- unsubscribes (unsubscribe): `email_unsubscribed` at its timestamp (properties.reason when given).
- list_members (list_member): a `person_sources` row (ext_ids.mailchimp_email_id = the member id, the MD5 of the
  lowercased address) and `nurture_enrolled` at timestamp_opt when the list is in `nurture_list_ids` or a tag is
  in `nurture_tags` (case-insensitive); pending members (no opt-in yet) are not enrolled.
- lists and reports are raw only (reports' totals feed a reconciliation check).
Email events carry channel "email" and campaign_key "mailchimp:<campaign_id>".
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from normalize.classify import nv
from normalize.events import Malformed, Row, account_key, event, local_date, person_key, to_utc
from normalize.model import Context

SYSTEM = "mailchimp"
CHANNEL = "email"


def campaign_key(campaign_id: Any) -> str:
    return f"{SYSTEM}:{campaign_id}"


def _email(record: dict) -> str:
    email = record.get("email_address")
    if not isinstance(email, str) or "@" not in email:
        raise Malformed("missing email_address")
    return email.strip()


def _source_id(record: dict) -> str:
    sid = record.get("_id")
    if not sid:
        raise Malformed("missing _id (added by the connector)")
    return str(sid)


def _campaign_id(record: dict) -> str:
    cid = record.get("campaign_id") or str(record.get("_id") or "").split(":", 1)[0]
    if not cid:
        raise Malformed("missing campaign_id")
    return str(cid)


def _when(value: Any, field: str) -> str:
    if value in (None, ""):
        raise Malformed(f"missing {field}")
    try:
        return to_utc(value)
    except Malformed as exc:
        raise Malformed(f"{field}: {exc}") from None


def campaign_rows(record: dict, ctx: Context) -> list:
    """A sent campaign -> its `campaigns` row."""
    cid = record.get("id")
    if not cid:
        raise Malformed("missing id")
    settings = record.get("settings") or {}
    tracking = record.get("tracking") or {}
    send_time = record.get("send_time")
    start = local_date(_when(send_time, "send_time"), ctx.tz) if send_time else None
    return [
        Row("campaigns", {
            "campaign_key": campaign_key(cid),
            "source_system": SYSTEM,
            "source_campaign_id": str(cid),
            "name": settings.get("subject_line") or settings.get("title") or None,
            "channel": CHANNEL,
            "platform_type": record.get("type"),
            "utm_campaign": nv(tracking.get("google_analytics")),
            "start_date": start,
        })
    ]


def sent_to_events(record: dict, ctx: Context) -> list:
    """One recipient of a campaign -> email_sent, plus email_delivered or email_bounced, at the send time."""
    email = _email(record)
    sid = _source_id(record)
    when = _when(record.get("_send_time"), "_send_time")
    common = dict(tz=ctx.tz, person_key=person_key(email), campaign_key=campaign_key(_campaign_id(record)),
                  channel=CHANNEL)
    rows = [event("email_sent", when, SYSTEM, "sent_to", sid, **common)]
    status = str(record.get("status") or "").lower()
    if status == "sent":
        rows.append(event("email_delivered", when, SYSTEM, "sent_to", sid, **common))
    elif status in ("hard", "soft"):
        rows.append(event("email_bounced", when, SYSTEM, "sent_to", sid, properties={"bounce_type": status}, **common))
    return rows


_ACTIONS = {"open": "email_opened", "click": "email_clicked", "bounce": "email_bounced"}


def email_activity_events(record: dict, ctx: Context) -> list:
    """One recipient's activity on a campaign -> one event per open / click / bounce."""
    email = _email(record)
    sid = _source_id(record)
    common = dict(tz=ctx.tz, person_key=person_key(email), campaign_key=campaign_key(_campaign_id(record)),
                  channel=CHANNEL)
    rows: dict[str, Row] = {}
    for item in record.get("activity") or ():
        if not isinstance(item, dict):
            raise Malformed("activity item is not an object")
        event_type = _ACTIONS.get(str(item.get("action") or "").lower())
        if event_type is None:
            continue
        when = _when(item.get("timestamp"), "activity.timestamp")
        props = None
        if event_type == "email_clicked" and item.get("url"):
            props = {"url": item["url"]}
        elif event_type == "email_bounced" and item.get("type"):
            props = {"bounce_type": str(item["type"]).lower()}
        row = event(event_type, when, SYSTEM, "email_activity", sid, properties=props, **common)
        same = rows.get(row.values["event_id"])
        if same is None:
            rows[row.values["event_id"]] = row
        else:
            same.values["quantity"] += 1.0
    return list(rows.values())


def unsubscribe_events(record: dict, ctx: Context) -> list:
    """One unsubscribe from a campaign -> email_unsubscribed at its timestamp."""
    email = _email(record)
    sid = _source_id(record)
    reason = record.get("reason")
    return [
        event("email_unsubscribed", _when(record.get("timestamp"), "timestamp"), SYSTEM, "unsubscribe", sid,
              tz=ctx.tz, person_key=person_key(email), campaign_key=campaign_key(_campaign_id(record)),
              channel=CHANNEL, properties={"reason": reason} if reason else None)
    ]


@lru_cache(maxsize=32)
def _folded(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(str(v).strip().casefold() for v in values)


def list_member_rows(record: dict, ctx: Context) -> list:
    """A list member -> person_sources, and nurture_enrolled when the list or a tag says nurture. An archived member
    (status "archived": Mailchimp's soft delete, which moves last_changed, so an incremental sync sees it) leaves
    person_sources (spec §0 Deletes: the row its record gave before is replaced by none); its enrolment, which
    happened, stays."""
    email = _email(record)
    sid = _source_id(record)
    stamps = {f: _when(record.get(f), f) for f in ("timestamp_opt", "timestamp_signup", "last_changed")
              if record.get(f) not in (None, "")}
    first_seen = stamps.get("timestamp_opt") or stamps.get("timestamp_signup") or stamps.get("last_changed")
    pk = person_key(email)
    member_id = record.get("id")
    status = str(record.get("status") or "").lower()
    rows: list = [] if status == "archived" else [
        Row("person_sources", {
            "source_system": SYSTEM,
            "source_object": "list_member",
            "source_id": sid,
            "person_key": pk,
            "email": email.lower(),
            "account_key": account_key(email=email),
            "first_seen_at": first_seen,
            "ext_ids": json.dumps({"mailchimp_email_id": member_id}, sort_keys=True, separators=(",", ":"))
            if member_id else None,
        })
    ]
    model = ctx.model
    list_id = record.get("list_id")
    nurture_list = bool(list_id) and list_id in model.nurture_list_ids
    tag = None
    if model.nurture_tags:
        wanted = _folded(tuple(model.nurture_tags))
        for t in record.get("tags") or ():
            name = t.get("name") if isinstance(t, dict) else t
            if isinstance(name, str) and name.strip().casefold() in wanted:
                tag = name
                break
    if (nurture_list or tag) and first_seen and status != "pending":
        props: dict[str, Any] = {"list_id": list_id}
        if tag:
            props["tag"] = tag
        rows.append(event("nurture_enrolled", first_seen, SYSTEM, "list_member", sid, tz=ctx.tz, person_key=pk,
                          channel=CHANNEL, properties=props))
    return rows


NORMALIZERS = {
    "campaigns": campaign_rows,
    "sent_to": sent_to_events,
    "email_activity": email_activity_events,
    "unsubscribes": unsubscribe_events,
    "list_members": list_member_rows,
}
