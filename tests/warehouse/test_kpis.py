"""KPI engine, derive and attribution behaviour beyond the §7 numbers: grains, fiscal periods, cohorts, fx,
refresh into kpi_values, determinism, deletions, UTM campaign keys, unattributed opportunities.

Every test that reads a warehouse runs on SQLite and on PostgreSQL 15 (`new_wh` / `wh` are parametrized over
fixture_q1.BACKENDS; each test gets its own warehouse, as tests here change it); raw SQL goes through
fixture_q1.fetchall / fetchone / run (`?` placeholders, translated for PostgreSQL by warehouse.derive)."""
from __future__ import annotations

import contextlib
import json
import math
import threading
from dataclasses import replace
from datetime import date

import pytest

from normalize.events import event, opportunity_key
from tests.warehouse import fixture_q1 as fx
from tests.warehouse.fixture_q1 import fetchall, fetchone, run
from warehouse.derive import derive
from warehouse.kpis import KPI_NAMES, compute_kpis, period_of, refresh_kpis

M = fx.MODEL
DERIVED = ("people", "accounts", "opportunity_people", "attribution_credits", "events", "opportunities")


@pytest.fixture(params=fx.BACKENDS)
def new_wh(request):
    """`new_wh()` -> a fresh §7 warehouse (derive not run) on the test's backend; as many as the test needs."""
    backend = request.param
    url = fx.pg_url_for(request, backend)
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(fx.warehouse(backend, url, request.node.name[:30]))


@pytest.fixture
def wh(new_wh):
    conn = new_wh()
    derive(conn, M)
    return conn


def values(rows, kpi, key="period_start"):
    return {r[key]: r["value"] for r in rows if r["kpi"] == kpi}


def dump(conn, table):
    return sorted(fetchall(conn, f"SELECT * FROM {table}"), key=repr)


# ---- periods --------------------------------------------------------------------------------------------------------


def test_period_bounds():
    d = date(2024, 2, 15)
    assert period_of(d, "week") == (date(2024, 2, 12), date(2024, 2, 18))  # ISO week, Monday..Sunday
    assert period_of(d, "month") == (date(2024, 2, 1), date(2024, 2, 29))
    assert period_of(d, "quarter") == (date(2024, 1, 1), date(2024, 3, 31))
    assert period_of(d, "quarter", 2) == (date(2024, 2, 1), date(2024, 4, 30))  # fiscal year starting February
    assert period_of(date(2024, 1, 31), "quarter", 2) == (date(2023, 11, 1), date(2024, 1, 31))
    assert period_of(d, "year", 4) == (date(2023, 4, 1), date(2024, 3, 31))


def test_grains_and_clipping(wh):
    rows = compute_kpis(wh, M, fx.START, fx.END, "month")
    assert values(rows, "new_leads") == {"2024-01-01": 4, "2024-02-01": 4, "2024-03-01": 2}
    assert values(rows, "mqls") == {"2024-01-01": 2, "2024-02-01": 3, "2024-03-01": 1}
    # every KPI has exactly one total row per period
    for p in ("2024-01-01", "2024-02-01", "2024-03-01"):
        assert sorted(r["kpi"] for r in rows if r["period_start"] == p) == sorted(KPI_NAMES)
    weeks = compute_kpis(wh, M, "2024-01-03", "2024-01-16", "week")
    assert sorted({(r["period_start"], r["period_end"]) for r in weeks}) == [
        ("2024-01-03", "2024-01-07"), ("2024-01-08", "2024-01-14"), ("2024-01-15", "2024-01-16")]
    assert values(weeks, "new_leads") == {"2024-01-03": 1, "2024-01-08": 1, "2024-01-15": 1}
    whole = compute_kpis(wh, M, fx.START, fx.END, None)
    assert values(whole, "new_leads") == {"2024-01-01": 10}
    # MRR is a stock at the period end: D1 won 03-15, D2 03-28 (1,000 + 500 a month)
    assert values(rows, "mrr") == {"2024-01-01": 0, "2024-02-01": 0, "2024-03-01": 1500}
    days = compute_kpis(wh, M, "2024-03-14", "2024-03-29", "day")
    mrr = values(days, "mrr")
    assert mrr["2024-03-14"] == 0 and mrr["2024-03-15"] == 1000 and mrr["2024-03-28"] == 1500


