"""The derive step (spec §1.3, §2, §5.4): rebuild what the warehouse owns from the normalized tables.

`derive(conn, model, as_of)` runs after every sync. It reads the ORIGIN / UPSERT tables the normalizers write
(`events`, `person_sources`, `account_sources`, `opportunity_links`, `campaigns`, `opportunities`, `fx_rates`) and
rebuilds, in this order:

1. `events.campaign_key` of web-classified events (`web_visit`, `form_submitted`, `demo_requested`, `web_*`) that carry
   a `utm_campaign`: the platform campaign whose `campaigns.utm_campaign` matches (case-insensitive; several ⇒ the
   lowest key), else `utm:{utm_campaign}`. Normalizers never key these events to a campaign, so the column is
   derive-owned for them and recomputed every run.
2. `events.channel` of campaign-bound events (`email_*`, `webinar_*`, `event_*`, `direct_mail_*`, `meeting_booked`,
   `content_syndicated`, `ad_*`, `program_spend`) = `campaigns.channel` of their campaign (spec §2 (1), (3)); a
   person event whose campaign is unknown and whose channel is still `unattributed` gets its family's channel
   (email, webinar, events, direct_mail, content_syndication).
3. `opportunity_people` from `opportunity_links` (`person_key`, else `person_ref` resolved through `person_sources`),
   only for opportunities that exist.
4. `people` = `person_sources` merged by `person_key` (rules on `_merge_person`), `original_channel` from the
   earliest touch ever, `reconciled_channel` per §5.4 / [D-30].
5. `opportunities` derived columns: `account_key` (`account_ref` resolved through `account_sources`), `sqo_at`,
   `first_touch_at` (K29), `amount_monthly` ([D-26]), then attribution (warehouse/attribution.py, every model and
   target, `attribution_credits` rebuilt) and `sourced_channel` = channel of the `first_touch` pipeline credit.
6. lifecycle events: `channel` = `people.original_channel`, `campaign_key` = the campaign of that first touch,
   `account_key` = `people.account_key`; opportunity events: `channel` = `sourced_channel`, `campaign_key` = the
   campaign of the first-touch credit, `account_key` = the opportunity's; every other person event gets
   `account_key` from `people`. (Keying lifecycle/opportunity events to their sourcing campaign is what lets the
   K19/K20 cost-per-lead KPIs be sliced by campaign with the same "sourced" semantics as by channel, [D-19].)
7. `accounts` from `account_sources` (merged by `account_key`) plus accounts only people / opportunities name;
   `first_won_at` / `is_customer` from won opportunities (closed on or before `as_of` when given).

Derived tables are deleted and re-inserted (in sorted order), so rows of deleted sources vanish and the same
inputs give identical rows. Portability: the SQL here is the subset SQLite (>= 3.39) and PostgreSQL share
(`UPDATE … FROM`, `IS DISTINCT FROM`, temp tables, window functions); the few dialect differences live in `DIALECTS`.
Bulk set logic runs in SQL; the per-person (step 4), per-opportunity (3, 5) and per-account (7) work runs in Python
over queries ordered by that key, merged (`merge_groups`) and read as they come (`stream`: a server-side cursor on
PostgreSQL), so memory holds one person / opportunity / account at a time, whatever the data's size. Keys are compared
in Python's order, so every merged ORDER BY uses `order_c`.
"""
from __future__ import annotations

import itertools
import json
import sqlite3
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any

from normalize.events import (
    LIFECYCLE_TYPES,
    OPPORTUNITY_TYPES,
    TOUCH_TYPES,
    email_domain,
    local_date,
)
from normalize.events import account_key as _account_key
from normalize.model import Model

# ---- dialects ---------------------------------------------------------------------------------------------------
# Everything that differs between the two backends. Add a PostgreSQL variant here, nowhere else.
DIALECTS: dict[str, dict[str, str]] = {
    "sqlite": {
        "param": "?",
        "json_text": "json_extract({col}, '$.{key}')",
        "temp_table": "CREATE TEMP TABLE {name} ({cols})",
        "order_c": "",  # ORDER BY in byte (= Python str) order
        "ts_second": "{col}",  # a TS column at the precision of its text form (`ts()`)
        "bulk_drop_index": "yes",  # refresh_kpis drops kpi_rows' / kpi_slices' indexes while bulk-inserting
        "pairs_index": " INDEXED BY ix_events_pairs",  # SQLite's planner, without statistics, would sort instead
    },
    "postgresql": {
        "param": "%s",
        "json_text": "({col}->>'{key}')",
        "temp_table": "CREATE TEMP TABLE {name} ({cols})",
        "order_c": ' COLLATE "C"',
        "ts_second": "date_trunc('second', {col})",
        "bulk_drop_index": "",  # DROP INDEX would lock dashboards' readers out until commit
        "pairs_index": "",
    },
}

