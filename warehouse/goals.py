"""Annual goals worked backwards into funnel requirements, and pacing (spec §6, Article 4).

Input: `goals(plan_year, 'closed_won_revenue', R, quarter_weights, rate_overrides)` rows (or the `[[goals]]` config
tables passed in). The plan year starts on the first day of `fiscal_year_start_month` of `plan_year`.

1. Historical rates: in-period ratios over the 4 complete quarters before the plan year — ADS = K28
   `average_deal_size`, win = K13 `opportunity_to_win_rate` (not the win rate), s2o = K12, m2s = K11, l2m = K10,
   v2l = K16; each key of `rate_overrides` replaces the historical rate of that name.
2. Requirement cascade with `ceil*(x) = ceil(round(x, 9))` at every stage ([D-31]): customers = ceil*(R / ADS),
   opportunities = ceil*(customers / win), sqls = ceil*(opportunities / s2o), mqls = ceil*(sqls / m2s),
   leads = ceil*(mqls / l2m), sessions = ceil*(leads / v2l). A NULL or 0 rate makes that stage and every stage
   above it in the funnel NULL, with a warning.
3. Quarterly targets: largest-remainder split by `quarter_weights` (default 0.25 each; floor, +1 to the largest
   fractions, ties to the earlier quarter) so quarters sum exactly; months split a quarter the same way in thirds.
   A non-integral revenue target is split proportionally (money needs no rounding).
4. Pacing at `as_of`: expected = Σ completed-quarter targets + target_q × elapsed_days / days_in_quarter
   (elapsed_days = (as_of − quarter_start).days + 1); pacing = ratio(actual since plan-year start, expected).
   Bands [D-32]: `on_track` ≥ 1.0, `at_risk` ≥ 0.9, else `behind` (the spec's names; NULL when pacing is NULL).

Actuals: closed_won_revenue = K27, customers = K08 `deals_won` (ADS and win are per deal, so the cascade counts
won deals), opportunities = K04, sqls = K03, mqls = K02, leads = K01, sessions = K41.

`goal_pacing` rows per goal and metric: `quarter` NULL = the plan year (target = annual requirement, expected and
actual year to date) and `quarter` 1–4 (target = that quarter's split; expected = its full target once complete,
the elapsed share while current, 0 before it starts; actual within the quarter up to as_of).
"""
from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import Any

from normalize.model import Model
from warehouse.derive import begin_owned, execute, insert_rows, query
from warehouse.kpis import _add_months, compute_kpis

METRIC = "closed_won_revenue"
CASCADE = (("customers", "ADS"), ("opportunities", "win"), ("sqls", "s2o"), ("mqls", "m2s"), ("leads", "l2m"),
           ("sessions", "v2l"))
RATE_KPI = {"ADS": "average_deal_size", "win": "opportunity_to_win_rate", "s2o": "sql_to_opportunity_rate",
            "m2s": "mql_to_sql_rate", "l2m": "lead_to_mql_rate", "v2l": "visitor_to_lead_rate"}
ACTUAL_KPI = {"closed_won_revenue": "closed_won_revenue", "customers": "deals_won",
              "opportunities": "opportunities_created", "sqls": "sqls", "mqls": "mqls", "leads": "new_leads",
              "sessions": "sessions"}
METRICS = tuple(ACTUAL_KPI)
COLUMNS = ("plan_year", "metric", "quarter", "target", "expected_to_date", "actual_to_date", "pacing", "band", "as_of")


def ceil_star(x: float) -> int:
    return math.ceil(round(x, 9))


def band(pacing: float | None) -> str | None:
    if pacing is None:
        return None
    if pacing >= 1.0:
        return "on_track"
    if pacing >= 0.9:
        return "at_risk"
    return "behind"


def plan_start(plan_year: int, model: Model) -> date:
    return date(plan_year, model.fiscal_year_start_month, 1)


def quarters(plan_year: int, model: Model) -> list[tuple[date, date]]:
    s = plan_start(plan_year, model)
    return [(_add_months(s, 3 * i), _add_months(s, 3 * i + 3) - timedelta(days=1)) for i in range(4)]


def historical_rates(conn: Any, model: Model, plan_year: int) -> dict[str, float | None]:
    """The six rates over the four quarters before the plan year (in-period)."""
    start = plan_start(plan_year, model)
    lo, hi = _add_months(start, -12).isoformat(), (start - timedelta(days=1)).isoformat()
    values = {r["kpi"]: r["value"] for r in compute_kpis(conn, model, lo, hi, None, None)}
    return {k: values.get(kpi) for k, kpi in RATE_KPI.items()}


def requirements(target: float, rates: dict[str, float | None]) -> tuple[dict[str, float | None], list[str]]:
    """The cascade of §6: {metric: requirement}; a NULL/0 rate nulls that stage and every one above it."""
    out: dict[str, float | None] = {METRIC: target}
    warnings: list[str] = []
    prev: float | None = target
    for metric, rate in CASCADE:
        r = rates.get(rate)
        if prev is None or not r:
            if prev is not None:
                warnings.append(f"rate {rate} is {'NULL' if r is None else 0}: {metric} and every stage above it "
                                f"have no requirement")
            prev = None
        else:
            prev = ceil_star(prev / r)
        out[metric] = prev
    return out, warnings


