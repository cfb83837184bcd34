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
Bulk set logic runs in SQL; per-person merging runs in Python over one streamed pass.
"""
from __future__ import annotations

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
        "scan": "+",  # `+col` keeps SQLite off an index: a full scan beats index lookups for most of a table
        "bulk_drop_index": "yes",  # refresh_kpis drops kpi_values' index while bulk-inserting (readers keep a snapshot)
    },
    "postgresql": {
        "param": "%s",
        "json_text": "({col}->>'{key}')",
        "temp_table": "CREATE TEMP TABLE {name} ({cols})",
        "order_c": ' COLLATE "C"',
        "ts_second": "date_trunc('second', {col})",
        "scan": "",
        "bulk_drop_index": "",  # DROP INDEX would lock dashboards' readers out until commit
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


def query(conn: Any, text: str, params: tuple | list = ()) -> Iterator[tuple]:
    cur = conn.cursor()
    cur.execute(sql(conn, text), params)
    while True:
        batch = cur.fetchmany(20000)
        if not batch:
            break
        yield from batch


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
    """
    from warehouse import attribution

    owned = begin_owned(conn)
    warnings: list[str] = []
    campaigns = {k: (ch, utm) for k, ch, utm in query(conn, "SELECT campaign_key, channel, utm_campaign FROM campaigns")}
    _utm_campaign_keys(conn, campaigns)
    _campaign_channels(conn)

    opps = _load_opportunities(conn)
    opp_people = _opportunity_people(conn, _person_refs(conn), opps)
    linked = sorted({pk for (_, pk) in opp_people})

    # per-person data of the (few) people linked to opportunities: touches and stage firsts
    temp_table(conn, "_linked", "person_key TEXT PRIMARY KEY")
    insert_rows(conn, "_linked", ("person_key",), ((pk,) for pk in linked))
    touches: dict[str, list[tuple]] = {}  # linked person -> [(occurred_at, event_id, channel, campaign_key)]
    for pk, occ, eid, ch, camp in query(
        conn, f"SELECT e.person_key, e.occurred_at, e.event_id, e.channel, e.campaign_key FROM _linked l "
              f"JOIN events e ON e.person_key = l.person_key WHERE e.event_type IN {in_list(TOUCHES)}"):
        touches.setdefault(pk, []).append((ts(occ), eid, ch, camp))
    for lst in touches.values():
        lst.sort()
    stage_firsts: dict[str, dict[str, str]] = {}  # linked person -> {lifecycle type: first}
    for pk, et, first in query(
        conn, f"SELECT e.person_key, e.event_type, MIN(e.occurred_at) FROM _linked l JOIN events e "
              f"ON e.person_key = l.person_key WHERE e.event_type IN {in_list(LIFECYCLE_TYPES)} "
              f"GROUP BY e.person_key, e.event_type"):
        stage_firsts.setdefault(pk, {})[et] = ts(first)
    execute(conn, "DROP TABLE IF EXISTS _linked")

    _account_refs(conn)  # temp table _aref: account_ref -> account_key (people's and opportunities' refs)
    accounts_by_ref = {ref: a for ref, a in query(
        conn, "SELECT account_ref, account_key FROM _aref WHERE account_ref IN "
              "(SELECT account_ref FROM opportunities WHERE account_ref IS NOT NULL)")}

    # opportunity stage and won flags per person for lifecycle_stage
    person_opp_rank: dict[str, int] = {}
    for (ok, pk) in opp_people:
        o = opps[ok]
        person_opp_rank[pk] = max(person_opp_rank.get(pk, 0), 5 if o["is_won"] else 4)

    sr_channel = _write_people(conn, model, set(linked), person_opp_rank)
    execute(conn, "DROP TABLE IF EXISTS _aref")

    execute(conn, "DELETE FROM opportunity_people")
    insert_rows(conn, "opportunity_people", ("opportunity_key", "person_key", "role", "is_primary", "source"),
                (k + v for k, v in sorted(opp_people.items())))

    # opportunities: account, sqo, first touch, monthly amount
    sqo_first = {ok: ts(v) for ok, v in query(
        conn, "SELECT opportunity_key, MIN(occurred_at) FROM events WHERE event_type = 'became_sqo' "
              "AND opportunity_key IS NOT NULL GROUP BY opportunity_key")}
    people_of: dict[str, list[str]] = {}
    for (ok, pk) in opp_people:
        people_of.setdefault(ok, []).append(pk)
    for ok, o in opps.items():
        ref = o["account_ref"]
        if ref:
            o["account_key_new"] = accounts_by_ref.get(ref)
        else:
            o["account_key_new"] = o["account_key"]
        o["sqo_at_new"] = sqo_first.get(ok) or (o["created_at"] if not model.sqo_stages else None)
        earliest = None
        for pk in people_of.get(ok, ()):
            lst = touches.get(pk)
            cands = [lst[0][0]] if lst else []
            lead = stage_firsts.get(pk, {}).get("lead_created")
            if lead:
                cands.append(lead)
            for c in cands:
                if earliest is None or c < earliest:
                    earliest = c
        o["first_touch_at_new"] = earliest or o["created_at"]
        o["amount_monthly_new"] = monthly_amount(o["amount"], model)

    # attribution (needs the resolved people, touches, lead dates and SR answers)
    lead_at = {pk: f["lead_created"] for pk, f in stage_firsts.items() if "lead_created" in f}
    fx = Fx(conn, model.reporting_currency)
    credits = attribution.compute(model, opps, people_of, touches, lead_at, sr_channel, fx)
    warnings += fx.warnings("opportunity amounts (attribution credited_amount left NULL)")
    attribution.write(conn, credits)
    sourced: dict[str, tuple[str, str | None]] = {}
    for row in credits:
        if row[0] == "first_touch" and row[1] == "pipeline":
            sourced[row[2]] = (row[4], row[5])

    upd = []
    for ok, o in opps.items():
        ch, camp = sourced.get(ok, (UNATTRIBUTED, None))
        o["sourced_campaign"] = camp
        new = (o["account_key_new"], o["sqo_at_new"], o["first_touch_at_new"], o["amount_monthly_new"], ch)
        old = (o["account_key"], o["sqo_at"], o["first_touch_at"], o["amount_monthly"], o["sourced_channel"])
        o["sourced_channel"] = ch
        if new != old:
            upd.append(new + (ok,))
    executemany(conn, "UPDATE opportunities SET account_key = ?, sqo_at = ?, first_touch_at = ?, amount_monthly = ?, "
                      "sourced_channel = ? WHERE opportunity_key = ?", sorted(upd, key=lambda r: r[-1]))

    _event_attribution_columns(conn, opps)
    _write_accounts(conn, model, opps, as_of)
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


