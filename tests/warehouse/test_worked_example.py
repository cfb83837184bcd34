"""Acceptance: every number of spec §7 (the 2024-Q1 worked example) from derive + attribution + KPIs + goals.

Values are asserted with abs_tol = 1e-6 against the spec's printed (6-decimal) numbers.

Spec-vs-formula check: every value of §7.1 (including the per-channel ones and the "Checks" line), §7.2 (all models
× opportunities, the time-decay per-touch values and Δ days, the revenue-target rows, full_path, W-shaped money)
and §7.3 was recomputed from the formulas of §4–§6 and agrees with the spec within 1e-6; no disagreement found.
The spec rounds (0.666667, 333.333333, 0.571429, …); the assertions use the exact formula values through the
tolerance. Interpretations the example relies on (all written in the module docstrings of warehouse/):
- "by channel" money KPIs (K25/K26/K27/K31/K32 sliced) read `attribution_credits` of the chosen model
  (`default_model` = w_shaped, or `attribution_model="first_touch"` for the first-touch ROAS line);
- K21 CAC by channel divides the channel's spend by new customers whose first won opportunity that channel sourced,
  so organic_search (no spend, one customer) is 0.0 and paid_search (spend, no customer) is NULL;
- §7.3 "customers" pacing counts won deals (K08), which equals K09 here (2).

Every test that reads the warehouse runs on SQLite and on PostgreSQL 15 (`wh` is parametrized over
fixture_q1.BACKENDS; the §7 warehouse is built and derived once per backend for this module); raw SQL goes through
fixture_q1.fetchall / fetchone / run (`?` placeholders, translated for PostgreSQL by warehouse.derive).
"""
from __future__ import annotations

import math

import pytest

from tests.warehouse import fixture_q1 as fx
from tests.warehouse.fixture_q1 import fetchall, fetchone, run
from warehouse.attribution import MODELS
from warehouse.derive import derive
from warehouse.goals import pacing, plan, refresh_goal_pacing
from warehouse.kpis import compute_kpis

TOL = 1e-6
M = fx.MODEL


@pytest.fixture(scope="module", params=fx.BACKENDS)
def wh(request):
    """The §7 warehouse after derive, once per backend (SQLite, PostgreSQL) for the whole module."""
    backend = request.param
    with fx.warehouse(backend, fx.pg_url_for(request, backend), "worked_example") as conn:
        assert derive(conn, M, "2024-03-31") == []
        yield conn


@pytest.fixture(autouse=True)
def _clean_transaction(request):
    """On PostgreSQL a failed statement aborts the open transaction: end it so the module's next tests still run."""
    yield
    if "wh" in request.fixturenames:
        conn = request.getfixturevalue("wh")
        info = getattr(conn, "info", None)
        if info is not None:
            from psycopg.pq import TransactionStatus

            if info.transaction_status == TransactionStatus.INERROR:
                conn.rollback()


def _q1(conn, by=None, **kw):
    return compute_kpis(conn, M, fx.START, fx.END, "quarter", by, **kw)


def value(rows, kpi, **where):
    """The value of `kpi` in rows matching the slice; a missing sliced row means 0 for counts (no data)."""
    found = [r for r in rows if r["kpi"] == kpi and all(r[k] == v for k, v in where.items())]
    assert len(found) <= 1, (kpi, where, found)
    return found[0]["value"] if found else "missing"


def close(a, b):
    if b is None:
        return a is None
    return a is not None and a != "missing" and math.isclose(a, b, rel_tol=0, abs_tol=TOL)


def check(rows, expected, **where):
    bad = {k: (value(rows, k, **where), v) for k, v in expected.items() if not close(value(rows, k, **where), v)}
    assert not bad, bad


# ---- §7.1 ---------------------------------------------------------------------------------------------------------