def test_source_slice(wh):
    rows = compute_kpis(wh, M, fx.START, fx.END, "quarter", "source")
    leads = {r["source_system"]: r["value"] for r in rows if r["kpi"] == "new_leads"}
    assert leads == {"hubspot": 10}  # P1's later Salesforce lead_created is not a first entry
    assert {r["source_system"]: r["value"] for r in rows if r["kpi"] == "cpc"} == {"linkedin_ads": 30.0,
                                                                                 "google_ads": 5.0}


def test_landing_page_rate_per_path(wh):
    rows = compute_kpis(wh, M, fx.START, fx.END, "quarter", "path")
    got = {r["landing_path"]: (r["numerator"], r["denominator"]) for r in rows
           if r["kpi"] == "landing_page_conversion_rate"}
    assert got["/pricing"] == (2, 400)  # T4, T11 on /pricing; 400 GA sessions landed there
    assert got["/ebook"] == (2, 90)
    assert got["/contact"] == (2, 0) and all(r["value"] is None for r in rows if r["landing_path"] == "/contact")


def test_cohort_mode(wh):
    q = compute_kpis(wh, M, fx.START, fx.END, "quarter", mode="cohort", as_of="2024-03-31")
    assert values(q, "lead_to_mql_rate") == {"2024-01-01": 0.6}
    jan = compute_kpis(wh, M, "2024-01-01", "2024-01-31", "month", mode="cohort", as_of="2024-03-31")
    assert values(jan, "lead_to_mql_rate") == {"2024-01-01": 0.75}  # P1, P3, P5 of P1, P3, P5, P8
    early = compute_kpis(wh, M, "2024-01-01", "2024-01-31", "month", mode="cohort", as_of="2024-01-20")
    assert values(early, "lead_to_mql_rate") == {"2024-01-01": 0.25}  # only P1 (01-10) by 01-20
    won = compute_kpis(wh, M, fx.START, fx.END, None, mode="cohort", as_of="2024-03-20")
    assert math.isclose(values(won, "opportunity_to_win_rate")["2024-01-01"], 1 / 3)
    assert values(won, "win_rate")["2024-01-01"] == 1.0
    # lead -> close: P1, P2 (D1) and P3 (D2) are linked to opportunities won by 03-31 ("customer" stage)
    assert values(q, "lead_to_close_rate") == {"2024-01-01": 0.3}
    # email rates are send cohorts: opens after as_of are excluded
    sent = compute_kpis(wh, M, fx.START, fx.END, None, mode="cohort", as_of="2024-02-01")
    assert values(sent, "unique_open_rate")["2024-01-01"] == pytest.approx(4 / 7)


def test_fx_conversion_and_missing_rate(wh):
    rows = []
    for cur, amount in (("EUR", 100.0), ("GBP", 50.0)):
        r = event("ad_spend", "2024-02-10T00:00:00Z", "meta_ads", "insights", f"2024-02-10|{cur}", event_date="2024-02-10",
                  amount=amount, currency=cur, is_aggregate=True, campaign_key=f"meta_ads:{cur}",
                  channel="paid_social").values
        rows.append(r)
    fx.insert(wh, {"events": rows, "fx_rates": [{"date": "2024-02-01", "currency": "EUR", "rate_to_reporting": 1.1}]})
    warnings: list[str] = []
    got = compute_kpis(wh, M, fx.START, fx.END, "quarter", warnings=warnings)
    assert values(got, "marketing_spend") == {"2024-01-01": pytest.approx(6110.0)}  # EUR at the 02-01 rate
    assert len(warnings) == 1 and "GBP" in warnings[0]
    assert refresh_kpis(wh, M) == warnings