def split(total: float | None, weights: list[float]) -> list[float | None]:
    """Largest-remainder split of an integral total by weights (ties to the earlier part); exact otherwise."""
    if total is None:
        return [None] * len(weights)
    s = sum(weights)
    shares = [total * w / s for w in weights]
    if float(total) != int(total):
        return shares
    floors = [math.floor(round(x, 9)) for x in shares]
    left = int(total) - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(round(shares[i] - floors[i], 9)), i))
    for i in order[:left]:
        floors[i] += 1
    return [float(x) for x in floors]


def plan(conn: Any, model: Model, goal: dict) -> dict[str, Any]:
    """Rates, annual requirements, quarterly and monthly targets of one goal."""
    year = int(goal["plan_year"])
    weights = _json(goal.get("quarter_weights")) or [0.25, 0.25, 0.25, 0.25]
    overrides = _json(goal.get("rate_overrides")) or {}
    rates = historical_rates(conn, model, year)
    rates.update({k: (float(v) if v is not None else None) for k, v in overrides.items() if k in RATE_KPI})
    req, warnings = requirements(float(goal["target"]), rates)
    q = {m: split(v, weights) for m, v in req.items()}
    months = {m: [x for qt in qs for x in split(qt, [1, 1, 1])] for m, qs in q.items()}
    return {"plan_year": year, "rates": rates, "annual": req, "quarterly": q, "monthly": months,
            "warnings": warnings}


def pacing(conn: Any, model: Model, goal: dict, as_of: str) -> tuple[list[dict], list[str]]:
    """`goal_pacing` rows (dicts) of one goal at `as_of`."""
    p = plan(conn, model, goal)
    year = p["plan_year"]
    qs = quarters(year, model)
    today = date.fromisoformat(as_of[:10])
    start = qs[0][0]
    rows: list[dict] = []
    if today < start:
        actual_year: dict[str, float] = {}
        actual_q: dict[tuple[str, str], float] = {}
    else:
        upto = min(today, qs[-1][1]).isoformat()
        actual_year = {r["kpi"]: r["value"] for r in compute_kpis(conn, model, start.isoformat(), upto, None, None)}
        actual_q = {(r["kpi"], r["period_start"]): r["value"]
                    for r in compute_kpis(conn, model, start.isoformat(), upto, "quarter", None)}
    for metric in METRICS:
        kpi = ACTUAL_KPI[metric]
        q_targets = p["quarterly"][metric]
        expected_year = 0.0 if p["annual"][metric] is not None else None
        for i, (qs_, qe) in enumerate(qs):
            t = q_targets[i]
            if today > qe:
                expected = t
            elif today >= qs_:
                expected = None if t is None else t * ((today - qs_).days + 1) / ((qe - qs_).days + 1)
            else:
                expected = None if t is None else 0.0
            if expected_year is not None and expected is not None:
                expected_year += expected
            actual = actual_q.get((kpi, qs_.isoformat()), 0.0) if today >= qs_ else 0.0
            pace = None if not expected else (actual or 0.0) / expected
            rows.append({"plan_year": year, "metric": metric, "quarter": i + 1, "target": t,
                         "expected_to_date": expected, "actual_to_date": actual, "pacing": pace, "band": band(pace),
                         "as_of": today.isoformat()})
        actual = actual_year.get(kpi, 0.0) or 0.0
        pace = None if not expected_year else actual / expected_year
        rows.append({"plan_year": year, "metric": metric, "quarter": None, "target": p["annual"][metric],
                     "expected_to_date": expected_year, "actual_to_date": actual, "pacing": pace, "band": band(pace),
                     "as_of": today.isoformat()})
    return rows, p["warnings"]


def refresh_goal_pacing(conn: Any, model: Model, as_of: str, goals: list[dict] | None = None) -> list[str]:
    """Rewrite `goal_pacing` for every goal (the `goals` table when `goals` is None); returns warnings."""
    owned = begin_owned(conn)
    if goals is None:
        goals = [dict(zip(("plan_year", "metric", "target", "quarter_weights", "rate_overrides"), r)) for r in query(
            conn, "SELECT plan_year, metric, target, quarter_weights, rate_overrides FROM goals ORDER BY plan_year, metric")]
    warnings: list[str] = []
    out: list[tuple] = []
    for g in goals:
        if g.get("metric", METRIC) != METRIC:
            warnings.append(f"goal {g.get('plan_year')} {g.get('metric')}: only {METRIC} goals are supported")
            continue
        rows, w = pacing(conn, model, g, as_of)
        warnings += [f"goal {g['plan_year']}: {x}" for x in w]
        out += [tuple(r[c] for c in COLUMNS) for r in rows]
    execute(conn, "DELETE FROM goal_pacing")
    insert_rows(conn, "goal_pacing", COLUMNS, out)
    if owned:
        conn.commit()
    return warnings


def _json(v: Any) -> Any:
    if v is None or v == "":
        return None
    return json.loads(v) if isinstance(v, str) else v
