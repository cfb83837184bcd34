"""Benchmark: derive + refresh_kpis on ~1,000,000 events in a temp SQLite warehouse.

    /work/venv/bin/python bench/kpi_refresh.py [--events 1000000] [--db PATH] [--seed 7]

Generates a plausible two-year B2B mix (GA4 and ad daily facts, Mailchimp/HubSpot email activity, web visits and
forms, webinars, lifecycle events from HubSpot with Salesforce duplicates, opportunities), then times:
- `derive` (people, accounts, opportunity_people, channels, attribution of every model; the first run on fresh
  rows fills every derived column, later runs only rewrite what changed),
- `refresh_kpis` (every KPI, every grain day..year, every slice) into `kpi_values`,
- the reference: one grouped scan `SELECT event_type, event_date, channel, count(*), sum(quantity), sum(amount)
  FROM events GROUP BY 1,2,3` (the faster of the planner's plan and a plain table scan),
and prints refresh_kpis ÷ scan (goal ≤ 3×).
"""
from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from normalize.events import account_key, event_id, opportunity_key, person_key
from normalize.model import Model
from warehouse.derive import derive
from warehouse.kpis import refresh_kpis
from warehouse.schema import SQLITE_TYPES, TABLES, ddl

START = date(2023, 1, 1)
DAYS = 730
TOUCH_CHANNELS = ["paid_search", "paid_social", "organic_search", "organic_social", "referral", "direct",
                  "dark_social", "email", "other"]
EV_COLS = ("event_id", "event_type", "occurred_at", "event_date", "source_system", "source_object", "source_id",
           "person_key", "account_key", "opportunity_key", "campaign_key", "channel", "utm_source", "utm_medium",
           "utm_campaign", "landing_path", "quantity", "amount", "currency", "is_aggregate", "properties",
           "ingested_at")
NOW = "2025-01-01T00:00:00Z"


def _ts(d: date, sec: int) -> str:
    return f"{d.isoformat()}T{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z"