def test_refresh_kpis_table(wh):
    assert refresh_kpis(wh, M) == []
    grains = dict(fetchall(wh, "SELECT grain, COUNT(DISTINCT period_start) FROM kpi_values GROUP BY grain"))
    # the data's range (days holding a KPI fact) is 2024-01-06 (P1's lead and form) .. 2024-03-28 (D2 won);
    # periods keep their natural bounds
    assert grains == {"day": 83, "week": 13, "month": 3, "quarter": 1, "year": 1}
    assert fetchone(wh, "SELECT MIN(period_start), MAX(period_end) FROM kpi_values WHERE grain = 'week'") == (
        "2024-01-01", "2024-03-31")
    q = {r[0]: r[1:] for r in fetchall(
        wh, "SELECT kpi, value, status FROM kpi_values WHERE grain = 'quarter' AND channel IS NULL "
            "AND campaign_key IS NULL AND source_system IS NULL AND landing_path IS NULL")}
    assert q["new_leads"] == (10, None) and q["deliverability_rate"] == (0.875, "warning")
    assert math.isclose(q["opportunity_to_win_rate"][0], 2 / 3)
    ch = dict(fetchall(wh, "SELECT channel, value FROM kpi_values WHERE grain = 'year' AND kpi = 'cpl' "
                           "AND channel IS NOT NULL"))
    assert math.isclose(ch["webinar"], 1000 / 3)
    before = dump(wh, "kpi_values")
    assert refresh_kpis(wh, M) == [] and dump(wh, "kpi_values") == before  # idempotent
    assert refresh_kpis(wh, M, "2024-02-01", "2024-02-29") == [] and dump(wh, "kpi_values") == before
    assert fx.index_exists(wh, "ix_kpi_rows_kpi_id_slice_id") and fx.index_exists(wh, "ix_kpi_slices_grain_period_start")


# ---- derive ---------------------------------------------------------------------------------------------------------


def test_derive_is_deterministic_and_idempotent(new_wh):
    a, b = new_wh(), new_wh()
    derive(a, M)
    derive(b, M)
    first = {t: dump(a, t) for t in DERIVED}
    assert first == {t: dump(b, t) for t in DERIVED}
    derive(a, M)
    assert first == {t: dump(a, t) for t in DERIVED}


def test_utm_campaign_keys_and_campaign_channels(wh):
    key = dict(fetchall(wh, "SELECT source_id, campaign_key FROM events WHERE event_type IN ('web_visit', "
                            "'form_submitted', 'email_clicked', 'program_spend')"))
    assert key["T1-P1"] == "linkedin_ads:LI1"  # utm_campaign li1 = campaigns.utm_campaign LI1
    assert key["T2-P1"] is None  # no utm_campaign
    fx.insert(wh, {"events": [event("web_visit", "2024-03-01T10:00:00Z", "hubspot", "contact", "Z1",
                                    person_key=fx.PK["P9"], channel="other", utm={"utm_campaign": "spring"}).values,
                              event("email_opened", "2024-03-02T10:00:00Z", "hubspot", "email_event", "Z2",
                                    person_key=fx.PK["P9"], campaign_key="hubspot_email:77").values]})
    derive(wh, M)
    got = dict(fetchall(wh, "SELECT source_id, campaign_key || ' ' || channel FROM events WHERE source_id IN "
                            "('Z1', 'Z2', 'T3-P1', 'W1')"))
    assert got == {"Z1": "utm:spring other", "Z2": "hubspot_email:77 email", "T3-P1": "mailchimp:M1 email",
                   "W1": "salesforce:W1 webinar"}
    # lifecycle events carry the person's original channel and first-touch campaign; opportunity events the sourcing
    life = dict(fetchall(wh, "SELECT source_id, channel || ' ' || COALESCE(campaign_key, '-') FROM events "
                             "WHERE event_type = 'lead_created' AND source_system = 'hubspot'"))
    assert life[fx.HS_ID["P1"]] == "paid_social linkedin_ads:LI1" and life[fx.HS_ID["P8"]] == "direct -"
    won = dict(fetchall(wh, "SELECT opportunity_key, channel FROM events WHERE event_type = 'deal_won'"))
    assert won == {fx.OK["D1"]: "paid_social", fx.OK["D2"]: "organic_search"}


