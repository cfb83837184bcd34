"""The warehouse tables (spec §1, §9.1), declared once for SQLite and PostgreSQL.

Column types are logical: TEXT, REAL, INT, TS (UTC timestamp; SQLite TEXT `YYYY-MM-DDTHH:MM:SSZ`, PG timestamptz),
DATE (SQLite TEXT `YYYY-MM-DD`, PG date), JSON (SQLite TEXT, PG jsonb).

How normalizer rows are written (see warehouse/sqlite.py `write_batch`):
- ORIGIN tables are replaced per raw record: before a record's rows are inserted, every row whose
  (source_system, source_object, source_id) is that record's is deleted. A record that no longer yields a row
  (an archived contact's lifecycle events) therefore removes it.
- UPSERT tables are keyed by their primary key; a normalizer removes a row with `Delete(table, key)`.
- The rest are written by the warehouse itself (derive step, KPIs, sync bookkeeping).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    pk: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    not_null: tuple[str, ...] = ()
    partial: tuple[tuple[str, tuple[str, ...], str], ...] = ()  # (name, columns, WHERE): an index of some rows
    view: str = ""  # set: a view of other tables (this SELECT, giving `columns`), not a table

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def index_statements(self) -> list[tuple[str, str]]:
        """(name, CREATE INDEX IF NOT EXISTS ...) of every index; names start with `ix_<table>_`."""
        out = [(f"ix_{self.name}_{'_'.join(cols)}", cols, "") for cols in self.indexes]
        out += [(f"ix_{self.name}_{name}", cols, f" WHERE {where}") for name, cols, where in self.partial]
        return [(n, f"CREATE INDEX IF NOT EXISTS {n} ON {self.name} ({', '.join(cols)}){w}") for n, cols, w in out]


def _t(name, cols, pk, indexes=(), not_null=(), partial=(), view=""):
    return Table(name, tuple((c.split()[0], c.split()[1]) for c in cols.split(",") if c.strip()), pk, indexes, not_null,
                 partial, view)


# (person, campaign) pair events (KPIs K34–K39, K45–K47: email sends, webinar / event registrations, direct mail):
# warehouse/kpis.py reads them one (campaign, person) at a time through the partial index below, whose WHERE its query
# repeats verbatim (SQLite uses a partial index only for a query whose WHERE holds the index's terms).
PAIR_TYPES = ("email_sent", "email_delivered", "email_opened", "email_clicked", "email_unsubscribed", "email_bounced",
              "webinar_registered", "webinar_attended", "event_registered", "event_attended", "direct_mail_sent",
              "direct_mail_claimed", "meeting_booked")
PAIRS_WHERE = "event_type IN (" + ", ".join(f"'{t}'" for t in PAIR_TYPES) + ") AND person_key IS NOT NULL"


RAW_RECORDS = _t(
    "raw_records",
    "source_system TEXT, source_object TEXT, source_id TEXT, source_name TEXT, fetched_at TS, payload JSON",
    ("source_system", "source_object", "source_id"),
    indexes=(("source_name", "source_object"),),
)
EVENTS = _t(
    "events",
    """event_id TEXT, event_type TEXT, occurred_at TS, event_date DATE, source_system TEXT, source_object TEXT,
    source_id TEXT, person_key TEXT, account_key TEXT, opportunity_key TEXT, campaign_key TEXT, channel TEXT,
    utm_source TEXT, utm_medium TEXT, utm_campaign TEXT, utm_content TEXT, utm_term TEXT, referrer_domain TEXT,
    landing_path TEXT, quantity REAL, amount REAL, currency TEXT, is_aggregate INT, properties JSON,
    source_name TEXT, ingested_at TS""",
    ("event_id",),
    indexes=(
        ("event_type", "event_date"),
        ("person_key", "occurred_at"),
        ("opportunity_key",),
        ("campaign_key", "event_date"),
        ("source_system", "source_object", "source_id"),
        ("source_name", "source_object", "event_date"),
    ),
    not_null=("event_type", "occurred_at", "event_date", "source_system", "source_object", "source_id", "channel",
              "quantity", "ingested_at"),
    partial=(("pairs", ("campaign_key", "person_key", "event_type", "event_date", "source_system"), PAIRS_WHERE),),
)
# Identity contributions: one row per source record that names a person / company. `people` and `accounts`
# are derived from them (merge by person_key / account_key), so a person in three systems is one row.
PERSON_SOURCES = _t(
    "person_sources",
    """source_system TEXT, source_object TEXT, source_id TEXT, person_key TEXT, email TEXT, account_key TEXT,
    account_ref TEXT, first_seen_at TS, lifecycle_stage TEXT, original_source_raw TEXT, self_reported_raw TEXT,
    self_reported_at TS, fallback_channel TEXT, ext_ids JSON, source_name TEXT""",
    ("source_system", "source_object", "source_id"),
    indexes=(("person_key",), ("account_ref",)),
)
ACCOUNT_SOURCES = _t(
    "account_sources",
    "source_system TEXT, source_object TEXT, source_id TEXT, account_key TEXT, name TEXT, domain TEXT, source_name TEXT",
    ("source_system", "source_object", "source_id"),
    indexes=(("account_key",),),
)
# Opportunity <-> person links as the source states them; `person_ref` ("hubspot:contact:123") is resolved
# through person_sources when the source gives no email (HubSpot associations, Salesforce ContactId).
OPPORTUNITY_LINKS = _t(
    "opportunity_links",
    """source_system TEXT, source_object TEXT, source_id TEXT, opportunity_key TEXT, person_key TEXT,
    person_ref TEXT, role TEXT, is_primary INT, source_name TEXT""",
    ("source_system", "source_object", "source_id", "opportunity_key", "person_ref"),
    indexes=(("opportunity_key",),),
)
PEOPLE = _t(
    "people",
    """person_key TEXT, email TEXT, email_domain TEXT, account_key TEXT, first_seen_at TS, source_ids JSON,
    lifecycle_stage TEXT, original_channel TEXT, original_source_raw TEXT, self_reported_raw TEXT,
    self_reported_channel TEXT, reconciled_channel TEXT""",
    ("person_key",),
)
ACCOUNTS = _t(
    "accounts",
    "account_key TEXT, name TEXT, domain TEXT, source_ids JSON, first_won_at TS, is_customer INT",
    ("account_key",),
)
CAMPAIGNS = _t(
    "campaigns",
    """campaign_key TEXT, source_system TEXT, source_campaign_id TEXT, name TEXT, channel TEXT, platform_type TEXT,
    parent_campaign_key TEXT, utm_campaign TEXT, start_date DATE, end_date DATE, budgeted_cost REAL,
    actual_cost REAL, currency TEXT, source_name TEXT""",
    ("campaign_key",),
    indexes=(("utm_campaign",),),
)
OPPORTUNITIES = _t(
    "opportunities",
    """opportunity_key TEXT, source_system TEXT, source_object TEXT, source_id TEXT, account_key TEXT,
    account_ref TEXT, name TEXT, pipeline TEXT, stage TEXT, created_at TS, closed_at TS, close_date DATE,
    is_closed INT, is_won INT, amount REAL, currency TEXT, amount_monthly REAL, sqo_at TS,
    primary_campaign_key TEXT, lead_source_raw TEXT, sourced_channel TEXT, first_touch_at TS, source_name TEXT""",
    ("opportunity_key",),
)
OPPORTUNITY_PEOPLE = _t(
    "opportunity_people",
    "opportunity_key TEXT, person_key TEXT, role TEXT, is_primary INT, source TEXT",
    ("opportunity_key", "person_key"),
    indexes=(("person_key",),),
)
ATTRIBUTION_CREDITS = _t(
    "attribution_credits",
    """model TEXT, target TEXT, opportunity_key TEXT, touch_event_id TEXT, channel TEXT, campaign_key TEXT,
    credit REAL, credited_amount REAL, conversion_at TS""",
    (),
    indexes=(("model", "target", "conversion_at"), ("opportunity_key",)),
)
GOALS = _t(
    "goals",
    "plan_year INT, metric TEXT, target REAL, quarter_weights JSON, rate_overrides JSON",
    ("plan_year", "metric"),
)
FX_RATES = _t("fx_rates", "date DATE, currency TEXT, rate_to_reporting REAL", ("date", "currency"))
# kpi_values (§9.1), what dashboards read, is a view of three tables that warehouse/kpis.py refresh_kpis writes
# compactly: each slice (grain, period, channel / campaign / source / landing path) once in kpi_slices, each row as
# (slice_id, kpi_id, value, numerator, denominator, status) in kpi_rows, the KPI names in kpi_names.
# landing_path: the slice of K17 landing_page_conversion_rate (per path, spec §4.2); NULL on every other row.
KPI_NAMES = _t("kpi_names", "kpi_id INT, kpi TEXT", ("kpi_id",))
KPI_SLICES = _t(
    "kpi_slices",
    """slice_id INT, grain TEXT, period_start DATE, period_end DATE, channel TEXT, campaign_key TEXT,
    source_system TEXT, landing_path TEXT""",
    ("slice_id",),
    indexes=(("grain", "period_start"),),
)
KPI_ROWS = _t(
    "kpi_rows",
    "slice_id INT, kpi_id INT, value REAL, numerator REAL, denominator REAL, status TEXT",
    (),
    indexes=(("kpi_id", "slice_id"),),
)
_KPI_COLUMNS = ("grain", "period_start", "period_end", "kpi", "channel", "campaign_key", "source_system", "value",
                "numerator", "denominator", "status", "landing_path")
KPI_VALUES = _t(
    "kpi_values",
    ", ".join(f"{c} {dict(KPI_NAMES.columns + KPI_SLICES.columns + KPI_ROWS.columns)[c]}" for c in _KPI_COLUMNS),
    (),
    view="SELECT " + ", ".join(
        ("r." if c in KPI_ROWS.column_names else "n." if c == "kpi" else "s.") + c for c in _KPI_COLUMNS)
    + " FROM kpi_rows r JOIN kpi_slices s ON s.slice_id = r.slice_id JOIN kpi_names n ON n.kpi_id = r.kpi_id",
)
GOAL_PACING = _t(
    "goal_pacing",
    """plan_year INT, metric TEXT, quarter INT, target REAL, expected_to_date REAL, actual_to_date REAL,
    pacing REAL, band TEXT, as_of DATE""",
    (),
)
QUARANTINE = _t(
    "quarantine",
    "source_name TEXT, stream TEXT, source_id TEXT, reason TEXT, record JSON, quarantined_at TS",
    ("source_name", "stream", "source_id"),
)
SYNC_STATE = _t(
    "sync_state",
    """source_name TEXT, stream TEXT, cursor_field TEXT, cursor JSON, last_success_at TS, last_run_at TS,
    rows_written INT, rows_quarantined INT, last_error TEXT""",
    ("source_name", "stream"),
)
SYNC_RUNS = _t(
    "sync_runs",
    """run_id TEXT, source_name TEXT, stream TEXT, mode TEXT, started_at TS, finished_at TS, status TEXT,
    rows_written INT, rows_quarantined INT, requests INT, error TEXT""",
    ("run_id", "source_name", "stream"),
)

TABLES: tuple[Table, ...] = (
    RAW_RECORDS, EVENTS, PERSON_SOURCES, ACCOUNT_SOURCES, OPPORTUNITY_LINKS, PEOPLE, ACCOUNTS, CAMPAIGNS,
    OPPORTUNITIES, OPPORTUNITY_PEOPLE, ATTRIBUTION_CREDITS, GOALS, FX_RATES, KPI_NAMES, KPI_SLICES, KPI_ROWS,
    KPI_VALUES, GOAL_PACING, QUARANTINE, SYNC_STATE, SYNC_RUNS,
)
BY_NAME = {t.name: t for t in TABLES}

# Tables normalizers write, and how (see module docstring).
ORIGIN_TABLES = ("events", "person_sources", "account_sources", "opportunity_links")
UPSERT_TABLES = ("campaigns", "opportunities", "fx_rates")
WRITABLE = ORIGIN_TABLES + UPSERT_TABLES

SQLITE_TYPES = {"TEXT": "TEXT", "REAL": "REAL", "INT": "INTEGER", "TS": "TEXT", "DATE": "TEXT", "JSON": "TEXT"}
PG_TYPES = {"TEXT": "text", "REAL": "double precision", "INT": "bigint", "TS": "timestamptz", "DATE": "date",
            "JSON": "jsonb"}


def ddl(table: Table, types: dict[str, str]) -> list[str]:
    """CREATE TABLE / INDEX statements (IF NOT EXISTS) for one table in one dialect (a view: CREATE VIEW)."""
    if table.view:
        create = "CREATE OR REPLACE VIEW" if types is PG_TYPES else "CREATE VIEW IF NOT EXISTS"
        return [f"{create} {table.name} AS {table.view}"]
    cols = []
    for name, kind in table.columns:
        nn = " NOT NULL" if name in table.not_null else ""
        default = " DEFAULT 1" if (table.name == "events" and name == "quantity") else ""
        cols.append(f"{name} {types[kind]}{nn}{default}")
    if table.pk:
        cols.append(f"PRIMARY KEY ({', '.join(table.pk)})")
    return [f"CREATE TABLE IF NOT EXISTS {table.name} ({', '.join(cols)})"] + [
        stmt for _, stmt in table.index_statements()]