def _person_refs(conn: Any) -> dict[tuple[str, str, str], str]:
    """person_ref -> person_key for the refs `opportunity_links` name (a few, not every person)."""
    wanted = sorted({_split_ref(r) for (r,) in query(
        conn, "SELECT DISTINCT person_ref FROM opportunity_links WHERE person_ref IS NOT NULL")})
    out: dict[tuple[str, str, str], str] = {}
    cur = conn.cursor()
    text = sql(conn, "SELECT person_key FROM person_sources WHERE source_system = ? AND source_object = ? "
                     "AND source_id = ?")
    for ref in wanted:
        cur.execute(text, ref)
        row = cur.fetchone()
        if row is not None:
            out[ref] = row[0]
    return out


def _account_refs(conn: Any) -> None:
    """Temp table `_aref` (account_ref, account_key): every account_ref of person_sources / opportunities resolved
    through account_sources (NULL when no row), so people stream through a join instead of an in-memory map."""
    temp_table(conn, "_aref", "account_ref TEXT PRIMARY KEY, s TEXT, o TEXT, i TEXT, account_key TEXT")
    refs = query(conn, "SELECT account_ref FROM person_sources WHERE account_ref IS NOT NULL UNION "
                       "SELECT account_ref FROM opportunities WHERE account_ref IS NOT NULL")
    insert_rows(conn, "_aref", ("account_ref", "s", "o", "i"), ((r,) + _split_ref(r) for (r,) in refs))
    execute(conn, "UPDATE _aref SET account_key = a.account_key FROM account_sources a WHERE a.source_system = _aref.s "
                  "AND a.source_object = _aref.o AND a.source_id = _aref.i")


def _load_opportunities(conn: Any) -> dict[str, dict]:
    cols = ("opportunity_key", "source_system", "account_key", "account_ref", "created_at", "closed_at", "close_date",
            "is_closed", "is_won", "amount", "currency", "amount_monthly", "sqo_at", "sourced_channel",
            "first_touch_at")
    out = {}
    for r in query(conn, f"SELECT {', '.join(cols)} FROM opportunities"):
        o = dict(zip(cols, r))
        for c in ("created_at", "closed_at", "sqo_at", "first_touch_at"):
            o[c] = ts(o[c])
        o["close_date"] = day(o["close_date"])
        o["is_won"] = 1 if o["is_won"] else 0
        out[o["opportunity_key"]] = o
    return out