def test_people_merge(wh):
    p1 = dict(zip(("email", "account_key", "first_seen_at", "source_ids", "lifecycle_stage"), fetchone(
        wh, "SELECT email, account_key, first_seen_at, source_ids, lifecycle_stage FROM people WHERE person_key = ?",
        (fx.PK["P1"],))))
    assert p1 == {"email": "p1@acme.com", "account_key": fx.AK["A1"], "first_seen_at": "2024-01-06T09:00:00Z",
                  "source_ids": '{"hubspot":["101"],"mailchimp":["md5-p1"],"salesforce":["003C1","00QP1"]}',
                  "lifecycle_stage": "customer"}
    p2 = fetchone(wh, "SELECT self_reported_raw, self_reported_channel FROM people WHERE person_key = ?",
                  (fx.PK["P2"],))
    assert p2 == ("A colleague shared your guide in our Slack", "dark_social")  # earliest answer ([D-12])
    accounts = dict(fetchall(wh, "SELECT domain, is_customer FROM accounts"))
    assert accounts == {"acme.com": 1, "beta.io": 1, "gamma.co": 0, "delta.dev": 0, "eps.org": 0, "zeta.net": 0,
                        "eta.com": 0, "theta.ai": 0}
    first_won = dict(fetchall(wh, "SELECT domain, first_won_at FROM accounts WHERE is_customer = 1"))
    assert first_won == {"acme.com": "2024-03-15T00:00:00Z", "beta.io": "2024-03-28T00:00:00Z"}
    opp = fetchone(wh, "SELECT account_key, sqo_at, amount_monthly FROM opportunities WHERE opportunity_key = ?",
                   (fx.OK["D3"],))
    assert opp == (fx.AK["A3"], "2024-03-10T09:00:00Z", 750.0)
    roles = fetchall(wh, "SELECT person_key, role, is_primary, source FROM opportunity_people "
                         "WHERE opportunity_key = ? ORDER BY is_primary DESC", (fx.OK["D1"],))
    assert roles == [(fx.PK["P1"], "Decision Maker", 1, "salesforce"), (fx.PK["P2"], "Evaluator", 0, "salesforce")]


def test_as_of_limits_customers(new_wh):
    conn = new_wh()
    derive(conn, M, "2024-03-20")
    assert dict(fetchall(conn, "SELECT domain, is_customer FROM accounts WHERE is_customer = 1")) == {"acme.com": 1}


def test_deletions_vanish_from_derived_tables(wh):
    # P10's contact archived: its person_sources row and lifecycle events leave (the writer's job) ...
    run(wh, "DELETE FROM person_sources WHERE person_key = ?", (fx.PK["P10"],))
    run(wh, "DELETE FROM events WHERE person_key = ? AND event_type = 'lead_created'", (fx.PK["P10"],))
    # ... and opportunity D3 deleted in Salesforce (Delete(opportunities) + its events)
    run(wh, "DELETE FROM opportunities WHERE opportunity_key = ?", (fx.OK["D3"],))
    run(wh, "DELETE FROM events WHERE opportunity_key = ?", (fx.OK["D3"],))
    derive(wh, M)
    assert fetchone(wh, "SELECT COUNT(*) FROM people WHERE person_key = ?", (fx.PK["P10"],))[0] == 0
    assert fetchone(wh, "SELECT COUNT(*) FROM accounts WHERE domain = 'theta.ai'")[0] == 0
    for table in ("opportunity_people", "attribution_credits"):
        assert fetchone(wh, f"SELECT COUNT(*) FROM {table} WHERE opportunity_key = ?", (fx.OK["D3"],))[0] == 0
    rows = compute_kpis(wh, M, fx.START, fx.END, None)
    assert values(rows, "new_leads") == {"2024-01-01": 9}
    assert values(rows, "opportunities_created") == {"2024-01-01": 2}
    # the engagement that happened stays: P10's form fill is still a form fill
    assert values(rows, "form_fills") == {"2024-01-01": 9}


def test_unattributed_opportunity_and_hybrid_without_answer(wh):
    ok = opportunity_key("salesforce", "006D4")
    fx.insert(wh, {
        "opportunities": [{"opportunity_key": ok, "source_system": "salesforce", "source_id": "006D4",
                           "created_at": "2024-03-25T09:00:00Z", "amount": 1200.0, "currency": "USD"}],
        "events": [event("opportunity_created", "2024-03-25T09:00:00Z", "salesforce", "Opportunity", "006D4",
                         opportunity_key=ok).values],
    })
    derive(wh, M)
    rows = fetchall(wh, "SELECT model, channel, credit, touch_event_id FROM attribution_credits "
                        "WHERE opportunity_key = ?", (ok,))
    assert len(rows) == 9 and all(r[1:] == ("unattributed", 1.0, None) for r in rows)
    assert fetchone(wh, "SELECT sourced_channel FROM opportunities WHERE opportunity_key = ?", (ok,)) == (
        "unattributed",)
    assert fetchone(wh, "SELECT channel FROM events WHERE opportunity_key = ?", (ok,)) == ("unattributed",)
    # D2's only person answered; remove the answer: hybrid falls back to the base model (w_shaped)
    run(wh, "UPDATE person_sources SET self_reported_raw = NULL WHERE person_key = ?", (fx.PK["P3"],))
    derive(wh, M)
    hybrid = dict(fetchall(wh, "SELECT channel, credit FROM attribution_credits WHERE model = "
                               "'hybrid_self_reported' AND target = 'pipeline' AND opportunity_key = ?",
                           (fx.OK["D2"],)))
    w = dict(fetchall(wh, "SELECT channel, credit FROM attribution_credits WHERE model = 'w_shaped' "
                          "AND target = 'pipeline' AND opportunity_key = ?", (fx.OK["D2"],)))
    assert hybrid == w