UNATTRIBUTED = "unattributed"
WEB_TYPES = ("web_visit", "form_submitted", "demo_requested", "web_sessions", "web_engaged_sessions",
             "web_new_users", "web_page_views", "web_key_events", "web_engagement_seconds")
EMAIL_TYPES = ("email_sent", "email_delivered", "email_bounced", "email_opened", "email_clicked",
               "email_unsubscribed", "email_spam_reported")
PROGRAM_TYPES = ("webinar_registered", "webinar_attended", "event_registered", "event_attended",
                 "direct_mail_sent", "direct_mail_claimed", "meeting_booked", "content_syndicated")
AD_TYPES = ("ad_impressions", "ad_clicks", "ad_conversions", "ad_leads", "ad_spend", "program_spend")
CAMPAIGN_BOUND = EMAIL_TYPES + PROGRAM_TYPES + AD_TYPES
# channel of a campaign-bound person event whose campaign row is unknown (spec §2 (3) cannot apply)
FAMILY_CHANNEL = {
    **{t: "email" for t in EMAIL_TYPES},
    "webinar_registered": "webinar", "webinar_attended": "webinar",
    "event_registered": "events", "event_attended": "events",
    "direct_mail_sent": "direct_mail", "direct_mail_claimed": "direct_mail",
    "content_syndicated": "content_syndication",
}
TOUCHES = tuple(sorted(TOUCH_TYPES))
# lifecycle stage order (spec §2); HubSpot / Salesforce spellings map onto it
STAGE_RANK = {
    "subscriber": 0, "lead": 1, "marketingqualifiedlead": 2, "mql": 2, "salesqualifiedlead": 3, "sql": 3,
    "opportunity": 4, "customer": 5, "evangelist": 5,
}
STAGE_NAME = {1: "lead", 2: "mql", 3: "sql", 4: "opportunity", 5: "customer"}
EVENT_STAGE = {"lead_created": 1, "became_mql": 2, "became_sql": 3, "became_customer": 5}
SOFTWARE_BLIND = frozenset({"direct", "dark_social", "other", UNATTRIBUTED})  # [D-30]


def dialect(conn: Any) -> str:
    return "sqlite" if isinstance(conn, sqlite3.Connection) else "postgresql"


def sql(conn: Any, text: str) -> str:
    """Write SQL with `?` placeholders; PostgreSQL gets `%s`."""
    p = DIALECTS[dialect(conn)]["param"]
    return text if p == "?" else text.replace("?", p)


def in_list(values: Iterable[str]) -> str:
    """A literal `IN (...)` list of fixed vocabulary (never user input)."""
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


FETCH_ROWS = 2000  # rows per fetch of a streamed PostgreSQL query


def query(conn: Any, text: str, params: tuple | list = ()) -> Iterator[tuple]:
    """The rows of a query (its cursor, executed now). A psycopg cursor receives the whole result at once: use
    `stream` for large results; sqlite3 steps one row at a time either way (so run DDL before opening a read)."""
    cur = conn.cursor()
    cur.execute(sql(conn, text), params)
    return cur


_cursor_names = itertools.count(1)


def stream(conn: Any, text: str, params: tuple | list = ()) -> Iterator[tuple]:
    """The rows of a query with a result too large to hold: on PostgreSQL through a server-side (named) cursor in the
    open transaction, FETCH_ROWS at a time. Other statements may run on `conn` while it is read."""
    if dialect(conn) == "sqlite":
        return query(conn, text, params)
    return _server_cursor(conn, sql(conn, text), params)


def _server_cursor(conn: Any, text: str, params: tuple | list) -> Iterator[tuple]:
    with conn.cursor(name=f"funnelsync_{next(_cursor_names)}") as cur:
        cur.execute(text, params)
        while batch := cur.fetchmany(FETCH_ROWS):
            yield from batch


def merge_groups(*streams: Iterable[tuple]) -> Iterator[tuple]:
    """Merge queries ordered by their first column (non-NULL, one order for all: `order_c`): yields (key, rows of the
    first query with that key, rows of the second, ...) for every key, in order; one key's rows in memory at a time."""
    its = [iter(s) for s in streams]
    heads = [next(it, None) for it in its]
    last = None
    while True:
        key = min((h[0] for h in heads if h is not None), default=None)
        if key is None:
            return
        if last is not None and key <= last:
            raise ValueError(f"merge_groups: keys out of order ({last!r} then {key!r}): ORDER BY needs order_c")
        last = key
        groups = []
        for i, it in enumerate(its):
            group, h = [], heads[i]
            while h is not None and h[0] == key:
                group.append(h)
                h = next(it, None)
            heads[i] = h
            groups.append(group)
        yield key, *groups


