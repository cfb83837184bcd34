"""KPIs K01–K49 (spec §4, §5.5, names of §9) over the derived warehouse, and `kpi_values` (a view of kpi_rows,
kpi_slices and kpi_names, see warehouse.schema).

`compute_kpis(conn, model, start, end, grain, by)` returns rows with the `kpi_values` columns for the periods of
`grain` inside [start, end] (bounds clipped to the range; `grain=None` ⇒ the whole range as one period);
`refresh_kpis(conn, model, start=None, end=None)` rewrites `kpi_values` for every grain over the data's date range
(natural period bounds) and returns warnings. `derive` must have run (channels, people, attribution).
Extra keyword arguments of compute_kpis: `mode` ("in_period" | "cohort"), `as_of` (cohort / send-cohort bound),
`attribution_model` (which model's credits feed the attributed money KPIs), `warnings` (a list to extend).

How it is computed (fast on millions of events, in memory that does not grow with them): a handful of scans —
grouped in SQL where grouping shrinks the rows, streamed otherwise (ad facts; opportunities one at a time; email and
program pairs one (campaign, person) at a time, in the order of the partial index ix_events_pairs) — build facts,
(slice dimension, slice value, day) → {measure: additive number} for totals and channels, and by week-within-month
instead of day for campaign / source / path slices (see _Facts), the only thing held, which Python rolls up to each
grain's periods and turns into KPI rows (written as they are made). Additive by construction:
- F(t) / O(t): a person's / opportunity's FIRST(t) falls on one day (spec §2 de-duplication over all sources);
  the source slice of F(t) is the source_system of that first event.
- pairs(t): a (person, campaign) pair belongs to the day of its first send / registration (cohorts, [D-25]);
  opened/clicked/attended/… count when they happened at any time (up to `as_of` when given).
Non-additive ones (K06 demos and K40 nurture = distinct persons in P, from one pass by person; K30 MRR stock at the
period end, from the day-level changes of the stock) are computed per grain.

Slices (`by`): `channel`, `campaign` (campaign_key), `source` (source_system) and, for K17 only, `path` (the
`kpi_values.landing_path` column, added for it; K17 = forms whose `properties.page_path` is the path ÷ GA sessions
that landed on it, rows only for paths with form fills). A KPI is
emitted for a slice only when the catalogue lists it (§4.2 "Slices"); a sliced row only when its value, numerator or
denominator is non-zero (so a NULL on a zero denominator is still reported when the numerator exists); total rows
(`by=None`) always. Channel semantics (§4.1): people/opportunity counts by sourced channel (lifecycle and opportunity
events carry it after derive), spend by its campaign's channel, touch/web counts by their own channel, attributed
money (K25/K26/K27/K30-new/K31/K32 sliced) from `attribution_credits` of `attribution_model` (default
`model.default_model`) with the conversion date in P. Campaign slices of people counts (K19/K20 denominators) use the
campaign of the first touch (derive keys lifecycle events to it).

Money: amounts are converted with `fx_rates` at the row's date (latest rate on or before it); a row without a rate
is excluded and reported in the warnings ([D-02]). NULL currency = reporting currency.

Modes: `in_period` (default) or `cohort` (K10–K15 only; §4.1): denominator = people (or opportunities for K13)
entering the start stage in P, numerator = those that reached the end stage or any later one by `as_of`
(stage order lead < mql < sql < opportunity < customer; opportunity = linked to an opportunity created by as_of,
customer = `became_customer` or linked to an opportunity won by as_of; K14's "demo" = a demo_requested by as_of;
K13 win_rate cohort = won ÷ (won + lost) among the cohort's opportunities closed by as_of).

Column notes: count KPIs carry `value` only; ratios carry numerator and denominator; `bounce_rate` = (sessions −
engaged) ÷ sessions; `spend_conversion_parity` numerator = the channel's MQL share, denominator = its spend share;
`dark_funnel_delta` (Δ_X of §5.5, sliced by channel) has value = #{SR=X} − #{SW=X}, numerator = #{SR=X},
denominator = #{SW=X} (its total row is Σ Δ = 0 with numerator = denominator = |Π|); `roi` numerator = revenue −
spend. Status (§4.2 thresholds): `deliverability_rate` < 0.95 ⇒ `warning`; `webinar_attendance_rate` ≥ 0.5 ⇒ `good`;
`clv_to_cac` > 1 ⇒ `profitable`; `lead_to_mql_rate` of channel paid_social ⇒ `good` when ≥ `zero_waste_target`
(A5), else `warning`. Periods: ISO weeks (Mon–Sun); quarters and years start at `fiscal_year_start_month` (a year
is the fiscal year, so quarters nest in years).
"""
from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from calendar import monthrange
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from functools import cache
from operator import itemgetter
from typing import Any

from normalize.events import LIFECYCLE_TYPES, OPPORTUNITY_TYPES, local_date
from normalize.model import Model
from warehouse.derive import (
    AD_TYPES,
    DIALECTS,
    Fx,
    begin_owned,
    day,
    dialect,
    execute,
    in_list,
    insert_rows,
    merge_groups,
    monthly_factor,
    query,
    stream,
    ts,
)
from warehouse.schema import (
    KPI_ROWS,
    KPI_SLICES,
    KPI_VALUES,
    PAIR_TYPES,
    PAIRS_WHERE,
)

GRAINS = ("day", "week", "month", "quarter", "year")
BY = ("channel", "campaign", "source", "path")
COLUMNS = KPI_VALUES.column_names  # what compute_kpis returns
WEB_AGG = {"web_sessions": "sess", "web_engaged_sessions": "eng", "web_page_views": "pv", "web_new_users": "nu",
           "web_key_events": "ke", "web_engagement_seconds": "es"}
AD_Q = {"ad_clicks": "clk", "ad_impressions": "imp", "ad_conversions": "conv", "ad_leads": "adleads"}
F_MEASURE = {"lead_created": "lead", "became_mql": "mql", "became_sql": "sql", "became_customer": "cust"}
O_MEASURE = {"opportunity_created": "opp", "became_sqo": "sqo", "deal_won": "won", "deal_lost": "lost"}
FORM_TYPES = ("form_submitted", "demo_requested")
DARK = "dark_social"
# pair families: event_type -> (family measure prefix, role); the cohort role ("c") dates the pair
PAIR_FAMILIES = {
    "email": {"email_sent": "c", "email_delivered": "deliv", "email_opened": "open", "email_clicked": "click",
              "email_unsubscribed": "unsub", "email_bounced": "bounce"},
    "web": {"webinar_registered": "c", "webinar_attended": "att"},
    "evt": {"event_registered": "c", "event_attended": "att"},
    "dm": {"direct_mail_sent": "c", "direct_mail_claimed": "claim", "meeting_booked": "book"},
}
assert sorted(t for roles in PAIR_FAMILIES.values() for t in roles) == sorted(PAIR_TYPES)  # the index's rows
_DIM_KEYS = {"channel": "channel", "campaign": "campaign_key", "source": "source_system", "path": "landing_path"}


# ---- periods ----------------------------------------------------------------------------------------------------


def _add_months(d: date, n: int) -> date:
    m = d.month - 1 + n
    y = d.year + m // 12
    m = m % 12 + 1
    return date(y, m, min(d.day, monthrange(y, m)[1]))


