"""Loading speed of the PostgreSQL warehouse: 1,000,000 events through PostgresWarehouse.write_batch (batches of
50k: COPY into a staging table + INSERT ... ON CONFLICT ... IS DISTINCT FROM, origin/quarantine/state bookkeeping,
one transaction per batch) against a bare COPY of the same rows into an empty table with the same definition
(primary key + indexes), committed per batch too. Prints rows/s and the ratio (write_batch time / bare COPY time).

    python bench/pg_load.py [--rows 1000000] [--batch 50000] [--repeat 1] [--with-raw]

Uses $FUNNELSYNC_TEST_PG when set, else starts a throwaway PostgreSQL 15 server (tests/pg.py). Generating the
rows is not timed; turning them into COPY rows is (both paths start from the same normalizer dicts).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack
from operator import itemgetter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from normalize.events import EVENT_COLUMNS, event
from tests.pg import fresh_db, running_server
from warehouse import schema
from warehouse.base import Batch
from warehouse.postgres import PostgresWarehouse, connect

TYPES = ("web_visit", "form_submitted", "email_opened", "email_clicked", "email_sent")
CHANNELS = ("organic_search", "paid_search", "email", "direct", "paid_social")


def make_batch(n: int, start: int, with_raw: bool) -> Batch:
    """`n` events of distinct records (ids start..start+n), ~15 filled columns like real person events."""
    b = Batch(source_name="bench", source_system="hubspot", stream="contacts", source_object="contact",
              cursor_field="updatedAt", state={"cursor": f"{start + n}"})
    for i in range(start, start + n):
        sid = str(i)
        day = 1 + i % 28
        b.rows.append(event(
            TYPES[i % 5], f"2024-02-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z", "hubspot", "contact", sid,
            person_key=f"p_{i % 200_000:016x}", account_key=f"a_{i % 20_000:016x}", channel=CHANNELS[i % 5],
            campaign_key=f"hubspot_email:{i % 300}", utm={"utm_source": "google", "utm_medium": "cpc",
                                                          "utm_campaign": f"spring_{i % 40}"},
            referrer_domain="google.com", landing_path=f"/pricing/{i % 50}", properties={"form_id": i % 7}))
        if with_raw:
            b.raw.append((sid, json.dumps({"id": sid, "properties": {"email": f"u{i}@acme.example"}})))
    return b


def bare_copy(url: str, batches: list[Batch], indexed: bool = True) -> float:
    """COPY the events into an empty table: the warehouse's definition (primary key + indexes), or bare columns."""
    conn = connect(url)
    t = schema.BY_NAME["events"]
    ddl = schema.ddl(t, schema.PG_TYPES)
    if not indexed:
        ddl = [ddl[0].replace(", PRIMARY KEY (event_id)", "")]
    for stmt in ddl:
        conn.execute(stmt)
    conn.commit()
    cols = EVENT_COLUMNS + ("source_name", "ingested_at")
    get = itemgetter(*EVENT_COLUMNS)
    const = ("bench", "2024-04-01T00:00:00Z")
    started = time.perf_counter()
    for b in batches:
        with conn.cursor() as cur, cur.copy(f"COPY events ({', '.join(cols)}) FROM STDIN") as copy:
            write = copy.write_row
            for r in b.rows:
                write(get(r.values) + const)
        conn.commit()
    elapsed = time.perf_counter() - started
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == sum(len(b.rows) for b in batches)
    conn.close()
    return elapsed


def checkpoint(url: str) -> None:
    """Start each timed path with no dirty buffers left by the previous one (needs superuser; else skipped)."""
    conn = connect(url)
    conn.autocommit = True
    try:
        conn.execute("CHECKPOINT")
    except Exception as exc:  # noqa: BLE001 - not allowed on this server: just measure
        print(f"(no CHECKPOINT between paths: {exc})", file=sys.stderr)
    conn.close()


def through_write_batch(url: str, batches: list[Batch], reload: bool = False) -> tuple[float, float | None]:
    wh = PostgresWarehouse(url)
    started = time.perf_counter()
    for b in batches:
        wh.write_batch(b, now="2024-04-01T00:00:00Z")
    first = time.perf_counter() - started
    n = wh.query("SELECT count(*) FROM events")[0][0]
    assert n == sum(len(b.rows) for b in batches), n
    second = None
    if reload:  # the same batches again: every row conflicts and nothing changed
        started = time.perf_counter()
        for b in batches:
            wh.write_batch(b, now="2024-04-02T00:00:00Z")
        second = time.perf_counter() - started
    wh.close()
    return first, second


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each path; the median is reported")
    ap.add_argument("--with-raw", action="store_true", help="one raw_records row per event too (a real sync)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    batches = [make_batch(min(args.batch, args.rows - s), s, args.with_raw) for s in range(0, args.rows, args.batch)]
    print(f"generated {args.rows:,} events in {len(batches)} batches ({time.perf_counter() - t0:.1f} s, not timed)",
          file=sys.stderr)
    with ExitStack() as stack:
        server = os.environ.get("FUNNELSYNC_TEST_PG") or stack.enter_context(running_server("funnelsync_bench"))
        copy_t, plain_t, wb_t, re_t = [], [], [], []
        def copy_indexed():
            with fresh_db(server, f"bench_copy_{i}") as url:
                checkpoint(url)
                copy_t.append(bare_copy(url, batches))

        def copy_plain():
            with fresh_db(server, f"bench_plain_{i}") as url:
                checkpoint(url)
                plain_t.append(bare_copy(url, batches, indexed=False))

        def write_batches():
            with fresh_db(server, f"bench_wb_{i}") as url:
                checkpoint(url)
                first, second = through_write_batch(url, batches, reload=True)
                wb_t.append(first)
                re_t.append(second)

        for i in range(args.repeat):  # alternate the order so background work of one path does not bias the other
            for step in ((copy_indexed, copy_plain, write_batches) if i % 2 == 0
                         else (write_batches, copy_plain, copy_indexed)):
                step()
            print(f"run {i + 1}: bare COPY {copy_t[-1]:.2f} s (no indexes {plain_t[-1]:.2f} s), write_batch "
                  f"{wb_t[-1]:.2f} s, write_batch again (no changes) {re_t[-1]:.2f} s", file=sys.stderr)
    c, p, w, r = (statistics.median(x) for x in (copy_t, plain_t, wb_t, re_t))
    n = args.rows
    print(f"rows: {n:,} events, batches of {args.batch:,}{' + raw records' if args.with_raw else ''}, "
          f"median of {args.repeat}")
    print(f"bare COPY, empty events table (PK + 6 indexes):   {c:6.2f} s  {n / c:>9,.0f} rows/s")
    print(f"bare COPY, empty table without any index:         {p:6.2f} s  {n / p:>9,.0f} rows/s")
    print(f"PostgresWarehouse.write_batch, empty warehouse:   {w:6.2f} s  {n / w:>9,.0f} rows/s")
    print(f"PostgresWarehouse.write_batch, same rows again:   {r:6.2f} s  {n / r:>9,.0f} rows/s")
    print(f"ratio write_batch / bare COPY (same table definition): {w / c:.2f}; vs COPY without indexes: "
          f"{w / p:.2f}; reload of unchanged rows / bare COPY: {r / c:.2f}")


if __name__ == "__main__":
    main()
