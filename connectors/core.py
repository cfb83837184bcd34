"""What a connector is: streams that yield pages, and the paginators REST streams declare.

A connector is a module (or an entry point in the `funnelsync.connectors` group) with:

    TYPE = "hubspot"
    def connect(source: dict) -> client            # source = validated settings of one [sources.NAME] table
    STREAMS: dict[str, Stream]                     # or def streams(source) -> dict[str, Stream]

A `Stream` declares its raw object name, where the record id is, and a `fetch(client, run)` generator that
yields `Page`s. After the sync loop commits a page's rows it stores `page.state` (when not None) in the same
transaction, so a stream must only put a state on a page when every record before it has been yielded: sorted
streams can do it on each page, unsorted ones on the last. `run.state` is what the last committed page stored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from connectors.errors import ApiError, QuotaError


@dataclass(frozen=True)
class Replace:
    """Delete this source's aggregate events of `source_object` with event_date in [start, end] before the
    page's rows are written: a re-read window replaces those days exactly (restated ad / GA4 numbers)."""

    source_object: str
    start: str  # YYYY-MM-DD inclusive
    end: str  # YYYY-MM-DD inclusive


@dataclass
class Page:
    records: list[dict]
    state: dict | None = None  # the stream's cursor state, valid once this page and all before it are committed
    replace: Replace | None = None
    requests: int = 0  # HTTP requests this page took (SDK connectors report their own)


@dataclass
class Run:
    """Everything a stream's fetch needs to know about this run."""

    source: dict  # validated settings of the source, incl. "name" and "type"
    state: dict | None  # last committed state of this stream (None on a first sync or --full-refresh)
    start: date  # earliest day to pull: start_date, or the backfill start
    end: date | None = None  # backfill end (inclusive); None = up to now
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    log: Callable[[str], None] = lambda message: None

    @property
    def backfill(self) -> bool:
        return self.end is not None

    @property
    def today(self) -> date:
        return self.now.date()

    def setting(self, key: str, default: Any = None) -> Any:
        return self.source.get(key, default)


@dataclass(frozen=True)
class Stream:
    name: str  # "contacts": the stream, unique within a connector
    object: str  # raw_records.source_object, e.g. "contact"
    key: str  # dotted path of the record id, e.g. "id" or "Id"
    fetch: Callable[[Any, Run], Iterator[Page]]
    cursor_field: str | None = None  # stored next to the cursor so a rename is detectable


# ---- paging: a next-page function maps (response_json, request_kwargs) to the next request kwargs, or None ----


def dig(data: Any, dotted: str | None, default: Any = None) -> Any:
    """`dig(body, "paging.next.after")`: nested dict lookup; missing gives `default`. (normalize/ has its own
    `get_path`: the layers import nothing from each other.)"""
    if not dotted:
        return data
    cur = data
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return default
    return cur


def body_cursor(path: str, into: str) -> Callable[[dict, dict], dict | None]:
    """Next-page token at `path` in the body, sent as `into` ("params.after" or "json.after")."""
    where, name = into.split(".", 1)

    def next_page(body: dict, request: dict) -> dict | None:
        token = dig(body, path)
        if token in (None, ""):
            return None
        nxt = {**request, where: {**(request.get(where) or {}), name: token}}
        return nxt

    return next_page


def paginate(http, request: dict, records: str | None, next_page: Callable[[dict, dict], dict | None] | None,
             max_pages: int = 1_000_000) -> Iterator[tuple[list[dict], dict]]:
    """Send `request` (kwargs of `Http.request`: method, url, params, json) and follow `next_page`.

    Yields (records, body) per page. A repeated request raises ApiError instead of looping forever.
    """
    seen: set[str] = set()
    for _ in range(max_pages):
        fingerprint = repr(sorted((k, repr(v)) for k, v in request.items()))
        if fingerprint in seen:
            raise ApiError("pagination loop: the API returned the same next-page token twice")
        seen.add(fingerprint)
        body = http.request(**request).json()
        yield list(dig(body, records) or []), body
        if next_page is None:
            return
        nxt = next_page(body, request)
        if nxt is None:
            return
        request = {**request, **nxt} if "url" not in nxt else {"method": request.get("method", "GET"), **nxt}
    raise ApiError(f"pagination stopped after {max_pages} pages")


# ---- date windows ------------------------------------------------------------------------------------------


def day_windows(start: date, end: date, days: int) -> Iterator[tuple[date, date]]:
    """Inclusive [a, b] windows of at most `days` days covering [start, end]."""
    cur = start
    while cur <= end:
        last = min(end, cur + timedelta(days=days - 1))
        yield cur, last
        cur = last + timedelta(days=1)


def reread_start(run: Run, saved_day: str | None, reread_days: int) -> date:
    """First day to request for a daily report: the day after the saved cursor, moved back by the re-read window
    (restated numbers), never before the source's start; a backfill starts at its own start."""
    if run.backfill or not saved_day:
        return run.start
    resume = date.fromisoformat(saved_day) + timedelta(days=1)
    return max(run.start, min(resume, run.today - timedelta(days=reread_days)))


def report_range(run: Run, reread_days: int) -> tuple[date, date]:
    """[first, last] day of a daily report to pull: from the saved `last_day` moved back by the re-read window
    (or the backfill range) up to yesterday, the last complete day."""
    start = reread_start(run, (run.state or {}).get("last_day"), reread_days)
    yesterday = run.today - timedelta(days=1)
    end = min(run.end, yesterday) if run.end is not None else yesterday
    return start, end


def mark_window(pages: Iterator[Page], replace: Replace, state: dict) -> Iterator[Page]:
    """Put `replace` on a re-read window's first page and `state` on its last (an empty page when the window had
    none), so the window's days are replaced exactly and the cursor moves only once the whole window is in.
    A budget stop (QuotaError) hands over the pages already fetched, without the window's state."""
    pending: Page | None = None
    try:
        for page in pages:
            if pending is None:
                page.replace = replace
            else:
                yield pending
            pending = page
    except QuotaError:
        if pending is not None:
            yield pending
        raise
    if pending is None:
        pending = Page([], replace=replace)
    pending.state = state
    yield pending