@cache
def period_of(d: date, grain: str, fy_start: int = 1) -> tuple[date, date]:
    """Natural bounds (inclusive) of the `grain` period holding `d`."""
    if grain == "day":
        return d, d
    if grain == "week":
        s = d - timedelta(days=d.weekday())
        return s, s + timedelta(days=6)
    if grain == "month":
        s = d.replace(day=1)
        return s, _add_months(s, 1) - timedelta(days=1)
    if grain in ("quarter", "year"):
        offset = (d.month - fy_start) % 12
        span = 3 if grain == "quarter" else 12
        first = _add_months(d.replace(day=1), -(offset % span))
        return first, _add_months(first, span) - timedelta(days=1)
    raise ValueError(f"unknown grain {grain!r}")


def periods(start: str, end: str, grain: str | None, fy_start: int = 1, clip: bool = True) -> dict[str, tuple]:
    """day -> (period_start, period_end) text for every day in [start, end]."""
    lo, hi = date.fromisoformat(start), date.fromisoformat(end)
    out = {}
    d = lo
    while d <= hi:
        if grain is None:
            s, e = lo, hi
        else:
            s, e = period_of(d, grain, fy_start)
            if clip:
                s, e = max(s, lo), min(e, hi)
        out[d.isoformat()] = (s.isoformat(), e.isoformat())
        d += timedelta(days=1)
    return out


@cache
def segment_start(d: str) -> str:
    """First day of the span holding day `d` that lies inside one period of every grain from week up: its ISO week
    cut at month ends (quarters and years, fiscal or not, are unions of months)."""
    x = date.fromisoformat(d)
    return max(x - timedelta(days=x.weekday()), x.replace(day=1)).isoformat()


# ---- facts ------------------------------------------------------------------------------------------------------


class _Facts:
    """Additive facts. `s`: (dim, value, day) -> {measure: number} for the total (dim None) and channel slices.
    `sl`: (dim, value) -> {bucket: {measure: number}} for campaign, source and path slices, kept not by day but by
    `bucket(day)`, the first day of a span that lies inside one period of every grain they are rolled to (an ISO week
    cut at month ends for a refresh; the period itself for one grain), so what is held grows with slices x periods,
    not slices x days, and each slice rolls up on its own. `mrr` / `mrr_channel`: day -> the change of the MRR stock
    (K30) that day, total / {channel: change}."""

    def __init__(self, lo: str, hi: str, bucket: Callable[[str], str]):
        self.lo, self.hi = lo, hi
        self.s: dict[tuple, dict[str, float]] = {}
        self.sl: dict[tuple, dict[str, dict[str, float]]] = {}
        self.mrr: dict[str, float] = {}
        self.mrr_channel: dict[str, dict[str, float]] = {}
        self.bucket = bucket
        self.buckets: dict[str, str] = {}

    def add(self, m: str, d: str, x: float, channel: Any = None, campaign: Any = None, source: Any = None,
            path: Any = None) -> None:
        """Add x to measure m on day d: the total and each given slice (hot path: written out, no loops; positional
        arguments in the per-row loops)."""
        if not x or d < self.lo or d > self.hi:
            return
        s = self.s
        md = s.get((None, None, d))
        if md is None:
            md = s[_kept((None, None, d))] = {}
        md[m] = md.get(m, 0.0) + x
        if channel is not None:
            md = s.get(("channel", channel, d))
            if md is None:
                md = s[_kept(("channel", channel, d))] = {}
            md[m] = md.get(m, 0.0) + x
        if campaign is None and source is None and path is None:
            return
        b = self.buckets.get(d)
        if b is None:
            b = self.buckets[d] = sys.intern(self.bucket(d))
        sl = self.sl
        if campaign is not None:
            bs = sl.get(("campaign", campaign))
            if bs is None:
                bs = sl[_kept(("campaign", campaign))] = {}
            md = bs.get(b)
            if md is None:
                md = bs[b] = {}
            md[m] = md.get(m, 0.0) + x
        if source is not None:
            bs = sl.get(("source", source))
            if bs is None:
                bs = sl[_kept(("source", source))] = {}
            md = bs.get(b)
            if md is None:
                md = bs[b] = {}
            md[m] = md.get(m, 0.0) + x
        if path is not None:
            bs = sl.get(("path", path))
            if bs is None:
                bs = sl[_kept(("path", path))] = {}
            md = bs.get(b)
            if md is None:
                md = bs[b] = {}
            md[m] = md.get(m, 0.0) + x

    def add_slice(self, m: str, d: str, x: float, dim: str, v: Any) -> None:
        """Add to one day-kept slice (channel) only, not to the total."""
        if x and self.lo <= d <= self.hi:
            md = self.s.get((dim, v, d))
            if md is None:
                md = self.s[_kept((dim, v, d))] = {}
            md[m] = md.get(m, 0.0) + x

    def add_mrr(self, d: str, x: float, shares: dict[str, float]) -> None:
        """The MRR stock changes by x on day d (any day: stocks count from before `lo`), split by channel shares."""
        self.mrr[d] = self.mrr.get(d, 0.0) + x
        by_ch = self.mrr_channel.setdefault(d, {})
        for ch, share in shares.items():
            by_ch[ch] = by_ch.get(ch, 0.0) + x * share


def _kept(key: tuple) -> tuple:
    """A key to store for long: its strings interned, so the days and slice values of millions of rows are held
    once (and do not pin freed memory)."""
    return tuple(sys.intern(v) if type(v) is str else v for v in key)


def _local(value: Any, tz: str) -> str:
    return local_date(ts(value), tz)


class _Reads:
    """The rows of _grouped_reads' queries, by name (`rows(name)`; each read once).

    With `worker=True` (refresh_kpis on a SQLite file with nothing uncommitted, PREFETCH_EVENTS or more events) a
    thread runs them, in order, on a second connection, each as one `CREATE TABLE name AS query` into a scratch
    database: SQLite does that work without holding Python's GIL, so it overlaps the row-by-row work of this thread
    (pairs, opportunities), and `rows(name)` then reads the small result back from the scratch file. Both connections
    read the same committed data: refresh_kpis holds the write lock (BEGIN IMMEDIATE) from before the worker starts, so
    no other writer commits meanwhile. Otherwise, or for a read the worker could not make (its error is not printed:
    the same query then runs here and raises it), `rows` runs the query on `conn` (PostgreSQL: a server-side
    cursor)."""

    def __init__(self, conn: Any, queries: dict[str, tuple[str, tuple]], worker: bool = False):
        self.conn, self.queries = conn, queries
        self.ready = {name: threading.Event() for name in queries}
        self.scratch: str | None = None
        self.reader: sqlite3.Connection | None = None
        self.thread: threading.Thread | None = None
        self.served: list[str] = []  # the reads the worker made
        if worker:
            path = _main_file(conn)
            self.dir = tempfile.mkdtemp(prefix="funnelsync-kpis-")
            self.scratch = os.path.join(self.dir, "reads.db")
            self.thread = threading.Thread(target=self._work, args=(path,), name="funnelsync-kpi-reads", daemon=True)
            self.thread.start()

    def _work(self, path: str) -> None:
        w = None
        try:
            w = sqlite3.connect(self.scratch, isolation_level=None)
            w.execute("PRAGMA journal_mode=OFF")
            w.execute("PRAGMA synchronous=OFF")
            w.execute("ATTACH DATABASE ? AS warehouse", (path,))
            for name, (text, params) in self.queries.items():
                w.execute(f"CREATE TABLE r_{name} AS {text}", params)
                self.ready[name].set()
        except sqlite3.Error:
            pass  # the reads it did not make run on conn (rows)
        finally:
            if w is not None:
                w.close()
            for event in self.ready.values():
                event.set()

    def rows(self, name: str) -> Iterator[tuple]:
        if self.thread is not None:
            self.ready[name].wait()
            if self.reader is None:
                self.reader = sqlite3.connect(self.scratch)
            if next(self.reader.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (f"r_{name}",)), None):
                self.served.append(name)
                return self.reader.execute(f"SELECT * FROM r_{name}")
        return stream(self.conn, *self.queries[name])

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
            if self.reader is not None:
                self.reader.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.thread = None


