"""The run loop: read pages -> normalize -> write (rows + cursor in one transaction) -> derive.

Each page is written as soon as it is normalized, into an open transaction that commits every BATCH_ROWS rows or
BATCH_SECONDS seconds: raw records, their normalized rows, quarantined records and the cursor of the last page land
together, and memory holds one page however large the account. A kill loses at most the uncommitted pages, which
the next run fetches again; upserts make the replay a no-op.
"""
from __future__ import annotations

import contextlib
import json
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Iterable

import connectors
from connectors.core import Run, Stream, dig
from connectors.errors import ConnectorError, QuotaError
from connectors.http import redact
from normalize import Context, Malformed, Model, normalizer
from warehouse.base import Batch, ReplaceScope, WarehouseError

_payload = json.JSONEncoder(separators=(",", ":"), default=str).encode  # one encoder, not one per record

# Rows per transaction, or seconds, whichever comes first. Memory does not depend on them (Python holds one page;
# SQLite's page cache is bounded), but load speed does: every commit writes out each index page it dirtied, and
# with hash keys (event_id, person_key) that is most of them. bench/pipeline.py at 1,000,000 records: 50k rows / 5 s
# cost 2.0x a bare insert, 250k / 30 s 1.7x. A kill loses at most this much work, which the next run fetches again.
BATCH_ROWS = 250_000
BATCH_SECONDS = 30.0

# exit codes: the one a person must act on wins
PRECEDENCE = (2, 3, 1, 75)


def worst(codes: Iterable[int]) -> int:
    codes = set(codes) - {0}
    for code in PRECEDENCE:
        if code in codes:
            return code
    return 1 if codes else 0


@dataclass
class StreamResult:
    source: str
    stream: str
    status: str = "success"  # success | failed | stopped (quota; resumes next run)
    rows: int = 0
    records: int = 0
    quarantined: int = 0
    requests: int = 0
    error: str | None = None
    exit_code: int = 0
    cursor: Any = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Options:
    mode: str = "incremental"  # incremental | full_refresh | backfill
    start: date | None = None
    end: date | None = None
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    streams: tuple[str, ...] = ()  # empty = all


class Progress:
    """Receives progress notes; funnelsync/progress.py renders them (bar on a TTY, plain lines under cron)."""

    def stream_started(self, source: str, stream: str) -> None: ...
    def page(self, source: str, stream: str, records: int, rows: int, cursor: Any) -> None: ...
    def stream_finished(self, result: StreamResult) -> None: ...
    def note(self, message: str) -> None: ...


def secrets_of(source: dict) -> list[str]:
    """Values of the source's secret settings, redacted from every message."""
    out = []
    for key, value in source.items():
        k = key.lower()
        if isinstance(value, str) and any(s in k for s in ("token", "secret", "key", "password")) \
                and k not in ("property_id",):
            out.append(value)
    return out


def connector_source(source: dict, model: Model) -> dict:
    """The source settings plus the model settings a connector needs to know what to request."""
    extra: dict[str, Any] = {"sqo_stages": list(model.sqo_stages),
                             "lifecycle_stage_ids": list(model.hubspot_stage_ids)}
    if model.self_report_fields.get("hubspot"):
        extra["self_report_property"] = model.self_report_fields["hubspot"]
    if model.self_report_fields.get("salesforce"):
        extra["self_report_field"] = model.self_report_fields["salesforce"]
    extra.setdefault("conversion_actions", list(model.meta_conversion_actions))
    return {**extra, **source}


def sync_source(wh, source: dict, model: Model, options: Options, progress: Progress | None = None) -> list[StreamResult]:
    """Sync every requested stream of one source; never raises for connector trouble (it is in the results)."""
    progress = progress or Progress()
    name, kind = source["name"], source["type"]
    secrets = secrets_of(source)
    src = connector_source(source, model)
    try:
        module = connectors.load(kind)
        all_streams = connectors.streams(module, src)
        client = module.connect(src)
    except ConnectorError as exc:
        return [StreamResult(name, "*", "failed", error=redact(exc, secrets), exit_code=exc.exit_code)]
    except Exception as exc:  # noqa: BLE001 - a broken connector must not stop the other sources
        return [StreamResult(name, "*", "failed", error=redact(f"{type(exc).__name__}: {exc}", secrets), exit_code=1)]
    wanted = [s for s in all_streams if not options.streams or s in options.streams]
    results = []
    for stream_name in wanted:
        results.append(sync_stream(wh, src, client, all_streams[stream_name], model, options, progress, secrets))
    return results


