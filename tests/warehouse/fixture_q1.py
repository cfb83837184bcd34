"""The §7 worked example (2024-Q1) as normalized rows, written straight into a fresh SQLite warehouse.

The rows are what the normalizers would emit: touch events carry their classifier channel (§3), campaign-bound
events (email, webinar, spend) and lifecycle / opportunity events carry `unattributed` until `derive` fills them.
A few extra rows exercise the derive rules without changing any §7 number:
- P1 is also a Salesforce Lead with a later `lead_created` (FIRST(type) de-duplication keeps HubSpot's 01-06 09:00)
  and a Salesforce Contact C1 that D1's contact role references by `person_ref`;
- P3 has a later Salesforce `became_mql` (01-26) next to HubSpot's 01-25;
- P2 has a second, later self-report answer ("LinkedIn ad") that [D-12] must ignore;
- T1's `utm_campaign=li1` matches `campaigns.utm_campaign` of `linkedin_ads:LI1` (platform campaign_key).

Both backends (issue 6: every warehouse and KPI test runs on SQLite and PostgreSQL): `warehouse(backend, pg_url)`
yields a fresh warehouse holding these rows — SQLite: an in-memory `create()`; PostgreSQL: a throwaway schema
(tests/pg.py `fresh_db`) whose tables `PostgresWarehouse` creates, read through its connection
(`warehouse.postgres.connect`: the one `funnelsync sync` hands to derive / KPIs, values read back as SQLite holds
them). `insert()` and `fetchall()` / `fetchone()` / `run()` write `?` SQL for either backend (warehouse.derive).
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest

from normalize.events import account_key, event, opportunity_key, person_key
from normalize.model import Model
from warehouse.derive import execute, query
from warehouse.schema import SQLITE_TYPES, TABLES, ddl

MODEL = Model(
    timezone="UTC", reporting_currency="USD", lookback_days=90, half_life_days=7, sqo_stages=(),
    amount_basis="annual", gross_margin=0.8, expected_lifetime_years=3, default_model="w_shaped", hybrid_alpha=0.5,
)
START, END = "2024-01-01", "2024-03-31"

EMAILS = {f"P{i}": e for i, e in enumerate(
    ["p1@acme.com", "p2@acme.com", "p3@beta.io", "p4@gamma.co", "p5@gamma.co", "p6@delta.dev", "p7@eps.org",
     "p8@zeta.net", "p9@eta.com", "p10@theta.ai"], start=1)}
PK = {p: person_key(e) for p, e in EMAILS.items()}
HS_ID = {p: str(100 + i) for i, p in enumerate(EMAILS, start=1)}  # HubSpot contact ids
ACCOUNTS = {"A1": "acme.com", "A2": "beta.io", "A3": "gamma.co"}
ACCOUNT_OF = {"P1": "A1", "P2": "A1", "P3": "A2", "P4": "A3", "P5": "A3"}
AK = {a: account_key(domain=d) for a, d in ACCOUNTS.items()}
OK = {d: opportunity_key("salesforce", f"006{d}") for d in ("D1", "D2", "D3")}

# lead_created / became_mql / became_sql (2024, UTC)
LIFECYCLE = {
    "P1": ("01-06 09:00", "01-10 09:00", "02-19 12:00"),
    "P2": ("02-10 10:00", "02-16 09:00", None),
    "P3": ("01-20 14:10", "01-25 09:00", "02-26 09:00"),
    "P4": ("02-14 12:00", "02-20 09:00", "03-06 09:00"),
    "P5": ("01-15 10:00", "02-05 09:00", None),
    "P6": ("02-14 13:00", "03-01 09:00", None),
    "P7": ("02-15 09:00", None, None),
    "P8": ("01-08 12:00", None, None),
    "P9": ("03-12 12:00", None, None),
    "P10": ("03-20 12:00", None, None),
}
SELF_REPORT = {
    "P2": ("A colleague shared your guide in our Slack", "02-10 10:00"),
    "P3": ("Google search", "01-20 14:10"),
    "P4": ("Your webinar", "02-14 12:00"),
    "P8": ("Heard you on a podcast", "01-08 12:00"),
}


def at(mmdd_hhmm: str) -> str:
    d, t = mmdd_hhmm.split()
    return f"2024-{d}T{t}:00Z"


def _utm(source=None, medium=None, campaign=None):
    return {"utm_source": source, "utm_medium": medium, "utm_campaign": campaign}


# Touches T1..T16 as the normalizers emit them: (id, person, when, type, channel, utm, referrer, landing, campaign)
TOUCHES = [
    ("T1", "P1", "01-05 10:00", "web_visit", "paid_social", _utm("linkedin", "paid_social", "li1"), None, "/", None),
    ("T2", "P1", "01-06 09:00", "form_submitted", "paid_social", _utm("linkedin", "paid_social"), None, None, None),
    ("T3", "P1", "02-01 15:00", "email_clicked", "unattributed", {}, None, None, "mailchimp:M1"),
    ("T4", "P1", "02-19 11:00", "demo_requested", "paid_search", _utm("google", "cpc"), None, None, None),
    ("T5", "P2", "01-25 08:00", "web_visit", "dark_social", {}, None, "/blog/dark-funnel-guide", None),
    ("T6", "P2", "02-10 10:00", "webinar_registered", "unattributed", {}, None, None, "salesforce:W1"),
    ("T7", "P2", "02-15 00:00", "webinar_attended", "unattributed", {}, None, None, "salesforce:W1"),
    ("T8", "P3", "01-20 14:00", "web_visit", "organic_search", {}, "google.com", "/", None),
    ("T9", "P3", "01-20 14:10", "form_submitted", "direct", {}, None, None, None),
    ("T10", "P3", "02-01 15:30", "email_clicked", "unattributed", {}, None, None, "mailchimp:M1"),
    ("T11", "P3", "02-25 10:00", "demo_requested", "paid_search", _utm("google", "cpc"), None, None, None),
    ("T12", "P4", "02-14 12:00", "webinar_registered", "unattributed", {}, None, None, "salesforce:W1"),
    ("T13", "P4", "02-15 00:00", "webinar_attended", "unattributed", {}, None, None, "salesforce:W1"),
    ("T14", "P4", "03-05 09:00", "demo_requested", "direct", {}, None, None, None),
    ("T15", "P5", "03-08 10:00", "web_visit", "organic_social", {}, "linkedin", "/blog/x", None),
    ("T16", "P5", "01-15 10:00", "form_submitted", "organic_social", _utm("linkedin", "social"), None, None, None),
    # not numbered in §7 but listed under "Also"
    ("X6", "P6", "02-14 13:00", "webinar_registered", "unattributed", {}, None, None, "salesforce:W1"),
    ("X7", "P7", "02-15 09:00", "webinar_registered", "unattributed", {}, None, None, "salesforce:W1"),
    ("X8", "P8", "01-08 12:00", "form_submitted", "direct", {}, None, None, None),
    ("X9", "P9", "03-12 12:00", "form_submitted", "direct", {}, None, None, None),
    ("X10", "P10", "03-20 12:00", "form_submitted", "direct", {}, None, None, None),
]
PAGE_PATH = {"T2": "/ebook", "T4": "/pricing", "T9": "/", "T11": "/pricing", "T14": "/demo", "T16": "/ebook",
             "X8": "/", "X9": "/contact", "X10": "/contact"}
SOURCE_OBJECT = {"web_visit": ("hubspot", "contact"), "form_submitted": ("hubspot", "form_submission"),
                 "demo_requested": ("hubspot", "form_submission"), "email_clicked": ("mailchimp", "email_activity"),
                 "webinar_registered": ("salesforce", "CampaignMember"),
                 "webinar_attended": ("salesforce", "CampaignMember")}

# GA4 rows on 2024-02-01: (source, medium, landing, channel, sessions, engaged, page views, new users, key events)
GA4 = [
    ("google", "cpc", "/pricing", "paid_search", 400, 240, 800, 300, 8),
    ("linkedin", "paid_social", "/ebook", "paid_social", 90, 45, 150, 80, 2),
    ("google", "organic", "/blog/x", "organic_search", 300, 150, 600, 250, 3),
    (None, None, "/", "direct", 100, 60, 250, 40, 1),
    (None, None, "/blog/dark-funnel-guide", "dark_social", 60, 30, 90, 50, 0),
    ("l.messenger.com", "referral", "/blog/x", "dark_social", 10, 5, 20, 10, 0),
    ("lnkd.in", "referral", "/blog/x", "organic_social", 40, 20, 60, 30, 0),
]
GA4_MEASURES = ("web_sessions", "web_engaged_sessions", "web_page_views", "web_new_users", "web_key_events")


def rows() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {t.name: [] for t in TABLES}

    def ev(*args, **kw):
        out["events"].append(event(*args, **kw).values)

    # ---- identity
    for p, email in EMAILS.items():
        lead = at(LIFECYCLE[p][0])
        sr = SELF_REPORT.get(p)
        out["person_sources"].append({
            "source_system": "hubspot", "source_object": "contact", "source_id": HS_ID[p], "person_key": PK[p],
            "email": email, "account_ref": f"hubspot:company:{ACCOUNT_OF[p]}" if p in ACCOUNT_OF else None,
            "first_seen_at": lead, "lifecycle_stage": "marketingqualifiedlead" if LIFECYCLE[p][1] else "lead",
            "original_source_raw": "OFFLINE" if p == "P4" else "DIRECT_TRAFFIC",
            "self_reported_raw": sr[0] if sr else None, "self_reported_at": at(sr[1]) if sr else None,
            "fallback_channel": "direct" if p in ("P9", "P10") else None,
            "ext_ids": f'{{"mailchimp": "md5-{p.lower()}"}}' if p in ("P1", "P8") else None,
        })
    out["person_sources"] += [
        {"source_system": "salesforce", "source_object": "Lead", "source_id": "00QP1", "person_key": PK["P1"],
         "email": "P1@Acme.com", "first_seen_at": "2024-01-07T10:00:00Z", "lifecycle_stage": "Open"},
        {"source_system": "salesforce", "source_object": "Contact", "source_id": "003C1", "person_key": PK["P1"],
         "email": "p1@acme.com", "account_ref": "salesforce:Account:001A1", "first_seen_at": "2024-02-20T12:00:00Z"},
        {"source_system": "salesforce", "source_object": "Lead", "source_id": "00QP2", "person_key": PK["P2"],
         "email": "p2@acme.com", "first_seen_at": "2024-02-11T09:00:00Z",
         "self_reported_raw": "LinkedIn ad", "self_reported_at": "2024-03-01T09:00:00Z"},
    ]
    for a, domain in ACCOUNTS.items():
        out["account_sources"].append({"source_system": "hubspot", "source_object": "company", "source_id": a,
                                       "account_key": AK[a], "name": domain.split(".")[0].title(), "domain": domain})
        out["account_sources"].append({"source_system": "salesforce", "source_object": "Account",
                                       "source_id": f"001{a}", "account_key": AK[a],
                                       "name": domain.split(".")[0].title() + " Inc", "domain": domain})

    # ---- lifecycle events (HubSpot), plus Salesforce duplicates that FIRST(type) must absorb
    for p, stamps in LIFECYCLE.items():
        for etype, when in zip(("lead_created", "became_mql", "became_sql"), stamps):
            if when:
                ev(etype, at(when), "hubspot", "contact", HS_ID[p], person_key=PK[p])
    ev("lead_created", "2024-01-07T10:00:00Z", "salesforce", "Lead", "00QP1", person_key=PK["P1"])
    ev("became_mql", "2024-01-26T09:00:00Z", "salesforce", "LeadHistory", "017P3", person_key=PK["P3"])

    # ---- touches
    for tid, p, when, etype, channel, utm, ref, landing, camp in TOUCHES:
        system, obj = SOURCE_OBJECT[etype]
        props = {"page_path": PAGE_PATH[tid]} if tid in PAGE_PATH else None
        ev(etype, at(when), system, obj, f"{tid}-{p}", person_key=PK[p], channel=channel, utm=utm,
           referrer_domain=ref, landing_path=landing, campaign_key=camp, properties=props)

    # ---- Mailchimp M1 sent 02-01 14:00 to P1..P8
    sent = "2024-02-01T14:00:00Z"
    for i in range(1, 9):
        p = f"P{i}"
        ev("email_sent", sent, "mailchimp", "sent_to", f"M1|{p}", person_key=PK[p], campaign_key="mailchimp:M1")
        if p == "P8":
            ev("email_bounced", sent, "mailchimp", "sent_to", f"M1|{p}", person_key=PK[p], campaign_key="mailchimp:M1",
               properties={"bounce_type": "hard"})
        else:
            ev("email_delivered", sent, "mailchimp", "sent_to", f"M1|{p}", person_key=PK[p],
               campaign_key="mailchimp:M1")
    for p in ("P1", "P2", "P3", "P5"):
        ev("email_opened", "2024-02-01T14:30:00Z", "mailchimp", "email_activity", f"M1|{p}|open",
           person_key=PK[p], campaign_key="mailchimp:M1")
    ev("email_opened", "2024-02-03T08:00:00Z", "mailchimp", "email_activity", "M1|P1|open2",
       person_key=PK["P1"], campaign_key="mailchimp:M1")  # a second open: still one opened pair
    ev("email_unsubscribed", "2024-02-02T09:00:00Z", "mailchimp", "unsubscribed", "M1|P5", person_key=PK["P5"],
       campaign_key="mailchimp:M1")

    # ---- spend and ad facts
    for etype, q, amount in (("ad_impressions", 20000, None), ("ad_clicks", 100, None), ("ad_spend", 1, 3000.0)):
        out["events"].append(_agg(etype, "2024-01-15", "linkedin_ads", "ad_analytics", "2024-01-15|LI1",
                                  q, amount, "linkedin_ads:LI1", "paid_social"))
    for etype, q, amount in (("ad_impressions", 10000, None), ("ad_clicks", 400, None), ("ad_spend", 1, 2000.0),
                             ("ad_conversions", 8, None)):
        out["events"].append(_agg(etype, "2024-01-15", "google_ads", "campaign", "2024-01-15|G1",
                                  q, amount, "google_ads:G1", "paid_search"))
    out["events"].append(_agg("program_spend", "2024-02-15", "salesforce", "Campaign", "W1", 1, 1000.0,
                              "salesforce:W1", "unattributed"))

    # ---- GA4
    for source, medium, landing, channel, *values in GA4:
        nk = f"2024-02-01|{source}|{medium}||{landing}"
        for etype, q in zip(GA4_MEASURES, values):
            row = _agg(etype, "2024-02-01", "ga4", "run_report", nk, q, None, None, channel)
            row.update(utm_source=source, utm_medium=medium, landing_path=landing)
            out["events"].append(row)

    # ---- campaigns
    out["campaigns"] += [
        {"campaign_key": "linkedin_ads:LI1", "source_system": "linkedin_ads", "source_campaign_id": "LI1",
         "name": "LI1", "channel": "paid_social", "utm_campaign": "LI1", "currency": "USD"},
        {"campaign_key": "google_ads:G1", "source_system": "google_ads", "source_campaign_id": "G1", "name": "G1",
         "channel": "paid_search", "platform_type": "SEARCH", "currency": "USD"},
        {"campaign_key": "salesforce:W1", "source_system": "salesforce", "source_campaign_id": "W1", "name": "W1",
         "channel": "webinar", "platform_type": "Webinar", "start_date": "2024-02-15", "actual_cost": 1000.0,
         "currency": "USD"},
        {"campaign_key": "mailchimp:M1", "source_system": "mailchimp", "source_campaign_id": "M1", "name": "M1",
         "channel": "email"},
    ]

    # ---- opportunities (Salesforce is the system of record)
    opps = [
        ("D1", "A1", "2024-02-20T12:00:00Z", 12000.0, "2024-03-15", True),
        ("D2", "A2", "2024-03-01T09:00:00Z", 6000.0, "2024-03-28", True),
        ("D3", "A3", "2024-03-10T09:00:00Z", 9000.0, "2024-04-30", False),
    ]
    for d, a, created, amount, close, won in opps:
        closed_at = f"{close}T00:00:00Z" if won else None
        out["opportunities"].append({
            "opportunity_key": OK[d], "source_system": "salesforce", "source_object": "Opportunity",
            "source_id": f"006{d}", "account_ref": f"salesforce:Account:001{a}", "name": d, "stage":
            "Closed Won" if won else "Proposal", "created_at": created, "closed_at": closed_at, "close_date": close,
            "is_closed": 1 if won else 0, "is_won": 1 if won else 0, "amount": amount, "currency": "USD",
            "lead_source_raw": "Web"})
        common = {"opportunity_key": OK[d], "amount": amount, "currency": "USD"}
        ev("opportunity_created", created, "salesforce", "Opportunity", f"006{d}", **common)
        ev("became_sqo", created, "salesforce", "Opportunity", f"006{d}", **common)  # sqo_stages = [] ([D-17])
        if won:
            ev("deal_won", closed_at, "salesforce", "Opportunity", f"006{d}", **common)
    links = [("D1", "P1", None, "salesforce:Contact:003C1", "Decision Maker", 1),
             ("D1", "P2", PK["P2"], None, "Evaluator", 0),
             ("D2", "P3", PK["P3"], None, None, 1),
             ("D3", "P4", None, f"hubspot:contact:{HS_ID['P4']}", None, 1),
             ("D3", "P5", PK["P5"], None, None, 0)]
    for d, p, pk, ref, role, primary in links:
        out["opportunity_links"].append({
            "source_system": "salesforce", "source_object": "OpportunityContactRole", "source_id": f"00K{d}{p}",
            "opportunity_key": OK[d], "person_key": pk, "person_ref": ref or "", "role": role, "is_primary": primary})
    return out


def _agg(etype, day, system, obj, natural_key, quantity, amount, campaign, channel) -> dict:
    return event(etype, f"{day}T00:00:00Z", system, obj, natural_key, event_date=day, quantity=quantity,
                 amount=amount, currency="USD" if amount is not None else None, is_aggregate=True,
                 campaign_key=campaign, channel=channel).values


def create(path: str = ":memory:") -> sqlite3.Connection:
    """A fresh warehouse (every table of warehouse.schema) holding the §7 rows; derive has not run."""
    conn = sqlite3.connect(path)
    for table in TABLES:
        for stmt in ddl(table, SQLITE_TYPES):
            conn.execute(stmt)
    insert(conn, rows())
    conn.commit()
    return conn


def insert(conn: Any, data: dict[str, list[dict]]) -> None:
    """Insert row dicts (any backend; JSON columns are JSON text, timestamps UTC text, as the writers pass them)."""
    from datetime import datetime

    now = datetime(2024, 4, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for table, items in data.items():
        for r in items:
            r = dict(r)
            if table == "events":
                r.setdefault("ingested_at", now)
            cols = list(r)
            execute(conn, f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                    [r[c] for c in cols])


# ---- both backends ------------------------------------------------------------------------------------------------

# `params=BACKENDS` on a fixture runs its tests once per backend (ids `[sqlite]` / `[postgres]`)
BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


@contextlib.contextmanager
def warehouse(backend: str, pg_url: str | None = None, name: str = "q1") -> Iterator[Any]:
    """A fresh warehouse holding the §7 rows on `backend` ("sqlite" | "postgres"); derive has not run. Yields its
    DB-API connection (rows committed) and drops the warehouse afterwards."""
    if backend == "sqlite":
        conn = create()
        try:
            yield conn
        finally:
            conn.close()
        return
    if backend != "postgres":
        raise ValueError(f"unknown backend {backend!r}")
    from tests.pg import fresh_db
    from warehouse.postgres import PostgresWarehouse

    assert pg_url, "the postgres backend needs the pg_url fixture"
    with fresh_db(pg_url, name) as url:
        wh = PostgresWarehouse(url)  # creates every table as `funnelsync sync` does (warehouse.postgres.pg_ddl)
        try:
            insert(wh.conn, rows())
            wh.conn.commit()
            yield wh.conn
        finally:
            wh.close()


def pg_url_for(request: pytest.FixtureRequest, backend: str) -> str | None:
    """The session's PostgreSQL URL, requested only for the postgres backend (SQLite-only runs start no server)."""
    return request.getfixturevalue("pg_url") if backend == "postgres" else None


def fetchall(conn: Any, text: str, params: tuple | list = ()) -> list[tuple]:
    """Rows of `?` SQL on either backend."""
    return [tuple(r) for r in query(conn, text, params)]


def fetchone(conn: Any, text: str, params: tuple | list = ()) -> tuple | None:
    found = fetchall(conn, text, params)
    return found[0] if found else None


def run(conn: Any, text: str, params: tuple | list = ()) -> None:
    """A `?` SQL statement (DELETE / UPDATE / INSERT) on either backend."""
    execute(conn, text, params)


def index_exists(conn: Any, name: str) -> bool:
    if isinstance(conn, sqlite3.Connection):
        sql = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?"
    else:
        sql = "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?"
    return fetchone(conn, sql, (name,))[0] == 1