def _grouped_reads(conn: Any, lo: str, hi: str, attribution_model: str) -> dict[str, tuple[str, tuple]]:
    """The reads of _load and _persons_per_period that SQLite does on its own (index lookups, sorts; results grouped
    or at most one row per fact): name -> (query, parameters), in the order _load uses them (see _Reads)."""
    d_ = DIALECTS[dialect(conn)]
    page = d_["json_text"].format(col="properties", key="page_path")
    span = "event_date >= ? AND event_date <= ?"
    return {
        # 1a. web aggregates and form fills: grouped by day and channel
        "web": (f"SELECT event_type, event_date, channel, COUNT(*), SUM(quantity) FROM events WHERE event_type IN "
                f"{in_list(tuple(WEB_AGG) + FORM_TYPES)} AND {span} GROUP BY event_type, event_date, channel",
                (lo, hi)),
        # 1b. ad facts and spend: already one row per campaign and day (a GROUP BY would not shrink it)
        "ads": (f"SELECT event_type, event_date, channel, campaign_key, source_system, currency, quantity, amount "
                f"FROM events WHERE event_type IN {in_list(AD_TYPES)} AND {span}", (lo, hi)),
        # 2. lifecycle FIRST(type) per person over all sources (window function: portable SQLite >= 3.25 / PG)
        "lifecycle": (f"SELECT event_type, event_date, channel, campaign_key, source_system, COUNT(*) FROM ("
                      f"SELECT event_type, event_date, channel, campaign_key, source_system, ROW_NUMBER() OVER ("
                      f"PARTITION BY person_key, event_type ORDER BY occurred_at, source_system, event_id) AS rn "
                      f"FROM events WHERE event_type IN {in_list(LIFECYCLE_TYPES)} AND person_key IS NOT NULL) x "
                      f"WHERE rn = 1 AND {span} GROUP BY event_type, event_date, channel, campaign_key, "
                      f"source_system", (lo, hi)),
        # K09 new customers: an account's first won opportunity (one without account is its own account)
        "new_customers": (f"SELECT d, ch, COUNT(*) FROM (SELECT w.event_date AS d, COALESCE(NULLIF("
                          f"o.sourced_channel, ''), 'unattributed') AS ch, ROW_NUMBER() OVER (PARTITION BY COALESCE("
                          f"NULLIF(o.account_key, ''), o.opportunity_key) ORDER BY w.event_date, o.opportunity_key"
                          f"{d_['order_c']}) AS rn FROM opportunities o JOIN {_first_won(conn)} w ON "
                          f"w.opportunity_key = o.opportunity_key) x WHERE rn = 1 GROUP BY d, ch", ()),
        # 6. K17 landing pages: forms by properties.page_path, sessions by landing_path
        "page_forms": (f"SELECT event_date, {page}, COUNT(*) FROM events WHERE event_type IN {in_list(FORM_TYPES)} "
                       f"AND properties IS NOT NULL AND {span} GROUP BY event_date, {page}", (lo, hi)),
        "page_sessions": (f"SELECT event_date, landing_path, SUM(quantity) FROM events WHERE event_type = "
                          f"'web_sessions' AND landing_path IS NOT NULL AND {span} GROUP BY event_date, landing_path",
                          (lo, hi)),
        # 7. attributed money (credited_amount is already in the reporting currency)
        "attributed": ("SELECT target, channel, campaign_key, conversion_at, SUM(credited_amount) FROM "
                       "attribution_credits WHERE model = ? AND credited_amount IS NOT NULL GROUP BY target, channel, "
                       "campaign_key, conversion_at", (attribution_model,)),
        # _persons_per_period: demos and nurture enrolments, one person at a time
        "persons": ("SELECT e.person_key, e.event_type, e.event_date, p.original_channel FROM events e LEFT JOIN "
                    "people p ON p.person_key = e.person_key WHERE e.event_type IN ('demo_requested', "
                    "'nurture_enrolled') AND e.person_key IS NOT NULL AND e.event_date >= ? AND e.event_date <= ? "
                    "ORDER BY e.person_key", (lo, hi)),
    }


