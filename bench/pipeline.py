"""Raw JSON -> normalized rows -> SQLite: funnelsync's sync loop against a bare sqlite3 load and against dlt.

    python bench/pipeline.py [N] [--stream form_submissions|email_events] [--no-dlt] [--sample K]

Input: N HubSpot records (default 1,000,000 form submissions, as the sandbox generates them) written once, before
any clock starts, as raw JSON response pages of 1,000 records ({"results": [...], "paging": ...}) to a temp file.
Measured side by side in one run:
- funnelsync: `funnelsync.sync.sync_stream` (the real sync loop: batches of BATCH_ROWS, upserts, quarantine check,
  cursor in each batch's transaction) over a stream whose fetch reads the pages and `json.loads` each (plus the
  connector's own enrichment: _form_id / _id), the real normalizer (normalize/hubspot.py) and a real SqliteWarehouse.
- bare: one sqlite3 `executemany` INSERT per table of exactly the rows funnelsync wrote (raw_records, events,
  person_sources read back from its warehouse, untimed, in chunks), same schema, indexes and pragmas, one
  transaction. Goal: funnelsync <= 2x bare.
- dlt (benchmark-only extra `bench = ["dlt[duckdb]>=1.0"]`): a dlt pipeline loading the same raw records (the same
  pages parsed the same way) into DuckDB, write_disposition "append" (dlt's fastest), its default normalizer (the
  nested `values` list becomes a child table) and the loader file format the extra installs (insert_values; parquet
  would need pyarrow, which the extra does not pull). Goal: funnelsync >= 8x faster. Skipped, with a message, when
  dlt is not installed.
A per-record breakdown of funnelsync's time (parse, normalize, the rest = loop + SQLite) is measured on the first
`--sample` records (default 100,000) to say what limits the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGE = 1000
NOW = datetime(2024, 4, 1, tzinfo=timezone.utc)
TABLES = ("raw_records", "events", "person_sources")


# ---- input ------------------------------------------------------------------------------------------------------


def write_pages(path: Path, n: int, stream: str) -> dict:
    """N records of `stream` as raw JSON pages, one page per line; returns what the fetch needs to enrich them."""
    from tests.sandbox import Sandbox

    sb = Sandbox(sizes={"hubspot.submissions": n, "hubspot.email_events": n, "hubspot.contacts": 50_000})
    hs = sb.hubspot
    with open(path, "wb") as out:
        for start in range(0, n, PAGE):
            if stream == "form_submissions":
                records = [hs.submission(0, j) for j in range(start, min(n, start + PAGE))]
                body = {"results": records, "paging": {"next": {"after": str(start + PAGE)}}}
            else:
                records = [hs.email_event(k, t) for k, t, _ in hs.events.items(0, 1 << 62, start, PAGE)]
                body = {"hasMore": start + PAGE < n, "offset": str(start + PAGE), "events": records}
            out.write(json.dumps(body, separators=(",", ":")).encode() + b"\n")
    sb.stop()
    return {"form_id": hs.forms[0], "form_name": "Sandbox form 0"}


def pages(path: Path, stream: str, meta: dict, limit: int | None = None):
    """Parse the pages and enrich the records the way connectors/hubspot.py does."""
    from connectors.hubspot import submission_id

    seen = 0
    with open(path, "rb") as f:
        for line in f:
            body = json.loads(line)
            if stream == "form_submissions":
                records = body["results"]
                form_id = meta["form_id"]
                for sub in records:
                    sub["_form_id"] = form_id
                    sub["_form_name"] = meta["form_name"]
                    sub["_id"] = submission_id(form_id, sub)
            else:
                records = body["events"]
            yield records
            seen += len(records)
            if limit is not None and seen >= limit:
                return


# ---- the three loaders ------------------------------------------------------------------------------------------


class _Client:
    requests = 0


def funnelsync_load(path: Path, db: Path, stream_name: str, meta: dict) -> tuple[float, object]:
    from connectors.core import Page, Stream
    from funnelsync.sync import Options, Progress, sync_stream
    from normalize import Model
    from warehouse.sqlite import SqliteWarehouse

    obj = {"form_submissions": "form_submission", "email_events": "email_event"}[stream_name]
    key = "_id" if stream_name == "form_submissions" else "id"

    def fetch(client, run):
        for records in pages(path, stream_name, meta):
            yield Page(records)
        yield Page([], state={"cursor": "done"})

    wh = SqliteWarehouse(db)
    stream = Stream(stream_name, obj, key, fetch, "submittedAt")
    source = {"name": "bench", "type": "hubspot", "start_date": "2024-01-01"}
    t = time.perf_counter()
    result = sync_stream(wh, source, _Client(), stream, Model(), Options(now=NOW), Progress(), [])
    elapsed = time.perf_counter() - t
    wh.close()
    if result.status != "success" or result.quarantined:
        raise SystemExit(f"funnelsync run failed: {result.error}")
    return elapsed, result


def bare_load(src: Path, db: Path, chunk: int = 50_000) -> tuple[float, dict[str, int]]:
    """executemany of the rows funnelsync wrote (read back untimed, chunk by chunk), one transaction."""
    from warehouse import schema
    from warehouse.sqlite import PRAGMAS

    source = sqlite3.connect(src)
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in PRAGMAS:  # the warehouse's own
        conn.execute(f"PRAGMA {pragma}")
    for table in schema.TABLES:
        for stmt in schema.ddl(table, schema.SQLITE_TYPES):
            conn.execute(stmt)
    counts: dict[str, int] = {}
    elapsed = 0.0
    conn.execute("BEGIN")
    for table in TABLES:
        cols = [r[1] for r in source.execute(f"PRAGMA table_info({table})")]
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        cur = source.execute(f"SELECT {', '.join(cols)} FROM {table}")
        counts[table] = 0
        while True:
            rows = cur.fetchmany(chunk)  # untimed: the rows exist before the load
            if not rows:
                break
            t = time.perf_counter()
            conn.executemany(sql, rows)
            elapsed += time.perf_counter() - t
            counts[table] += len(rows)
    t = time.perf_counter()
    conn.execute("COMMIT")
    elapsed += time.perf_counter() - t
    conn.close()
    source.close()
    return elapsed, counts


def dlt_load(path: Path, directory: Path, stream_name: str, meta: dict) -> tuple[float | None, str]:
    try:
        import dlt
    except ImportError:
        return None, ("dlt is not installed: the dlt comparison is skipped. Install the benchmark extra "
                      "(pip install -e '.[bench]' or pip install 'dlt[duckdb]>=1.0') to run it.")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

    @dlt.resource(name=stream_name, write_disposition="append")
    def records():
        yield from pages(path, stream_name, meta)

    pipeline = dlt.pipeline(pipeline_name="funnelsync_bench", pipelines_dir=str(directory / "pipelines"),
                            destination=dlt.destinations.duckdb(str(directory / "dlt.duckdb")),
                            dataset_name="raw", progress=None)
    t = time.perf_counter()
    info = pipeline.run(records())
    elapsed = time.perf_counter() - t
    formats = sorted({j.job_file_info.file_format for pkg in info.load_packages
                      for j in pkg.jobs.get("completed_jobs", [])})
    return elapsed, f"dlt {dlt.__version__} -> duckdb ({'/'.join(formats) or '?'} files)"


# ---- breakdown ----------------------------------------------------------------------------------------------------


def breakdown(path: Path, stream_name: str, meta: dict, sample: int) -> dict[str, float]:
    """Microseconds per record of parsing (json.loads + enrichment) and of normalizing, on the first records."""
    from normalize import Context, Model, normalizer

    norm = normalizer("hubspot", stream_name)
    ctx = Context(model=Model(), source_name="bench", settings={})
    t = time.perf_counter()
    n = sum(len(records) for records in pages(path, stream_name, meta, sample))
    parse = time.perf_counter() - t
    t = time.perf_counter()
    rows = 0
    for records in pages(path, stream_name, meta, sample):
        for record in records:
            rows += len(norm(record, ctx))
    parse_norm = time.perf_counter() - t
    return {"records": n, "parse_us": parse / n * 1e6, "normalize_us": (parse_norm - parse) / n * 1e6,
            "rows_per_record": rows / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--stream", choices=("form_submissions", "email_events"), default="form_submissions")
    parser.add_argument("--no-dlt", action="store_true", help="skip the dlt comparison")
    parser.add_argument("--sample", type=int, default=100_000, help="records for the per-stage breakdown")
    args = parser.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory(prefix="funnelsync-bench-") as tmp:
        d = Path(tmp)
        raw = d / "pages.jsonl"
        t = time.perf_counter()
        meta = write_pages(raw, n, args.stream)
        print(f"input: {n:,} HubSpot {args.stream} as raw JSON pages of {PAGE:,} ({raw.stat().st_size / 1e6:,.0f} MB), "
              f"generated in {time.perf_counter() - t:.1f} s (untimed)", flush=True)
        fs, result = funnelsync_load(raw, d / "fs.db", args.stream, meta)
        print(f"funnelsync sync loop (parse -> normalize -> SQLite): {fs:7.2f} s  {n / fs:9,.0f} records/s  "
              f"({result.rows:,} normalized rows)", flush=True)
        bare, counts = bare_load(d / "fs.db", d / "bare.db")
        total_rows = sum(counts.values())
        print(f"bare sqlite3 executemany of the same rows:         {bare:7.2f} s  {n / bare:9,.0f} records/s  "
              f"({', '.join(f'{t}={c:,}' for t, c in counts.items())})", flush=True)
        dlt_s, dlt_note = (None, "skipped (--no-dlt)") if args.no_dlt else dlt_load(raw, d, args.stream, meta)
        if dlt_s is None:
            print(dlt_note, flush=True)
        else:
            print(f"{dlt_note}, append, same raw records: {dlt_s:7.2f} s  {n / dlt_s:9,.0f} records/s", flush=True)
        parts = breakdown(raw, args.stream, meta, min(args.sample, n))
    fs_us = fs / n * 1e6
    rest = fs_us - parts["parse_us"] - parts["normalize_us"]
    print(f"\nper record: funnelsync {fs_us:.1f} us = parse+enrich {parts['parse_us']:.1f} + normalize "
          f"{parts['normalize_us']:.1f} + loop+SQLite {rest:.1f} (normalizer share {parts['normalize_us'] / fs_us:.0%}; "
          f"measured on {parts['records']:,} records); bare insert {bare / n * 1e6:.1f} us "
          f"({total_rows / n:.2f} rows per record)")
    ratio = fs / bare
    print(f"ratio funnelsync / bare: {ratio:.2f}x   (goal <= 2x) {'MET' if ratio <= 2 else 'MISSED'}")
    print(f"ratio funnelsync without normalizing / bare: {(fs_us - parts['normalize_us']) / (bare / n * 1e6):.2f}x "
          "(what the loop and the warehouse cost over a bare insert)")
    out = {"bench": "pipeline", "records": n, "stream": args.stream, "funnelsync_s": round(fs, 3),
           "bare_s": round(bare, 3), "ratio_vs_bare": round(ratio, 3), "goal_vs_bare": "<= 2x",
           "met_vs_bare": ratio <= 2, "normalize_us": round(parts["normalize_us"], 2),
           "parse_us": round(parts["parse_us"], 2), "loop_sqlite_us": round(rest, 2)}
    if dlt_s is not None:
        speedup = dlt_s / fs
        print(f"ratio dlt / funnelsync: {speedup:.2f}x faster   (goal >= 8x) {'MET' if speedup >= 8 else 'MISSED'}")
        out.update(dlt_s=round(dlt_s, 3), speedup_vs_dlt=round(speedup, 3), goal_vs_dlt=">= 8x",
                   met_vs_dlt=speedup >= 8)
    else:
        out.update(dlt_s=None, speedup_vs_dlt=None, goal_vs_dlt=">= 8x (dlt not run)", met_vs_dlt=None)
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
