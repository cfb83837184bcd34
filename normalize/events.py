"""The common event schema (spec §0–§2): keys, timestamps and the rows normalizers emit.

Pure: no I/O, no clock, no configuration reads. A normalizer is `fn(record, model) -> list[Row | Delete]`
and raises `Malformed(reason)` for a record it cannot map; the sync loop quarantines that record.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

EVENT_TYPES = frozenset(
    """lead_created became_mql became_sql became_customer
    opportunity_created became_sqo deal_won deal_lost
    web_visit form_submitted demo_requested email_clicked
    email_sent email_delivered email_bounced email_opened email_unsubscribed email_spam_reported nurture_enrolled
    webinar_registered webinar_attended event_registered event_attended direct_mail_claimed meeting_booked
    content_syndicated direct_mail_sent
    web_sessions web_engaged_sessions web_new_users web_page_views web_key_events web_engagement_seconds
    ad_impressions ad_clicks ad_conversions ad_leads ad_spend program_spend""".split()
)
TOUCH_TYPES = frozenset(
    """web_visit form_submitted demo_requested email_clicked webinar_registered webinar_attended
    event_registered event_attended direct_mail_claimed meeting_booked content_syndicated""".split()
)
LIFECYCLE_TYPES = ("lead_created", "became_mql", "became_sql", "became_customer")
OPPORTUNITY_TYPES = ("opportunity_created", "became_sqo", "deal_won", "deal_lost")

EVENT_COLUMNS = (
    "event_id", "event_type", "occurred_at", "event_date", "source_system", "source_object", "source_id",
    "person_key", "account_key", "opportunity_key", "campaign_key", "channel",
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
    "referrer_domain", "landing_path", "quantity", "amount", "currency", "is_aggregate", "properties",
)


class Malformed(ValueError):
    """A raw record that cannot be normalized; the message is the quarantine reason."""


class Row(NamedTuple):
    """One row for `table`, upserted by that table's key (warehouse/schema.py says which)."""

    table: str
    values: dict[str, Any]


class Delete(NamedTuple):
    """Remove the row of `table` whose key columns equal `key` (archived / deleted source records)."""

    table: str
    key: dict[str, Any]