def _load(conn: Any, model: Model, lo: str, hi: str, attribution_model: str, as_of: str | None, fx: Fx,
          bucket: Callable[[str], str], reads: _Reads) -> _Facts:
    """Every additive fact over [lo, hi] (and the MRR changes); campaign / source / path slices by `bucket(day)`.
    Each scan is grouped in SQL or streamed (by opportunity, by campaign and person), so only day-level aggregates
    stay in memory. `reads` gives the rows of _grouped_reads; the pairs and the opportunities, which Python works
    through row by row, come first, so that a _Reads worker runs the others meanwhile."""
    from warehouse.attribution import self_reported_by_opportunity

    tz = model.timezone
    facts = _Facts(lo, hi, bucket)
    add = facts.add
    d_ = DIALECTS[dialect(conn)]
    c = d_["order_c"]

    # 5. pairs (email, webinar, event, direct-mail cohorts), streamed by (campaign, person): a pair's roles bitmask;
    #    the cohort role (bit 1: first send / registration) dates the pair and names its source. Pairs are counted
    #    by (family, day, source, roles) within a campaign and added to the facts when the campaign ends (counts:
    #    exact in any order).
    role_bit: dict[str, tuple[str, int]] = {}
    for fam, roles in PAIR_FAMILIES.items():
        for i, t in enumerate(roles):
            role_bit[t] = (fam, 1 << i)
    measures = {fam: [f"{fam}_{r}" for r in roles.values()] for fam, roles in PAIR_FAMILIES.items()}
    groups: dict[tuple, int] = {}  # (family, cohort day, cohort source, roles) -> pairs, of the current campaign
    pair: dict[str, list] = {}  # family -> [roles bitmask, cohort day, cohort source] of the current pair

    def close_pair() -> None:
        for fam, (bits, d, src) in pair.items():
            if bits & 1 and lo <= d <= hi:
                k = (fam, d, src, bits)
                groups[k] = groups.get(k, 0) + 1
        pair.clear()

    def close_campaign(camp: Any) -> None:
        for (fam, d, src, bits), n in groups.items():
            for i, m in enumerate(measures[fam]):
                if bits >> i & 1:
                    add(m, d, float(n), campaign=camp, source=src or None)
            if fam == "dm" and bits & 0b110 == 0b110:
                add("dm_both", d, float(n), campaign=camp, source=src or None)
        groups.clear()

    bound = " AND event_date <= ?" if as_of else ""
    cur_camp = cur_pk = None
    for camp, pk, et, d, src in stream(  # in the order of the partial index ix_events_pairs (no sort), index only
            conn, f"SELECT campaign_key, person_key, event_type, event_date, source_system FROM events"
                  f"{d_['pairs_index']} WHERE {PAIRS_WHERE}{bound} ORDER BY campaign_key, person_key",
            (as_of,) if as_of else ()):
        if pk != cur_pk or camp != cur_camp:
            close_pair()
            if camp != cur_camp:
                close_campaign(cur_camp)
            cur_camp, cur_pk = camp, pk
        fam, bit = role_bit[et]
        p = pair.get(fam)
        if p is None:
            p = pair[fam] = [0, "~", ""]
        p[0] |= bit
        if bit == 1:
            d, src = day(d), src or ""
            if d < p[1] or (d == p[1] and src < p[2]):
                p[1], p[2] = d, src
    close_pair()
    close_campaign(cur_camp)

    # 3. opportunities one at a time, with SR(o) (dark funnel, §5.5) and their revenue credit shares (MRR by channel)
    shares = stream(conn, f"SELECT opportunity_key, channel, SUM(credit) FROM attribution_credits WHERE model = ? AND "
                          f"target = 'revenue' AND opportunity_key IS NOT NULL GROUP BY opportunity_key, channel "
                          f"ORDER BY opportunity_key{c}",
                    (attribution_model,))
    months = model.contract_months or 12
    for ok, opp, sr, share_rows in merge_groups(_opportunities(conn, tz), self_reported_by_opportunity(conn), shares):
        if not opp:
            continue
        o = opp[0][1]
        ch, camp, src = o["channel"], o["campaign"], o["source_system"]
        for et, m in O_MEASURE.items():
            e = o["events"].get(et)
            if e:
                add(m, e[0], 1.0, channel=ch, campaign=camp, source=src)
        sqo = o["events"].get("became_sqo")
        if sqo and o["amount"] is not None:
            amt = fx.convert(o["amount"], o["currency"], sqo[0])
            if amt is not None:
                add("pipe", sqo[0], amt)
        won = o["events"].get("deal_won")
        if won:
            wd, wamount, wcur = won
            amt = fx.convert(wamount if wamount is not None else o["amount"],
                             wcur if wamount is not None else o["currency"], wd)
            if amt is not None:
                add("wonamt", wd, amt)
            if o["amount_monthly"] is not None:
                mm = fx.convert(o["amount_monthly"], o["currency"], wd)
                if mm is not None:
                    add("mrrnew", wd, mm)
            close_day = o["close_day"] or wd
            first = o["first_touch_day"] or o["created_day"]
            if first:
                cycle = (date.fromisoformat(close_day) - date.fromisoformat(first)).days
                add("cyc_sum", wd, float(cycle), channel=ch)
                add("cyc_n", wd, 1.0, channel=ch)
            if o["amount_monthly"] is not None:  # K30 stock: from the close for contract_months
                start = close_day
                mm = fx.convert(o["amount_monthly"], o["currency"], start)
                if mm is not None:
                    stop = _add_months(date.fromisoformat(start), months).isoformat()
                    split = {r[1]: r[2] or 0.0 for r in share_rows}
                    facts.add_mrr(start, mm, split)
                    facts.add_mrr(stop, -mm, split)
        # 4. dark funnel (§5.5): opportunities created in P with a self-reported channel
        created = o["events"].get("opportunity_created")
        if created and sr:
            d, s, sw = created[0], sr[0][1], ch
            add("pi", d, 1.0)
            add("sr_dark", d, 1.0 if s == DARK else 0.0)
            add("sw_dark", d, 1.0 if sw == DARK else 0.0)
            add("agree", d, 1.0 if s == sw else 0.0)
            facts.add_slice("sr", d, 1.0, "channel", s)
            facts.add_slice("sw", d, 1.0, "channel", sw)
    # 1a. web aggregates and form fills
    for et, d, ch, n, q in reads.rows("web"):
        if et in WEB_AGG:
            add(WEB_AGG[et], day(d), q or 0.0, ch)
        else:  # form_submitted, demo_requested: K07 is an event count
            add("forms", day(d), float(n), ch)

    # 1b. ad facts and spend
    for et, d, ch, camp, src, cur, q, a in reads.rows("ads"):
        d = day(d)
        if et in AD_Q:
            add(AD_Q[et], d, q or 0.0, ch, camp, src)
        else:
            amt = fx.convert(a, cur, d)
            if amt is None:
                continue
            add("spend", d, amt, ch, camp, src)
            if et == "ad_spend":
                add("adspend", d, amt, ch, camp, src)

    # 2. lifecycle FIRST(type) per person
    for et, d, ch, camp, src, n in reads.rows("lifecycle"):
        add(F_MEASURE[et], day(d), float(n), ch, camp, src)

    # K09 new customers
    for d, ch, n in reads.rows("new_customers"):
        add("newcust", day(d), float(n), channel=ch)

    # 6. K17 landing pages
    for d, path, n in reads.rows("page_forms"):
        if path:
            add("pforms", day(d), float(n), path=path)
    for d, path, q in reads.rows("page_sessions"):
        add("psess", day(d), q or 0.0, path=path)

    # 7. attributed money
    for target, ch, camp, conv, amount in reads.rows("attributed"):
        if conv is None:
            continue
        add("attr_p" if target == "pipeline" else "attr_r", _local(conv, tz), amount or 0.0, channel=ch,
            campaign=camp)
    return facts


def _first_won(conn: Any) -> str:
    """Subquery: (opportunity_key, event_date) of each opportunity's first deal_won event."""
    d_ = DIALECTS[dialect(conn)]
    return (f"(SELECT opportunity_key, event_date FROM (SELECT opportunity_key, event_date, ROW_NUMBER() OVER ("
            f"PARTITION BY opportunity_key ORDER BY {d_['ts_second'].format(col='occurred_at')}, event_id"
            f"{d_['order_c']}) AS rn FROM events WHERE event_type = 'deal_won' AND opportunity_key IS NOT NULL) f "
            f"WHERE rn = 1)")


def _persons_per_period(rows: Iterable[tuple], pmaps: list[dict[str, tuple]]) -> list[dict[tuple, dict]]:
    """The non-additive counts, for each day -> period map: K06 demos (distinct persons with a demo_requested in P;
    total and by the person's original channel) and K40 nurture (distinct persons enrolled in P), keyed like rolled
    facts (dim, value, period_start). One pass over those events (`rows`: the "persons" read of _grouped_reads), one
    person at a time."""
    out: list[dict[tuple, dict]] = [{} for _ in pmaps]
    if not pmaps:
        return out
    single: dict[tuple, int] = {}  # (event type, day, channel) -> persons with events of one type on one day

    def count(counts: dict, et: str, p0: str, ch: str, n: float) -> None:
        if et == "demo_requested":
            _bump(counts, (None, None, p0), "demos", n)
            _bump(counts, ("channel", ch, p0), "demos", n)
        else:
            _bump(counts, (None, None, p0), "nurture", n)

    for _pk, events in itertools.groupby(rows, key=itemgetter(0)):
        events = list(events)
        ch = events[0][3] or "unattributed"
        days = {(et, day(d)) for _, et, d, _ in events}
        if len(days) == 1:  # the common case: additive, counted per day below
            key = (*days.pop(), ch)
            single[key] = single.get(key, 0) + 1
            continue
        for pmap, counts in zip(pmaps, out):
            for et, p0 in {(et, pmap[d][0]) for et, d in days if d in pmap}:
                count(counts, et, p0, ch, 1.0)
    for (et, d, ch), n in single.items():
        for pmap, counts in zip(pmaps, out):
            if d in pmap:
                count(counts, et, pmap[d][0], ch, float(n))
    return out