def execute(conn: Any, text: str, params: tuple | list = ()) -> None:
    conn.cursor().execute(sql(conn, text), params)


def executemany(conn: Any, text: str, rows: Iterable[tuple]) -> None:
    conn.cursor().executemany(sql(conn, text), rows)


def insert_rows(conn: Any, table: str, columns: tuple[str, ...], rows: Iterable[tuple], batch: int = 200) -> None:
    """Bulk insert: multi-row VALUES statements of `batch` rows (fewer round trips than executemany), rest singly."""
    one = "(" + ", ".join("?" for _ in columns) + ")"
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    many = sql(conn, head + ", ".join([one] * batch))
    cur = conn.cursor()
    chunk: list = []
    n = 0
    for r in rows:
        chunk.extend(r)
        n += 1
        if n == batch:
            cur.execute(many, chunk)
            chunk, n = [], 0
    if n:
        cur.execute(sql(conn, head + ", ".join([one] * n)), chunk)


def temp_table(conn: Any, name: str, cols: str) -> None:
    execute(conn, f"DROP TABLE IF EXISTS {name}")
    execute(conn, DIALECTS[dialect(conn)]["temp_table"].format(name=name, cols=cols))


def begin_owned(conn: Any) -> bool:
    """True when no transaction is open: the caller of a rebuild then commits what it did."""
    if isinstance(conn, sqlite3.Connection):
        return not conn.in_transaction
    try:  # psycopg 3
        from psycopg.pq import TransactionStatus

        return conn.info.transaction_status == TransactionStatus.IDLE
    except (ImportError, AttributeError):  # pragma: no cover - other drivers: let the caller commit
        return False


def ts(value: Any) -> str | None:
    """A timestamp column as `YYYY-MM-DDTHH:MM:SSZ` text (PostgreSQL returns datetimes)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        from normalize.events import to_utc

        return to_utc(value)
    return str(value)


def day(value: Any) -> str | None:
    """A date column as `YYYY-MM-DD` text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10]
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# ---- currency ---------------------------------------------------------------------------------------------------


class Fx:
    """`fx_rates` lookups: the rate on the date, else the latest earlier one; none ⇒ None (row excluded, [D-02]).

    A NULL currency is taken as the reporting currency (normalizers fill the source's `currency` setting, §0).
    Every miss is counted in `missing[(currency)]` so callers can warn once per currency.
    """

    def __init__(self, conn: Any, reporting_currency: str):
        self.reporting = reporting_currency
        self.dates: dict[str, list[str]] = {}
        self.rates: dict[str, list[float]] = {}
        for d, cur, rate in query(conn, "SELECT date, currency, rate_to_reporting FROM fx_rates "
                                        "WHERE rate_to_reporting IS NOT NULL ORDER BY currency, date"):
            self.dates.setdefault(cur, []).append(day(d))
            self.rates.setdefault(cur, []).append(float(rate))
        self.missing: dict[str, int] = {}
        self._cache: dict[tuple[str, str], float | None] = {}

    def rate(self, currency: str | None, on: str) -> float | None:
        if currency is None or currency == self.reporting:
            return 1.0
        key = (currency, on)
        if key in self._cache:
            return self._cache[key]
        dates = self.dates.get(currency)
        r = None
        if dates:
            i = bisect_right(dates, on[:10])
            if i:
                r = self.rates[currency][i - 1]
        self._cache[key] = r
        return r

    def convert(self, amount: float | None, currency: str | None, on: str, rows: int = 1) -> float | None:
        if amount is None:
            return None
        r = self.rate(currency, on)
        if r is None:
            self.missing[currency] = self.missing.get(currency, 0) + rows
            return None
        return amount * r

    def warnings(self, what: str) -> list[str]:
        return [f"{n} {what} in {cur} have no fx_rates rate to {self.reporting} and were excluded"
                for cur, n in sorted(self.missing.items())]


# ---- the step ---------------------------------------------------------------------------------------------------


