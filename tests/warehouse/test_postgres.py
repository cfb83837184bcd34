"""PostgresWarehouse: the write semantics of SqliteWarehouse.write_batch (upsert idempotency, origin replacement,
re-read windows, deletes, quarantine, cursor in the same transaction), PostgreSQL types read back like SQLite's,
and the per-source advisory locks. Each test gets its own schema on the session's server (tests/pg.py)."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from normalize.events import Delete, Row, aggregate, event
from tests.pg import fresh_db, pg_url, snapshot  # noqa: F401  (pg_url: until tests/conftest.py imports it)
from warehouse import LockedError, WarehouseError, open_warehouse
from warehouse.base import Batch, ReplaceScope
from warehouse.postgres import PostgresWarehouse, connect
from warehouse.schema import EVENTS
from warehouse.sqlite import SqliteWarehouse

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
NOW = "2024-04-01T00:00:00Z"


@pytest.fixture
def url(pg_url, request):  # noqa: F811
    with fresh_db(pg_url, request.node.name) as u:
        yield u


@pytest.fixture
def wh(url):
    w = PostgresWarehouse(url)
    yield w
    w.close()


def item_rows(sid: str, version: int = 0, n_events: int = 1) -> list:
    pk = f"p_{sid}"
    out = [Row("person_sources", {"source_system": "fake", "source_object": "item", "source_id": sid,
                                  "person_key": pk, "email": f"{sid}@acme.example",
                                  "first_seen_at": "2024-01-01T00:00:00Z", "lifecycle_stage": f"v{version}"})]
    for i in range(n_events):
        out.append(event("form_submitted", f"2024-01-0{1 + i}T0{version % 10}:00:00Z", "fake", "item", sid,
                         person_key=pk, channel="direct", properties={"v": version, "i": i}))
    return out


def batch(records: dict[str, list], state=None, quarantine=(), replace=(), source_name="f", stream="items",
          obj="item") -> Batch:
    b = Batch(source_name=source_name, source_system="fake", stream=stream, source_object=obj,
              cursor_field="updated", state=state, replace=list(replace))
    for sid, rows in records.items():
        b.raw.append((sid, json.dumps({"id": sid, "n": len(rows)})))
        b.rows.extend(rows)
    for sid, reason in quarantine:
        rec = json.dumps({"id": sid, "broken": True})
        b.raw.append((sid, rec))
        b.quarantine.append((sid, reason, rec))
    return b


def count(wh, table: str, where: str = "TRUE", params=()) -> int:
    return wh.query(f"SELECT count(*) FROM {table} WHERE {where}", params)[0][0]


# ---- schema and types ----------------------------------------------------------------------------------------


def test_migrate_creates_typed_tables_and_is_additive(wh, url):
    types = dict(wh.query("SELECT column_name, data_type FROM information_schema.columns "
                          "WHERE table_schema = current_schema() AND table_name = 'events'"))
    assert types["occurred_at"] == "timestamp with time zone"
    assert types["event_date"] == "date"
    assert types["properties"] == "jsonb"
    assert types["quantity"] == "double precision" and types["is_aggregate"] == "bigint"
    assert wh.dialect == "postgres"
    # a column and an index missing (an older warehouse) come back; data stays
    wh.write_batch(batch({"r1": item_rows("r1")}), now=NOW)
    wh.query("ALTER TABLE events DROP COLUMN utm_term")
    wh.query("DROP INDEX ix_events_campaign_key_event_date")
    again = PostgresWarehouse(url)
    cols = {r[0] for r in again.query("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = current_schema() AND table_name = 'events'")}
    assert "utm_term" in cols
    assert again.query("SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() "
                       "AND indexname = 'ix_events_campaign_key_event_date'") == [(1,)]
    assert count(again, "events") == 1
    again.close()


def _indexes(wh, table: str) -> dict[str, str]:
    if wh.dialect == "postgres":
        return dict(wh.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND "
                             "tablename = %s AND indexname LIKE 'ix_%%'", (table,)))
    return dict(wh.query("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND "
                         "name LIKE 'ix_%'", (table,)))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrate_replaces_indexes_an_earlier_version_declared(backend, url, tmp_path):
    """An index the schema no longer declares (ix_events_event_type_event_date_channel_quantity, tried once) is
    dropped on open; a missing partial index (ix_events_pairs) comes back with its WHERE; data stays."""
    def open_wh():
        return PostgresWarehouse(url) if backend == "postgres" else SqliteWarehouse(tmp_path / "wh.db")

    wh = open_wh()
    wh.write_batch(batch({"r1": item_rows("r1")}), now=NOW)
    wh.query("CREATE INDEX ix_events_event_type_event_date_channel_quantity ON events (event_type, event_date, "
             "channel, quantity)")
    wh.query("DROP INDEX ix_events_pairs")
    wh.conn.commit()
    wh.close()
    again = open_wh()
    have = _indexes(again, "events")
    assert "ix_events_event_type_event_date_channel_quantity" not in have
    assert set(have) == {name for name, _ in EVENTS.index_statements()}
    assert "person_key IS NOT NULL" in have["ix_events_pairs"] and "email_sent" in have["ix_events_pairs"]
    assert count(again, "events") == 1
    again.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrate_turns_an_earlier_kpi_values_table_into_the_view(backend, url, tmp_path):
    """Earlier versions kept kpi_values as a table; opening such a warehouse replaces it with the view of kpi_rows,
    kpi_slices and kpi_names (its rows are derived: the next refresh writes them again), and a warehouse already
    holding the view keeps it (no DDL)."""
    from warehouse.schema import KPI_VALUES

    def open_wh():
        return PostgresWarehouse(url) if backend == "postgres" else SqliteWarehouse(tmp_path / "wh.db")

    wh = open_wh()
    wh.query("DROP VIEW kpi_values")
    wh.query("CREATE TABLE kpi_values (grain TEXT, period_start DATE, kpi TEXT, value REAL)")
    wh.query("INSERT INTO kpi_values VALUES ('day', '2024-01-01', 'mqls', 1)")
    wh.conn.commit()
    wh.close()
    again = open_wh()
    again.query("INSERT INTO kpi_names VALUES (0, 'mqls')")
    again.query("INSERT INTO kpi_slices (slice_id, grain, period_start, period_end) VALUES "
                "(7, 'month', '2024-01-01', '2024-01-31')")
    again.query("INSERT INTO kpi_rows (slice_id, kpi_id, value) VALUES (7, 0, 2.5)")
    again.conn.commit()
    assert [tuple(r) for r in again.query("SELECT grain, kpi, value, channel FROM kpi_values")] == [
        ("month", "mqls", 2.5, None)]
    assert [d[0] for d in again.conn.execute("SELECT * FROM kpi_values").description] == list(
        KPI_VALUES.column_names)
    again.close()
    third = open_wh()
    assert count(third, "kpi_values") == 1
    third.close()


def test_open_warehouse_dispatches_postgresql_urls(url):
    w = open_warehouse(url)
    assert isinstance(w, PostgresWarehouse)
    assert "@" not in repr(w) or "postgres@" not in repr(w)  # no user/password in the repr
    w.close()


def test_values_read_back_as_sqlite_holds_them(wh):
    wh.write_batch(batch({"r1": item_rows("r1")}, state={"cursor": "2024-01-01T00:00:00Z", "n": 1}), now=NOW)
    (occurred, day, props, ingested), = wh.query(
        "SELECT occurred_at, event_date, properties, ingested_at FROM events")
    assert (occurred, day, props, ingested) == ("2024-01-01T00:00:00Z", "2024-01-01", '{"i":0,"v":0}', NOW)
    # PostgreSQL did parse them: date arithmetic works on the typed columns
    assert wh.query("SELECT occurred_at + interval '1 day', event_date + 1, properties->>'v' FROM events") == [
        ("2024-01-02T00:00:00Z", "2024-01-02", "0")]
    assert wh.query("SELECT avg(quantity)::numeric FROM events") == [(1.0,)]  # numeric as float, like SQLite
    (st,) = wh.status()
    assert st["cursor"] == '{"cursor":"2024-01-01T00:00:00Z","n":1}'  # the text SQLite stores (base.dumps)
    assert st["last_run_at"] == NOW and st["rows_written"] == 2
    assert wh.get_state("f", "items") == {"cursor": "2024-01-01T00:00:00Z", "n": 1}
    assert wh.conn.info.transaction_status == 0  # reads leave the connection idle


# ---- write_batch semantics -----------------------------------------------------------------------------------


def test_upsert_is_idempotent_and_does_not_rewrite_unchanged_rows(wh):
    b = batch({f"r{i}": item_rows(f"r{i}", n_events=2) for i in range(50)}, state={"cursor": "a"})
    assert wh.write_batch(b, now=NOW) == 150
    first = snapshot(wh.conn)
    versions = dict(wh.query("SELECT event_id, xmin::text FROM events"))
    raw_versions = dict(wh.query("SELECT source_id, xmin::text FROM raw_records"))
    assert wh.write_batch(b, now="2024-04-02T00:00:00Z") == 150
    assert snapshot(wh.conn) == first
    assert count(wh, "events") == 100 and count(wh, "raw_records") == 50 and count(wh, "person_sources") == 50
    # replayed raw records are unchanged: not rewritten (their fetched_at stays, no new row versions)
    assert dict(wh.query("SELECT source_id, xmin::text FROM raw_records")) == raw_versions
    assert wh.query("SELECT DISTINCT fetched_at FROM raw_records") == [(NOW,)]
    # events of replayed records are replaced (origin replacement), with the same contents
    assert set(dict(wh.query("SELECT event_id, xmin::text FROM events"))) == set(versions)
    # events upserted without their raw record (no origin replacement) hit ON CONFLICT ... IS DISTINCT FROM
    only_rows = Batch("f", "fake", "items", "item", rows=[r for r in b.rows if r.table == "events"])
    before = dict(wh.query("SELECT event_id, xmin::text FROM events"))
    wh.write_batch(only_rows, now="2024-04-03T00:00:00Z")
    assert dict(wh.query("SELECT event_id, xmin::text FROM events")) == before
    assert wh.query("SELECT DISTINCT ingested_at FROM events") == [("2024-04-02T00:00:00Z",)]


def test_origin_replacement_removes_rows_a_record_no_longer_yields(wh):
    wh.write_batch(batch({"r1": item_rows("r1", version=1, n_events=3), "r2": item_rows("r2", n_events=2)}), now=NOW)
    assert count(wh, "events", "source_id = 'r1'") == 3
    wh.write_batch(batch({"r1": item_rows("r1", version=2, n_events=1)}), now=NOW)
    assert wh.query("SELECT occurred_at FROM events WHERE source_id = 'r1'") == [("2024-01-01T02:00:00Z",)]
    assert wh.query("SELECT lifecycle_stage FROM person_sources WHERE source_id = 'r1'") == [("v2",)]
    assert count(wh, "events", "source_id = 'r2'") == 2  # other records untouched
    # an archived record yields nothing: its rows go
    wh.write_batch(batch({"r2": []}), now=NOW)
    assert count(wh, "events", "source_id = 'r2'") == 0 and count(wh, "person_sources", "source_id = 'r2'") == 0


def test_rows_naming_another_origin_replace_that_origin(wh):
    def link(sid, person):
        return Row("opportunity_links", {"source_system": "fake", "source_object": "deal_contact",
                                         "source_id": "d1", "opportunity_key": "o_1", "person_key": person,
                                         "person_ref": None})
    wh.write_batch(batch({"r1": [link("r1", "p_a"), link("r1", "p_b")]}), now=NOW)
    assert count(wh, "opportunity_links") == 2  # NULL person_ref never conflicts (as on SQLite)
    wh.write_batch(batch({"r9": [link("r9", "p_c")]}), now=NOW)
    assert wh.query("SELECT person_key FROM opportunity_links") == [("p_c",)]


def test_replace_scope_replaces_restated_days_of_this_source_only(wh):
    def daily(day, q, source_name="ads"):
        return aggregate("ad_clicks", day, "fake", "daily", f"{day}|{source_name}", quantity=q,
                         campaign_key="fake:c1", channel="paid_search")
    days = [f"2024-03-{d:02d}" for d in range(1, 11)]
    for name in ("ads", "ads2"):
        b = Batch(name, "fake", "daily", "daily", replace=[ReplaceScope("daily", days[0], days[-1])])
        for d in days:
            b.raw.append((f"{d}|{name}", "{}"))
            b.rows.append(daily(d, 10, name))
        wh.write_batch(b, now=NOW)
    # ads restates 03-08..03-10 and drops 03-09 (a zero measure produces no row)
    b = Batch("ads", "fake", "daily", "daily", replace=[ReplaceScope("daily", "2024-03-08", "2024-03-10")],
              state={"last_day": "2024-03-10"})
    b.rows += [daily("2024-03-08", 15), daily("2024-03-10", 15)]
    wh.write_batch(b, now=NOW)
    got = dict(wh.query("SELECT event_date, sum(quantity) FROM events WHERE source_name = 'ads' "
                        "GROUP BY event_date"))
    assert got == {**{d: 10.0 for d in days[:7]}, "2024-03-08": 15.0, "2024-03-10": 15.0}
    # the raw rows of the replaced days go too (the restating batch brings its own)
    assert count(wh, "raw_records", "source_id = ANY(%s)", ([f"{d}|ads" for d in days[7:]],)) == 0
    assert count(wh, "raw_records", "source_id LIKE '%%|ads'") == 7
    assert count(wh, "events", "source_name = 'ads2'") == 10


def test_deletes_and_partial_upserts(wh):
    camp = {"campaign_key": "sf:1", "source_system": "salesforce", "name": "Webinar", "channel": "webinar",
            "start_date": "2024-02-01", "actual_cost": 100.0, "currency": "USD"}
    fx = [Row("fx_rates", {"date": "2024-01-31", "currency": "EUR", "rate_to_reporting": 1.08}),
          Row("fx_rates", {"date": "2024-02-29", "currency": "EUR", "rate_to_reporting": 1.09})]
    wh.write_batch(batch({"c1": [Row("campaigns", camp), *fx]}), now=NOW)
    # a later record only names the cost: the other columns keep their values
    wh.write_batch(batch({"c2": [Row("campaigns", {"campaign_key": "sf:1", "actual_cost": 250.0})]}), now=NOW)
    assert wh.query("SELECT name, channel, start_date, actual_cost, source_name FROM campaigns") == [
        ("Webinar", "webinar", "2024-02-01", 250.0, "f")]
    wh.write_batch(batch({"c3": [Delete("campaigns", {"campaign_key": "sf:1"}),
                                 Delete("fx_rates", {"date": "2024-01-31", "currency": "EUR"})]}), now=NOW)
    assert count(wh, "campaigns") == 0
    assert wh.query("SELECT date, rate_to_reporting FROM fx_rates") == [("2024-02-29", 1.09)]
    # a row and its Delete in one batch: the row stays (deletes run first, as on SQLite)
    wh.write_batch(batch({"c4": [Delete("campaigns", {"campaign_key": "sf:1"}), Row("campaigns", camp)]}), now=NOW)
    assert count(wh, "campaigns") == 1


def test_a_key_twice_in_one_batch_keeps_the_last(wh):
    rows = [Row("campaigns", {"campaign_key": "mc:1", "name": f"v{i}"}) for i in range(3)]
    ev = item_rows("r1")[1]
    b = batch({"r1": rows + [ev, ev._replace(values={**ev.values, "channel": "email"})]})
    assert wh.write_batch(b, now=NOW) == 5
    assert wh.query("SELECT name FROM campaigns") == [("v2",)]
    assert wh.query("SELECT channel FROM events") == [("email",)]


def test_quarantine_counts_and_leaves_when_the_record_loads(wh):
    wh.write_batch(batch({"r1": item_rows("r1")}, quarantine=[("r2", "no email")]), now=NOW)
    assert wh.query("SELECT source_id, reason, record FROM quarantine") == [
        ("r2", "no email", '{"broken":true,"id":"r2"}')]
    assert count(wh, "raw_records") == 2  # the bad record is landed too (replayable)
    (st,) = wh.status()
    assert (st["rows_quarantined"], st["quarantined_now"]) == (1, 1)
    wh.write_batch(batch({"r2": item_rows("r2")}), now=NOW)
    assert count(wh, "quarantine") == 0
    (st,) = wh.status()
    assert (st["rows_quarantined"], st["quarantined_now"], st["rows_written"]) == (1, 0, 4)


def test_state_is_kept_unless_given_and_never_saved_in_a_backfill(wh):
    wh.write_batch(batch({"r1": item_rows("r1")}, state={"cursor": "a"}), now=NOW)
    wh.write_batch(batch({"r2": item_rows("r2")}, state=None), now=NOW)
    assert wh.get_state("f", "items") == {"cursor": "a"}
    b = batch({"r3": item_rows("r3")}, state={"cursor": "zzz"})
    b.save_state = False
    wh.write_batch(b, now=NOW)
    assert wh.get_state("f", "items") == {"cursor": "a"}
    wh.reset_state("f", "items")
    assert wh.get_state("f", "items") is None


def test_a_failing_batch_leaves_nothing(wh, monkeypatch):
    wh.write_batch(batch({"r1": item_rows("r1", version=1, n_events=2)}, state={"cursor": "a"}), now=NOW)
    before = snapshot(wh.conn, skip_columns=set())
    # 1. a row PostgreSQL refuses (NOT NULL event_type) after raw records, deletes and other tables were written
    bad = item_rows("r1", version=2) + item_rows("r2")
    bad[-1] = bad[-1]._replace(values={**bad[-1].values, "event_type": None})
    with pytest.raises(WarehouseError, match="event_type"):
        wh.write_batch(batch({"r1": bad[:2], "r2": bad[2:]}, state={"cursor": "b"}, quarantine=[("r3", "x")]),
                       now="2024-04-02T00:00:00Z")
    assert snapshot(wh.conn, skip_columns=set()) == before
    # 2. the process dies / an error is raised half-way through the transaction
    real = PostgresWarehouse._merge

    def boom(self, cur, table, *a):
        real(self, cur, table, *a)
        if table == "events":
            raise RuntimeError("killed mid-batch")
    monkeypatch.setattr(PostgresWarehouse, "_merge", boom)
    with pytest.raises(RuntimeError):
        wh.write_batch(batch({"r2": item_rows("r2")}, state={"cursor": "c"}), now="2024-04-02T00:00:00Z")
    monkeypatch.undo()
    assert snapshot(wh.conn, skip_columns=set()) == before
    assert wh.get_state("f", "items") == {"cursor": "a"}
    # and the connection is usable afterwards
    wh.write_batch(batch({"r2": item_rows("r2")}, state={"cursor": "c"}), now=NOW)
    assert wh.get_state("f", "items") == {"cursor": "c"}


def test_values_postgresql_refuses_are_cleaned_not_fatal(wh):
    rows = item_rows("r1")
    rows[1] = rows[1]._replace(values={**rows[1].values, "utm_source": "news\x00letter", "is_aggregate": False,
                                       "properties": {"note": "a\x00b"}})
    rows.append(Row("campaigns", {"campaign_key": "x:1", "name": "N", "budgeted_cost": "", "start_date": "",
                                  "end_date": None}))
    b = batch({"r1": rows})
    b.raw[0] = ("r1", '{"id":"r1","text":"nul \\u0000 here","score":NaN,"s":"\\ud800"}')
    b.quarantine.append(("r1", "half a surrogate \ud800", b.raw[0][1]))
    assert wh.write_batch(b, now=NOW) == 3
    assert wh.query("SELECT utm_source, is_aggregate, properties FROM events") == [("newsletter", 0, '{"note":"ab"}')]
    assert wh.query("SELECT payload FROM raw_records") == [
        ('{"id":"r1","s":"\\ufffd","score":null,"text":"nul  here"}',)]
    assert wh.query("SELECT reason FROM quarantine") == [("half a surrogate \ufffd",)]
    assert wh.query("SELECT budgeted_cost, start_date FROM campaigns") == [(None, None)]


def test_a_value_of_the_wrong_type_fails_the_batch_with_the_servers_message(wh):
    rows = item_rows("r1")
    rows[1] = rows[1]._replace(values={**rows[1].values, "occurred_at": "last tuesday"})
    with pytest.raises(WarehouseError, match="last tuesday"):
        wh.write_batch(batch({"r1": rows}), now=NOW)
    assert count(wh, "raw_records") == 0


def test_run_bookkeeping(wh):
    wh.start_run("run1", "f", "items", "incremental", now=NOW)
    wh.finish_run("run1", "f", "items", status="success", rows_written=5, rows_quarantined=1, requests=3,
                  error=None, mode="incremental", now="2024-04-01T00:05:00Z")
    wh.start_run("run2", "f", "daily", "incremental", now=NOW)
    wh.finish_run("run2", "f", "daily", status="failed", rows_written=0, rows_quarantined=0, requests=1,
                  error="HTTP 503", mode="incremental", now="2024-04-01T00:06:00Z")
    assert wh.query("SELECT run_id, status, started_at, finished_at, requests FROM sync_runs ORDER BY run_id") == [
        ("run1", "success", NOW, "2024-04-01T00:05:00Z", 3), ("run2", "failed", NOW, "2024-04-01T00:06:00Z", 1)]
    st = {r["stream"]: r for r in wh.status()}
    assert st["items"]["last_success_at"] == "2024-04-01T00:05:00Z" and st["items"]["last_error"] is None
    assert st["daily"]["last_success_at"] is None and st["daily"]["last_error"] == "HTTP 503"
    assert [r["stream"] for r in wh.status()] == ["daily", "items"]


def _random_batches(seed: int) -> list[Batch]:
    """A mixed history: records re-read with new versions, archived, quarantined, re-read windows, deletes."""
    rnd = random.Random(seed)
    out = []
    for n in range(12):
        recs: dict[str, list] = {}
        quarantine = []
        for sid in rnd.sample([f"r{i}" for i in range(15)], 6):
            roll = rnd.random()
            if roll < 0.15:
                quarantine.append((sid, f"bad {n}"))
                continue
            rows = [] if roll < 0.25 else item_rows(sid, version=rnd.randint(0, 3), n_events=rnd.randint(1, 3))
            if rnd.random() < 0.4:
                rows.append(Row("campaigns", {"campaign_key": f"c{rnd.randint(1, 3)}", "name": f"n{n}",
                                              **({"actual_cost": float(n)} if rnd.random() < 0.5 else {})}))
            if rnd.random() < 0.2:
                rows.append(Delete("campaigns", {"campaign_key": f"c{rnd.randint(1, 3)}"}))
            if rnd.random() < 0.3:
                rows.append(Row("opportunity_links", {"source_system": "fake", "source_object": "item",
                                                      "source_id": sid, "opportunity_key": "o1",
                                                      "person_key": f"p_{sid}", "person_ref": None}))
            recs[sid] = rows
        out.append(batch(recs, state={"cursor": f"c{n}"}, quarantine=quarantine))
        if n % 4 == 3:
            lo, hi = sorted(rnd.sample(range(1, 20), 2))
            d = Batch("f", "fake", "daily", "daily", state={"last_day": f"2024-03-{hi:02d}"},
                      replace=[ReplaceScope("daily", f"2024-03-{lo:02d}", f"2024-03-{hi:02d}")])
            for day in range(lo, hi + 1):
                row = aggregate("ad_clicks", f"2024-03-{day:02d}", "fake", "daily", f"{day}|c1",
                                quantity=rnd.choice([0, 5, 10 + n]), channel="paid_search")
                d.raw.append((f"{day}|c1", json.dumps({"day": day, "n": n})))
                if row:
                    d.rows.append(row)
            out.append(d)
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_same_contents_as_sqlite_after_a_mixed_history(wh, tmp_path, seed):
    lite = SqliteWarehouse(tmp_path / "wh.db")
    for b in _random_batches(seed):
        assert wh.write_batch(b, now=NOW) == lite.write_batch(b, now=NOW)
    pg, sq = snapshot(wh.conn, skip_columns=set()), snapshot(lite.conn, skip_columns=set())
    assert pg == sq
    assert len(pg["events"]) > 20 and pg["quarantine"] and pg["campaigns"]
    assert wh.status() == lite.status()
    lite.close()


# ---- locks ---------------------------------------------------------------------------------------------------


def test_locks_are_per_source(url):
    a, b = PostgresWarehouse(url), PostgresWarehouse(url)  # two processes' worth of sessions
    with a.lock(["hubspot"]):
        with b.lock(["salesforce", "ga4"]):  # other sources: fine, in parallel
            pass
        match = "another funnelsync sync is running for source 'hubspot'"
        with pytest.raises(LockedError, match=match), b.lock(["ga4", "hubspot"]):
            pass
        with b.lock(["ga4"]):  # the failed attempt released what it had taken
            pass
        with pytest.raises(LockedError), b.lock():  # a whole-warehouse lock waits for no one
            pass
    with b.lock(["hubspot"]), pytest.raises(LockedError), a.lock([]):  # released on exit; [] = whole warehouse
        pass
    with a.lock(), pytest.raises(LockedError), b.lock(["mailchimp"]):
        pass
    a.close()
    b.close()


def test_a_killed_holder_releases_its_lock(url):
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); from warehouse.postgres import PostgresWarehouse\n"
            "w = PostgresWarehouse(sys.argv[2])\n"
            "with w.lock(['hubspot']):\n    print('locked', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(ROOT), url], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        w = PostgresWarehouse(url)
        with pytest.raises(LockedError), w.lock(["hubspot"]):
            pass
    finally:
        proc.kill()
        proc.wait()
    # the server ends the dead client's session (and its locks) as soon as the socket closes
    for _ in range(50):
        try:
            with w.lock(["hubspot"]):
                break
        except LockedError:
            threading.Event().wait(0.1)
    else:
        pytest.fail("the lock of a killed process was not released")
    w.close()


def test_derive_lock_serializes(url):
    a, b = PostgresWarehouse(url), PostgresWarehouse(url)
    with a.derive_lock(), pytest.raises(LockedError), b.derive_lock(timeout_s=1):
        pass
    with b.derive_lock(timeout_s=1):
        pass
    a.close()
    b.close()


def test_parallel_writers_sharing_upsert_keys_do_not_deadlock(url):
    """Two sources upserting the same campaigns in opposite orders: rows are merged in key order, so the
    transactions queue on each other instead of deadlocking."""
    errors = []

    def writer(name, order):
        w = PostgresWarehouse(url)
        try:
            for n in range(15):
                rows = [Row("campaigns", {"campaign_key": f"c{i}", "name": f"{name}{n}"}) for i in order]
                w.write_batch(batch({f"{name}{n}": rows}, source_name=name), now=NOW)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            w.close()
    threads = [threading.Thread(target=writer, args=("a", range(40))),
               threading.Thread(target=writer, args=("b", range(39, -1, -1)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = connect(url)
    assert check.execute("SELECT count(*) FROM campaigns").fetchone() == (40,)
    check.close()