def sync_stream(wh, source: dict, client: Any, stream: Stream, model: Model, options: Options,
                progress: Progress, secrets: list[str]) -> StreamResult:
    name, kind = source["name"], source["type"]
    result = StreamResult(name, stream.name)
    started = time.monotonic()
    backfill = options.mode == "backfill"
    state = None if options.mode in ("full_refresh", "backfill") else wh.get_state(name, stream.name)
    start_date = options.start if backfill else date.fromisoformat(str(source.get("start_date", "2024-01-01")))
    run = Run(source=source, state=state, start=start_date, end=options.end if backfill else None, now=options.now,
              log=progress.note)
    norm = normalizer(kind, stream.name)
    ctx = Context(model=model, source_name=name, settings={"currency": source.get("currency")})
    run_id = uuid.uuid4().hex[:12]
    wh.start_run(run_id, name, stream.name, options.mode)
    progress.stream_started(name, stream.name)
    requests_before = getattr(client, "requests", 0) or 0
    pending: dict[str, tuple[str, list, tuple | None]] = {}  # this page's records, the latest version of each
    page_state: dict | None = None
    replaces: list[ReplaceScope] = []
    open_rows = open_written = open_quarantined = 0  # written since the last commit
    last_commit = time.monotonic()

    def write(commit: bool = False) -> None:
        """Write the page into the open transaction; `commit` ends it, so rows and cursor land together."""
        nonlocal pending, page_state, replaces, open_rows, open_written, open_quarantined, last_commit
        if pending or page_state is not None or replaces:
            batch = Batch(source_name=name, source_system=kind, stream=stream.name, source_object=stream.object,
                          cursor_field=stream.cursor_field, state=page_state, save_state=not backfill,
                          replace=replaces)
            for sid, (payload, rows, bad) in pending.items():
                batch.raw.append((sid, payload))
                batch.rows.extend(rows)
                if bad:
                    batch.quarantine.append(bad)
            pending, page_state, replaces = {}, None, []
            try:
                open_written += wh.write_batch(batch, commit=False)
            except BaseException:  # the open transaction was rolled back: nothing of it may commit later
                open_rows = open_written = open_quarantined = 0
                raise
            open_rows += len(batch)
            open_quarantined += len(batch.quarantine)
            if batch.state is not None:
                result.cursor = batch.state
        if commit:
            wh.commit()
            result.rows += open_written
            result.quarantined += open_quarantined
            open_rows = open_written = open_quarantined = 0
            last_commit = time.monotonic()

    try:
        for page in stream.fetch(client, run):
            if page.replace is not None:
                r = page.replace
                replaces.append(ReplaceScope(r.source_object, r.start, r.end))
            for record in page.records:
                result.records += 1
                sid = dig(record, stream.key)
                payload = _payload(record)
                if sid in (None, ""):
                    sid = "missing-id:" + uuid.uuid5(uuid.NAMESPACE_OID, payload).hex
                    pending[sid] = (payload, [], (sid, f"record has no id at {stream.key!r}", payload))
                    continue
                sid = str(sid)
                rows: list = []
                bad = None
                if norm is not None:
                    try:
                        rows = norm(record, ctx)
                    except Malformed as exc:
                        bad = (sid, str(exc), payload)
                    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                        bad = (sid, f"{type(exc).__name__}: {exc}", payload)
                pending.pop(sid, None)  # a record seen twice in one page: its latest version wins
                pending[sid] = (payload, rows if bad is None else [], bad)
            if page.state is not None:
                page_state = page.state
            result.requests += page.requests
            write(commit=False)
            progress.page(name, stream.name, len(page.records), result.rows + open_written, page.state)
            if open_rows >= BATCH_ROWS or time.monotonic() - last_commit >= BATCH_SECONDS:
                write(commit=True)
        write(commit=True)
    except QuotaError as exc:
        write(commit=True)
        result.status, result.exit_code = "stopped", exc.exit_code
        result.error = redact(exc, secrets)
    except ConnectorError as exc:
        write(commit=True)
        result.status, result.exit_code = "failed", exc.exit_code
        result.error = redact(exc, secrets)
    except WarehouseError as exc:
        wh.rollback()
        result.status, result.exit_code = "failed", exc.exit_code
        result.error = redact(exc, secrets)
    except Exception as exc:  # noqa: BLE001 - a bug in one stream must not stop the others
        flush_error = None
        try:
            write(commit=True)
        except Exception as inner:  # noqa: BLE001
            flush_error = inner
        result.status, result.exit_code = "failed", 1
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result.error = redact(f"internal error: {type(exc).__name__}: {exc} (at {where.filename.rsplit('/', 1)[-1]}"
                              f":{where.lineno})" + (f"; and while saving: {flush_error}" if flush_error else ""),
                              secrets)
    if result.status == "success" and result.quarantined:
        result.exit_code = 1
        result.error = f"{result.quarantined} record(s) quarantined; see `funnelsync status` / the quarantine table"
    client_requests = (getattr(client, "requests", 0) or 0) - requests_before
    result.requests = max(result.requests, client_requests)
    result.seconds = round(time.monotonic() - started, 3)
    wh.finish_run(run_id, name, stream.name, status=result.status, rows_written=result.rows,
                  rows_quarantined=result.quarantined, requests=result.requests, error=result.error, mode=options.mode)
    progress.stream_finished(result)
    return result


