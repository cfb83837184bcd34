"""`funnelsync demo`, as a newcomer runs it: all seven connectors replay their cassettes through the real run
loop into a fresh SQLite warehouse, then identity, attribution and KPIs are built. One run, many checks."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SOURCES = {"hubspot", "salesforce", "mailchimp", "ga4", "linkedin_ads", "meta_ads", "google_ads"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != "FUNNELSYNC_CONFIG"}
    done = subprocess.run([sys.executable, "-m", "funnelsync", "demo", "--out", str(out), "--format", "json"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), sqlite3.connect(out / "warehouse.db"), done


def test_every_source_and_stream_synced(demo):
    doc, _, _ = demo
    assert {s["source"] for s in doc["streams"]} == SOURCES
    failed = [s for s in doc["streams"] if s["status"] != "success" or s["quarantined"]]
    assert failed == []
    assert doc["loaded"]["quarantine"] == 0
    assert doc["loaded"]["events"] > 3000 and doc["loaded"]["opportunities"] >= 5


def test_json_output_is_one_clean_document(demo):
    _, _, done = demo
    json.loads(done.stdout)  # nothing but the document on stdout
    assert "Traceback" not in done.stderr


def test_a_person_in_three_systems_is_one_row_with_every_source_id(demo):
    _, conn, _ = demo
    rows = conn.execute("SELECT source_ids FROM people WHERE email = 'alice@acme-corp.example'").fetchall()
    assert len(rows) == 1
    ids = json.loads(rows[0][0])
    assert {"hubspot", "salesforce", "mailchimp"} <= set(ids)
    assert conn.execute("SELECT count(*) FROM people GROUP BY email HAVING count(*) > 1").fetchall() == []


def test_opportunities_come_only_from_the_system_of_record(demo):
    _, conn, _ = demo
    systems = {r[0] for r in conn.execute("SELECT DISTINCT source_system FROM opportunities")}
    assert systems == {"salesforce"}  # HubSpot deals are loaded raw but not as opportunities


def test_kpi_summary_and_tables_dashboards_read(demo):
    doc, conn, _ = demo
    kpis = {r["kpi"]: r["value"] for r in doc["kpis"]}
    assert kpis["new_leads"] > 0 and kpis["mqls"] > 0 and kpis["sessions"] > 0
    assert 0 < kpis["dark_social_traffic_share"] < 1
    assert kpis["marketing_spend"] > 0 and kpis["closed_won_revenue"] > 0
    for table in ("kpi_values", "attribution_credits", "goal_pacing"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
    # every opportunity's credits sum to 1 per model and target
    bad = conn.execute("SELECT model, target, opportunity_key, sum(credit) s FROM attribution_credits "
                       "GROUP BY 1, 2, 3 HAVING abs(s - 1) > 1e-9").fetchall()
    assert bad == []


def test_money_in_another_currency_is_converted_with_fx_rates(demo):
    _, conn, _ = demo
    eur = conn.execute("SELECT sum(amount) FROM events WHERE event_type = 'ad_spend' AND currency = 'EUR'").fetchone()[0]
    assert eur and eur > 0  # Meta's demo account reports in EUR; the demo config carries an EUR rate


def test_mailchimp_reports_reconcile_with_the_events_the_demo_loaded(demo):
    """The demo's Mailchimp cassettes are one consistent account: every campaign report's totals match the sent-to,
    activity and unsubscribe events (warehouse.checks; a gap would be a warning in the demo's output)."""
    from warehouse.checks import mailchimp_report_gaps

    doc, conn, _ = demo
    assert conn.execute("SELECT count(*) FROM raw_records WHERE source_object = 'report'").fetchone()[0] == 4
    assert mailchimp_report_gaps(conn) == []
    assert not [w for w in doc.get("warnings", []) if "mailchimp campaign" in w]