def derive(conn: Any, model: Model, as_of: str | None = None) -> list[str]:
    """Rebuild people, accounts, opportunity_people, derived event/opportunity columns and attribution_credits.

    Returns warnings (e.g. opportunity amounts without an fx rate). Commits when it opened the transaction.
    Memory stays flat: every per-person / per-opportunity / per-account pass streams a query ordered by its key.
    """
    owned = begin_owned(conn)
    campaigns = {k: (ch, utm) for k, ch, utm in query(conn, "SELECT campaign_key, channel, utm_campaign FROM campaigns")}
    _utm_campaign_keys(conn, campaigns)
    _campaign_channels(conn)
    # references "system:object:id" to accounts (of people and opportunities) and to people (of opportunity links)
    _ref_table(conn, "_aref", "SELECT account_ref FROM person_sources WHERE account_ref IS NOT NULL UNION "
                              "SELECT account_ref FROM opportunities WHERE account_ref IS NOT NULL")
    _ref_table(conn, "_pref", "SELECT DISTINCT person_ref FROM opportunity_links WHERE person_ref IS NOT NULL")
    _write_opportunity_people(conn)
    _write_people(conn, model)
    fx = Fx(conn, model.reporting_currency)
    _derive_opportunities(conn, model, fx)
    warnings = fx.warnings("opportunity amounts (attribution credited_amount left NULL)")
    execute(conn, "DROP TABLE IF EXISTS _aref")
    execute(conn, "DROP TABLE IF EXISTS _pref")
    _event_attribution_columns(conn)
    _write_accounts(conn, as_of)
    if owned:
        conn.commit()
    return warnings


def monthly_amount(amount: float | None, model: Model) -> float | None:
    """[D-26] `amount_basis`: annual ÷ 12 (default), monthly as is, total_contract ÷ `contract_months`."""
    if amount is None:
        return None
    return amount * monthly_factor(model)


def monthly_factor(model: Model) -> float:
    if model.amount_basis == "monthly":
        return 1.0
    if model.amount_basis == "total_contract":
        return 1.0 / (model.contract_months or 12)
    return 1.0 / 12.0


# ---- pieces -----------------------------------------------------------------------------------------------------


def _split_ref(ref: str) -> tuple[str, str, str]:
    parts = ref.split(":", 2)
    return tuple(parts) if len(parts) == 3 else ("", "", ref)  # type: ignore[return-value]


def _utm_campaign_keys(conn: Any, campaigns: dict[str, tuple]) -> None:
    """Step 1: platform campaign_key by utm_campaign, else `utm:{utm_campaign}` (web-classified events)."""
    by_utm: dict[str, str] = {}
    for key in sorted(campaigns):
        utm = campaigns[key][1]
        if utm and utm.strip():
            by_utm.setdefault(utm.strip().lower(), key)
    values = [v for (v,) in query(conn, f"SELECT DISTINCT utm_campaign FROM events WHERE utm_campaign IS NOT NULL "
                                        f"AND event_type IN {in_list(WEB_TYPES)}")]
    temp_table(conn, "_utm_map", "utm_campaign TEXT PRIMARY KEY, campaign_key TEXT")
    insert_rows(conn, "_utm_map", ("utm_campaign", "campaign_key"),
                ((v, by_utm.get(v.strip().lower(), f"utm:{v}")) for v in sorted(set(values))))
    execute(conn, f"UPDATE events SET campaign_key = m.campaign_key FROM _utm_map m "
                  f"WHERE m.utm_campaign = events.utm_campaign AND events.event_type IN {in_list(WEB_TYPES)} "
                  f"AND events.campaign_key IS DISTINCT FROM m.campaign_key")
    execute(conn, "DROP TABLE IF EXISTS _utm_map")


def _campaign_channels(conn: Any) -> None:
    """Step 2: channel of campaign-bound events = campaigns.channel (spec §2 (1), (3))."""
    execute(conn, f"UPDATE events SET channel = c.channel FROM campaigns c "
                  f"WHERE c.campaign_key = events.campaign_key AND events.event_type IN {in_list(CAMPAIGN_BOUND)} "
                  f"AND c.channel IS NOT NULL AND events.channel <> c.channel")
    family = " ".join(f"WHEN event_type IN {in_list([t for t, c in FAMILY_CHANNEL.items() if c == ch])} THEN '{ch}'"
                      for ch in sorted(set(FAMILY_CHANNEL.values())))
    execute(conn, f"UPDATE events SET channel = CASE {family} END WHERE event_type IN {in_list(FAMILY_CHANNEL)} "
                  f"AND channel = ? AND NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.campaign_key = "
                  f"events.campaign_key AND c.channel IS NOT NULL)", (UNATTRIBUTED,))


def _ref_table(conn: Any, name: str, refs_sql: str) -> None:
    """Temp table `name` (ref, s, o, i): the references "system:object:id" `refs_sql` selects, split, so that the
    person_sources / account_sources rows they name are found by a join instead of an in-memory map."""
    temp_table(conn, name, "ref TEXT PRIMARY KEY, s TEXT, o TEXT, i TEXT")
    insert_rows(conn, name, ("ref", "s", "o", "i"), ((r,) + _split_ref(r) for (r,) in stream(conn, refs_sql)))