def test_lookback_window_and_other_models(new_wh):
    conn = new_wh()
    model = replace(M, lookback_days=30, hybrid_alpha=0.2)
    derive(conn, model)
    # D1 created 02-20 12:00: a 30-day window starts 01-21 12:00, so T1 and T2 (early January) drop out
    first = fetchone(conn, "SELECT channel FROM attribution_credits WHERE model = 'first_touch' "
                           "AND target = 'pipeline' AND opportunity_key = ?", (fx.OK["D1"],))
    assert first == ("dark_social",)  # T5 01-25
    hyb = dict(fetchall(conn, "SELECT channel, SUM(credit) FROM attribution_credits WHERE model = "
                              "'hybrid_self_reported' AND target = 'pipeline' AND opportunity_key = ? GROUP BY channel",
                        (fx.OK["D1"],)))
    assert math.isclose(hyb["dark_social"], 0.2 + 0.8 * 0.3 + 0.8 * 0.3)  # SR + W first (T5) + lead anchor (none ⇒ t[0])


def test_kpi_names_are_the_spec_names():
    spec = """new_leads mqls sqls opportunities_created sqos demos form_fills deals_won new_customers lead_to_mql_rate
    mql_to_sql_rate sql_to_opportunity_rate opportunity_to_win_rate win_rate mql_to_demo_rate lead_to_demo_rate
    lead_to_close_rate visitor_to_lead_rate landing_page_conversion_rate marketing_spend cpl cost_per_mql cost_per_sqo
    cac cpc ctr paid_conversion_rate cost_per_conversion pipeline_created pipe_to_spend closed_won_revenue
    average_deal_size average_sales_cycle_days new_mrr mrr roas roi clv clv_to_cac emails_sent emails_delivered
    deliverability_rate unique_open_rate unique_click_rate click_to_open_rate unsubscribe_rate email_bounce_rate
    leads_to_nurture sessions engagement_rate bounce_rate pages_per_session new_users avg_engagement_seconds
    dark_social_traffic_share webinar_registrations webinar_attendance_rate event_registrations event_attendance_rate
    direct_mail_claim_rate claim_and_book_rate spend_conversion_parity dark_funnel_gap sr_sw_agreement
    self_report_coverage""".split()  # noqa: SIM905 - spec §9, in order; plus the per-channel Δ of §5.5
    assert list(KPI_NAMES) == [*spec, "dark_funnel_delta"]


def test_partial_refresh_keeps_weeks_across_the_year_complete(wh):
    rows = [event("form_submitted", f"{d}T10:00:00Z", "hubspot", "form_submission", f"Y{d}", person_key=fx.PK["P9"],
                  channel="direct").values for d in ("2023-12-30", "2024-01-02", "2024-12-31", "2025-01-02")]
    fx.insert(wh, {"events": rows})
    refresh_kpis(wh, M)
    before = dump(wh, "kpi_values")
    refresh_kpis(wh, M, "2024-06-01")
    assert dump(wh, "kpi_values") == before
    weeks = dict(fetchall(wh, "SELECT period_start, value FROM kpi_values WHERE grain = 'week' "
                              "AND kpi = 'form_fills' AND channel IS NULL "
                              "AND period_start IN ('2023-12-25', '2024-01-01', '2024-12-30')"))
    assert weeks == {"2023-12-25": 1, "2024-01-01": 2, "2024-12-30": 2}  # 01-01 week: 01-02 and T2 (01-06)


