"""SQLite and PostgreSQL side by side on the §7 fixture: the same derived tables and the same KPI rows.

test_worked_example.py and test_kpis.py run every assertion on both backends (fixture_q1.BACKENDS). This file adds
what a per-backend assertion cannot: the two backends compared with each other over everything the derive step,
refresh_kpis and refresh_goal_pacing write, and over every KPI row of every grain and slice — including the ones no
test names. It also covers a plain psycopg connection (typed values: datetime / date / dict, and a non-UTC session
time zone) besides the warehouse's own (warehouse.postgres.connect, which reads values back as SQLite holds them):
derive / KPIs / goals must not depend on how the driver hands values back.
"""
from __future__ import annotations

import contextlib
import math

import pytest

from tests.pg import VOLATILE, fresh_db, snapshot
from tests.warehouse import fixture_q1 as fx
from warehouse.derive import day, dumps, ts
from warehouse.derive import derive as run_derive
from warehouse.goals import refresh_goal_pacing
from warehouse.kpis import BY, GRAINS, compute_kpis, refresh_kpis
from warehouse.schema import BY_NAME

pytestmark = pytest.mark.postgres
M = fx.MODEL
AS_OF = "2024-03-31"
GOAL = {"plan_year": 2024, "metric": "closed_won_revenue", "target": 180000, "quarter_weights": [0.2, 0.25, 0.25, 0.3],
        "rate_overrides": {"ADS": 9000, "win": 0.6666666667, "s2o": 1.0, "m2s": 0.5, "l2m": 0.6, "v2l": 0.01}}
# (grain, by, keyword arguments of compute_kpis)
KPI_CASES = [(g, b, {}) for g in (*GRAINS, None) for b in (None, *BY)] + [
    ("month", None, {"mode": "cohort", "as_of": "2024-03-20"}),
    ("quarter", "channel", {"mode": "cohort", "as_of": AS_OF}),
    ("quarter", "channel", {"attribution_model": "first_touch"}),
    ("month", "campaign", {"attribution_model": "time_decay"}),
]


def _build(conn):
    assert run_derive(conn, M, AS_OF) == []
    assert refresh_kpis(conn, M) == []
    assert refresh_goal_pacing(conn, M, AS_OF, goals=[GOAL]) == []
    conn.commit()
    return conn


@pytest.fixture(scope="module")
def sqlite_wh():
    with fx.warehouse("sqlite") as conn:
        yield _build(conn)


@pytest.fixture(scope="module")
def pg_wh(pg_url):
    """The warehouse's own PostgreSQL connection (warehouse.postgres.connect), as `funnelsync sync` uses it."""
    with fx.warehouse("postgres", pg_url, "kpis_pg") as conn:
        yield _build(conn)


@pytest.fixture(scope="module")
def pg_plain(pg_url):
    """A plain psycopg connection (no loaders: timestamptz -> datetime, date -> date, jsonb -> dict) whose session
    time zone is not UTC; tables created by PostgresWarehouse."""
    psycopg = pytest.importorskip("psycopg")
    from warehouse.postgres import PostgresWarehouse

    with fresh_db(pg_url, "kpis_pg_plain") as url:
        PostgresWarehouse(url).close()
        conn = psycopg.connect(url)
        with contextlib.closing(conn):
            conn.execute("SET TIME ZONE 'America/Los_Angeles'")
            fx.insert(conn, fx.rows())
            conn.commit()
            yield _build(conn)


def _canonical(conn) -> dict[str, list[tuple]]:
    """snapshot() of every table with driver types mapped to SQLite's (UTC text timestamps, ISO dates, JSON text)."""
    out = {}
    for table, rows in snapshot(conn).items():
        kinds = [k for c, k in BY_NAME[table].columns if c not in VOLATILE]
        out[table] = [tuple(_text(v, k) for v, k in zip(r, kinds, strict=True)) for r in rows]
    return out


def _text(v, kind):
    if kind == "TS":
        return ts(v)
    if kind == "DATE":
        return day(v)
    if kind == "JSON" and isinstance(v, (dict, list)):
        return dumps(v)
    return v


def _same_rows(got: list[tuple], want: list[tuple], what: str) -> None:
    """Equal row multisets; floats within 1e-9 (summation order may differ between the backends)."""
    def key(r):
        return tuple((0, round(x, 6)) if isinstance(x, float) else (1, repr(x)) for x in r)

    got, want = sorted(got, key=key), sorted(want, key=key)
    assert len(got) == len(want), (what, len(got), len(want))
    for a, b in zip(got, want):
        assert len(a) == len(b), (what, a, b)
        for x, y in zip(a, b):
            if isinstance(x, float) or isinstance(y, float):
                assert x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), (what, a, b)
            else:
                assert x == y, (what, a, b)


def _kpi_rows(conn, grain, by, kw) -> list[tuple]:
    rows = compute_kpis(conn, M, fx.START, fx.END, grain, by, **kw)
    return [tuple(r.values()) for r in rows]


@pytest.mark.parametrize("which", ["pg_wh", "pg_plain"])
def test_every_table_matches_sqlite(request, sqlite_wh, which):
    want = _canonical(sqlite_wh)
    got = _canonical(request.getfixturevalue(which))
    assert set(got) == set(want)
    assert want["kpi_values"] and want["attribution_credits"] and want["goal_pacing"] and want["people"]
    for table in sorted(want):
        _same_rows(got[table], want[table], table)


@pytest.mark.parametrize("which", ["pg_wh", "pg_plain"])
@pytest.mark.parametrize(("grain", "by", "kw"), KPI_CASES,
                         ids=[f"{g}-{b}-{'-'.join(map(str, k.values()))}".rstrip("-") for g, b, k in KPI_CASES])
def test_every_kpi_row_matches_sqlite(request, sqlite_wh, which, grain, by, kw):
    want = _kpi_rows(sqlite_wh, grain, by, kw)
    assert want
    got = _kpi_rows(request.getfixturevalue(which), grain, by, kw)
    assert [r[:7] + r[10:] for r in got] == [r[:7] + r[10:] for r in want]  # same rows in the same order
    _same_rows(got, want, (grain, by, kw))
