"""Write path vs bare sqlite3: the same rows, the same schema, measured side by side in one run.

    python bench/write_path.py [N]          (default 1,000,000 records)

funnelsync: SqliteWarehouse.write_batch as the run loop calls it: one page of 1,000 records at a time (raw payload + one
event + one identity row per record, with origin bookkeeping, quarantine check and the page's cursor) into an open
transaction that commits every BATCH_ROWS rows (the loop also commits every BATCH_SECONDS; not simulated here).
baseline:   one bare `executemany` INSERT per table of exactly the same rows, one transaction, same tables/indexes.
Prints records/s for both and the ratio (goal <= 2x).
"""
from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from normalize.events import EVENT_COLUMNS, Row, event, person_key  # noqa: E402
from warehouse import schema  # noqa: E402
from warehouse.base import Batch  # noqa: E402
from warehouse.sqlite import PRAGMAS, SqliteWarehouse  # noqa: E402

from funnelsync.sync import BATCH_ROWS  # noqa: E402

BATCH = 1000  # records per page


def make_batches(n: int):
    """Pre-built pages (normalization is measured elsewhere): raw payloads and their rows."""
    batches = []
    for start in range(0, n, BATCH):
        b = Batch("bench", "hubspot", "form_submissions", "form_submission", cursor_field="submittedAt")
        for i in range(start, min(n, start + BATCH)):
            sid = f"f{i:08d}"
            email = f"user{i % 50000}@corp{i % 997}.example"
            ts = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z"
            rec = {"id": sid, "submittedAt": ts, "pageUrl": "https://www.example.com/pricing?utm_source=google",
                   "values": [{"name": "email", "value": email}]}
            b.raw.append((sid, json.dumps(rec, separators=(",", ":"))))
            pk = person_key(email)
            b.rows.append(event("form_submitted", ts, "hubspot", "form_submission", sid, person_key=pk,
                                channel="paid_search", utm={"utm_source": "google", "utm_medium": "cpc"},
                                landing_path=None, properties={"form_id": "f1", "page_path": "/pricing"}))
            b.rows.append(Row("person_sources", {"source_system": "hubspot", "source_object": "form_submission",
                                                 "source_id": sid, "person_key": pk, "email": email,
                                                 "first_seen_at": ts}))
        b.state = {"cursor": "x"}
        batches.append(b)
    return batches


def funnelsync_load(path: Path, batches) -> float:
    wh = SqliteWarehouse(path)
    t = time.perf_counter()
    open_rows = 0
    for b in batches:
        open_rows += len(b)
        commit = open_rows >= BATCH_ROWS or b is batches[-1]
        wh.write_batch(b, now="2024-04-01T00:00:00Z", commit=commit)
        open_rows = 0 if commit else open_rows
    elapsed = time.perf_counter() - t
    wh.close()
    return elapsed


def bare_load(path: Path, batches) -> float:
    conn = sqlite3.connect(path)
    for pragma in PRAGMAS:  # the warehouse's own
        conn.execute(f"PRAGMA {pragma}")
    for table in schema.TABLES:
        for stmt in schema.ddl(table, schema.SQLITE_TYPES):
            conn.execute(stmt)
    conn.commit()
    ev_cols = EVENT_COLUMNS + ("source_name", "ingested_at")
    ps_cols = ("source_system", "source_object", "source_id", "person_key", "email", "first_seen_at", "source_name")
    # the exact same tuples funnelsync writes, built before the clock starts
    raw = [("hubspot", "form_submission", sid, "bench", "2024-04-01T00:00:00Z", p) for b in batches for sid, p in b.raw]
    events = [tuple(r.values.get(c) for c in EVENT_COLUMNS) + ("bench", "2024-04-01T00:00:00Z")
              for b in batches for r in b.rows if r.table == "events"]
    people = [tuple(r.values.get(c) for c in ps_cols[:-1]) + ("bench",)
              for b in batches for r in b.rows if r.table == "person_sources"]
    t = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO raw_records VALUES (?, ?, ?, ?, ?, ?)", raw)
    conn.executemany(f"INSERT INTO events ({','.join(ev_cols)}) VALUES ({','.join('?' * len(ev_cols))})", events)
    conn.executemany(f"INSERT INTO person_sources ({','.join(ps_cols)}) VALUES ({','.join('?' * len(ps_cols))})",
                     people)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    batches = make_batches(n)
    results = {"funnelsync": [], "bare": []}
    for _ in range(3):
        with tempfile.TemporaryDirectory() as d:
            results["bare"].append(bare_load(Path(d) / "bare.db", batches))
        with tempfile.TemporaryDirectory() as d:
            results["funnelsync"].append(funnelsync_load(Path(d) / "fs.db", batches))
    fs, bare = sorted(results["funnelsync"])[1], sorted(results["bare"])[1]
    print(f"records: {n:,} (each: raw payload + 1 event + 1 identity row)")
    print(f"bare sqlite3 executemany, one transaction: {bare:6.2f} s  {n / bare:10,.0f} records/s")
    print(f"funnelsync write_batch, pages of {BATCH:,}, a commit every {BATCH_ROWS:,} rows: {fs:6.2f} s  "
          f"{n / fs:10,.0f} records/s")
    print(f"ratio funnelsync / bare (median of 3): {fs / bare:.2f}x   (goal <= 2x)")


if __name__ == "__main__":
    main()