TOTALS = {
    "new_leads": 10, "mqls": 6, "sqls": 3, "opportunities_created": 3, "sqos": 3, "demos": 3, "form_fills": 9,
    "deals_won": 2, "new_customers": 2, "lead_to_mql_rate": 0.6, "mql_to_sql_rate": 0.5,
    "sql_to_opportunity_rate": 1.0, "opportunity_to_win_rate": 0.666667, "win_rate": 1.0, "mql_to_demo_rate": 0.5,
    "lead_to_demo_rate": 0.3, "lead_to_close_rate": 0.2, "visitor_to_lead_rate": 0.01, "marketing_spend": 6000.0,
    "cpl": 600.0, "cost_per_mql": 1000.0, "cost_per_sqo": 2000.0, "cac": 3000.0, "cpc": 10.0,
    "pipeline_created": 27000.0, "pipe_to_spend": 4.5, "closed_won_revenue": 18000.0, "average_deal_size": 9000.0,
    "average_sales_cycle_days": 69.0, "new_mrr": 1500.0, "mrr": 1500.0, "roi": 2.0, "clv": 21600.0,
    "clv_to_cac": 7.2, "emails_sent": 8, "emails_delivered": 7, "deliverability_rate": 0.875,
    "unique_open_rate": 0.571429, "unique_click_rate": 0.285714, "click_to_open_rate": 0.5,
    "unsubscribe_rate": 0.142857, "email_bounce_rate": 0.125, "sessions": 1000.0, "engagement_rate": 0.55,
    "bounce_rate": 0.45, "pages_per_session": 1.97, "new_users": 760.0, "dark_social_traffic_share": 0.07,
    "webinar_registrations": 4, "webinar_attendance_rate": 0.5, "dark_funnel_gap": 0.333333,
    "sr_sw_agreement": 0.333333, "self_report_coverage": 1.0,
}


def test_totals(wh):
    rows = _q1(wh)
    assert {r["period_start"] for r in rows} == {"2024-01-01"} and {r["period_end"] for r in rows} == {"2024-03-31"}
    check(rows, TOTALS)
    assert all(r["channel"] is None and r["campaign_key"] is None and r["source_system"] is None for r in rows)


def test_statuses(wh):
    rows = {r["kpi"]: r for r in _q1(wh)}
    assert rows["deliverability_rate"]["status"] == "warning"  # 0.875 < 0.95
    assert rows["webinar_attendance_rate"]["status"] == "good"  # 0.5, boundary inclusive
    assert rows["clv_to_cac"]["status"] == "profitable"  # 7.2 > 1
    assert rows["cpl"]["status"] is None


def test_by_channel(wh):
    rows = _q1(wh, "channel")
    check(rows, {"cpl": 333.333333, "cost_per_mql": 500.0, "pipe_to_spend": 1.2, "spend_conversion_parity": 2.0},
          channel="webinar")
    check(rows, {"cost_per_mql": 3000.0, "cac": 3000.0, "pipe_to_spend": 2.4, "roas": 2.4, "roi": 1.4,
                 "spend_conversion_parity": 0.333333}, channel="paid_social")
    check(rows, {"cost_per_mql": None, "cac": None, "pipe_to_spend": 2.7, "roas": 2.7,
                 "spend_conversion_parity": 0.0}, channel="paid_search")
    check(rows, {"cac": 0.0, "sessions": 300.0}, channel="organic_search")


def test_first_touch_roas(wh):
    rows = _q1(wh, "channel", attribution_model="first_touch")
    check(rows, {"roas": 4.0}, channel="paid_social")
    check(rows, {"roas": 0.0}, channel="paid_search")


def test_by_campaign(wh):
    rows = _q1(wh, "campaign")
    check(rows, {"cpc": 30.0, "ctr": 0.005}, campaign_key="linkedin_ads:LI1")
    check(rows, {"cpc": 5.0, "ctr": 0.04, "paid_conversion_rate": 0.02, "cost_per_conversion": 250.0},
          campaign_key="google_ads:G1")
    check(rows, {"emails_sent": 8, "emails_delivered": 7, "deliverability_rate": 0.875}, campaign_key="mailchimp:M1")
    check(rows, {"webinar_registrations": 4, "webinar_attendance_rate": 0.5}, campaign_key="salesforce:W1")


def test_dark_funnel_delta(wh):
    rows = _q1(wh, "channel")
    got = {r["channel"]: r["value"] for r in rows if r["kpi"] == "dark_funnel_delta" and r["value"]}
    assert got == {"dark_social": 1, "webinar": 1, "paid_social": -1, "organic_social": -1}
    assert sum(r["value"] for r in rows if r["kpi"] == "dark_funnel_delta") == 0