def _opportunities(conn: Any, tz: str) -> Iterator[tuple[str, dict]]:
    """(opportunity_key, opportunity) one at a time by key; `events` holds the first event (by time, event_id) of each
    opportunity event type as (day, amount, currency), `campaign` the first campaign_key of those events."""
    d_ = DIALECTS[dialect(conn)]
    c = d_["order_c"]
    cols = ("opportunity_key", "source_system", "account_key", "created_at", "closed_at", "close_date", "amount",
            "currency", "amount_monthly", "sourced_channel", "first_touch_at")
    opps = stream(conn, f"SELECT {', '.join(cols)} FROM opportunities WHERE opportunity_key IS NOT NULL "
                        f"ORDER BY opportunity_key{c}")
    events = stream(conn, f"SELECT opportunity_key, event_type, event_date, amount, currency, campaign_key FROM events "
                          f"WHERE event_type IN {in_list(OPPORTUNITY_TYPES)} AND opportunity_key IS NOT NULL ORDER BY "
                          f"opportunity_key{c}, event_type{c}, {d_['ts_second'].format(col='occurred_at')}, event_id{c}")
    for ok, rows, evs in merge_groups(opps, events):
        if not rows:
            continue  # events of an opportunity outside the system of record / deleted
        o = dict(zip(cols, rows[0]))
        o["channel"] = o["sourced_channel"] or "unattributed"
        o["campaign"] = None
        o["close_day"] = day(o["close_date"]) or (_local(o["closed_at"], tz) if o["closed_at"] else None)
        o["created_day"] = _local(o["created_at"], tz) if o["created_at"] else None
        o["first_touch_day"] = _local(o["first_touch_at"], tz) if o["first_touch_at"] else None
        o["events"] = {}
        for _, et, d, amount, cur, camp in evs:
            if et not in o["events"]:
                o["events"][et] = (day(d), amount, cur)
            if camp and o["campaign"] is None:
                o["campaign"] = camp
        yield ok, o


def _cohort_facts(conn: Any, facts: _Facts, as_of: str, tz: str) -> None:
    """K10–K15 cohort numerators/denominators by cohort entry day (total and channel), one person (by the first day
    of each stage, from lifecycle events, linked opportunities and demos) and one opportunity at a time."""
    c = DIALECTS[dialect(conn)]["order_c"]
    rank = {"lead_created": 1, "became_mql": 2, "became_sql": 3, "became_customer": 5}
    stages = stream(conn, f"SELECT person_key, event_type, MIN(event_date), MIN(channel) FROM events WHERE event_type "
                          f"IN {in_list(LIFECYCLE_TYPES)} AND person_key IS NOT NULL GROUP BY person_key, event_type "
                          f"ORDER BY person_key{c}, event_type{c}")
    linked = stream(conn, f"SELECT op.person_key, o.created_at, w.event_date FROM opportunity_people op JOIN "
                          f"opportunities o ON o.opportunity_key = op.opportunity_key LEFT JOIN {_first_won(conn)} w "
                          f"ON w.opportunity_key = o.opportunity_key ORDER BY op.person_key{c}")
    demos = stream(conn, f"SELECT person_key, MIN(event_date) FROM events WHERE event_type = 'demo_requested' AND "
                         f"person_key IS NOT NULL GROUP BY person_key ORDER BY person_key{c}")
    add = facts.add

    def reached(s: dict[int, str], r: int) -> float:
        return 1.0 if any(k >= r and v <= as_of for k, v in s.items()) else 0.0

    for _pk, firsts, opps, demo in merge_groups(stages, linked, demos):
        if not firsts:
            continue
        s = {rank[et]: day(d) for _, et, d, _ in firsts}
        ch = firsts[0][3]
        for _, created, won in opps:
            if created:
                s[4] = min(s.get(4, "9999"), _local(created, tz))
            if won:
                s[5] = min(s.get(5, "9999"), day(won))
        demo_ok = 1.0 if demo and day(demo[0][1]) <= as_of else 0.0
        if 1 in s:
            add("c_lead", s[1], 1.0, channel=ch)
            add("c_lead_mql", s[1], reached(s, 2), channel=ch)
            add("c_lead_cust", s[1], reached(s, 5), channel=ch)
            add("c_lead_demo", s[1], demo_ok, channel=ch)
        if 2 in s:
            add("c_mql", s[2], 1.0, channel=ch)
            add("c_mql_sql", s[2], reached(s, 3), channel=ch)
            add("c_mql_demo", s[2], demo_ok, channel=ch)
        if 3 in s:
            add("c_sql", s[3], 1.0, channel=ch)
            add("c_sql_opp", s[3], reached(s, 4), channel=ch)
    for _ok, o in _opportunities(conn, tz):
        created = o["events"].get("opportunity_created")
        if not created:
            continue
        won = o["events"].get("deal_won")
        lost = o["events"].get("deal_lost")
        w = 1.0 if won and won[0] <= as_of else 0.0
        closed = 1.0 if w or (lost and lost[0] <= as_of) else 0.0
        add("c_opp", created[0], 1.0, channel=o["channel"])
        add("c_opp_won", created[0], w, channel=o["channel"])
        add("c_opp_closed", created[0], closed, channel=o["channel"])


# ---- KPI definitions --------------------------------------------------------------------------------------------


def _ratio(n: float | None, d: float | None) -> tuple:
    return (None if n is None or not d else n / d, n, d)


class _Slice:
    """What a KPI formula sees: `v(m)` this slice's value of a measure, `t(m)` the period total, `c(m, ch)` a
    channel's value in the period."""

    __slots__ = ("chan", "dim", "md", "mode", "model", "tot", "val")

    def __init__(self, md: dict, tot: dict, chan: Callable[[str], dict], dim: str | None, val: Any, model: Model,
                 mode: str):
        self.md, self.tot, self.chan, self.dim, self.val, self.model, self.mode = md, tot, chan, dim, val, model, mode

    def v(self, m: str) -> float:
        return self.md.get(m, 0.0)

    def t(self, m: str) -> float:
        return self.tot.get(m, 0.0)

    def c(self, m: str, ch: str) -> float:
        return self.chan(ch).get(m, 0.0)


def _count(m: str) -> Callable[[_Slice], tuple]:
    return lambda s: (s.md.get(m, 0.0), None, None)


def _rate(n: str, d: str) -> Callable[[_Slice], tuple]:
    def f(s: _Slice) -> tuple:
        md = s.md
        return _ratio(md.get(n, 0.0), md.get(d, 0.0))
    return f


def _cohort_or(inp: tuple[str, str], coh: tuple[str, str]) -> Callable[[_Slice], tuple]:
    return lambda s: _ratio(s.v(coh[0]), s.v(coh[1])) if s.mode == "cohort" else _ratio(s.v(inp[0]), s.v(inp[1]))


def _pipeline(s: _Slice) -> float:
    return s.v("pipe") if s.dim is None else s.v("attr_p")


def _revenue(s: _Slice) -> float:
    return s.v("wonamt") if s.dim is None else s.v("attr_r")


def _new_mrr(s: _Slice) -> tuple:
    if s.dim is None:
        return s.v("mrrnew"), None, None
    return s.v("attr_r") * monthly_factor(s.model), None, None


def _cac(s: _Slice) -> tuple:
    return _ratio(s.v("spend"), s.v("newcust"))


def _clv(s: _Slice) -> float | None:
    ads = _ratio(s.v("wonamt"), s.v("won"))[0]
    return None if ads is None else ads * s.model.gross_margin * s.model.expected_lifetime_years


def _roi(s: _Slice) -> tuple:
    spend = s.v("spend")
    return _ratio(_revenue(s) - spend, spend)


def _parity(s: _Slice) -> tuple:
    mql_share = _ratio(s.v("mql"), s.t("mql"))[0]
    spend_share = _ratio(s.v("spend"), s.t("spend"))[0]
    return _ratio(mql_share, spend_share) if mql_share is not None else (None, None, spend_share)