def generate(conn: sqlite3.Connection, n_events: int, seed: int) -> int:
    rnd = random.Random(seed)
    scale = n_events / 1_000_000
    days = [START + timedelta(days=i) for i in range(DAYS)]
    events: list[tuple] = []

    def ev(et, d, sec, system, obj, sid, pk=None, opp=None, camp=None, ch="unattributed", utm=(None, None, None),
           path=None, q=1.0, amount=None, cur=None, agg=0, props=None):
        occ = _ts(d, sec)
        events.append((event_id(system, obj, sid, et, occ), et, occ, d.isoformat(), system, obj, sid, pk, None, opp,
                       camp, ch, utm[0], utm[1], utm[2], path, q, amount, cur, agg, props, NOW))

    # campaigns
    campaigns = []
    ads = [(f"linkedin_ads:{i}", "paid_social") for i in range(20)] + [(f"google_ads:{i}", "paid_search")
                                                                        for i in range(20)]
    emails = [f"mailchimp:{i}" for i in range(int(150 * scale) or 1)]
    webinars = [f"salesforce:W{i}" for i in range(30)]
    for k, ch in ads:
        campaigns.append((k, k.split(":")[0], k.split(":")[1], k, ch, f"utm{k.split(':')[1]}_{ch}"))
    for k in emails:
        campaigns.append((k, "mailchimp", k.split(":")[1], k, "email", None))
    for k in webinars:
        campaigns.append((k, "salesforce", k.split(":")[1], k, "webinar", None))
    conn.executemany("INSERT INTO campaigns (campaign_key, source_system, source_campaign_id, name, channel, "
                     "utm_campaign) VALUES (?, ?, ?, ?, ?, ?)", campaigns)

    # GA4: 6 measures x days x 40 combos
    combos = [(rnd.choice(TOUCH_CHANNELS), f"/p{j}") for j in range(int(40 * scale) or 1)]
    for d in days:
        for j, (ch, path) in enumerate(combos):
            s = rnd.randint(5, 200)
            for et, q in (("web_sessions", s), ("web_engaged_sessions", s // 2), ("web_page_views", s * 2),
                          ("web_new_users", s // 3), ("web_key_events", s // 50), ("web_engagement_seconds", s * 40)):
                if q:
                    ev(et, d, 0, "ga4", "run_report", f"{d}|{j}", ch=ch, path=path, q=float(q), agg=1)
    # ads: 40 campaigns x days x 4-5 measures
    for d in days:
        for k, ch in ads:
            imp = rnd.randint(500, 5000)
            for et, q, amount in (("ad_impressions", imp, None), ("ad_clicks", imp // 50, None),
                                  ("ad_spend", 1, round(rnd.uniform(20, 400), 2)), ("ad_conversions", imp // 900, None)):
                if q:
                    ev(et, d, 0, k.split(":")[0], "campaign", f"{d}|{k}", camp=k, ch=ch, q=float(q), amount=amount,
                       cur="USD" if amount else None, agg=1)
        if d.day == 1:
            for k in webinars[:3]:
                ev("program_spend", d, 0, "salesforce", "Campaign", k, camp=k, amount=1500.0, cur="USD", agg=1)

    # people
    n_people = int(25000 * scale) or 10
    people = []
    psrc, asrc = [], []
    for i in range(n_people):
        dom = f"co{i // 3}.example"
        email = f"u{i}@{dom}"
        pk = person_key(email)
        d0 = days[rnd.randrange(DAYS - 30)]
        people.append((pk, d0, dom))
        psrc.append(("hubspot", "contact", str(i), pk, email, f"hubspot:company:{i // 3}", _ts(d0, 36000),
                     "lead", rnd.choice([None, None, "Heard on a podcast", "Google search", "LinkedIn ad"])))
        if i % 3 == 0:
            asrc.append(("hubspot", "company", str(i // 3), account_key(domain=dom), f"Co {i // 3}", dom))
        t = 36000 + rnd.randint(0, 20000)
        ev("web_visit", d0, t - 600, "hubspot", "contact", f"v{i}", pk=pk, ch=rnd.choice(TOUCH_CHANNELS),
           utm=("linkedin", "paid_social", ads[i % 20][0].split(":")[1] and f"utm{i % 20}_paid_social"),
           path="/blog/x")
        ev("lead_created", d0, t, "hubspot", "contact", str(i), pk=pk)
        if i % 3 == 0:
            ev("lead_created", d0 + timedelta(days=1), t, "salesforce", "Lead", f"L{i}", pk=pk)
        ev("form_submitted", d0, t, "hubspot", "form", f"f{i}", pk=pk, ch=rnd.choice(TOUCH_CHANNELS),
           props=f'{{"page_path": "/p{i % 40}"}}')
        for k in range(rnd.randint(0, 3)):
            dv = min(d0 + timedelta(days=rnd.randint(1, 60)), days[-1])
            ev("web_visit", dv, 40000 + k, "hubspot", "contact_latest", f"v{i}.{k}", pk=pk,
               ch=rnd.choice(TOUCH_CHANNELS), path="/pricing")
        if rnd.random() < 0.4:
            ev("became_mql", min(d0 + timedelta(days=rnd.randint(1, 20)), days[-1]), t, "hubspot", "contact", str(i),
               pk=pk)
            if rnd.random() < 0.35:
                ev("became_sql", min(d0 + timedelta(days=rnd.randint(21, 40)), days[-1]), t, "hubspot", "contact",
                   str(i), pk=pk)
        if rnd.random() < 0.1:
            ev("demo_requested", min(d0 + timedelta(days=rnd.randint(1, 30)), days[-1]), t, "hubspot", "form",
               f"d{i}", pk=pk, ch=rnd.choice(TOUCH_CHANNELS))
        if rnd.random() < 0.3:
            w = webinars[i % len(webinars)]
            dw = min(d0 + timedelta(days=rnd.randint(0, 20)), days[-1])
            ev("webinar_registered", dw, t, "salesforce", "CampaignMember", f"{w}|{i}", pk=pk, camp=w)
            if rnd.random() < 0.5:
                ev("webinar_attended", dw + timedelta(days=1), 0, "salesforce", "CampaignMember", f"{w}|{i}", pk=pk,
                   camp=w)
        if rnd.random() < 0.6:
            ev("nurture_enrolled", d0, t + 60, "mailchimp", "member", f"n{i}", pk=pk)
    conn.executemany("INSERT INTO person_sources (source_system, source_object, source_id, person_key, email, "
                     "account_ref, first_seen_at, lifecycle_stage, self_reported_raw) VALUES (?,?,?,?,?,?,?,?,?)", psrc)
    conn.executemany("INSERT INTO account_sources (source_system, source_object, source_id, account_key, name, "
                     "domain) VALUES (?,?,?,?,?,?)", asrc)

    # email: fill the remaining budget with sends to random people (sent, delivered/bounced, opened, clicked)
    per_campaign = max(1, int((n_events - len(events) - 12000 * scale) / (len(emails) * 2.45)))
    for ci, k in enumerate(emails):
        d = days[(ci * DAYS) // len(emails)]
        for pk, _d0, _dom in rnd.sample(people, min(per_campaign, len(people))):
            sid = f"{k}|{pk}"
            ev("email_sent", d, 50000, "mailchimp", "sent_to", sid, pk=pk, camp=k)
            if rnd.random() < 0.97:
                ev("email_delivered", d, 50000, "mailchimp", "sent_to", sid, pk=pk, camp=k)
                if rnd.random() < 0.4:
                    ev("email_opened", d, 52000, "mailchimp", "email_activity", sid, pk=pk, camp=k)
                    if rnd.random() < 0.15:
                        ev("email_clicked", d, 53000, "mailchimp", "email_activity", sid, pk=pk, camp=k)
            else:
                ev("email_bounced", d, 50000, "mailchimp", "sent_to", sid, pk=pk, camp=k)

    # opportunities
    opps, links = [], []
    n_opps = int(3000 * scale) or 3
    for j in range(n_opps):
        pk, d0, dom = people[rnd.randrange(len(people))]
        created = min(d0 + timedelta(days=rnd.randint(20, 60)), days[-1])
        ok = opportunity_key("salesforce", f"O{j}")
        amount = float(rnd.choice([6000, 12000, 24000, 48000]))
        won = rnd.random() < 0.3
        lost = not won and rnd.random() < 0.4
        close = min(created + timedelta(days=rnd.randint(10, 90)), days[-1])
        opps.append((ok, "salesforce", "Opportunity", f"O{j}", f"hubspot:company:{int(dom[2:].split('.')[0])}",
                     _ts(created, 36000), f"{close}T00:00:00Z" if (won or lost) else None, close.isoformat(),
                     1 if (won or lost) else 0, 1 if won else 0, amount, "USD"))
        links.append(("salesforce", "OpportunityContactRole", f"R{j}", ok, pk, "", None, 1))
        ev("opportunity_created", created, 36000, "salesforce", "Opportunity", f"O{j}", opp=ok, amount=amount,
           cur="USD")
        ev("became_sqo", created, 36000, "salesforce", "Opportunity", f"O{j}", opp=ok, amount=amount, cur="USD")
        if won or lost:
            ev("deal_won" if won else "deal_lost", close, 0, "salesforce", "Opportunity", f"O{j}", opp=ok,
               amount=amount, cur="USD")
    conn.executemany("INSERT INTO opportunities (opportunity_key, source_system, source_object, source_id, "
                     "account_ref, created_at, closed_at, close_date, is_closed, is_won, amount, currency) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", opps)
    conn.executemany("INSERT INTO opportunity_links (source_system, source_object, source_id, opportunity_key, "
                     "person_key, person_ref, role, is_primary) VALUES (?,?,?,?,?,?,?,?)", links)
    conn.executemany(f"INSERT OR IGNORE INTO events ({', '.join(EV_COLS)}) VALUES ({', '.join('?' * len(EV_COLS))})",
                     events)
    conn.commit()
    return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--db", help="keep the warehouse at this path (default: a temp file, removed)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--reuse", action="store_true", help="with --db: keep an already generated warehouse")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs (default 2)")
    args = ap.parse_args(argv)
    tmp = None
    path = args.db
    if not path:
        tmp = tempfile.mkdtemp(prefix="fs-bench-")
        path = os.path.join(tmp, "bench.db")
    conn = sqlite3.connect(path)
    statements = [stmt for table in TABLES for stmt in ddl(table, SQLITE_TYPES)]
    for stmt in statements:
        if stmt.startswith("CREATE TABLE"):
            conn.execute(stmt)
    t0 = time.perf_counter()
    n = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] if args.reuse else 0
    if not n:
        n = generate(conn, args.events, args.seed)
        for stmt in statements:  # indexes after the bulk load (faster), as a synced warehouse has them
            conn.execute(stmt)
        conn.commit()
        print(f"generated {n:,} events in {time.perf_counter() - t0:.1f} s ({path})", file=sys.stderr)
    for stmt in statements:
        conn.execute(stmt)
    model = Model()

    def scan() -> float:
        """The faster of the planner's plan (it may read the (event_type, event_date, channel, quantity) index in
        order) and a plain table scan (NOT INDEXED): the reference is the cheapest grouped pass."""
        best = float("inf")
        for hint in ("", " NOT INDEXED"):
            t = time.perf_counter()
            conn.execute(f"SELECT event_type, event_date, channel, count(*), sum(quantity), sum(amount) FROM events"
                         f"{hint} GROUP BY 1, 2, 3").fetchall()
            best = min(best, time.perf_counter() - t)
        return best

    # The machine may be shared: every figure is the best of `--repeat` runs, the scan measured around them.
    t_refresh = float("inf")
    derives: list[float] = []
    scans = [scan()]
    phases: dict[str, float] = {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        derive(conn, model, None)
        derives.append(time.perf_counter() - t0)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        refresh_kpis(conn, model, timings=timings)
        elapsed = time.perf_counter() - t0
        if elapsed < t_refresh:
            t_refresh, phases = elapsed, timings
        scans.append(scan())
    t_scan = min(scans)
    kv = conn.execute("SELECT COUNT(*) FROM kpi_values").fetchone()[0]
    credits = conn.execute("SELECT COUNT(*) FROM attribution_credits").fetchone()[0]
    print(f"events                 {n:>12,}")
    print(f"derive                 {derives[0]:>10.2f} s  first run"
          f"{'' if args.reuse else ' (fresh rows)'}; again: {', '.join(f'{x:.2f}' for x in derives[1:]) or '-'} s"
          f"  ({credits:,} attribution_credits rows)")
    print(f"refresh_kpis           {t_refresh:>10.2f} s  ({kv:,} kpi_values rows, 5 grains)")
    print(f"  read / compute / write {phases['read']:.2f} / {phases['compute']:.2f} / {phases['write']:.2f} s")
    print(f"grouped scan           {t_scan:>10.2f} s  (best of {len(scans)}: {', '.join(f'{x:.2f}' for x in scans)})")
    print(f"refresh_kpis / scan    {t_refresh / t_scan:>10.2f} x   (goal <= 3x)")
    conn.close()
    if tmp:
        os.remove(path)
        os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