def _resolved(alias: str, ref: str) -> str:
    """Joins resolving `ref` (a column holding a reference) through `_aref` to account_sources as `alias`."""
    return (f"LEFT JOIN _aref {alias}_r ON {alias}_r.ref = {ref} LEFT JOIN account_sources {alias} ON "
            f"{alias}.source_system = {alias}_r.s AND {alias}.source_object = {alias}_r.o AND "
            f"{alias}.source_id = {alias}_r.i")


OPP_PEOPLE_COLUMNS = ("opportunity_key", "person_key", "role", "is_primary", "source")


def _write_opportunity_people(conn: Any) -> None:
    """Step 3, streamed: the links of existing opportunities grouped by (opportunity, person) — the link's person_key,
    else its person_ref resolved through person_sources; links naming no person are skipped. In link order (source
    system, object, id, ...): role = the first non-empty one, is_primary = any, source = the first link's system."""
    execute(conn, "DELETE FROM opportunity_people")
    c = DIALECTS[dialect(conn)]["order_c"]
    pk = "COALESCE(NULLIF(l.person_key, ''), ps.person_key)"
    order = ", ".join(f"COALESCE({col}, ''){c}" for col in (
        "l.source_system", "l.source_object", "l.source_id", "l.person_key", "l.person_ref", "l.role",
        "CAST(l.is_primary AS TEXT)"))
    links = stream(conn, f"SELECT l.opportunity_key, {pk}, l.source_system, l.role, l.is_primary "
                         f"FROM opportunity_links l JOIN opportunities o ON o.opportunity_key = l.opportunity_key "
                         f"LEFT JOIN _pref r ON r.ref = l.person_ref LEFT JOIN person_sources ps ON "
                         f"ps.source_system = r.s AND ps.source_object = r.o AND ps.source_id = r.i "
                         f"WHERE {pk} <> '' ORDER BY l.opportunity_key{c}, {pk}{c}, {order}")

    def pairs() -> Iterator[tuple]:
        cur = None
        for ok, person, system, role, primary in links:
            if cur is not None and cur[0] == ok and cur[1] == person:
                cur[2] = cur[2] or role
                cur[3] = max(cur[3], 1 if primary else 0)
                continue
            if cur is not None:
                yield tuple(cur)
            cur = [ok, person, role, 1 if primary else 0, system]
        if cur is not None:
            yield tuple(cur)

    insert_rows(conn, "opportunity_people", OPP_PEOPLE_COLUMNS, pairs())


PEOPLE_COLUMNS = ("person_key", "email", "email_domain", "account_key", "first_seen_at", "source_ids",
                  "lifecycle_stage", "original_channel", "original_source_raw", "self_reported_raw",
                  "self_reported_channel", "reconciled_channel")


def _write_people(conn, model, chunk: int = 1000) -> None:
    """Step 4, streamed: person_sources merged by person_key with each person's first touch and the highest stage of
    their lifecycle events and opportunities (won ⇒ customer), all ordered by person_key; each person's row is built,
    written in chunks of `chunk` rows (with its `_pmap` row for step 6), and dropped. The stages are grouped first,
    into `_prank`, so that only one large sort (the first touches) runs while the people stream."""
    from normalize.classify import self_reported_channel

    execute(conn, "DELETE FROM people")
    temp_table(conn, "_pmap", "person_key TEXT PRIMARY KEY, channel TEXT, campaign_key TEXT, account_key TEXT")
    temp_table(conn, "_prank", "person_key TEXT PRIMARY KEY, stage INT")
    stage = " ".join(f"WHEN '{t}' THEN {r}" for t, r in EVENT_STAGE.items())
    execute(conn, f"INSERT INTO _prank SELECT person_key, MAX(stage) FROM (SELECT person_key, CASE event_type {stage} "
                  f"END AS stage FROM events WHERE event_type IN {in_list(LIFECYCLE_TYPES)} AND person_key IS NOT "
                  f"NULL UNION ALL SELECT op.person_key, CASE WHEN o.is_won <> 0 THEN 5 ELSE 4 END FROM "
                  f"opportunity_people op JOIN opportunities o ON o.opportunity_key = op.opportunity_key) x "
                  f"GROUP BY person_key")
    c = DIALECTS[dialect(conn)]["order_c"]
    occ = DIALECTS[dialect(conn)]["ts_second"].format(col="occurred_at")
    cols = ("person_key", "source_system", "source_object", "source_id", "email", "account_key", "account_ref",
            "first_seen_at", "lifecycle_stage", "original_source_raw", "self_reported_raw", "self_reported_at",
            "fallback_channel", "ext_ids")
    sources = stream(conn, f"SELECT {', '.join('p.' + x for x in cols)}, a.account_key FROM person_sources p "
                           f"{_resolved('a', 'p.account_ref')} WHERE p.person_key IS NOT NULL ORDER BY p.person_key{c}")
    firsts = stream(conn, f"SELECT person_key, occurred_at, event_id, channel, campaign_key FROM (SELECT person_key, "
                          f"occurred_at, event_id, channel, campaign_key, ROW_NUMBER() OVER (PARTITION BY person_key "
                          f"ORDER BY {occ}, event_id{c}) AS rn FROM events WHERE event_type IN {in_list(TOUCHES)} "
                          f"AND person_key IS NOT NULL) t WHERE rn = 1 ORDER BY person_key{c}")
    ranks = stream(conn, f"SELECT person_key, stage FROM _prank ORDER BY person_key{c}")
    people_rows: list[tuple] = []
    pmap_rows: list[tuple] = []

    def flush() -> None:
        insert_rows(conn, "people", PEOPLE_COLUMNS, people_rows)
        insert_rows(conn, "_pmap", ("person_key", "channel", "campaign_key", "account_key"), pmap_rows)
        people_rows.clear()
        pmap_rows.clear()

    for pk, rows, first, rank in merge_groups(sources, firsts, ranks):
        if not rows:  # events of a person no source record names: no people row
            continue
        touch = (ts(first[0][1]), first[0][2], first[0][3], first[0][4]) if first else None
        p = _merge_person(pk, rows, touch, rank[0][1] if rank else 0, self_reported_channel)
        people_rows.append(tuple(p[x] for x in PEOPLE_COLUMNS))
        pmap_rows.append((pk, p["original_channel"], p["_original_campaign"], p["account_key"]))
        if len(people_rows) >= chunk:
            flush()
    flush()
    execute(conn, "DROP TABLE IF EXISTS _prank")