def _bounce(s: _Slice) -> tuple:
    sess = s.v("sess")
    return _ratio(sess - s.v("eng"), sess)


def _delta(s: _Slice) -> tuple:
    if s.dim is None:
        return 0.0, s.v("pi"), s.v("pi")
    a, b = s.v("sr"), s.v("sw")
    return a - b, a, b


def _status_zero_waste(s: _Slice, value: float | None) -> str | None:
    if s.dim == "channel" and s.val == "paid_social" and value is not None:
        return "good" if value >= s.model.zero_waste_target else "warning"
    return None


def _warning_below(limit: float) -> Callable[[_Slice, float | None], str | None]:
    return lambda s, v: "warning" if v is not None and v < limit else None


# (kpi, slices: T total, C channel, A campaign, S source, P path; the measures it reads (a sliced row is only
#  evaluated when one of them is present); formula -> (value, numerator, denominator); status)
KPIS: list[tuple[str, str, tuple[str, ...], Callable[[_Slice], tuple], Callable | None]] = [
    ("new_leads", "TCS", ("lead",), _count("lead"), None),
    ("mqls", "TCS", ("mql",), _count("mql"), None),
    ("sqls", "TCS", ("sql",), _count("sql"), None),
    ("opportunities_created", "TCS", ("opp",), _count("opp"), None),
    ("sqos", "TCS", ("sqo",), _count("sqo"), None),
    ("demos", "TC", ("demos",), _count("demos"), None),
    ("form_fills", "TC", ("forms",), _count("forms"), None),
    ("deals_won", "TCS", ("won",), _count("won"), None),
    ("new_customers", "TC", ("newcust",), _count("newcust"), None),
    ("lead_to_mql_rate", "TC", ("mql", "lead", "c_lead"), _cohort_or(("mql", "lead"), ("c_lead_mql", "c_lead")),
     _status_zero_waste),
    ("mql_to_sql_rate", "TC", ("sql", "mql", "c_mql"), _cohort_or(("sql", "mql"), ("c_mql_sql", "c_mql")), None),
    ("sql_to_opportunity_rate", "TC", ("opp", "sql", "c_sql"), _cohort_or(("opp", "sql"), ("c_sql_opp", "c_sql")),
     None),
    ("opportunity_to_win_rate", "TC", ("won", "opp", "c_opp"), _cohort_or(("won", "opp"), ("c_opp_won", "c_opp")),
     None),
    ("win_rate", "TC", ("won", "lost", "c_opp"), lambda s: _ratio(s.v("c_opp_won"), s.v("c_opp_closed"))
     if s.mode == "cohort" else _ratio(s.v("won"), s.v("won") + s.v("lost")), None),
    ("mql_to_demo_rate", "TC", ("demos", "mql", "c_mql"), _cohort_or(("demos", "mql"), ("c_mql_demo", "c_mql")),
     None),
    ("lead_to_demo_rate", "TC", ("demos", "lead", "c_lead"), _cohort_or(("demos", "lead"), ("c_lead_demo", "c_lead")),
     None),
    ("lead_to_close_rate", "TC", ("won", "lead", "c_lead"), _cohort_or(("won", "lead"), ("c_lead_cust", "c_lead")),
     None),
    ("visitor_to_lead_rate", "TC", ("lead", "sess"), _rate("lead", "sess"), None),
    ("landing_page_conversion_rate", "TP", ("pforms",), _rate("pforms", "psess"), None),
    ("marketing_spend", "TCAS", ("spend",), _count("spend"), None),
    ("cpl", "TCA", ("spend", "lead"), _rate("spend", "lead"), None),
    ("cost_per_mql", "TCA", ("spend", "mql"), _rate("spend", "mql"), None),
    ("cost_per_sqo", "TCA", ("spend", "sqo"), _rate("spend", "sqo"), None),
    ("cac", "TC", ("spend", "newcust"), _cac, None),
    ("cpc", "TCAS", ("adspend", "clk"), _rate("adspend", "clk"), None),
    ("ctr", "TCAS", ("clk", "imp"), _rate("clk", "imp"), None),
    ("paid_conversion_rate", "TCAS", ("conv", "clk"), _rate("conv", "clk"), None),
    ("cost_per_conversion", "TCAS", ("adspend", "conv"), _rate("adspend", "conv"), None),
    ("pipeline_created", "TCA", ("attr_p",), lambda s: (_pipeline(s), None, None), None),
    ("pipe_to_spend", "TCA", ("attr_p", "spend"), lambda s: _ratio(_pipeline(s), s.v("spend")), None),
    ("closed_won_revenue", "TC", ("attr_r",), lambda s: (_revenue(s), None, None), None),
    ("average_deal_size", "TC", ("attr_r", "won"), lambda s: _ratio(_revenue(s), s.v("won")), None),
    ("average_sales_cycle_days", "TC", ("cyc_n",), _rate("cyc_sum", "cyc_n"), None),
    ("new_mrr", "TC", ("attr_r",), _new_mrr, None),
    ("mrr", "TC", ("mrr",), _count("mrr"), None),
    ("roas", "TCA", ("attr_r", "adspend"), lambda s: _ratio(s.v("attr_r"), s.v("adspend")), None),
    ("roi", "TCA", ("attr_r", "spend"), _roi, None),
    ("clv", "T", (), lambda s: (_clv(s), None, None), None),
    ("clv_to_cac", "T", (), lambda s: _ratio(_clv(s), _cac(s)[0]),
     lambda s, v: "profitable" if v is not None and v > 1 else None),
    ("emails_sent", "TAS", ("email_c",), _count("email_c"), None),
    ("emails_delivered", "TAS", ("email_deliv",), _count("email_deliv"), None),
    ("deliverability_rate", "TAS", ("email_c",), _rate("email_deliv", "email_c"), _warning_below(0.95)),
    ("unique_open_rate", "TAS", ("email_deliv", "email_open"), _rate("email_open", "email_deliv"), None),
    ("unique_click_rate", "TAS", ("email_deliv", "email_click"), _rate("email_click", "email_deliv"), None),
    ("click_to_open_rate", "TAS", ("email_open", "email_click"), _rate("email_click", "email_open"), None),
    ("unsubscribe_rate", "TAS", ("email_deliv", "email_unsub"), _rate("email_unsub", "email_deliv"), None),
    ("email_bounce_rate", "TAS", ("email_c",), _rate("email_bounce", "email_c"), None),
    ("leads_to_nurture", "T", (), _count("nurture"), None),
    ("sessions", "TC", ("sess",), _count("sess"), None),
    ("engagement_rate", "TC", ("sess",), _rate("eng", "sess"), None),
    ("bounce_rate", "TC", ("sess",), _bounce, None),
    ("pages_per_session", "TC", ("sess",), _rate("pv", "sess"), None),
    ("new_users", "TC", ("nu",), _count("nu"), None),
    ("avg_engagement_seconds", "TC", ("sess",), _rate("es", "sess"), None),
    ("dark_social_traffic_share", "T", (), lambda s: _ratio(s.c("sess", DARK), s.v("sess")), None),
    ("webinar_registrations", "TA", ("web_c",), _count("web_c"), None),
    ("webinar_attendance_rate", "TA", ("web_c",), _rate("web_att", "web_c"),
     lambda s, v: "good" if v is not None and v >= 0.5 else None),
    ("event_registrations", "TA", ("evt_c",), _count("evt_c"), None),
    ("event_attendance_rate", "TA", ("evt_c",), _rate("evt_att", "evt_c"), None),
    ("direct_mail_claim_rate", "TA", ("dm_c",), _rate("dm_claim", "dm_c"), None),
    ("claim_and_book_rate", "TA", ("dm_c",), _rate("dm_both", "dm_c"), None),
    ("spend_conversion_parity", "TC", ("mql", "spend"), _parity, None),
    ("dark_funnel_gap", "T", (), lambda s: _ratio(s.v("sr_dark") - s.v("sw_dark"), s.v("pi")), None),
    ("sr_sw_agreement", "T", (), _rate("agree", "pi"), None),
    ("self_report_coverage", "T", (), lambda s: _ratio(s.v("pi"), s.v("opp")), None),
    ("dark_funnel_delta", "TC", ("sr", "sw"), _delta, None),
]
KPI_NAMES = tuple(k[0] for k in KPIS)
_LETTER = {None: "T", "channel": "C", "campaign": "A", "source": "S", "path": "P"}
_BY_LETTER = {letter: [(i, *k) for i, k in enumerate(KPIS) if letter in k[1]] for letter in "TCASP"}