def _opportunity_people(conn: Any, refs: dict, opps: dict) -> dict[tuple[str, str], tuple]:
    """(opportunity_key, person_key) -> (role, is_primary, source) for existing opportunities."""
    links = sorted(
        ((tuple("" if v is None else v for v in r[:4]), r[4:])
         for r in query(conn, "SELECT source_system, source_object, source_id, opportunity_key, person_key, "
                              "person_ref, role, is_primary FROM opportunity_links")),
        key=lambda link: (link[0], tuple("" if v is None else str(v) for v in link[1])))
    out: dict[tuple[str, str], tuple] = {}
    for (system, _obj, _sid, ok), (pk, pref, role, primary) in links:
        if ok not in opps:
            continue
        if not pk and pref:
            pk = refs.get(_split_ref(pref))
        if not pk:
            continue
        cur = out.get((ok, pk))
        if cur is None:
            out[(ok, pk)] = (role, 1 if primary else 0, system)
        else:
            out[(ok, pk)] = (cur[0] or role, max(cur[1], 1 if primary else 0), cur[2])
    return out


PEOPLE_COLUMNS = ("person_key", "email", "email_domain", "account_key", "first_seen_at", "source_ids",
                  "lifecycle_stage", "original_channel", "original_source_raw", "self_reported_raw",
                  "self_reported_channel", "reconciled_channel")


def _write_people(conn, model, linked: set, person_opp_rank: dict, chunk: int = 5000) -> dict[str, str]:
    """Step 4, streamed: person_sources ordered by person_key merged with the first touch and the lifecycle types
    per person (both ordered by person_key too); each person's row is built, written in chunks of `chunk` rows
    (with its `_pmap` row for step 6), and dropped. Returns self_reported_channel of the `linked` people."""
    from normalize.classify import self_reported_channel

    c = DIALECTS[dialect(conn)]["order_c"]
    occ = DIALECTS[dialect(conn)]["ts_second"].format(col="occurred_at")
    cols = ("person_key", "source_system", "source_object", "source_id", "email", "account_key", "account_ref",
            "first_seen_at", "lifecycle_stage", "original_source_raw", "self_reported_raw", "self_reported_at",
            "fallback_channel", "ext_ids")
    sources = query(conn, f"SELECT {', '.join('p.' + x for x in cols)}, r.account_key FROM person_sources p "
                          f"LEFT JOIN _aref r ON r.account_ref = p.account_ref WHERE p.person_key IS NOT NULL "
                          f"ORDER BY p.person_key{c}")
    firsts = query(conn, f"SELECT person_key, occurred_at, event_id, channel, campaign_key FROM (SELECT person_key, "
                         f"occurred_at, event_id, channel, campaign_key, ROW_NUMBER() OVER (PARTITION BY person_key "
                         f"ORDER BY {occ}, event_id{c}) AS rn FROM events WHERE event_type IN {in_list(TOUCHES)} "
                         f"AND person_key IS NOT NULL) t WHERE rn = 1 ORDER BY person_key{c}")
    stages = query(conn, f"SELECT person_key, event_type FROM events WHERE event_type IN {in_list(LIFECYCLE_TYPES)} "
                         f"AND person_key IS NOT NULL GROUP BY person_key, event_type ORDER BY person_key{c}")
    execute(conn, "DELETE FROM people")
    temp_table(conn, "_pmap", "person_key TEXT PRIMARY KEY, channel TEXT, campaign_key TEXT, account_key TEXT")
    ft_next = next(firsts, None)
    st_next = next(stages, None)
    people_rows: list[tuple] = []
    pmap_rows: list[tuple] = []
    sr_channel: dict[str, str] = {}

    def flush() -> None:
        insert_rows(conn, "people", PEOPLE_COLUMNS, people_rows)
        insert_rows(conn, "_pmap", ("person_key", "channel", "campaign_key", "account_key"), pmap_rows)
        people_rows.clear()
        pmap_rows.clear()

    def person(pk: str, rows: list[tuple]) -> None:
        nonlocal ft_next, st_next
        while ft_next is not None and ft_next[0] < pk:
            ft_next = next(firsts, None)
        touch = None
        if ft_next is not None and ft_next[0] == pk:
            touch = (ts(ft_next[1]), ft_next[2], ft_next[3], ft_next[4])
        types = []
        while st_next is not None and st_next[0] <= pk:
            if st_next[0] == pk:
                types.append(st_next[1])
            st_next = next(stages, None)
        p = _merge_person(pk, rows, touch, types, person_opp_rank.get(pk, 0), self_reported_channel)
        people_rows.append(tuple(p[x] for x in PEOPLE_COLUMNS))
        pmap_rows.append((pk, p["original_channel"], p["_original_campaign"], p["account_key"]))
        if pk in linked and p["self_reported_channel"]:
            sr_channel[pk] = p["self_reported_channel"]
        if len(people_rows) >= chunk:
            flush()

    cur_pk, rows = None, []
    for r in sources:
        if r[0] != cur_pk:
            if rows:
                person(cur_pk, rows)
            cur_pk, rows = r[0], []
        rows.append(r)
    if rows:
        person(cur_pk, rows)
    flush()
    firsts.close()  # rows of people without person_sources are not needed; release the statements
    stages.close()
    return sr_channel