def h(text: str) -> str:
    """sha256 hex digest of the UTF-8 text (spec §0)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_id(source_system: str, source_object: str, source_id: str, event_type: str, occurred_at: str) -> str:
    return h(f"{source_system}|{source_object}|{source_id}|{event_type}|{occurred_at}")[:32]


def person_key(email: str | None, source_system: str = "", source_object: str = "", source_id: str = "") -> str:
    """`p_` + h(lower(trim(email)))[:16]; without an email the source record identifies the person."""
    if email and email.strip():
        return "p_" + h(email.strip().lower())[:16]
    return "p_" + h(f"{source_system}:{source_object}:{source_id}")[:16]


def normalize_domain(value: str | None) -> str | None:
    """Host of a website / domain value: lowercased, no scheme, `www.`, port or path."""
    if not value:
        return None
    v = value.strip().lower()
    if "://" in v:
        v = v.split("://", 1)[1]
    v = v.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].split("@")[-1].split(":", 1)[0]
    if v.startswith("www."):
        v = v[4:]
    v = v.strip(".")
    return v or None


FREEMAIL = frozenset(
    """gmail.com googlemail.com yahoo.com yahoo.co.uk hotmail.com outlook.com live.com msn.com aol.com icloud.com
    me.com mac.com proton.me protonmail.com gmx.de gmx.net web.de mail.com yandex.ru zoho.com""".split()
)


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return normalize_domain(email.strip().rsplit("@", 1)[1])


def account_key(domain: str | None = None, email: str | None = None, source_ref: str | None = None) -> str | None:
    """`a_` + h(domain)[:16]: the company domain, else a non-freemail email domain, else the source id."""
    d = normalize_domain(domain)
    if not d:
        ed = email_domain(email)
        d = ed if ed and ed not in FREEMAIL else None
    if d:
        return "a_" + h(d)[:16]
    if source_ref:
        return "a_" + h(source_ref)[:16]
    return None


def opportunity_key(source_system: str, source_id: str) -> str:
    return "o_" + h(f"{source_system}:{source_id}")[:16]


# ---- time -------------------------------------------------------------------------------------------------

UTC = timezone.utc


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_ts(value: Any) -> datetime:
    """A timestamp as an aware UTC datetime: ISO-8601 text (with Z, offset or none = UTC) or epoch milliseconds."""
    if value is None or value == "":
        raise Malformed("missing timestamp")
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        try:
            dt = datetime.fromtimestamp(int(value) / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise Malformed(f"timestamp out of range {value!r}") from None
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        # Salesforce sends +0000 (no colon); Python 3.11 fromisoformat accepts it.
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise Malformed(f"unparseable timestamp {value!r}") from None
    else:
        raise Malformed(f"unparseable timestamp {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


_MAX_EPOCH_MS = 253402300800000  # 10000-01-01


@lru_cache(maxsize=4096)
def _epoch_day(days: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=days)).isoformat()


def to_utc(value: Any) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` (sub-seconds truncated)."""
    if type(value) is int and 0 <= value < _MAX_EPOCH_MS:  # fast path: epoch milliseconds (HubSpot)
        days, secs = divmod(value // 1000, 86400)
        hours, secs = divmod(secs, 3600)
        minutes, secs = divmod(secs, 60)
        return f"{_epoch_day(days)}T{hours:02d}:{minutes:02d}:{secs:02d}Z"
    if type(value) is str:  # fast paths: already canonical; Salesforce's `...T10:00:00.000+0000`
        n = len(value)
        if (n == 20 and value[19] == "Z" or n == 28 and value.endswith(".000+0000")) and value[10] == "T":
            try:
                datetime.fromisoformat(value[:19])  # still validated: 2024-02-30 is not a date
            except ValueError:
                raise Malformed(f"unparseable timestamp {value!r}") from None
            return value if n == 20 else value[:19] + "Z"
    return parse_ts(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_date(occurred_at: str, tz: str = "UTC") -> str:
    """The reporting-zone date of a UTC `occurred_at` text."""
    if tz == "UTC":
        return occurred_at[:10]
    dt = datetime.strptime(occurred_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return dt.astimezone(zone(tz)).date().isoformat()


def date_only(value: str, tz: str = "UTC") -> str:
    """A date-only field (e.g. Salesforce CloseDate) as `occurred_at` = local midnight of that date, in UTC."""
    try:
        d = date.fromisoformat(str(value)[:10])
    except ValueError:
        raise Malformed(f"unparseable date {value!r}") from None
    midnight = datetime(d.year, d.month, d.day, tzinfo=zone(tz) if tz != "UTC" else UTC)
    return midnight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def end_of_local_day(value: str, tz: str = "UTC") -> str:
    """23:59:59 local of a date-only field, in UTC (revenue attribution window, spec §5.1)."""
    d = date.fromisoformat(str(value)[:10])
    end = datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=zone(tz) if tz != "UTC" else UTC)
    return end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_add(day: str, n: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


_DUMPS = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode  # one encoder, not one per call


# ---- the event row ------------------------------------------------------------------------------------------


def event(
    event_type: str,
    occurred_at: str,
    source_system: str,
    source_object: str,
    source_id: str,
    *,
    tz: str = "UTC",
    event_date: str | None = None,
    person_key: str | None = None,
    account_key: str | None = None,
    opportunity_key: str | None = None,
    campaign_key: str | None = None,
    channel: str = "unattributed",
    utm: dict[str, str | None] | None = None,
    referrer_domain: str | None = None,
    landing_path: str | None = None,
    quantity: float = 1.0,
    amount: float | None = None,
    currency: str | None = None,
    is_aggregate: bool = False,
    properties: dict[str, Any] | None = None,
) -> Row:
    """One `events` row (spec §1.2) with its deterministic `event_id`.

    `occurred_at` must already be UTC text (use `to_utc`). Aggregates pass `event_date` (the source-reported day)
    and get `occurred_at = {event_date}T00:00:00Z`. `channel` defaults to `unattributed`; the warehouse's derive
    step fills lifecycle / opportunity / campaign-bound channels (spec §2).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event_type {event_type!r}")
    if event_date is None:
        event_date = local_date(occurred_at, tz)
    utm = utm or {}
    return Row(
        "events",
        {
            "event_id": event_id(source_system, source_object, source_id, event_type, occurred_at),
            "event_type": event_type,
            "occurred_at": occurred_at,
            "event_date": event_date,
            "source_system": source_system,
            "source_object": source_object,
            "source_id": source_id,
            "person_key": person_key,
            "account_key": account_key,
            "opportunity_key": opportunity_key,
            "campaign_key": campaign_key,
            "channel": channel,
            "utm_source": utm.get("utm_source"),
            "utm_medium": utm.get("utm_medium"),
            "utm_campaign": utm.get("utm_campaign"),
            "utm_content": utm.get("utm_content"),
            "utm_term": utm.get("utm_term"),
            "referrer_domain": referrer_domain,
            "landing_path": landing_path,
            "quantity": float(quantity),
            "amount": None if amount is None else float(amount),
            "currency": currency,
            "is_aggregate": 1 if is_aggregate else 0,
            "properties": _DUMPS(properties) if properties else None,
        },
    )


def aggregate(
    event_type: str,
    event_date: str,
    source_system: str,
    source_object: str,
    natural_key: str,
    quantity: float = 1.0,
    **kw: Any,
) -> Row | None:
    """One daily aggregate measure; zero measures produce no row (spec [D-04])."""
    amount = kw.get("amount")
    if (amount is None and not quantity) or (amount is not None and not amount and not quantity):
        return None
    return event(
        event_type,
        f"{event_date}T00:00:00Z",
        source_system,
        source_object,
        natural_key,
        event_date=event_date,
        quantity=quantity,
        is_aggregate=True,
        **kw,
    )


def number(value: Any, field: str, empty: float | None = 0.0) -> float | None:
    """A numeric API value (many APIs send numbers as strings): missing or "" gives `empty`; anything that is not a
    number is Malformed, naming the field."""
    if value is None or value == "":
        return empty
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Malformed(f"{field} is not a number: {value!r}") from None


def get_path(record: Any, dotted: str, default: Any = None) -> Any:
    """`get_path(r, "properties.email")`: nested dict lookup; missing ⇒ default."""
    cur = record
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return default
    return cur