# ---- evaluation -------------------------------------------------------------------------------------------------


def _roll(items: Iterable[tuple[tuple, dict]], pmap: dict[str, tuple]) -> dict[tuple, dict]:
    """((dim, value, day or bucket), measures) -> {(dim, value, period_start): summed measures}."""
    out: dict[tuple, dict] = {}
    for (dim, v, d), md in items:
        p = pmap.get(d)
        if p is None:
            continue
        key = (dim, v, p[0])
        o = out.get(key)
        if o is None:
            out[key] = dict(md)
        else:
            for m, x in md.items():
                o[m] = o.get(m, 0.0) + x
    return out


def _bump(rolled: dict, key: tuple, m: str, x: float) -> None:
    md = rolled.get(key)
    if md is None:
        md = rolled[key] = {}
    md[m] = md.get(m, 0.0) + x


def _rows_for_grain(facts: _Facts, persons: dict[tuple, dict], model: Model, grain: str | None,
                    pmap: dict[str, tuple], dims: tuple, mode: str, slices: _Slices) -> Iterator[tuple]:
    """The KPI rows of one grain's periods, generated one at a time, compactly: (slice id, KPI index in KPIS, value,
    numerator, denominator, status), where `slices[slice id]` = (grain, period_start, period_end, channel,
    campaign_key, source_system, landing_path) is added once per slice (`_full_rows` expands them). Totals and
    channel slices come from one roll-up of their day facts, then each campaign / source / path value is rolled up
    and emitted on its own."""
    rolled = _roll(facts.s.items(), pmap)  # totals and channels (channels feed K44 / K48 even for totals)
    for key, md in persons.items():  # distinct persons per period (_persons_per_period)
        for m, x in md.items():
            _bump(rolled, key, m, x)
    bounds = sorted(set(pmap.values()))
    _mrr_stock(facts, bounds, rolled, "channel" in dims)

    end_of = dict(bounds)
    empty: dict = {}
    for s0, _ in bounds:
        rolled.setdefault((None, None, s0), {})

    def emit(dim: str | None, v: Any, p: str, md: dict) -> Iterator[tuple]:
        tot = rolled.get((None, None, p), empty)
        s = _Slice(md, tot, lambda ch: rolled.get(("channel", ch, p), empty), dim, v, model, mode)
        sid = slices.add((grain, p, end_of[p], v if dim == "channel" else None, v if dim == "campaign" else None,
                          v if dim == "source" else None, v if dim == "path" else None))
        for k, _name, _slices, needs, fn, status in _BY_LETTER[_LETTER[dim]]:
            if dim is not None:
                for m in needs:
                    if m in md:
                        break
                else:
                    continue
            value, num, den = fn(s)
            if dim is not None and not (value or num or den):
                continue
            yield sid, k, value, num, den, status(s, value) if status else None

    for (dim, v, p), md in rolled.items():
        if dim is None or dim in dims:
            yield from emit(dim, v, p, md)
    for (dim, v), buckets in facts.sl.items():
        if dim in dims:
            for (_, _, p), md in _roll((((dim, v, b), md) for b, md in buckets.items()), pmap).items():
                yield from emit(dim, v, p, md)


class _Slices(dict):
    """slice id -> (grain, period_start, period_end, channel, campaign_key, source_system, landing_path); ids keep
    counting when the dict is cleared (refresh_kpis writes and forgets them as it goes)."""

    def __init__(self) -> None:
        super().__init__()
        self.next_id = 0

    def add(self, key: tuple) -> int:
        sid = self.next_id
        self[sid] = key
        self.next_id += 1
        return sid


def _overlaps(key: tuple, lo: str, hi: str) -> bool:
    """Whether a slice's period (key of _Slices) overlaps [lo, hi]."""
    return key[2] >= lo and key[1] <= hi


def _within(rows: Iterable[tuple], slices: _Slices, lo: str, hi: str) -> Iterator[tuple]:
    """The compact rows of the slices whose period overlaps [lo, hi] (a slice is looked up at its first row, before
    refresh_kpis writes and forgets it)."""
    last, keep = None, False
    for r in rows:
        if r[0] != last:
            last = r[0]
            keep = _overlaps(slices[last], lo, hi)
        if keep:
            yield r


def _full_rows(rows: Iterable[tuple], slices: _Slices) -> Iterator[tuple]:
    """Compact rows of _rows_for_grain as kpi_values rows (COLUMNS)."""
    for sid, k, value, num, den, status in rows:
        g, p, e, ch, camp, src, path = slices[sid]
        yield g, p, e, KPI_NAMES[k], ch, camp, src, value, num, den, status, path


def _mrr_stock(facts: _Facts, bounds: list[tuple], rolled: dict, by_channel: bool) -> None:
    """MRR(d) at each period end d: Σ monthly amounts with start ≤ d < start + contract_months (total, channel)."""
    days = sorted(facts.mrr)
    total = 0.0
    by_ch: dict[str, float] = {}
    i = 0
    for s, e in sorted(bounds, key=lambda b: b[1]):
        while i < len(days) and days[i] <= e:
            total += facts.mrr[days[i]]
            for ch, x in facts.mrr_channel[days[i]].items():
                by_ch[ch] = by_ch.get(ch, 0.0) + x
            i += 1
        if abs(total) > 1e-9:
            _bump(rolled, (None, None, s), "mrr", total)
        if by_channel:
            for ch, x in sorted(by_ch.items()):
                if abs(x) > 1e-9:
                    _bump(rolled, ("channel", ch, s), "mrr", x)


def _sort_key(r: tuple) -> tuple:
    return tuple("" if x is None else x for x in r[1:7]) + ("" if r[11] is None else r[11],)


def compute_kpis(conn: Any, model: Model, start: str, end: str, grain: str | None = "month", by: str | None = None,
                 *, mode: str = "in_period", as_of: str | None = None, attribution_model: str | None = None,
                 warnings: list[str] | None = None) -> list[dict]:
    """KPI rows (dicts with the kpi_values columns) for `grain` periods in [start, end] (clipped), `by` slice or
    totals. Warnings (money rows without an fx rate) are appended to `warnings` when given."""
    if grain is not None and grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}")
    if by is not None and by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    if mode not in ("in_period", "cohort"):
        raise ValueError("mode must be in_period or cohort")
    fx = Fx(conn, model.reporting_currency)
    pmap = periods(start, end, grain, model.fiscal_year_start_month, clip=True)
    attribution_model = attribution_model or model.default_model
    reads = _Reads(conn, _grouped_reads(conn, start, end, attribution_model))
    facts = _load(conn, model, start, end, attribution_model, as_of if mode == "cohort" else None, fx,
                  lambda d: pmap[d][0], reads)
    if mode == "cohort":
        _cohort_facts(conn, facts, as_of or "9999-12-31", model.timezone)
    persons = _persons_per_period(reads.rows("persons"), [pmap])[0]
    slices = _Slices()
    rows = list(_full_rows(_rows_for_grain(facts, persons, model, grain, pmap, (by,) if by else (), mode, slices),
                           slices))
    if by is not None:
        col = COLUMNS.index(_DIM_KEYS[by])
        rows = [r for r in rows if r[col] is not None]
    rows.sort(key=_sort_key)
    if warnings is not None:
        warnings.extend(fx.warnings("money rows"))
    return [dict(zip(COLUMNS, r)) for r in rows]