def test_checks_line(wh):
    rows = _q1(wh, "channel")
    leads = {r["channel"]: r["value"] for r in rows if r["kpi"] == "new_leads"}
    assert leads == {"webinar": 3, "direct": 3, "paid_social": 1, "dark_social": 1, "organic_search": 1,
                     "organic_social": 1}
    mqls = {r["channel"]: r["value"] for r in rows if r["kpi"] == "mqls"}
    assert mqls == {"webinar": 2, "paid_social": 1, "dark_social": 1, "organic_search": 1, "organic_social": 1}
    assert mqls.get("direct", 0) == 0
    # SR / SW per opportunity
    from warehouse.attribution import self_reported_by_opportunity

    sr = dict(self_reported_by_opportunity(wh))
    assert [sr.get(fx.OK[d]) for d in ("D1", "D2", "D3")] == ["dark_social", "organic_search", "webinar"]
    sw = dict(fetchall(wh, "SELECT opportunity_key, sourced_channel FROM opportunities"))
    assert [sw[fx.OK[d]] for d in ("D1", "D2", "D3")] == ["paid_social", "organic_search", "organic_social"]


def test_people_channels(wh):
    got = {pk: (oc, rc) for pk, oc, rc in fetchall(
        wh, "SELECT person_key, original_channel, reconciled_channel FROM people")}
    expected = {"P1": "paid_social", "P2": "dark_social", "P3": "organic_search", "P4": "webinar",
                "P5": "organic_social", "P6": "webinar", "P7": "webinar", "P8": "direct", "P9": "direct",
                "P10": "direct"}
    assert {p: got[fx.PK[p]][0] for p in expected} == expected
    assert got[fx.PK["P8"]][1] == "dark_social"  # reconciled by the podcast answer ([D-30])
    assert got[fx.PK["P3"]][1] == "organic_search"


# ---- §7.2 ---------------------------------------------------------------------------------------------------------

THIRD = 1 / 3
PIPELINE = {
    "first_touch": [{"paid_social": 1}, {"organic_search": 1}, {"organic_social": 1}],
    "last_touch": [{"paid_search": 1}, {"paid_search": 1}, {"organic_social": 1}],
    "linear": [{"paid_social": 2 / 7, "webinar": 2 / 7, "dark_social": 1 / 7, "email": 1 / 7, "paid_search": 1 / 7},
               {"organic_search": 0.25, "direct": 0.25, "email": 0.25, "paid_search": 0.25},
               {"organic_social": 0.4, "webinar": 0.4, "direct": 0.2}],
    "u_shaped": [{"paid_social": 0.44, "paid_search": 0.4, "webinar": 0.08, "dark_social": 0.04, "email": 0.04},
                 {"organic_search": 0.4, "paid_search": 0.4, "direct": 0.1, "email": 0.1},
                 {"organic_social": 0.8, "webinar": 0.133333, "direct": 0.066667}],
    "w_shaped": [{"paid_social": 0.6, "paid_search": 0.3, "webinar": 0.05, "dark_social": 0.025, "email": 0.025},
                 {"organic_search": 0.3, "direct": 0.3, "paid_search": 0.3, "email": 0.1},
                 {"organic_social": 0.9, "webinar": 0.066667, "direct": 0.033333}],
    "j_shaped": [{"paid_search": 0.6, "paid_social": 0.24, "webinar": 0.08, "dark_social": 0.04, "email": 0.04},
                 {"paid_search": 0.6, "organic_search": 0.2, "direct": 0.1, "email": 0.1},
                 {"organic_social": 0.8, "webinar": 0.133333, "direct": 0.066667}],
    "inverse_j": [{"paid_social": 0.64, "paid_search": 0.2, "webinar": 0.08, "dark_social": 0.04, "email": 0.04},
                  {"organic_search": 0.6, "paid_search": 0.2, "direct": 0.1, "email": 0.1},
                  {"organic_social": 0.8, "webinar": 0.133333, "direct": 0.066667}],
    "hybrid_self_reported": [
        {"dark_social": 0.5125, "paid_social": 0.3, "paid_search": 0.15, "webinar": 0.025, "email": 0.0125},
        {"organic_search": 0.65, "direct": 0.15, "paid_search": 0.15, "email": 0.05},
        {"webinar": 0.533333, "organic_social": 0.45, "direct": 0.016667}],
}
TIME_DECAY = [
    {"T1": 0.004962, "T2": 0.005456, "T5": 0.035659, "T3": 0.073408, "T6": 0.175315, "T7": 0.276009, "T4": 0.429191},
    {"T8": 0.024966, "T9": 0.024983, "T10": 0.082430, "T11": 0.867622},
    {"T16": 0.002686, "T12": 0.052826, "T13": 0.055507, "T14": 0.378054, "T15": 0.510927},
]
FULL_PATH = [{"paid_social": 0.45, "paid_search": 0.45, "webinar": 0.05, "dark_social": 0.025, "email": 0.025},
             {"paid_search": 0.45, "organic_search": 0.225, "direct": 0.225, "email": 0.1}]