def _rounded(row: tuple) -> tuple:
    return tuple((0, 0.0) if x is None else (2, x) if isinstance(x, str) else (1, round(float(x), 9)) for x in row)


@pytest.mark.parametrize("fy_start", [1, 2])
def test_stored_slices_equal_compute_kpis(wh, fy_start):
    """refresh_kpis keeps campaign / source / path facts by week-within-month span, not by day: every stored row of
    every grain from week up equals compute_kpis of that grain and slice (weeks cross month ends in this data:
    01-29..02-04, 02-26..03-03; with fiscal years from February, quarters do not start in January)."""
    from warehouse.kpis import BY, GRAINS

    model = replace(M, fiscal_year_start_month=fy_start)
    refresh_kpis(wh, model)
    cols = ("grain", "period_start", "period_end", "kpi", "channel", "campaign_key", "source_system",
            "landing_path", "value", "numerator", "denominator", "status")
    for grain in GRAINS[1:]:
        lo, hi = fetchone(wh, "SELECT MIN(period_start), MAX(period_end) FROM kpi_values WHERE grain = ?", (grain,))
        for by in (None, *BY):
            col = {"channel": "channel", "campaign": "campaign_key", "source": "source_system",
                   "path": "landing_path"}.get(by)
            cond = " AND ".join(f"{c} IS {'NOT ' if c == col else ''}NULL"
                                for c in ("channel", "campaign_key", "source_system", "landing_path"))
            stored = fetchall(wh, f"SELECT {', '.join(cols)} FROM kpi_values WHERE grain = ? AND {cond}", (grain,))
            computed = [tuple(r[c] for c in cols) for r in compute_kpis(wh, model, lo, hi, grain, by)]
            assert len(stored) == len(computed) > 0, (grain, by)
            assert sorted(map(_rounded, stored)) == sorted(map(_rounded, computed)), (grain, by)


def test_attribution_summary(wh):
    from warehouse.attribution import summarize

    rows = summarize(wh, M, fx.START, fx.END)  # default model (w_shaped), pipeline, by channel
    assert [(r["channel"], round(r["credited_amount"], 6)) for r in rows][:3] == [
        ("organic_social", 8100), ("paid_social", 7200), ("paid_search", 5400)]
    revenue = summarize(wh, M, fx.START, fx.END, "first_touch", "revenue", "campaign")
    assert {r["campaign"]: r["credited_amount"] for r in revenue} == {"linkedin_ads:LI1": 12000, None: 6000}
    assert summarize(wh, M, "2024-01-01", "2024-01-31") == []  # no opportunity created in January
    feb = summarize(wh, M, "2024-02-01", "2024-02-29")  # D1 (created 02-20) only
    assert math.isclose(sum(r["credited_amount"] for r in feb), 12000) and math.isclose(sum(r["credit"] for r in feb), 1)


@pytest.mark.parametrize(("closed_at", "close_day_touch_counts"), [
    ("2024-03-15T00:00:00Z", True),  # Salesforce CloseDate: date-only, closed_at = local midnight
    ("2024-03-15T10:00:00Z", False),  # HubSpot closedate: a time of day ends the revenue window there
])
def test_revenue_window_ends_at_a_timed_close_or_the_end_of_a_date_only_close(closed_at, close_day_touch_counts):
    from warehouse.attribution import compute

    class NoFx:
        def convert(self, amount, currency, on):
            return amount

    opps = {"o1": {"created_at": "2024-03-01T09:00:00Z", "closed_at": closed_at, "close_date": "2024-03-15",
                   "is_won": 1, "amount": 1000.0, "currency": "USD"}}
    touches = {"p1": [("2024-02-20T09:00:00Z", "e1", "paid_search", None),
                      ("2024-03-15T15:00:00Z", "e2", "webinar", None)]}
    rows = compute(M, opps, {"o1": ["p1"]}, touches, {}, {}, NoFx())
    last_touch = {r[3] for r in rows if r[0] == "last_touch" and r[1] == "revenue"}
    assert last_touch == ({"e2"} if close_day_touch_counts else {"e1"})