def _merge_person(pk, rows, touch, event_rank, sr_classify) -> dict:
    """Merge one person's `person_sources` rows.

    Source order = (first_seen_at, source_system, source_object, source_id), NULL first_seen last. `email`,
    `original_source_raw`, `fallback_channel`: first non-empty in that order. `account_key`: the first resolvable
    `account_ref`, else the first explicit `account_key`, else the (non-freemail) email domain's account.
    `self_reported_raw`: earliest non-empty answer by `self_reported_at` [D-12]. `lifecycle_stage`: the highest of
    the sources' stages and `event_rank` (of the person's lifecycle events and opportunities, won ⇒ customer), spec §2
    order.
    """
    rows = sorted(rows, key=lambda r: (ts(r[7]) or "~", r[1] or "", r[2] or "", r[3] or ""))
    email = next((r[4].strip().lower() for r in rows if r[4] and r[4].strip()), None)
    account = next((r[14] for r in rows if r[6] and r[14]), None)  # r[14]: account_ref resolved
    account = account or next((r[5] for r in rows if r[5]), None) or _account_key(email=email)
    seen = [ts(r[7]) for r in rows if r[7]]
    ids: dict[str, set] = {}
    for r in rows:
        ids.setdefault(r[1], set()).add(str(r[3]))
        ext = r[13]
        if ext:
            ext = json.loads(ext) if isinstance(ext, str) else ext
            if isinstance(ext, dict):
                for system, v in ext.items():
                    for x in (v if isinstance(v, list) else [v]):
                        if x is not None:
                            ids.setdefault(system, set()).add(str(x))
    rank = max([STAGE_RANK.get((r[8] or "").strip().lower(), 0) for r in rows]
               + [event_rank])
    answers = sorted((ts(r[11]) or "~", i, r[10].strip()) for i, r in enumerate(rows) if r[10] and r[10].strip())
    sr_raw = answers[0][2] if answers else None
    sr = sr_classify(sr_raw) if sr_raw else None
    if touch:
        original = touch[2]
    else:
        original = next((r[12] for r in rows if r[12]), None) or UNATTRIBUTED
    reconciled = sr if sr and original in SOFTWARE_BLIND else original
    return {
        "person_key": pk,
        "email": email,
        "email_domain": email_domain(email),
        "account_key": account,
        "first_seen_at": min(seen) if seen else None,
        "source_ids": dumps({k: sorted(v) for k, v in ids.items()}),
        "lifecycle_stage": STAGE_NAME.get(rank),
        "original_channel": original,
        "original_source_raw": next((r[9] for r in rows if r[9]), None),
        "self_reported_raw": sr_raw,
        "self_reported_channel": sr,
        "reconciled_channel": reconciled,
        "_original_campaign": touch[3] if touch else None,
    }


OPP_COLUMNS = ("opportunity_key", "account_key", "account_ref", "created_at", "closed_at", "close_date", "is_won",
               "amount", "currency", "amount_monthly", "sqo_at", "sourced_channel", "first_touch_at")


