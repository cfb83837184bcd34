"""What every sandbox API shares: the data period, time formats and deterministic picks for plausible B2B values."""
from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from datetime import date, datetime, timedelta, timezone
from typing import Any, Sequence

UTC = timezone.utc
START = datetime(2024, 1, 1, tzinfo=UTC)  # records' cursor times are spread over [START, END)
END = datetime(2024, 3, 31, tzinfo=UTC)
DAY_MS = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


START_MS, END_MS = ms(START), ms(END)


@lru_cache(maxsize=1 << 16)
def _day(day: int) -> str:
    return (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


def _split(t: int) -> tuple[str, int, int, int, int]:
    day, rest = divmod(t, DAY_MS)
    sec, milli = divmod(rest, 1000)
    hour, sec = divmod(sec, 3600)
    minute, sec = divmod(sec, 60)
    return _day(day), hour, minute, sec, milli


def iso_ms(t: int) -> str:
    """2024-01-05T10:00:00.123Z (HubSpot CRM datetimes)."""
    d, hh, mm, ss, ms_ = _split(t)
    return f"{d}T{hh:02d}:{mm:02d}:{ss:02d}.{ms_:03d}Z"


def sf_datetime(t: int) -> str:
    """2024-01-05T10:00:00.000+0000 (Salesforce REST dateTime)."""
    d, hh, mm, ss, ms_ = _split(t)
    return f"{d}T{hh:02d}:{mm:02d}:{ss:02d}.{ms_:03d}+0000"


def mc_time(t: int) -> str:
    """2024-01-05T10:00:00+00:00 (Mailchimp)."""
    d, hh, mm, ss, _ = _split(t)
    return f"{d}T{hh:02d}:{mm:02d}:{ss:02d}+00:00"


def day_of(t: int) -> str:
    return _day(t // DAY_MS)


def parse_time(value: Any) -> int | None:
    """Epoch ms from an epoch-ms number/string or an ISO-8601 text."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        d = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        if len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit():  # +0000
            d = datetime.fromisoformat(text[:-5] + text[-5:-2] + ":" + text[-2:])
        else:
            return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return ms(d)


def days(first: date, last: date) -> list[date]:
    out, d = [], first
    while d <= last:
        out.append(d)
        d += timedelta(days=1)
    return out


def h(*parts: Any) -> int:
    """A stable 64-bit hash of the parts (deterministic pseudo-randomness)."""
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def pick(seq: Sequence, *parts: Any):
    return seq[h(*parts) % len(seq)]


def token(offset: int) -> str:
    """An opaque paging token for an offset."""
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def untoken(value: str | None) -> int:
    if not value:
        return 0
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        return int(text.split(":", 1)[1]) if text.startswith("o:") else int(value)
    except (ValueError, IndexError):
        return int(value) if str(value).isdigit() else 0


COMPANIES = (
    ("Acme Corp", "acme-corp.example"), ("Globex", "globex.example"), ("Initech", "initech.example"),
    ("Umbrella", "umbrella.example"), ("Hooli", "hooli.example"), ("Vandelay Industries", "vandelay.example"),
    ("Stark Industries", "stark.example"), ("Wayne Enterprises", "wayne.example"), ("Wonka", "wonka.example"),
    ("Soylent", "soylent.example"), ("Tyrell", "tyrell.example"), ("Cyberdyne", "cyberdyne.example"),
)
FIRST = ("Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj",
         "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Yolanda")
LAST = ("Smith", "Jones", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Anderson", "Thomas", "Moore")


def company_domain(k: int) -> str:
    """Domain of company k: the named ones first, then corpN.example."""
    if k < len(COMPANIES):
        return COMPANIES[k][1]
    return f"corp{k}.example"


def company_name(k: int) -> str:
    if k < len(COMPANIES):
        return COMPANIES[k][0]
    return f"Corp {k} Inc"


SOURCES = (  # (utm_source, utm_medium, campaign, landing path, referrer)
    ("google", "cpc", "q1-brand", "/pricing", "https://www.google.com/"),
    ("google", "organic", None, "/blog/attribution-guide", "https://www.google.com/"),
    ("linkedin", "paid_social", "q1-demand-gen", "/ebook/dark-funnel", "https://www.linkedin.com/"),
    ("newsletter", "email", "feb-newsletter", "/webinar", None),
    (None, None, None, "/", None),
    ("bing", "cpc", "q1-brand", "/pricing", "https://www.bing.com/"),
    (None, None, None, "/demo", "https://news.ycombinator.com/"),
    ("partner", "referral", None, "/integrations", "https://partner.example/"),
)


def landing_url(k: int, host: str = "https://www.funnelsync-demo.example") -> tuple[str, str | None]:
    src, med, camp, path, ref = SOURCES[k % len(SOURCES)]
    query = "&".join(f"{n}={v}" for n, v in (("utm_source", src), ("utm_medium", med), ("utm_campaign", camp)) if v)
    return host + path + ("?" + query if query else ""), ref
