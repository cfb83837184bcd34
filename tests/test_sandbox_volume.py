"""Volume and incremental behaviour against the HTTPS sandbox, through the real sync loop and a real warehouse:
HubSpot's 10,000-results search cap at 25,000 contacts (and at one instant holding more than 10,000), incremental
syncs after 1 % of the records changed, restated report days replaced exactly, Bulk 2.0 == REST for Salesforce."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from tests.sandbox import Sandbox
from tests.sandbox.common import START_MS, ms
from tests.sandbox.harness import FAST, NOW, count, diff, relax_pacing, snapshot, sync
from tests.sandbox.timeline import Timeline

LATER = NOW + timedelta(days=1)  # the second sync's clock
CHANGED_AT = ms(NOW + timedelta(hours=1))  # records change between the two syncs


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    relax_pacing(monkeypatch)


def ca(monkeypatch, sb) -> None:
    for name, value in sb.ca_env().items():
        monkeypatch.setenv(name, value)


# ---- HubSpot: the 10,000 cap -----------------------------------------------------------------------------------


def search_requests(sb) -> list[dict]:
    return [json.loads(e.body) for e in sb.stats.requests("hubspot", "/search") if e.body]


@pytest.mark.slow
def test_hubspot_search_past_10000_results_is_split_into_windows(tmp_path, monkeypatch):
    with Sandbox(sizes={"hubspot.contacts": 25_000}) as sb:
        ca(monkeypatch, sb)
        sb.stats.keep_bodies = True
        (result,) = sync(sb, "hubspot", tmp_path / "wh.db", streams=("contacts",))
        assert result.status == "success", result.error
        archived = sb.hubspot.archived["contacts"]
        assert result.records == 25_000 + archived
        assert count(tmp_path / "wh.db", "SELECT count(*) FROM raw_records WHERE source_object = 'contact'") \
            == 25_000 + archived
        assert count(tmp_path / "wh.db", "SELECT count(DISTINCT person_key) FROM person_sources") == 25_000
        # never paged past the cap (the sandbox answers 400 there), and the cap forced splits
        assert sb.stats.total("status_400", "hubspot") == 0
        bodies = search_requests(sb)
        assert max(int(b.get("after") or 0) for b in bodies) < 10_000
        windows = {tuple(f["value"] for f in b["filterGroups"][0]["filters"]) for b in bodies}
        assert len(windows) >= 3  # at least one split of the 25,000-record window
        # ~125 pages of 200, plus one probe per oversized window
        assert len(bodies) <= 25_000 // 200 + 2 * len(windows)


def test_hubspot_one_instant_over_the_cap_is_paged_by_object_id(tmp_path, monkeypatch):
    """More records in one millisecond than a query can page through: no time window is small enough, so that
    instant is read by object id. Same logic as at 10,000, with the cap lowered to 1,000 on both sides to stay fast."""
    import connectors.hubspot

    real_connect = connectors.hubspot.connect

    def connect(source):
        client = real_connect(source)
        client.search_cap = 1_000
        return client

    monkeypatch.setattr(connectors.hubspot, "connect", connect)
    with Sandbox(sizes={"hubspot.contacts": 3_000}) as sb:
        ca(monkeypatch, sb)
        sb.hubspot.search_cap = 1_000
        # contacts 0..1,199 share one millisecond, then one per millisecond
        tl = sb.hubspot.timelines["contacts"] = Timeline(3_000, START_MS + 86_400_000, 1, group=1_200)
        assert tl.count(tl.t0, tl.t0 + 1) == 1_200
        sb.stats.keep_bodies = True
        (result,) = sync(sb, "hubspot", tmp_path / "wh.db", streams=("contacts",))
        assert result.status == "success", result.error
        assert count(tmp_path / "wh.db", "SELECT count(DISTINCT person_key) FROM person_sources") == 3_000
        assert sb.stats.total("status_400", "hubspot") == 0
        by_id = [b for b in search_requests(sb) if b["sorts"][0]["propertyName"] == "hs_object_id"]
        assert len(by_id) >= 1_200 // 200


def test_hubspot_sandbox_refuses_paging_past_10000(monkeypatch):
    """What a naive pager meets (the documented 400), so the split above is not vacuous."""
    import requests

    with Sandbox(sizes={"hubspot.contacts": 10_001}) as sb:
        body = {"filterGroups": [], "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "limit": 200, "after": "10000"}
        r = requests.post(f"{sb.hubspot.base_url}/crm/v3/objects/contacts/search", json=body, verify=sb.ca_file,
                          headers={"Authorization": f"Bearer {sb.hubspot.token}"}, timeout=10)
        assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
        body["after"] = "9800"
        r = requests.post(f"{sb.hubspot.base_url}/crm/v3/objects/contacts/search", json=body, verify=sb.ca_file,
                          headers={"Authorization": f"Bearer {sb.hubspot.token}"}, timeout=10)
        assert r.status_code == 200 and r.json()["total"] == 10_001 and len(r.json()["results"]) == 200


# ---- incremental after 1 % changed ------------------------------------------------------------------------------

INCREMENTAL = {  # api: (stream, change(sb) -> changed ids, boundary records the lookback may re-read)
    "hubspot": ("contacts", lambda sb: sb.hubspot.change("contacts", 0.01, CHANGED_AT), 2),
    "salesforce": ("Lead", lambda sb: sb.salesforce.change("Lead", 0.01, CHANGED_AT), 2),
    "mailchimp": ("list_members", lambda sb: sb.mailchimp.change(0, 0.01, CHANGED_AT), 2 * 2),
}


@pytest.mark.parametrize("api", sorted(INCREMENTAL))
def test_incremental_after_1_percent_changed_fetches_only_those(tmp_path, monkeypatch, api):
    stream, change, boundary = INCREMENTAL[api]
    with Sandbox(sizes={"hubspot.contacts": 2000, "salesforce.Lead": 2000, "mailchimp.members": 1000}) as sb:
        ca(monkeypatch, sb)
        (full,) = sync(sb, api, tmp_path / "inc.db", streams=(stream,))
        assert full.status == "success", full.error
        changed = change(sb)
        assert len(changed) == 20 if api != "mailchimp" else len(changed) == 10
        (inc,) = sync(sb, api, tmp_path / "inc.db", streams=(stream,), now=LATER)
        assert inc.status == "success", inc.error
        # the changed records, plus at most the few the lookback re-reads at the cursor
        assert len(changed) <= inc.records <= len(changed) + boundary, (inc.records, len(changed))
        assert inc.requests <= 3 + (api == "hubspot") + (api == "mailchimp"), inc.requests
        # and the warehouse is exactly what a full sync of today's data gives
        (ref,) = sync(sb, api, tmp_path / "full.db", streams=(stream,), now=LATER, mode="full_refresh")
        assert ref.status == "success"
        a, b = snapshot(tmp_path / "inc.db"), snapshot(tmp_path / "full.db")
        assert a == b, diff(a, b)
        new_payloads = count(tmp_path / "inc.db", "SELECT count(*) FROM raw_records WHERE payload LIKE ?",
                             ("%2024-04-01T01:%",))
        assert new_payloads == len(changed)


# ---- restated report days ---------------------------------------------------------------------------------------

REPORTS = {"ga4": "run_report", "linkedin_ads": "ad_analytics", "meta_ads": "insights", "google_ads": "campaign_day"}


@pytest.mark.parametrize("api", sorted(REPORTS))
def test_restated_days_are_replaced_exactly_on_the_next_sync(tmp_path, monkeypatch, api):
    with Sandbox(scale=0.5) as sb:
        ca(monkeypatch, sb)
        settings = FAST.get(api, {})
        sync(sb, api, tmp_path / "inc.db", **settings)
        restated = [date(2024, 3, 30), date(2024, 3, 31)]
        sb.apis[api].restate(restated)
        results = sync(sb, api, tmp_path / "inc.db", now=LATER, **settings)
        assert all(r.status == "success" for r in results), [(r.stream, r.error) for r in results]
        sync(sb, api, tmp_path / "full.db", now=LATER, mode="full_refresh", **settings)
        a, b = snapshot(tmp_path / "inc.db"), snapshot(tmp_path / "full.db")
        assert a == b, diff(a, b)
        before = count(tmp_path / "inc.db", "SELECT count(*) FROM events WHERE event_date = '2024-03-29'")
        assert before > 0
        dup = count(tmp_path / "inc.db", "SELECT count(*) FROM (SELECT event_id FROM events GROUP BY event_id "
                                         "HAVING count(*) > 1)")
        assert dup == 0


# ---- Salesforce: Bulk API 2.0 and REST give the same warehouse --------------------------------------------------


def _strip_attributes(value):
    if isinstance(value, dict):
        return {k: _strip_attributes(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [_strip_attributes(v) for v in value]
    return value


def test_salesforce_bulk_and_rest_paths_load_the_same_rows(tmp_path, monkeypatch):
    streams = ("Lead", "LeadHistory", "OpportunityContactRole", "CampaignMember")
    with Sandbox(scale=0.5) as sb:
        ca(monkeypatch, sb)
        rest = sync(sb, "salesforce", tmp_path / "rest.db", streams=streams)
        sb.stats.reset()
        bulk = sync(sb, "salesforce", tmp_path / "bulk.db", streams=streams, bulk_threshold=50)
        assert all(r.status == "success" for r in rest + bulk)
        assert len(sb.stats.requests("salesforce", "/jobs/query")) >= 3 * len(streams)  # create, poll(s), results
        a, b = snapshot(tmp_path / "rest.db"), snapshot(tmp_path / "bulk.db")
        raw_a, raw_b = a.pop("raw_records"), b.pop("raw_records")
        assert a == b, diff(a, b)
        # raw payloads: the same records (REST nests an `attributes` object the CSV has no column for)
        norm = lambda rows: sorted((r[:3], json.dumps(_strip_attributes(json.loads(r[4])), sort_keys=True))
                                   for r in rows)
        assert norm(raw_a) == norm(raw_b)


# ---- Mailchimp: report totals reconciled with the events ------------------------------------------------------------


def test_mailchimp_reports_reconcile_and_a_lost_activity_page_is_reported(tmp_path, monkeypatch):
    """The sandbox's reports count the very records it serves (as Mailchimp's do): after a sync every campaign's
    totals match the warehouse (warehouse.checks); when opens go missing (here: deleted, as a lost page would leave
    them) the check names the campaign and the figures."""
    import sqlite3

    from warehouse.checks import mailchimp_report_gaps

    with Sandbox(sizes={"mailchimp.recipients": 300}) as sb:
        ca(monkeypatch, sb)
        results = sync(sb, "mailchimp", tmp_path / "wh.db")
        assert all(r.status == "success" for r in results), [r.error for r in results]
    conn = sqlite3.connect(tmp_path / "wh.db")
    reports = conn.execute("SELECT source_id FROM raw_records WHERE source_object = 'report' ORDER BY 1").fetchall()
    assert len(reports) >= 2
    assert mailchimp_report_gaps(conn) == []
    cid = reports[0][0]
    conn.execute("DELETE FROM events WHERE event_type = 'email_opened' AND campaign_key = ? AND rowid IN (SELECT rowid "
                 "FROM events WHERE event_type = 'email_opened' AND campaign_key = ? LIMIT 20)",
                 (f"mailchimp:{cid}", f"mailchimp:{cid}"))
    (gap,) = mailchimp_report_gaps(conn)
    assert gap.startswith(f"mailchimp campaign {cid}: unique opens ") and "emails sent" not in gap