W_MONEY = {"paid_social": 7200, "paid_search": 5400, "organic_social": 8100, "organic_search": 1800, "direct": 2100,
           "email": 900, "webinar": 1200, "dark_social": 300}


def shares(conn, model, target, opp):
    out: dict[str, float] = {}
    for ch, credit in fetchall(conn, "SELECT channel, credit FROM attribution_credits WHERE model = ? AND target = ? "
                                     "AND opportunity_key = ?", (model, target, opp)):
        out[ch] = out.get(ch, 0.0) + credit
    return out


def same(got: dict, expected: dict) -> bool:
    return set(got) == set(expected) and all(math.isclose(got[k], v, abs_tol=TOL) for k, v in expected.items())


@pytest.mark.parametrize("model_name", sorted(PIPELINE))
@pytest.mark.parametrize("target", ["pipeline", "revenue"])
def test_position_and_hybrid_models(wh, model_name, target):
    for i, d in enumerate(("D1", "D2", "D3")):
        if target == "revenue" and d == "D3":  # open: no revenue rows
            assert shares(wh, model_name, target, fx.OK[d]) == {}
            continue
        got = shares(wh, model_name, target, fx.OK[d])
        assert same(got, PIPELINE[model_name][i]), (d, got)  # revenue = pipeline for D1, D2 (§7.2)


def test_time_decay_per_touch(wh):
    eid = {sid.split("-")[0]: e for e, sid in fetchall(wh, "SELECT event_id, source_id FROM events")}
    for target in ("pipeline", "revenue"):
        for i, d in enumerate(("D1", "D2", "D3")):
            if target == "revenue" and d == "D3":
                continue
            got = dict(fetchall(wh, "SELECT touch_event_id, credit FROM attribution_credits WHERE model = "
                                    "'time_decay' AND target = ? AND opportunity_key = ?", (target, fx.OK[d])))
            expected = {eid[t]: v for t, v in TIME_DECAY[i].items()}
            assert same(got, expected), (target, d)


def test_time_decay_delta_days():
    from warehouse.attribution import _dt

    t_c = _dt("2024-02-20T12:00:00Z")
    touches = ["01-05 10:00", "01-06 09:00", "01-25 08:00", "02-01 15:00", "02-10 10:00", "02-15 00:00", "02-19 11:00"]
    deltas = [(t_c - _dt(fx.at(t))).total_seconds() / 86400 for t in touches]
    for got, exp in zip(deltas, [46.083333, 45.125, 26.166667, 18.875, 10.083333, 5.5, 1.041667]):
        assert math.isclose(got, exp, abs_tol=TOL)


def test_full_path_revenue_only(wh):
    assert shares(wh, "full_path", "pipeline", fx.OK["D1"]) == {}
    for i, d in enumerate(("D1", "D2")):
        assert same(shares(wh, "full_path", "revenue", fx.OK[d]), FULL_PATH[i])


def test_credits_sum_to_one_and_amounts(wh):
    for model, target, opp, total, amount in fetchall(
            wh, "SELECT model, target, a.opportunity_key, SUM(credit), SUM(credited_amount) FROM attribution_credits a "
            "GROUP BY model, target, a.opportunity_key"):
        assert math.isclose(total, 1.0, abs_tol=1e-9), (model, target, opp)
        expected = {fx.OK["D1"]: 12000, fx.OK["D2"]: 6000, fx.OK["D3"]: 9000}[opp]
        assert math.isclose(amount, expected, abs_tol=1e-6)
    models = {m for (m,) in fetchall(wh, "SELECT DISTINCT model FROM attribution_credits")}
    assert models == set(MODELS)
    conv = dict(fetchall(wh, "SELECT opportunity_key, conversion_at FROM attribution_credits "
                             "WHERE target = 'revenue'"))
    assert conv[fx.OK["D1"]] == "2024-03-15T00:00:00Z"