def test_mailchimp_report_totals_are_reconciled_with_the_events(wh):
    """Spec §1.2: /reports/{id} totals feed a reconciliation check. M1 of §7 went to P1–P8: 8 sent, P8 bounced (hard),
    opened by P1 (twice), P2, P3, P5, clicked by P1 and P3, P5 unsubscribed."""
    from warehouse.checks import mailchimp_report_gaps

    report = {"id": "M1", "emails_sent": 8, "bounces": {"hard_bounces": 1, "soft_bounces": 0, "syntax_errors": 0},
              "opens": {"opens_total": 5, "unique_opens": 4}, "clicks": {"clicks_total": 2, "unique_clicks": 2,
              "unique_subscriber_clicks": 2}, "unsubscribed": 1}

    def raw(doc):
        run(wh, "DELETE FROM raw_records WHERE source_object = 'report'")
        fx.insert(wh, {"raw_records": [{"source_system": "mailchimp", "source_object": "report", "source_id": "M1",
                                        "source_name": "mailchimp", "fetched_at": "2024-04-01T00:00:00Z",
                                        "payload": json.dumps(doc)}]})
        return mailchimp_report_gaps(wh)

    assert raw(report) == []
    gaps = raw({**report, "emails_sent": 10, "opens": {"unique_opens": 6}})
    assert len(gaps) == 1 and gaps[0].startswith("mailchimp campaign M1: emails sent 10 in the report, 8 held; "
                                                 "unique opens 6 in the report, 4 held")
    assert raw({"id": "M1"}) == []  # a report without totals: nothing to compare


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_refresh_with_a_read_worker_equals_the_inline_refresh(tmp_path, monkeypatch, journal):
    """On a SQLite file with nothing uncommitted, refresh_kpis runs its grouped reads on a second connection in a
    thread (kpis._Reads); the kpi_values it writes are those of the inline reads, row for row, in both journal modes
    (in rollback mode the refresh must not hold the lock the worker's reads need), and the scratch files go."""
    from warehouse import kpis

    conn = fx.create(str(tmp_path / "w.db"))
    conn.execute(f"PRAGMA journal_mode={journal}")
    derive(conn, M)
    conn.commit()
    scratch, reads = [], []
    real_init = kpis._Reads.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        scratch.append(self.scratch)
        reads.append(self)

    monkeypatch.setattr(kpis._Reads, "__init__", spy)
    monkeypatch.setattr(kpis, "PREFETCH_EVENTS", 10**9)
    refresh_kpis(conn, M)
    assert scratch == [None]  # below PREFETCH_EVENTS: inline
    inline = dump(conn, "kpi_values")
    monkeypatch.setattr(kpis, "PREFETCH_EVENTS", 1)
    refresh_kpis(conn, M)
    assert scratch[1] and not (tmp_path / scratch[1]).exists()  # a worker ran; its scratch database is gone
    assert reads[1].served == list(kpis._grouped_reads(conn, "", "", "")) and reads[0].served == []
    assert not conn.in_transaction
    assert dump(conn, "kpi_values") == inline and len(inline) > 1000
    conn.execute("BEGIN")  # the caller's open transaction: a second connection would not see it, so inline
    refresh_kpis(conn, M)
    assert scratch[2] is None
    conn.rollback()
    conn.close()


def test_a_failed_read_worker_falls_back_to_the_inline_reads_quietly(tmp_path, monkeypatch, capfd):
    """A worker that cannot read (here: pointed at an empty file) prints nothing; every read then runs on the
    refresh's own connection and kpi_values is the same."""
    from warehouse import kpis

    conn = fx.create(str(tmp_path / "w.db"))
    derive(conn, M)
    conn.commit()
    refresh_kpis(conn, M)
    inline = dump(conn, "kpi_values")
    reads = []
    real_init = kpis._Reads.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        reads.append(self)

    monkeypatch.setattr(kpis._Reads, "__init__", spy)
    monkeypatch.setattr(kpis, "PREFETCH_EVENTS", 1)
    monkeypatch.setattr(kpis, "_main_file", lambda c: str(tmp_path / "empty.db"))
    raised = []
    monkeypatch.setattr(threading, "excepthook", raised.append)  # what would print a traceback
    refresh_kpis(conn, M)
    assert raised == []
    assert reads[0].scratch is not None and reads[0].served == []  # a worker started, and served nothing
    assert dump(conn, "kpi_values") == inline
    assert capfd.readouterr().err == ""
    conn.close()
