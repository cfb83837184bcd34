"""The post-sync step reads large results as streams: `merge_groups` over queries ordered by one key, and on
PostgreSQL server-side cursors read FETCH_ROWS rows at a time. The derived tables and KPI rows must not depend on
how rows arrive: rebuilt with one row per fetch, they equal a rebuild with the default fetch size (both backends)."""
from __future__ import annotations

import contextlib

import pytest

import warehouse.derive as derive_mod
from tests.warehouse import fixture_q1 as fx
from tests.warehouse.fixture_q1 import fetchall
from warehouse.derive import derive, merge_groups
from warehouse.goals import refresh_goal_pacing
from warehouse.kpis import compute_kpis, refresh_kpis

M = fx.MODEL
TABLES = ("people", "accounts", "opportunity_people", "attribution_credits", "opportunities", "events", "kpi_values",
          "goal_pacing")
GOAL = {"plan_year": 2024, "metric": "closed_won_revenue", "target": 180000, "quarter_weights": [0.25] * 4,
        "rate_overrides": {}}


def test_merge_groups_yields_each_key_with_its_rows_from_every_stream():
    a = [("k1", 1), ("k1", 2), ("k3", 3)]
    b = [("k2", "x"), ("k3", "y")]
    assert list(merge_groups(a, b, [])) == [
        ("k1", [("k1", 1), ("k1", 2)], [], []),
        ("k2", [], [("k2", "x")], []),
        ("k3", [("k3", 3)], [("k3", "y")], []),
    ]


def test_merge_groups_refuses_streams_out_of_order():
    # e.g. PostgreSQL sorting by a locale collation where Python compares code points ("B" < "a")
    with pytest.raises(ValueError, match="out of order"):
        list(merge_groups([("a", 1), ("B", 2)]))


def _rebuild(conn) -> dict[str, list]:
    assert derive(conn, M, "2024-03-31") == []
    assert refresh_kpis(conn, M) == []
    refresh_goal_pacing(conn, M, "2024-03-31", goals=[GOAL])
    conn.commit()
    out = {t: sorted(fetchall(conn, f"SELECT * FROM {t}"), key=repr) for t in TABLES}
    out["cohort"] = compute_kpis(conn, M, fx.START, fx.END, "month", "channel", mode="cohort", as_of="2024-03-31")
    return out


@pytest.mark.parametrize("backend", fx.BACKENDS)
def test_results_do_not_depend_on_how_rows_are_fetched(request, backend, monkeypatch):
    url = fx.pg_url_for(request, backend)
    with contextlib.ExitStack() as stack:
        want = _rebuild(stack.enter_context(fx.warehouse(backend, url, "stream_a")))
        monkeypatch.setattr(derive_mod, "FETCH_ROWS", 1)
        got = _rebuild(stack.enter_context(fx.warehouse(backend, url, "stream_b")))
    assert want["kpi_values"] and want["attribution_credits"] and want["people"]
    for table in want:
        assert got[table] == want[table], table