def test_w_shaped_pipeline_money(wh):
    got = dict(fetchall(wh, "SELECT channel, SUM(credited_amount) FROM attribution_credits WHERE model = 'w_shaped' "
                            "AND target = 'pipeline' GROUP BY channel"))
    assert same(got, W_MONEY)
    assert math.isclose(sum(got.values()), 27000, abs_tol=TOL)
    rows = _q1(wh, "channel")
    check(rows, {"pipeline_created": 7200.0}, channel="paid_social")
    check(rows, {"pipeline_created": 2100.0}, channel="direct")


def test_sourced_channel_and_cycle(wh):
    got = {k: (sc, ft) for k, sc, ft in fetchall(
        wh, "SELECT opportunity_key, sourced_channel, first_touch_at FROM opportunities")}
    assert got[fx.OK["D1"]] == ("paid_social", "2024-01-05T10:00:00Z")
    assert got[fx.OK["D2"]] == ("organic_search", "2024-01-20T14:00:00Z")
    rows = _q1(wh, "channel")
    check(rows, {"average_sales_cycle_days": 70.0}, channel="paid_social")
    check(rows, {"average_sales_cycle_days": 68.0}, channel="organic_search")


# ---- §7.3 ---------------------------------------------------------------------------------------------------------

GOAL = {"plan_year": 2024, "metric": "closed_won_revenue", "target": 180000,
        "rate_overrides": {"ADS": 9000, "win": 0.6666666667, "s2o": 1.0, "m2s": 0.5, "l2m": 0.6, "v2l": 0.01}}


def test_goal_cascade_and_split(wh):
    p = plan(wh, M, GOAL)
    assert p["annual"] == {"closed_won_revenue": 180000, "customers": 20, "opportunities": 30, "sqls": 30,
                           "mqls": 60, "leads": 100, "sessions": 10000}
    assert p["quarterly"]["customers"] == [5, 5, 5, 5]
    assert p["quarterly"]["opportunities"] == [8, 8, 7, 7]
    assert p["quarterly"]["mqls"] == [15, 15, 15, 15]
    assert p["quarterly"]["sessions"] == [2500] * 4
    assert p["monthly"]["opportunities"][:3] == [3, 3, 2] and sum(p["monthly"]["opportunities"]) == 30


def test_goal_window_without_history_is_null(wh):
    p = plan(wh, M, {"plan_year": 2024, "metric": "closed_won_revenue", "target": 180000})
    assert p["annual"]["customers"] is None and p["annual"]["sessions"] is None and p["warnings"]


def test_pacing(wh):
    rows, _ = pacing(wh, M, GOAL, "2024-02-15")
    year = {r["metric"]: r for r in rows if r["quarter"] is None}
    assert math.isclose(year["mqls"]["expected_to_date"], 7.582418, abs_tol=TOL)
    assert year["mqls"]["actual_to_date"] == 3
    assert math.isclose(year["mqls"]["pacing"], 0.395652, abs_tol=TOL) and year["mqls"]["band"] == "behind"
    assert math.isclose(year["opportunities"]["expected_to_date"], 4.043956, abs_tol=TOL)
    assert year["opportunities"]["pacing"] == 0.0
    rows, _ = pacing(wh, M, GOAL, "2024-03-31")
    year = {r["metric"]: r for r in rows if r["quarter"] is None}
    assert math.isclose(year["mqls"]["pacing"], 0.4, abs_tol=TOL) and year["mqls"]["band"] == "behind"
    assert math.isclose(year["customers"]["pacing"], 0.4, abs_tol=TOL)
    q1 = {r["metric"]: r for r in rows if r["quarter"] == 1}
    assert q1["mqls"]["target"] == 15 and q1["mqls"]["actual_to_date"] == 6
    q2 = {r["metric"]: r for r in rows if r["quarter"] == 2}
    assert q2["mqls"]["expected_to_date"] == 0.0 and q2["mqls"]["pacing"] is None


def test_refresh_goal_pacing_table(wh):
    import json

    run(wh, "DELETE FROM goals")
    run(wh, "INSERT INTO goals VALUES (?, ?, ?, ?, ?)",
        (2024, "closed_won_revenue", 180000, None, json.dumps(GOAL["rate_overrides"])))
    assert refresh_goal_pacing(wh, M, "2024-02-15") == []
    got = fetchone(wh, "SELECT pacing, band, as_of FROM goal_pacing WHERE metric = 'mqls' AND quarter IS NULL")
    assert math.isclose(got[0], 0.395652, abs_tol=TOL) and got[1:] == ("behind", "2024-02-15")
    assert fetchone(wh, "SELECT COUNT(*) FROM goal_pacing")[0] == 7 * 5