def post_sync(wh, model: Model, now: datetime, goals: list[dict] | None = None,
              fx_rates: list[dict] | None = None) -> list[str]:
    """Rebuild derived tables (identity, channels), attribution, KPI values and goal pacing; returns warnings
    (money rows without an fx rate, goals that cannot be planned, Mailchimp reports the events do not match...).
    Deterministic: same tables in, same out.
    On PostgreSQL, syncs of different sources run in parallel: the rebuild takes the warehouse's derive lock."""
    from warehouse import checks, derive, kpis
    from warehouse import goals as goals_mod

    as_of = now.date().isoformat()
    with getattr(wh, "derive_lock", contextlib.nullcontext)():
        load_inputs(wh.conn, goals or [], fx_rates or [])
        warnings = list(derive.derive(wh.conn, model, as_of) or [])
        wh.conn.commit()  # what the KPI refresh reads is committed: on SQLite it may read on a second connection
        warnings += kpis.refresh_kpis(wh.conn, model) or []
        warnings += goals_mod.refresh_goal_pacing(wh.conn, model, as_of) or []
        warnings += checks.mailchimp_report_gaps(wh.conn)
        wh.conn.commit()
    return warnings


def load_inputs(conn, goals: list[dict], fx_rates: list[dict]) -> None:
    """Mirror config-held inputs (goals, fx rates) into their tables; portable SQL for both backends."""
    from warehouse.derive import execute

    execute(conn, "DELETE FROM goals")
    for g in goals:
        execute(conn, "INSERT INTO goals (plan_year, metric, target, quarter_weights, rate_overrides) "
                      "VALUES (?, ?, ?, ?, ?)",
                (g["plan_year"], g.get("metric", "closed_won_revenue"), g["target"],
                 json.dumps(g.get("quarter_weights") or [0.25] * 4), json.dumps(g.get("rate_overrides") or {})))
    for r in fx_rates:
        execute(conn, "INSERT INTO fx_rates (date, currency, rate_to_reporting) VALUES (?, ?, ?) ON CONFLICT "
                      "(date, currency) DO UPDATE SET rate_to_reporting = excluded.rate_to_reporting",
                (r["date"], r["currency"], r["rate_to_reporting"]))
