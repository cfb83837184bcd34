"""Helpers the sandbox tests and benchmarks share: run the real sync loop against the sandbox, compare warehouses."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

NOW = datetime(2024, 4, 1, tzinfo=timezone.utc)
# columns that legitimately differ between two runs producing the same data
VOLATILE = {"ingested_at", "fetched_at", "quarantined_at", "last_run_at", "last_success_at", "rows_written",
            "rows_quarantined", "last_error"}
SKIP_TABLES = {"sync_runs"}


def sync(sb: Any, api: str, db: str | Path, *, now: datetime = NOW, mode: str = "incremental",
         streams: tuple[str, ...] = (), model: Any = None, **source_overrides: Any) -> list:
    """One `funnelsync.sync.sync_source` run of the sandbox's `api` into the SQLite warehouse at `db` (the CA bundle
    set up from the environment first, as the CLI does: point SSL_CERT_FILE / REQUESTS_CA_BUNDLE at sb.ca_file)."""
    from connectors.http import setup_ca_bundle
    from funnelsync.sync import Options, sync_source
    from normalize import Model
    from warehouse.sqlite import SqliteWarehouse

    setup_ca_bundle()
    wh = SqliteWarehouse(Path(db))
    try:
        return sync_source(wh, sb.source(api, **source_overrides), model or Model(),
                           Options(mode=mode, now=now, streams=tuple(streams)))
    finally:
        wh.close()


def snapshot(db: str | Path, tables: tuple[str, ...] | None = None) -> dict[str, list[tuple]]:
    """Every table's rows (volatile columns left out), sorted: two equal snapshots = the same warehouse."""
    conn = sqlite3.connect(str(db))
    out = {}
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in names:
            if table in SKIP_TABLES or (tables and table not in tables):
                continue
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in VOLATILE]
            out[table] = sorted(conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(), key=repr)
    finally:
        conn.close()
    return out


def diff(a: dict, b: dict, limit: int = 3) -> str:
    """A short description of how two snapshots differ (for assertion messages)."""
    lines = []
    for table in sorted(set(a) | set(b)):
        x, y = set(a.get(table, [])), set(b.get(table, []))
        if x != y:
            lines.append(f"{table}: {len(x - y)} only in first, {len(y - x)} only in second; "
                         f"e.g. {sorted(x - y, key=repr)[:limit]} / {sorted(y - x, key=repr)[:limit]}")
    return "\n".join(lines) or "no difference"


def count(db: str | Path, sql: str, params: tuple = ()) -> Any:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def relax_pacing(monkeypatch: Any) -> None:
    """Lift the connectors' own pacing (HubSpot 4 searches/s and 90 requests/10 s, Google Ads 5/s; LinkedIn and Meta
    take `requests_per_second` from the source). Under the tests' no-op SLEEP a Pacer busy-waits on the real clock,
    so fault and volume tests would mostly measure pacing, which has its own benchmark (bench/rate.py)."""
    import connectors.google_ads
    import connectors.hubspot
    from connectors.http import Pacer

    monkeypatch.setattr(connectors.hubspot, "SEARCHES_PER_SECOND", 10_000)
    monkeypatch.setattr(connectors.hubspot, "REQUESTS_PER_10S", 100_000)
    real_connect = connectors.google_ads.connect

    def connect(source: dict):
        client = real_connect(source)
        client.http.pacer = Pacer(None)
        return client

    monkeypatch.setattr(connectors.google_ads, "connect", connect)


FAST = {"linkedin_ads": {"requests_per_second": 1000}, "meta_ads": {"requests_per_second": 1000}}
