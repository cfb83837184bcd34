"""A deterministic in-process connector for engine tests (no HTTP): `items` is sorted by `updated` and commits a
cursor on every page, re-reading a small lookback like HubSpot/Salesforce do; `daily` is a re-read report."""
from __future__ import annotations

import os
from datetime import date, timedelta

from connectors.core import Page, Replace, Stream
from connectors.errors import AuthError, QuotaError, TemporaryError
from normalize.events import Malformed, Row, aggregate, event, person_key, to_utc

TYPE = "fake"
CONFIG_KEYS = {"records": ("int", False, 300), "page_size": ("int", False, 25), "fail": ("str", False, "")}


def records(n: int, version: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        minute = i // 3  # three records share each timestamp: ties across page boundaries
        out.append({"id": f"r{i:05d}", "email": f"user{i % 97}@corp{i % 13}.example",
                    "updated": f"2024-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z", "score": i * 7 % 11 + version,
                    "bad": i == 77})
    return out


class Client:
    def __init__(self, source):
        self.source = source
        self.requests = 0


def connect(source):
    return Client(source)


def fetch_items(client, run):
    n = int(client.source.get("records", 300))
    size = int(client.source.get("page_size", 25))
    version = int(os.environ.get("FAKE_VERSION", "0"))
    data = records(n, version)
    fail = client.source.get("fail", "")
    since = (run.state or {}).get("cursor")
    if since:
        # lookback of one minute: re-read the boundary, duplicates are dropped by the upserts
        data = [r for r in data if r["updated"] >= _minus_minute(since)]
    for start in range(0, len(data), size):
        client.requests += 1
        chunk = data[start:start + size]
        if fail == "auth" and start >= size:
            raise AuthError("token rejected (HTTP 401)")
        if fail == "quota" and start >= 2 * size:
            raise QuotaError("daily API budget reached")
        if fail == "temporary" and start >= size:
            raise TemporaryError("HTTP 503 outlasted the retries")
        yield Page(chunk, state={"cursor": chunk[-1]["updated"]})


def _minus_minute(ts: str) -> str:
    from datetime import datetime, timezone
    dt = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) - timedelta(minutes=1)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch_daily(client, run):
    last = (run.state or {}).get("last_day")
    end = run.end or (run.today - timedelta(days=1))
    start = run.start if not last else max(run.start, min(date.fromisoformat(last) + timedelta(days=1),
                                                           run.today - timedelta(days=3)))
    restated = int(os.environ.get("FAKE_VERSION", "0"))
    rows = []
    d = start
    while d <= end:
        rows.append({"_id": f"{d.isoformat()}|c1", "day": d.isoformat(), "campaign": "c1",
                     "clicks": 10 + (restated if d >= end - timedelta(days=2) else 0)})
        d += timedelta(days=1)
    client.requests += 1
    yield Page(rows, state={"last_day": end.isoformat()}, replace=Replace("daily", start.isoformat(), end.isoformat()))


STREAMS = {
    "items": Stream("items", "item", "id", fetch_items, cursor_field="updated"),
    "daily": Stream("daily", "daily", "_id", fetch_daily, cursor_field="day"),
}


def normalize_item(record, ctx):
    if record.get("bad"):
        raise Malformed("record 77 is malformed on purpose")
    pk = person_key(record["email"])
    ts = to_utc(record["updated"])
    return [
        Row("person_sources", {"source_system": "fake", "source_object": "item", "source_id": record["id"],
                               "person_key": pk, "email": record["email"], "first_seen_at": ts}),
        event("form_submitted", ts, "fake", "item", record["id"], person_key=pk, channel="direct",
              properties={"score": record["score"]}),
    ]


def normalize_daily(record, ctx):
    row = aggregate("ad_clicks", record["day"], "fake", "daily", record["_id"], quantity=record["clicks"],
                    campaign_key="fake:c1", channel="paid_search")
    return [row] if row else []


NORMALIZERS = {"items": normalize_item, "daily": normalize_daily}