def _derive_opportunities(conn: Any, model: Model, fx: Fx, chunk: int = 2000) -> None:
    """Step 5, streamed one opportunity at a time (by key) with its linked people and all their touches:
    `account_key` (account_ref resolved), `sqo_at`, `first_touch_at` (K29), `amount_monthly` ([D-26]), attribution
    credits (every model and target, written as they come) and `sourced_channel` = channel of the `first_touch`
    pipeline credit; `_omap` gets the sourced channel / campaign and account of each opportunity for step 6."""
    from warehouse import attribution

    c = DIALECTS[dialect(conn)]["order_c"]
    execute(conn, "DELETE FROM attribution_credits")
    temp_table(conn, "_omap", "opportunity_key TEXT PRIMARY KEY, channel TEXT, campaign_key TEXT, account_key TEXT")
    opps = stream(conn, f"SELECT {', '.join('o.' + x for x in OPP_COLUMNS)}, a.account_key, (SELECT MIN(e.occurred_at) "
                        f"FROM events e WHERE e.opportunity_key = o.opportunity_key AND e.event_type = 'became_sqo') "
                        f"FROM opportunities o {_resolved('a', 'o.account_ref')} WHERE o.opportunity_key IS NOT NULL "
                        f"ORDER BY o.opportunity_key{c}")
    touches = stream(conn, f"SELECT op.opportunity_key, op.person_key, e.occurred_at, e.event_id, e.channel, "
                           f"e.campaign_key FROM opportunity_people op JOIN events e ON e.person_key = op.person_key "
                           f"WHERE e.event_type IN {in_list(TOUCHES)} ORDER BY op.opportunity_key{c}")
    credits: list[tuple] = []
    omap: list[tuple] = []
    changed: list[tuple] = []

    def flush() -> None:
        insert_rows(conn, "attribution_credits", attribution.COLUMNS, credits)
        insert_rows(conn, "_omap", ("opportunity_key", "channel", "campaign_key", "account_key"), omap)
        executemany(conn, "UPDATE opportunities SET account_key = ?, sqo_at = ?, first_touch_at = ?, "
                          "amount_monthly = ?, sourced_channel = ? WHERE opportunity_key = ?", changed)
        for rows in (credits, omap, changed):
            rows.clear()

    for ok, row, linked, touched in merge_groups(opps, attribution.linked_people(conn), touches):
        if not row:
            continue
        o = dict(zip(OPP_COLUMNS, row[0]))
        for col in ("created_at", "closed_at", "sqo_at", "first_touch_at"):
            o[col] = ts(o[col])
        o["close_date"] = day(o["close_date"])
        o["is_won"] = 1 if o["is_won"] else 0
        account = row[0][-2] if o["account_ref"] else o["account_key"]
        sqo = ts(row[0][-1]) or (o["created_at"] if not model.sqo_stages else None)
        lead_at = {pk: ts(lead) for _, pk, _, lead in linked if lead is not None}
        sr_channel = {pk: sr for _, pk, sr, _ in linked if sr}
        person_touches: dict[str, list[tuple]] = {}
        for _, pk, occ, eid, ch, camp in touched:
            person_touches.setdefault(pk, []).append((ts(occ), eid, ch, camp))
        # K29: the earliest touch or lead_created of the linked people, else the creation
        first_touch = min([t[0] for lst in person_touches.values() for t in lst] + list(lead_at.values()),
                          default=None) or o["created_at"]
        rows = attribution.compute(model, {ok: o}, {ok: [pk for _, pk, _, _ in linked]}, person_touches, lead_at,
                                   sr_channel, fx)
        credits += rows
        channel, campaign = UNATTRIBUTED, None
        for r in rows:
            if r[0] == "first_touch" and r[1] == "pipeline":
                channel, campaign = r[4], r[5]
        new = (account, sqo, first_touch, monthly_amount(o["amount"], model), channel)
        if new != (o["account_key"], o["sqo_at"], o["first_touch_at"], o["amount_monthly"], o["sourced_channel"]):
            changed.append(new + (ok,))
        omap.append((ok, channel, campaign, account))
        if len(credits) >= chunk:
            flush()
    flush()