def data_range(conn: Any) -> tuple[str, str] | None:
    row = next(query(conn, "SELECT MIN(event_date), MAX(event_date) FROM events"), None)
    if not row or row[0] is None:
        return None
    return day(row[0]), day(row[1])


# Day-grain rows store totals and channel slices; campaign / source / landing-path slices are stored from week grain
# up (day x campaign alone would be about half of kpi_values). `compute_kpis` (and `funnelsync kpis --grain day --by
# campaign`) still computes any grain x slice on demand from the events.
STORED_SLICES = {"day": ("channel",)}  # day grain: only day-kept slices (see _Facts)
WRITE_ROWS = 5000
KPI_TABLES = (KPI_ROWS, KPI_SLICES)  # what refresh_kpis writes (kpi_values is a view of them)


PREFETCH_EVENTS = 100_000  # from this many events on, refresh_kpis runs its grouped reads on a worker (_Reads)


def _main_file(conn: sqlite3.Connection) -> str:
    """The file of a SQLite connection's main database ("" in memory or temporary)."""
    return next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"), "")


def _worth_a_worker(conn: Any) -> bool:
    """A SQLite file (a second connection sees what this one committed) with PREFETCH_EVENTS events or more."""
    if not isinstance(conn, sqlite3.Connection) or not _main_file(conn):
        return False
    return (conn.execute("SELECT MAX(rowid) FROM events").fetchone()[0] or 0) >= PREFETCH_EVENTS


def refresh_kpis(conn: Any, model: Model, start: str | None = None, end: str | None = None,
                 timings: dict[str, float] | None = None) -> list[str]:
    """Rewrite `kpi_values` (in-period, every grain and slice of STORED_SLICES) for the periods overlapping the
    data's date range; with start/end, only for the fiscal years holding [start, end]. Returns warnings.

    kpi_values is a view: the rows go to kpi_rows and kpi_slices (warehouse.schema). Periods keep their natural
    bounds. On SQLite a full refresh drops their indexes while inserting and recreates them (bulk load). `timings`,
    when given, receives the seconds spent reading (`read`), computing rows (`compute`) and writing them (`write`)."""
    clock = time.perf_counter
    t0 = clock()
    owned = begin_owned(conn)
    fy = model.fiscal_year_start_month
    full = not (start or end)
    bulk = full and bool(DIALECTS[dialect(conn)]["bulk_drop_index"])
    if full:
        lo, hi = "0001-01-01", "9999-12-31"
    else:
        lo = period_of(date.fromisoformat(start or end), "year", fy)[0].isoformat()
        hi = period_of(date.fromisoformat(end or start), "year", fy)[1].isoformat()
    worker = owned and _worth_a_worker(conn)
    if worker:  # take the write lock now: no other writer commits while two connections read (_Reads)
        execute(conn, "BEGIN IMMEDIATE")
    warnings: list[str] = []
    spent = {"read": 0.0, "compute": 0.0, "write": 0.0}
    if lo <= hi:
        fx = Fx(conn, model.reporting_currency)
        # ISO weeks may cross the fiscal year: read 6 more days each side so such a week is complete
        load_lo = lo if full else (date.fromisoformat(lo) - timedelta(days=6)).isoformat()
        load_hi = hi if full else (date.fromisoformat(hi) + timedelta(days=6)).isoformat()
        reads = _Reads(conn, _grouped_reads(conn, load_lo, load_hi, model.default_model),
                       worker=worker)
        try:
            facts = _load(conn, model, load_lo, load_hi, model.default_model, None, fx, segment_start, reads)
            # the data's date range = the days holding any KPI fact (no extra scan for MIN/MAX(event_date)); from
            # week grain up the day -> period maps also cover the span (segment) holding the first day
            days = [d for (dim, _v, d) in facts.s if dim is None]
            emit_lo, emit_hi = (min(days), max(days)) if days else ("9999-12-31", "0001-01-01")
            pmaps = {g: periods(emit_lo if g == "day" else segment_start(emit_lo), emit_hi, g, fy, clip=False)
                     for g in (GRAINS if emit_lo <= emit_hi else ())}
            persons = dict(zip(pmaps, _persons_per_period(reads.rows("persons"), list(pmaps.values()))))
        finally:
            reads.close()
        spent["read"] = clock() - t0
        t1 = clock()
        if full:
            execute(conn, "DELETE FROM kpi_rows")
            execute(conn, "DELETE FROM kpi_slices")
        else:
            old = "SELECT slice_id FROM kpi_slices WHERE period_end >= ? AND period_start <= ?"
            execute(conn, f"DELETE FROM kpi_rows WHERE slice_id IN ({old})", (lo, hi))
            execute(conn, f"DELETE FROM kpi_slices WHERE slice_id IN ({old})", (lo, hi))
        execute(conn, "DELETE FROM kpi_names")
        insert_rows(conn, "kpi_names", ("kpi_id", "kpi"), enumerate(KPI_NAMES))
        slices = _Slices()
        slices.next_id = next(query(conn, "SELECT COALESCE(MAX(slice_id) + 1, 0) FROM kpi_slices"))[0]
        if bulk and emit_lo <= emit_hi:  # bulk load: drop the indexes, recreate them once the rows are in
            for table in KPI_TABLES:
                for name, _stmt in table.index_statements():
                    execute(conn, f"DROP INDEX IF EXISTS {name}")
        spent["write"] += clock() - t1
        for grain, pmap in pmaps.items():  # rows are written as they are computed, WRITE_ROWS at a time
            t1 = clock()
            rows = _rows_for_grain(facts, persons[grain], model, grain, pmap, STORED_SLICES.get(grain, BY),
                                   "in_period", slices)
            if not full:  # exactly the periods the DELETE above removed
                rows = _within(rows, slices, lo, hi)
            while True:
                chunk = list(itertools.islice(rows, WRITE_ROWS))
                t2 = clock()
                spent["compute"] += t2 - t1
                if not chunk:
                    break
                insert_rows(conn, "kpi_rows", KPI_ROWS.column_names, chunk)
                insert_rows(conn, "kpi_slices", KPI_SLICES.column_names,
                            ((i, *x) for i, x in slices.items() if full or _overlaps(x, lo, hi)))
                slices.clear()
                t1 = clock()
                spent["write"] += t1 - t2
        if bulk:  # (re)create the indexes even when nothing was written
            t2 = clock()
            for table in KPI_TABLES:
                for _name, stmt in table.index_statements():
                    execute(conn, stmt)
            spent["write"] += clock() - t2
        warnings = fx.warnings("money rows")
    if owned:
        t3 = clock()
        conn.commit()
        spent["write"] += clock() - t3
    if timings is not None:
        timings.update(spent)
    return warnings
