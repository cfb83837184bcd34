"""The same derive / attribution / KPI / goals code on PostgreSQL: the §7 fixture gives the same numbers as SQLite."""
from __future__ import annotations

import json
import math

import pytest

from tests.pg import fresh_db, pg_url  # noqa: F401 - fixture
from tests.warehouse import fixture_q1 as fx
from warehouse.derive import derive
from warehouse.goals import pacing
from warehouse.kpis import compute_kpis, refresh_kpis
from warehouse.schema import BY_NAME, PG_TYPES, TABLES, ddl

pytestmark = pytest.mark.postgres
M = fx.MODEL


def _pg_value(table: str, column: str, value):
    kind = dict(BY_NAME[table].columns)[column]
    if kind == "JSON" and isinstance(value, str):
        return json.loads(value)
    return value


@pytest.fixture
def pg(pg_url):  # noqa: F811
    psycopg = pytest.importorskip("psycopg")
    from psycopg.types.json import Jsonb

    with fresh_db(pg_url, "kpis_q1") as url:
        conn = psycopg.connect(url)
        for table in TABLES:
            for stmt in ddl(table, PG_TYPES):
                conn.execute(stmt)
        for table, items in fx.rows().items():
            for r in items:
                r = dict(r)
                if table == "events":
                    r.setdefault("ingested_at", "2024-04-01T00:00:00Z")
                cols = list(r)
                vals = [_pg_value(table, c, r[c]) for c in cols]
                vals = [Jsonb(v) if isinstance(v, (dict, list)) else v for v in vals]
                conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
                             vals)
        conn.commit()
        yield conn
        conn.close()


def test_worked_example_on_postgres(pg):
    sqlite = fx.create()
    derive(sqlite, M)
    assert derive(pg, M) == []
    for by in (None, "channel", "campaign", "source", "path"):
        want = compute_kpis(sqlite, M, fx.START, fx.END, "month", by)
        got = compute_kpis(pg, M, fx.START, fx.END, "month", by)
        assert [(r["kpi"], r["period_start"], r["channel"], r["campaign_key"], r["landing_path"]) for r in got] == [
            (r["kpi"], r["period_start"], r["channel"], r["campaign_key"], r["landing_path"]) for r in want]
        for a, b in zip(got, want):
            assert (a["value"] is None) == (b["value"] is None), (a, b)
            if a["value"] is not None:
                assert math.isclose(a["value"], b["value"], abs_tol=1e-9), (a, b)
    cur = pg.cursor()
    cur.execute("SELECT channel, SUM(credited_amount) FROM attribution_credits WHERE model = 'w_shaped' "
                "AND target = 'pipeline' GROUP BY channel")
    assert {k: round(v, 6) for k, v in cur.fetchall()}["organic_social"] == 8100
    assert refresh_kpis(pg, M) == []
    cur.execute("SELECT value FROM kpi_values WHERE grain = 'quarter' AND kpi = 'new_leads' AND channel IS NULL "
                "AND campaign_key IS NULL AND source_system IS NULL AND landing_path IS NULL")
    assert cur.fetchone()[0] == 10
    goal = {"plan_year": 2024, "metric": "closed_won_revenue", "target": 180000,
            "rate_overrides": {"ADS": 9000, "win": 0.6666666667, "s2o": 1.0, "m2s": 0.5, "l2m": 0.6, "v2l": 0.01}}
    rows, _ = pacing(pg, M, goal, "2024-02-15")
    mqls = next(r for r in rows if r["metric"] == "mqls" and r["quarter"] is None)
    assert math.isclose(mqls["pacing"], 0.395652, abs_tol=1e-6)