def _event_attribution_columns(conn: Any) -> None:
    """Step 6: channel / campaign / account of lifecycle and opportunity events; account of person events.

    `_pmap` (person_key, original channel, its campaign, account_key) was filled by `_write_people`, `_omap`
    (opportunity_key, sourced channel, its campaign, account_key) by `_derive_opportunities`."""
    life = in_list(LIFECYCLE_TYPES)
    execute(conn, f"UPDATE events SET channel = m.channel, campaign_key = m.campaign_key, account_key = m.account_key "
                  f"FROM _pmap m WHERE m.person_key = events.person_key AND events.event_type IN {life} AND "
                  f"(events.channel IS DISTINCT FROM m.channel OR events.campaign_key IS DISTINCT FROM m.campaign_key "
                  f"OR events.account_key IS DISTINCT FROM m.account_key)")
    execute(conn, f"UPDATE events SET channel = ?, campaign_key = NULL WHERE event_type IN {life} AND "
                  f"(channel <> ? OR campaign_key IS NOT NULL) AND NOT EXISTS "
                  f"(SELECT 1 FROM _pmap m WHERE m.person_key = events.person_key)", (UNATTRIBUTED, UNATTRIBUTED))
    execute(conn, f"UPDATE events SET account_key = m.account_key FROM _pmap m "
                  f"WHERE m.person_key = events.person_key AND events.event_type NOT IN {life} "
                  f"AND events.opportunity_key IS NULL AND events.account_key IS DISTINCT FROM m.account_key")
    execute(conn, "DROP TABLE IF EXISTS _pmap")

    opp = in_list(OPPORTUNITY_TYPES)
    execute(conn, f"UPDATE events SET channel = m.channel, campaign_key = m.campaign_key, account_key = m.account_key "
                  f"FROM _omap m WHERE m.opportunity_key = events.opportunity_key AND events.event_type IN {opp} AND "
                  f"(events.channel IS DISTINCT FROM m.channel OR events.campaign_key IS DISTINCT FROM m.campaign_key "
                  f"OR events.account_key IS DISTINCT FROM m.account_key)")
    execute(conn, f"UPDATE events SET channel = ? WHERE event_type IN {opp} AND channel <> ? AND NOT EXISTS "
                  f"(SELECT 1 FROM _omap m WHERE m.opportunity_key = events.opportunity_key)",
            (UNATTRIBUTED, UNATTRIBUTED))
    execute(conn, "DROP TABLE IF EXISTS _omap")


ACCOUNT_COLUMNS = ("account_key", "name", "domain", "source_ids", "first_won_at", "is_customer")


def _write_accounts(conn: Any, as_of: str | None) -> None:
    """Step 7, streamed by account_key: account_sources merged (in source order: first non-empty name and domain),
    then the accounts people name (domain: the email domain of the first person, by person_key, whose email is the
    account's domain) and the accounts opportunities name; first_won_at / is_customer from won opportunities
    (closed on or before `as_of` when given)."""
    execute(conn, "DELETE FROM accounts")
    c = DIALECTS[dialect(conn)]["order_c"]
    sources = stream(conn, f"SELECT account_key, source_system, source_object, source_id, name, domain FROM "
                           f"account_sources WHERE account_key IS NOT NULL ORDER BY account_key{c}, "
                           f"COALESCE(source_system, ''){c}, COALESCE(source_object, ''){c}, COALESCE(source_id, ''){c}")
    people = stream(conn, f"SELECT account_key, email, email_domain FROM people WHERE account_key IS NOT NULL "
                          f"ORDER BY account_key{c}, person_key{c}")
    opps = stream(conn, f"SELECT account_key, is_won, closed_at, close_date FROM opportunities "
                        f"WHERE account_key IS NOT NULL ORDER BY account_key{c}")
    limit = (as_of or "")[:10]

    def accounts() -> Iterator[tuple]:
        for key, srcs, persons, won_opps in merge_groups(sources, people, opps):
            a = None
            for _, system, obj, sid, name, domain in srcs:
                a = a or {"name": None, "domain": None, "ids": {}}
                a["name"] = a["name"] or name
                a["domain"] = a["domain"] or domain
                a["ids"].setdefault("" if system is None else system, set()).add(str("" if sid is None else sid))
            won = None
            if key:
                for _, email, email_dom in persons:
                    if a is None:
                        a = {"name": None, "domain": email_dom if key == _account_key(email=email) else None, "ids": {}}
                    elif a["domain"] is None and key == _account_key(email=email):
                        a["domain"] = email_dom
                for _, is_won, closed, close_date in won_opps:
                    a = a or {"name": None, "domain": None, "ids": {}}
                    closed = ts(closed)
                    if not (is_won and closed) or (limit and (day(close_date) or closed[:10]) > limit):
                        continue
                    if won is None or closed < won:
                        won = closed
            if a is not None:
                yield (key, a["name"], a["domain"], dumps({s: sorted(v) for s, v in a["ids"].items()}), won,
                       1 if won else 0)

    insert_rows(conn, "accounts", ACCOUNT_COLUMNS, accounts())


def local_day(value: str | None, tz: str) -> str | None:
    return None if value is None else local_date(value, tz)