def _merge_person(pk, rows, touch, firsts, opp_rank, sr_classify) -> dict:
    """Merge one person's `person_sources` rows.

    Source order = (first_seen_at, source_system, source_object, source_id), NULL first_seen last. `email`,
    `original_source_raw`, `fallback_channel`: first non-empty in that order. `account_key`: the first resolvable
    `account_ref`, else the first explicit `account_key`, else the (non-freemail) email domain's account.
    `self_reported_raw`: earliest non-empty answer by `self_reported_at` [D-12]. `lifecycle_stage`: the highest of
    the sources' stages, the person's lifecycle event types `firsts` and opportunity membership (won ⇒ customer), spec §2 order.
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
               + [EVENT_STAGE[t] for t in firsts] + [opp_rank])
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


def _event_attribution_columns(conn: Any, opps: dict) -> None:
    """Step 6: channel / campaign / account of lifecycle and opportunity events; account of person events.

    `_pmap` (person_key, original channel, its campaign, account_key) was filled by `_write_people`."""
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

    temp_table(conn, "_omap", "opportunity_key TEXT PRIMARY KEY, channel TEXT, campaign_key TEXT, account_key TEXT")
    insert_rows(conn, "_omap", ("opportunity_key", "channel", "campaign_key", "account_key"),
                ((k, o["sourced_channel"], o["sourced_campaign"], o["account_key_new"]) for k, o in sorted(opps.items())))
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


def _write_accounts(conn: Any, model: Model, opps: dict, as_of: str | None) -> None:
    """Step 7: accounts from account_sources + the accounts people and opportunities name."""
    acc: dict[str, dict] = {}
    for system, obj, sid, key, name, domain in sorted(
        (tuple("" if v is None and i < 3 else v for i, v in enumerate(r)) for r in query(
            conn, "SELECT source_system, source_object, source_id, account_key, name, domain FROM account_sources "
                  "WHERE account_key IS NOT NULL")),
        key=lambda r: (r[3], r[0], r[1], r[2]),
    ):
        a = acc.setdefault(key, {"name": None, "domain": None, "ids": {}})
        a["name"] = a["name"] or name
        a["domain"] = a["domain"] or domain
        a["ids"].setdefault(system, set()).add(str(sid))
    c = DIALECTS[dialect(conn)]["order_c"]
    for email, email_dom, key in query(conn, f"SELECT email, email_domain, account_key FROM people "
                                             f"WHERE account_key IS NOT NULL ORDER BY person_key{c}"):
        if key and key not in acc:
            d = email_dom if key == _account_key(email=email) else None
            acc[key] = {"name": None, "domain": d, "ids": {}}
        elif key and acc[key]["domain"] is None and key == _account_key(email=email):
            acc[key]["domain"] = email_dom
    won: dict[str, str] = {}
    limit = (as_of or "")[:10]
    for o in opps.values():
        key = o["account_key_new"]
        if not key:
            continue
        acc.setdefault(key, {"name": None, "domain": None, "ids": {}})
        if o["is_won"] and o["closed_at"]:
            if limit and (o["close_date"] or o["closed_at"][:10]) > limit:
                continue
            if key not in won or o["closed_at"] < won[key]:
                won[key] = o["closed_at"]
    execute(conn, "DELETE FROM accounts")
    insert_rows(conn, "accounts", ACCOUNT_COLUMNS, (
        (k, a["name"], a["domain"], dumps({s: sorted(v) for s, v in a["ids"].items()}), won.get(k), 1 if k in won else 0)
        for k, a in sorted(acc.items())))


def local_day(value: str | None, tz: str) -> str | None:
    return None if value is None else local_date(value, tz)
