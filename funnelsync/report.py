"""`funnelsync report`: one self-contained HTML file with the charts a marketing lead reads first.

`write_report(wh, model, out_path, start=None, end=None, now=None) -> Path` reads the warehouse (`wh.conn`, SQLite
or PostgreSQL) through the KPI layer (`warehouse.kpis.compute_kpis`) and portable SELECTs over the tables of spec
§9.1 (`attribution_credits`, `goal_pacing`, `events`, `campaigns`, `sync_state`), and writes:

- headline tiles (leads, MQLs, opportunities, won deals, pipeline, revenue, spend, ROI, CAC);
- the funnel (leads → MQLs → SQLs → opportunities → won) with the stage-to-stage rates, and the same by sourced
  channel (grouped bars);
- marketing spend vs attributed pipeline vs attributed closed-won revenue by channel (grouped bars; attribution
  with `[model] default_model`);
- the dark-social share of sessions (K44) by ISO week, or by month when the sessions span more than 26 weeks;
- attribution by model: channel shares of pipeline and of revenue for first_touch, last_touch, linear, u_shaped,
  w_shaped, time_decay and hybrid_self_reported (100 % stacked bars, one per model);
- goal pacing per quarter of each plan year in the period (target, expected to date, actual; the actual bar
  coloured by band);
- the KPI table of the period with the §4.2 markers (warning / good / profitable), the flagged channel and
  campaign slices, and data freshness per stream.

Period: [start, end]; by default the data's range (`warehouse.kpis.data_range`, i.e. events' event_date) clipped to
`end`, else to today (`now` in the reporting time zone). Every chart degrades to a "no data" panel, so an empty
warehouse gives a valid report.

The file needs no network: inline CSS, inline SVG drawn here in Python (no library), and a Content-Security-Policy
that forbids every external load. Each chart is `<svg class="chart" data-chart=… data-marks=N>` whose data marks
(`.mark`: bars, points, the line) carry `data-value`; a small inline script records on each chart how many marks the
browser laid out (`data-drawn-marks`) and on `<html>` how many charts are complete (`data-charts-drawn="k/n"`), so
tests (and anyone debugging a blank chart) can tell a drawn chart from markup. Every chart has a `<title>`, a
`<desc>`, axis titles, formatted data labels and, under it, its numbers as a table.
"""
from __future__ import annotations

import hashlib
import html
import inspect
import math
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from normalize.events import local_date, zone
from normalize.model import Model
from warehouse import kpis
from warehouse.derive import begin_owned, day, dialect, query, ts

STAGES = (("new_leads", "Leads"), ("mqls", "MQLs"), ("sqls", "SQLs"), ("opportunities_created", "Opportunities"),
          ("deals_won", "Won"))
STAGE_RATES = (None, "lead_to_mql_rate", "mql_to_sql_rate", "sql_to_opportunity_rate", "opportunity_to_win_rate")
ATTRIBUTION_MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay",
                      "hybrid_self_reported")
MODEL_LABELS = {"first_touch": "First touch", "last_touch": "Last touch", "linear": "Linear", "u_shaped": "U-shaped",
                "w_shaped": "W-shaped", "time_decay": "Time decay", "hybrid_self_reported": "Hybrid self-reported",
                "full_path": "Full path", "j_shaped": "J-shaped", "inverse_j": "Inverse J"}
MONEY_SERIES = (("marketing_spend", "Spend"), ("pipeline_created", "Pipeline"), ("closed_won_revenue", "Revenue"))
WEEKLY_MAX_DAYS = 182  # dark-social trend: ISO weeks up to 26 weeks of sessions, months beyond

# Colours: one per channel, the same in every chart (Tableau 10 + 4), readable on white.
CHANNEL_COLORS = {
    "paid_search": "#4e79a7", "paid_social": "#f28e2b", "organic_search": "#59a14f", "organic_social": "#8cd17d",
    "email": "#e15759", "referral": "#76b7b2", "direct": "#9c755f", "dark_social": "#6f4e9c", "events": "#edc948",
    "content_syndication": "#ff9da7", "webinar": "#17a2b8", "direct_mail": "#b07aa1", "other": "#bab0ac",
    "unattributed": "#d9d9d9",
}
SPARE_COLORS = ("#86bcb6", "#d4a6c8", "#f1ce63", "#a0cbe8", "#ffbe7d", "#499894")
STAGE_COLORS = ("#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c")
MONEY_COLORS = ("#e15759", "#4e79a7", "#59a14f")
GOAL_COLORS = {"target": "#cfd6df", "expected": "#8b9bb0"}
BAND_COLORS = {"on_track": "#2e8b57", "at_risk": "#e6a700", "behind": "#d1432f", None: "#6b7280"}
BAND_LABELS = {"on_track": "on track", "at_risk": "at risk", "behind": "behind", None: "no pace yet"}
CHANNEL_LABELS = {"paid_search": "Paid search", "paid_social": "Paid social", "organic_search": "Organic search",
                  "organic_social": "Organic social", "email": "Email", "referral": "Referral", "direct": "Direct",
                  "dark_social": "Dark social", "events": "Events", "content_syndication": "Content syndication",
                  "webinar": "Webinar", "direct_mail": "Direct mail", "other": "Other",
                  "unattributed": "Unattributed"}
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩",
                    "BRL": "R$",
                    "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "MXN": "MX$", "ILS": "₪"}

# KPI display: (label, kind). kind: count | money | rate | multiple | number | days | seconds
KPI_INFO: dict[str, tuple[str, str]] = {
    "new_leads": ("New leads", "count"), "mqls": ("MQLs", "count"), "sqls": ("SQLs", "count"),
    "opportunities_created": ("Opportunities created", "count"), "sqos": ("SQOs", "count"),
    "demos": ("Demos", "count"), "form_fills": ("Form fills", "count"), "deals_won": ("Closed-won deals", "count"),
    "new_customers": ("New customers", "count"),
    "lead_to_mql_rate": ("Lead → MQL", "rate"), "mql_to_sql_rate": ("MQL → SQL", "rate"),
    "sql_to_opportunity_rate": ("SQL → opportunity", "rate"),
    "opportunity_to_win_rate": ("Opportunity → win", "rate"), "win_rate": ("Win rate (won ÷ closed)", "rate"),
    "mql_to_demo_rate": ("MQL → demo", "rate"), "lead_to_demo_rate": ("Lead → demo", "rate"),
    "lead_to_close_rate": ("Lead → close", "rate"), "visitor_to_lead_rate": ("Visitor → lead", "rate"),
    "landing_page_conversion_rate": ("Landing-page conversion", "rate"),
    "marketing_spend": ("Marketing spend", "money"), "cpl": ("Cost per lead", "money"),
    "cost_per_mql": ("Cost per MQL", "money"), "cost_per_sqo": ("Cost per SQO", "money"), "cac": ("CAC", "money"),
    "cpc": ("CPC", "money"), "ctr": ("CTR", "rate"), "paid_conversion_rate": ("Paid conversion rate", "rate"),
    "cost_per_conversion": ("Cost per paid conversion", "money"),
    "spend_conversion_parity": ("Spend–conversion parity", "multiple"),
    "pipeline_created": ("Pipeline created", "money"), "pipe_to_spend": ("Pipe-to-spend", "multiple"),
    "closed_won_revenue": ("Closed-won revenue", "money"), "average_deal_size": ("Average deal size", "money"),
    "average_sales_cycle_days": ("Average sales cycle", "days"), "new_mrr": ("New MRR", "money"),
    "mrr": ("MRR at period end", "money"), "roas": ("ROAS", "multiple"), "roi": ("ROI", "rate"),
    "clv": ("CLV", "money"), "clv_to_cac": ("CLV : CAC", "multiple"),
    "emails_sent": ("Emails sent", "count"), "emails_delivered": ("Emails delivered", "count"),
    "deliverability_rate": ("Deliverability", "rate"), "unique_open_rate": ("Unique open rate", "rate"),
    "unique_click_rate": ("Unique click rate", "rate"), "click_to_open_rate": ("Click-to-open", "rate"),
    "unsubscribe_rate": ("Unsubscribe rate", "rate"), "email_bounce_rate": ("Bounce rate (email)", "rate"),
    "leads_to_nurture": ("Leads sent to nurture", "count"),
    "sessions": ("Sessions", "count"), "engagement_rate": ("Engagement rate", "rate"),
    "bounce_rate": ("Bounce rate (web)", "rate"), "pages_per_session": ("Pages per session", "number"),
    "new_users": ("New users", "count"), "avg_engagement_seconds": ("Avg. engagement time", "seconds"),
    "webinar_registrations": ("Webinar registrations", "count"),
    "webinar_attendance_rate": ("Webinar attendance", "rate"),
    "event_registrations": ("Event registrations", "count"), "event_attendance_rate": ("Event attendance", "rate"),
    "direct_mail_claim_rate": ("Direct-mail claim rate", "rate"),
    "claim_and_book_rate": ("Claim-and-book rate", "rate"),
    "dark_social_traffic_share": ("Dark-social share of sessions", "rate"),
    "dark_funnel_gap": ("Dark funnel gap", "rate"), "sr_sw_agreement": ("Self-report vs software agreement", "rate"),
    "self_report_coverage": ("Self-report coverage", "rate"), "dark_funnel_delta": ("Dark funnel Δ", "count"),
}
KPI_SECTIONS = (
    ("Funnel", ("new_leads", "mqls", "sqls", "opportunities_created", "sqos", "deals_won", "new_customers", "demos",
                "form_fills")),
    ("Conversion", ("lead_to_mql_rate", "mql_to_sql_rate", "sql_to_opportunity_rate", "opportunity_to_win_rate",
                    "win_rate", "mql_to_demo_rate", "lead_to_demo_rate", "lead_to_close_rate", "visitor_to_lead_rate",
                    "landing_page_conversion_rate")),
    ("Spend and efficiency", ("marketing_spend", "cpl", "cost_per_mql", "cost_per_sqo", "cac", "cpc", "ctr",
                              "paid_conversion_rate", "cost_per_conversion", "spend_conversion_parity")),
    ("Pipeline and revenue", ("pipeline_created", "pipe_to_spend", "closed_won_revenue", "average_deal_size",
                              "average_sales_cycle_days", "new_mrr", "mrr", "roas", "roi", "clv", "clv_to_cac")),
    ("Email", ("emails_sent", "emails_delivered", "deliverability_rate", "unique_open_rate", "unique_click_rate",
               "click_to_open_rate", "unsubscribe_rate", "email_bounce_rate", "leads_to_nurture")),
    ("Web", ("sessions", "engagement_rate", "bounce_rate", "pages_per_session", "new_users",
             "avg_engagement_seconds")),
    ("Webinars, events, direct mail", ("webinar_registrations", "webinar_attendance_rate", "event_registrations",
                                       "event_attendance_rate", "direct_mail_claim_rate", "claim_and_book_rate")),
    ("Dark social", ("dark_social_traffic_share", "dark_funnel_gap", "sr_sw_agreement", "self_report_coverage")),
)
HIDDEN_TOTALS = ("dark_funnel_delta",)  # Σ Δ = 0 by construction; meaningful per channel only
MONEY_RATIOS = ("roi",)  # rates whose numerator and denominator are money
STATUS_MARKS = {"warning": ("⚠", "warning"), "good": ("✓", "good"), "profitable": ("★", "profitable")}
HEADLINE = ("new_leads", "mqls", "opportunities_created", "deals_won", "pipeline_created", "closed_won_revenue",
            "marketing_spend", "roi", "cac")


# ---- formatting ---------------------------------------------------------------------------------------------------


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def channel_label(ch: str | None) -> str:
    if ch is None:
        return "All channels"
    return CHANNEL_LABELS.get(ch) or ch.replace("_", " ").capitalize()


def channel_color(ch: str | None) -> str:
    """The channel's colour; a channel outside §3.1 gets a stable spare colour (hash of its name)."""
    if ch in CHANNEL_COLORS:
        return CHANNEL_COLORS[ch]
    return SPARE_COLORS[int(hashlib.sha256(str(ch).encode()).hexdigest(), 16) % len(SPARE_COLORS)]


def fmt_count(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def fmt_money(v: float | None, currency: str = "USD") -> str:
    """Full money: `$60,958`, `$952.46`, `$0`, `-$1,200`, `1,234 SEK`."""
    if v is None:
        return "—"
    text = f"{abs(v):,.0f}" if abs(v) >= 1000 or float(v).is_integer() else f"{abs(v):,.2f}"
    sign = "-" if v < 0 and round(abs(v), 2) > 0 else ""
    sym = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{sym}{text}" if sym else f"{sign}{text} {currency}"


def fmt_money_short(v: float | None, currency: str = "USD") -> str:
    """Compact money for labels and axes: `$61k`, `$1.2M`, `$950`."""
    if v is None:
        return "—"
    a = abs(v)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            n = a / div
            text = (f"{n:.1f}" if n < 10 else f"{n:.0f}").removesuffix(".0") + suffix
            break
    else:
        text = f"{a:.0f}" if a >= 10 or a == int(a) else f"{a:.2f}"
    sign = "-" if v < 0 else ""
    sym = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{sym}{text}" if sym else f"{sign}{text} {currency}"


def fmt_pct(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "—"
    p = v * 100
    if p != 0 and abs(p) < 0.1:
        return f"{p:.2f}%"
    return f"{p:.{digits}f}%"


def fmt_kpi(kpi: str, v: float | None, currency: str) -> str:
    kind = KPI_INFO.get(kpi, (kpi, "number"))[1]
    if v is None:
        return "—"
    if kind == "count":
        return fmt_count(v)
    if kind == "money":
        return fmt_money(v, currency)
    if kind == "rate":
        return fmt_pct(v)
    if kind == "multiple":
        return f"{v:,.2f}×"
    if kind == "days":
        return f"{v:,.1f} days"
    if kind == "seconds":
        return f"{v:,.0f} s"
    return f"{v:,.2f}"


def fmt_date(d: date | str) -> str:
    d = date.fromisoformat(str(d)[:10])
    return f"{d:%b} {d.day}, {d.year}"


def nice_ticks(top: float, count: int = 5, integer: bool = False) -> list[float]:
    """0 .. a round number ≥ top, in `count` or fewer round steps (1, 2, 2.5, 5 × 10^k; whole steps for counts)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * mag for m in steps if m * mag >= raw and (not integer or m * mag >= 1))
    n = math.ceil(round(top / step, 9))
    return [i * step for i in range(n + 1)]


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def _text_color(fill: str) -> str:
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#fff"


def _f(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


# ---- SVG ----------------------------------------------------------------------------------------------------------


class Svg:
    """One chart: data marks (bars, points, lines) counted in `data-marks`, everything else decoration."""

    def __init__(self, chart_id: str, kind: str, width: int, height: int, title: str, desc: str):
        self.id, self.kind, self.width, self.height = chart_id, kind, width, height
        self.title, self.desc = title, desc
        self.parts: list[str] = []
        self.marks = 0

    def bar(self, x: float, y: float, w: float, h: float, fill: str, tip: str, value: float, **data: Any) -> None:
        self.marks += 1
        attrs = "".join(f' data-{k.replace("_", "-")}="{esc(v)}"' for k, v in data.items())
        self.parts.append(f'<rect class="mark" x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 1))}" '
                          f'height="{_f(max(h, 1))}" fill="{fill}" data-value="{value!r}"{attrs}>'
                          f'<title>{esc(tip)}</title></rect>')

    def point(self, x: float, y: float, fill: str, tip: str, value: float, **data: Any) -> None:
        self.marks += 1
        attrs = "".join(f' data-{k.replace("_", "-")}="{esc(v)}"' for k, v in data.items())
        self.parts.append(f'<circle class="mark" cx="{_f(x)}" cy="{_f(y)}" r="4" fill="{fill}" stroke="#fff" '
                          f'stroke-width="1.5" data-value="{value!r}"{attrs}><title>{esc(tip)}</title></circle>')

    def line(self, d: str, stroke: str, label: str) -> None:
        self.marks += 1
        self.parts.append(f'<path class="mark" d="{d}" fill="none" stroke="{stroke}" stroke-width="2.5" '
                          f'stroke-linejoin="round" data-series="{esc(label)}"/>')

    def text(self, x: float, y: float, s: str, anchor: str = "middle", cls: str = "label", fill: str | None = None,
             rotate: bool = False, size: int | None = None) -> None:
        extra = f' fill="{fill}"' if fill else ""
        extra += f' font-size="{size}"' if size else ""
        extra += f' transform="rotate(-90 {_f(x)} {_f(y)})"' if rotate else ""
        self.parts.append(f'<text class="{cls}" x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{extra}>{esc(s)}</text>')

    def rule(self, x1: float, y1: float, x2: float, y2: float, cls: str = "grid") -> None:
        self.parts.append(f'<line class="{cls}" x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}"/>')

    def render(self) -> str:
        t, d = f"{self.id}-title", f"{self.id}-desc"
        return (f'<svg class="chart" id="{self.id}" data-chart="{self.kind}" data-marks="{self.marks}" '
                f'role="img" aria-labelledby="{t} {d}" viewBox="0 0 {self.width} {self.height}" '
                f'width="{self.width}" height="{self.height}" preserveAspectRatio="xMinYMin meet">'
                f'<title id="{t}">{esc(self.title)}</title><desc id="{d}">{esc(self.desc)}</desc>'
                + "".join(self.parts) + "</svg>")


def _wrap(label: str, width: int = 12) -> list[str]:
    words, lines, cur = label.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return (lines + [cur])[:2] if cur else lines[:2]


def grouped_bars(chart_id: str, kind: str, title: str, desc: str, categories: list[tuple[str, str]],
                 series: list[tuple[str, str, str]], values: dict[tuple[str, str], float],
                 label_fmt: Callable[[float], str], tick_fmt: Callable[[float], str], y_title: str,
                 width: int = 1240, height: int = 380, integer: bool = False,
                 color_of: Callable[[str, str], str] | None = None) -> str:
    """Vertical grouped bars: one group per category (key, label), one bar per series (key, label, colour).
    A value label that is wider than its bar is written vertically above it."""
    left, right, top, bottom = 74, 16, 44, 58
    pw, ph = width - left - right, height - top - bottom
    top_value = max([v for v in values.values() if v is not None] + [0.0])
    ticks = nice_ticks(top_value, integer=integer)
    scale = ph / ticks[-1]
    svg = Svg(chart_id, kind, width, height, title, desc)
    base = top + ph
    for t in ticks:
        y = base - t * scale
        svg.rule(left, y, left + pw, y)
        svg.text(left - 8, y + 4, tick_fmt(t), anchor="end", cls="tick")
    svg.rule(left, base, left + pw, base, cls="axis")
    svg.text(16, top + ph / 2, y_title, cls="axis-title", rotate=True)
    gw = pw / max(len(categories), 1)
    bw = min(30.0, gw * 0.8 / max(len(series), 1))
    for gi, (ckey, clabel) in enumerate(categories):
        gx = left + gi * gw + (gw - bw * len(series)) / 2
        for si, (skey, slabel, color) in enumerate(series):
            v = values.get((ckey, skey))
            x = gx + si * bw
            if v is None or v <= 0:
                continue
            h = v * scale
            fill = color_of(skey, ckey) if color_of else color
            svg.bar(x + 1, base - h, bw - 2, h, fill, f"{clabel} · {slabel}: {label_fmt(v)}", v,
                    category=ckey, series=skey)
            label = label_fmt(v)
            if len(label) * 6.4 <= bw + 3:  # ~6.4 px per character at 10 px
                svg.text(x + bw / 2, base - max(h, 1) - 4, label, size=10)
            else:
                svg.text(x + bw / 2 + 3.5, base - max(h, 1) - 4, label, anchor="start", rotate=True, size=10)
        for li, line in enumerate(_wrap(clabel, max(8, int(gw / 7)))):
            svg.text(left + gi * gw + gw / 2, base + 16 + 13 * li, line, cls="cat")
    return svg.render()


# ---- data ---------------------------------------------------------------------------------------------------------


class Data:
    """Everything the report shows, read once."""

    def __init__(self) -> None:
        self.totals: dict[str, dict] = {}
        self.by_channel: dict[tuple[str, str], dict] = {}
        self.flags: list[dict] = []
        self.dark: list[dict] = []
        self.dark_grain = "week"
        self.attribution: dict[str, dict[str, dict[str, list[float]]]] = {}
        self.goals: list[dict] = []
        self.freshness: list[dict] = []
        self.campaign_names: dict[str, str] = {}
        self.warnings: list[str] = []
        self.has_events = False


def _query(conn: Any, text: str, params: tuple = ()) -> list[tuple]:
    return list(query(conn, text, params))


def _kpis(conn: Any, model: Model, start: str, end: str, grain: str | None, by: str | None,
          warnings: list[str]) -> list[dict]:
    """compute_kpis rows; collects its warnings (a `warnings=` list, or a (rows, warnings) return)."""
    more: list[str] = []
    if "warnings" in inspect.signature(kpis.compute_kpis).parameters:
        res = kpis.compute_kpis(conn, model, start, end, grain=grain, by=by, warnings=more)
    else:
        res = kpis.compute_kpis(conn, model, start, end, grain=grain, by=by)
    if isinstance(res, tuple):
        res, extra = res
        more += list(extra or [])
    warnings.extend(w for w in more if w not in warnings)
    return list(res)


def _local_day(value: Any, tz: str) -> str | None:
    text = ts(value)
    return None if text is None else local_date(text, tz)


def collect(conn: Any, model: Model, start: date, end: date) -> Data:
    """Read what the report shows for [start, end]: KPIs, attribution credits, goal pacing, sync freshness."""
    data = Data()
    s, e = start.isoformat(), end.isoformat()
    data.has_events = bool(_query(conn, "SELECT COUNT(*) FROM events WHERE event_date >= ? AND event_date <= ?",
                                  (s, e))[0][0])
    for r in _kpis(conn, model, s, e, None, None, data.warnings):
        data.totals[r["kpi"]] = r
    for r in _kpis(conn, model, s, e, None, "channel", data.warnings):
        data.by_channel[(r["kpi"], r["channel"])] = r
        if r.get("status"):
            data.flags.append(r)
    for r in _kpis(conn, model, s, e, None, "campaign", data.warnings):
        if r.get("status"):
            data.flags.append(r)
    data.campaign_names = {k: n for k, n in _query(conn, "SELECT campaign_key, name FROM campaigns") if n}
    # dark-social trend over the span that has sessions
    lo, hi = _query(conn, "SELECT MIN(event_date), MAX(event_date) FROM events WHERE event_type = 'web_sessions' "
                          "AND event_date >= ? AND event_date <= ?", (s, e))[0]
    if lo is not None:
        lo, hi = day(lo), day(hi)
        span = (date.fromisoformat(hi) - date.fromisoformat(lo)).days + 1
        data.dark_grain = "week" if span <= WEEKLY_MAX_DAYS else "month"
        data.dark = [r for r in _kpis(conn, model, lo, hi, data.dark_grain, None, data.warnings)
                     if r["kpi"] in ("dark_social_traffic_share", "sessions")]
    # attribution credits of conversions in the period (local date of conversion_at, as the KPIs do)
    models = ATTRIBUTION_MODELS
    marks = ", ".join("?" for _ in models)
    for name, target, channel, conv, credit, amount in _query(
            conn, "SELECT model, target, channel, conversion_at, credit, credited_amount FROM attribution_credits "
                  f"WHERE model IN ({marks})", tuple(models)):
        d = _local_day(conv, model.timezone)
        if d is None or not (s <= d <= e):
            continue
        acc = data.attribution.setdefault(target, {}).setdefault(name, {}).setdefault(channel, [0.0, 0.0])
        acc[0] += float(credit or 0.0)
        acc[1] += float(amount or 0.0)
    # goal pacing of the plan years that overlap the period
    fy = model.fiscal_year_start_month
    cols = ("plan_year", "metric", "quarter", "target", "expected_to_date", "actual_to_date", "pacing", "band",
            "as_of")
    for row in _query(conn, f"SELECT {', '.join(cols)} FROM goal_pacing"):
        r = dict(zip(cols, row))
        year = int(r["plan_year"])
        first = date(year, fy, 1)
        last = date(year + 1, fy, 1) - timedelta(days=1)
        if first <= end and last >= start:
            r["as_of"] = day(r["as_of"])
            data.goals.append(r)
    data.goals.sort(key=lambda r: (r["plan_year"], r["metric"], r["quarter"] is None, r["quarter"] or 0))
    fcols = ("source_name", "stream", "last_success_at", "last_run_at", "rows_written", "rows_quarantined",
             "last_error")
    data.freshness = [dict(zip(fcols, r)) for r in _query(
        conn, f"SELECT {', '.join(fcols)} FROM sync_state ORDER BY source_name, stream")]
    return data


def report_period(conn: Any, model: Model, start: date | None, end: date | None,
                  now: datetime | None) -> tuple[date, date]:
    """[start, end]: the data's range clipped to `end`, else to today in the reporting time zone."""
    if start is not None and end is not None and start > end:
        raise ValueError(f"the report's start {start} is after its end {end}")
    now = now or datetime.now(timezone.utc)
    today = now.astimezone(zone(model.timezone)).date() if now.tzinfo else now.date()
    rng = kpis.data_range(conn)
    lo = date.fromisoformat(rng[0]) if rng else None
    hi = date.fromisoformat(rng[1]) if rng else None
    e = end or (min(hi, today) if hi else today)
    s = start or (lo if lo and lo <= e else e - timedelta(days=89))
    if s > e:  # an explicit start after the data (or today): up to today, at least that day
        e = max(s, today)
    return s, e


# ---- panels -------------------------------------------------------------------------------------------------------


def _panel(pid: str, title: str, subtitle: str, body: str, wide: bool = False, extra: str = "") -> str:
    cls = "panel wide" if wide else "panel"
    sub = f'<p class="sub">{subtitle}</p>' if subtitle else ""
    return (f'<section class="{cls}" id="{pid}" aria-labelledby="{pid}-h"><h2 id="{pid}-h">{esc(title)}</h2>'
            f"{sub}{body}{extra}</section>")


def _nodata(what: str) -> str:
    return f'<div class="nodata" role="note"><strong>No data</strong><span>{esc(what)}</span></div>'


def _table(headers: list[str], rows: list[list[str]], numeric: Iterable[int] = (), caption: str = "") -> str:
    num = set(numeric)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    head = "".join(f'<th scope="col"{" class=num" if i in num else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in num else ""}>{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _details(table: str) -> str:
    return f'<details class="numbers"><summary>Show the numbers</summary>{table}</details>'


def _legend(items: list[tuple[str, str]]) -> str:
    return ('<ul class="legend">' + "".join(
        f'<li><span class="swatch" style="background:{c}"></span>{esc(label)}</li>' for label, c in items) + "</ul>")


def _v(row: dict | None) -> float | None:
    return None if row is None else _num(row.get("value"))


def headline(data: Data, cur: str) -> str:
    tiles = []
    for k in HEADLINE:
        row = data.totals.get(k)
        status = (row or {}).get("status")
        mark = f' <span class="status {status}">{STATUS_MARKS[status][0]}</span>' if status in STATUS_MARKS else ""
        tiles.append(f'<div class="tile"><div class="tile-label">{esc(KPI_INFO[k][0])}</div>'
                     f'<div class="tile-value">{esc(fmt_kpi(k, _v(row), cur))}{mark}</div></div>')
    return '<div class="tiles">' + "".join(tiles) + "</div>"


def funnel_panel(data: Data, cur: str) -> str:
    values = [(_v(data.totals.get(k)) or 0.0) for k, _ in STAGES]
    sub = "People by the first time they reached each stage in the period; opportunities and wins by their date."
    if not any(values):
        return _panel("funnel", "Funnel", sub, _nodata("no leads, MQLs, SQLs, opportunities or wins in this period"))
    width, row_h, top = 620, 50, 12
    height = top + row_h * len(STAGES) + 8
    svg = Svg("chart-funnel", "funnel", width, height, "Funnel: leads to closed-won deals",
              "Horizontal bars, one per stage, centred like a funnel, with the count in each bar and the "
              "conversion rate from the previous stage on the right.")
    label_w, rate_w = 118, 150
    area = width - label_w - rate_w - 10
    cx = label_w + 10 + area / 2
    top_v = max(values)
    rows = []
    for i, ((kpi, label), v) in enumerate(zip(STAGES, values)):
        y = top + i * row_h
        svg.text(label_w, y + row_h / 2 + 4, label, anchor="end", cls="cat strong")
        w = area * v / top_v if top_v else 0
        rate_kpi = STAGE_RATES[i]
        rate = _v(data.totals.get(rate_kpi)) if rate_kpi else None
        if rate is None and i and values[i - 1]:
            rate = v / values[i - 1]
        if v > 0:
            svg.bar(cx - w / 2, y + 6, w, row_h - 12, STAGE_COLORS[i], f"{label}: {fmt_count(v)}", v, series=kpi)
            inside = w >= 44
            svg.text(cx if inside else cx + w / 2 + 6, y + row_h / 2 + 5, fmt_count(v),
                     anchor="middle" if inside else "start", cls="label strong",
                     fill=_text_color(STAGE_COLORS[i]) if inside else None)
        else:
            svg.text(cx, y + row_h / 2 + 5, "0", cls="label muted")
        if i:
            svg.text(width - rate_w + 6, y + row_h / 2 + 4, f"{fmt_pct(rate)} of {STAGES[i - 1][1]}",
                     anchor="start", cls="label muted")
        rows.append([esc(label), esc(fmt_count(v)), esc(fmt_pct(rate) if i else "")])
    svg.text(width - rate_w + 6, top - 1, "conversion", anchor="start", cls="tick")
    table = _table(["Stage", "Count", "From previous stage"], rows, numeric=(1, 2))
    return _panel("funnel", "Funnel", sub, svg.render(), extra=_details(table))


def funnel_channel_panel(data: Data, cur: str) -> str:
    sub = ("Grouped by sourced channel (the channel of each person's or opportunity's first touch); "
           "sorted by leads.")
    chans = sorted({ch for (k, ch) in data.by_channel if k in dict(STAGES)},
                   key=lambda ch: (tuple(-(_v(data.by_channel.get((k, ch))) or 0) for k, _ in STAGES), ch))
    values = {(ch, k): _v(data.by_channel.get((k, ch))) for ch in chans for k, _ in STAGES}
    chans = [ch for ch in chans if any((values[(ch, k)] or 0) > 0 for k, _ in STAGES)]
    if not chans:
        return _panel("funnel-by-channel", "Funnel by channel", sub, _nodata("no funnel counts by channel"),
                      wide=True)
    series = [(k, label, STAGE_COLORS[i]) for i, (k, label) in enumerate(STAGES)]
    chart = grouped_bars("chart-funnel-channel", "funnel_by_channel", "Funnel stages by sourced channel",
                         "Grouped vertical bars: for each channel, leads, MQLs, SQLs, opportunities and won deals.",
                         [(ch, channel_label(ch)) for ch in chans], series, values, fmt_count,
                         lambda t: fmt_count(t), "People / opportunities", height=360, integer=True)
    rows = [[esc(channel_label(ch))] + [esc(fmt_count(values[(ch, k)] or 0)) for k, _ in STAGES] for ch in chans]
    table = _table(["Channel"] + [label for _, label in STAGES], rows, numeric=range(1, 6))
    return _panel("funnel-by-channel", "Funnel by channel", sub,
                  _legend([(label, c) for _, label, c in series]) + chart, wide=True, extra=_details(table))


def money_panel(data: Data, cur: str, model: Model) -> str:
    sub = (f"Spend by its campaign's channel; pipeline (opportunities created) and closed-won revenue attributed with "
           f"the {esc(MODEL_LABELS.get(model.default_model, model.default_model))} model. Amounts in {esc(cur)}.")
    chans = sorted({ch for (k, ch) in data.by_channel if k in dict(MONEY_SERIES)})
    values = {(ch, k): _v(data.by_channel.get((k, ch))) for ch in chans for k, _ in MONEY_SERIES}
    chans = [ch for ch in chans if any((values[(ch, k)] or 0) > 0 for k, _ in MONEY_SERIES)]
    chans.sort(key=lambda ch: (-(values[(ch, "pipeline_created")] or 0), -(values[(ch, "marketing_spend")] or 0), ch))
    if not chans:
        return _panel("spend-pipeline-revenue", "Spend vs pipeline vs revenue by channel", sub,
                      _nodata("no spend, pipeline or revenue in this period"), wide=True)
    series = [(k, label, MONEY_COLORS[i]) for i, (k, label) in enumerate(MONEY_SERIES)]
    chart = grouped_bars("chart-money", "spend_pipeline_revenue", "Spend vs pipeline vs revenue by channel",
                         "Grouped vertical bars: marketing spend, attributed pipeline and attributed closed-won "
                         "revenue for each channel.", [(ch, channel_label(ch)) for ch in chans], series, values,
                         lambda v: fmt_money_short(v, cur), lambda t: fmt_money_short(t, cur),
                         f"Amount ({cur})", height=380)
    rows = []
    for ch in chans:
        sp, pi = values[(ch, "marketing_spend")], values[(ch, "pipeline_created")]
        rows.append([esc(channel_label(ch))] + [esc(fmt_money(values[(ch, k)] or 0, cur)) for k, _ in MONEY_SERIES]
                    + [esc(f"{pi / sp:,.2f}×" if sp and pi is not None else "—")])
    table = _table(["Channel", "Spend", "Pipeline", "Revenue", "Pipe-to-spend"], rows, numeric=range(1, 5))
    return _panel("spend-pipeline-revenue", "Spend vs pipeline vs revenue by channel", sub,
                  _legend([(label, c) for _, label, c in series]) + chart, wide=True, extra=_details(table))


def dark_panel(data: Data, cur: str) -> str:
    grain = "ISO week" if data.dark_grain == "week" else "month"
    sub = (f"Sessions classified dark social (§3: direct visits to deep, non-bookmarkable pages and the like) ÷ "
           f"all sessions, by {grain}.")
    pts = [r for r in data.dark if r["kpi"] == "dark_social_traffic_share"]
    sessions = {r["period_start"]: _v(r) for r in data.dark if r["kpi"] == "sessions"}
    if not any(_v(r) is not None for r in pts):
        return _panel("dark-social", "Dark-social share of sessions", sub, _nodata("no web sessions in this period"))
    width, height = 620, 300
    left, right, top, bottom = 60, 66, 22, 48
    pw, ph = width - left - right, height - top - bottom
    vals = [_v(r) for r in pts]
    ticks = nice_ticks(max(v for v in vals if v is not None) * 1.15, 4)
    scale = ph / ticks[-1]
    base = top + ph
    svg = Svg("chart-dark-social", "dark_social_share", width, height, "Dark-social share of sessions over time",
              f"Line chart of the dark-social share of web sessions per {grain}; the dashed line is the share over "
              "the whole period.")
    for t in ticks:
        svg.rule(left, base - t * scale, left + pw, base - t * scale)
        svg.text(left - 8, base - t * scale + 4, fmt_pct(t, 0 if t * 100 == int(t * 100) else 1), anchor="end",
                 cls="tick")
    svg.rule(left, base, left + pw, base, cls="axis")
    svg.text(14, top + ph / 2, "Share of sessions", cls="axis-title", rotate=True)
    svg.text(left + pw / 2, height - 6, "Week starting" if data.dark_grain == "week" else "Month", cls="axis-title")
    n = len(pts)
    step = pw / max(n, 1)
    xs = [left + step * (i + 0.5) for i in range(n)]
    every = max(1, math.ceil(n / 8))
    d, pen = [], False
    for i, (r, v) in enumerate(zip(pts, vals)):
        if i % every == 0:
            p = date.fromisoformat(str(r["period_start"])[:10])
            svg.text(xs[i], base + 16, f"{p:%b} {p.day}" if data.dark_grain == "week" else f"{p:%b %Y}", cls="cat")
        if v is None:
            pen = False
            continue
        d.append(f"{'L' if pen else 'M'}{_f(xs[i])} {_f(base - v * scale)}")
        pen = True
    if any(step.startswith("L") for step in d):  # a lone week is its point only
        svg.line(" ".join(d), CHANNEL_COLORS["dark_social"], "dark_social_traffic_share")
    overall = _v(data.totals.get("dark_social_traffic_share"))
    if overall is not None and overall <= ticks[-1]:
        y = base - overall * scale
        svg.rule(left, y, left + pw, y, cls="ref")
        svg.text(left + pw + 6, y - 2, "period", anchor="start", cls="label muted")
        svg.text(left + pw + 6, y + 11, fmt_pct(overall), anchor="start", cls="label muted")
    label_every = 1 if n <= 16 else math.ceil(n / 12)
    rows = []
    for i, (r, v) in enumerate(zip(pts, vals)):
        ps = str(r["period_start"])[:10]
        rows.append([esc(ps), esc(fmt_count(sessions.get(r["period_start"]))),
                     esc(fmt_count(_num(r.get("numerator")))), esc(fmt_pct(v))])
        if v is None:
            continue
        svg.point(xs[i], base - v * scale, CHANNEL_COLORS["dark_social"],
                  f"{ps}: {fmt_pct(v)} ({fmt_count(_num(r.get('numerator')))} of "
                  f"{fmt_count(_num(r.get('denominator')))} sessions)", v, period=ps)
        if i % label_every == 0:
            svg.text(xs[i], base - v * scale - 9, fmt_pct(v), size=10)
    table = _table(["Period start", "Sessions", "Dark-social sessions", "Share"], rows, numeric=(1, 2, 3))
    return _panel("dark-social", "Dark-social share of sessions", sub, svg.render(), extra=_details(table))


def attribution_panel(data: Data, cur: str, target: str) -> str:
    what = "pipeline" if target == "pipeline" else "closed-won revenue"
    pid = f"attribution-{target}"
    title = f"Attribution of {what} by model"
    per_model = data.attribution.get(target, {})
    n_opps = max((sum(c[0] for c in chans.values()) for chans in per_model.values()), default=0.0)
    amount = max((sum(c[1] for c in chans.values()) for chans in per_model.values()), default=0.0)
    conv = "created" if target == "pipeline" else "won"
    sub = (f"Channel share of the attributed amount, {fmt_count(round(n_opps, 6))} opportunities {conv} in the "
           f"period ({esc(fmt_money(amount, cur))}); shares of credit when no amounts are known.")
    if not per_model:
        return _panel(pid, title, sub, _nodata(f"no opportunities {conv} in this period"))
    totals: dict[str, float] = {}
    shares: dict[str, dict[str, float]] = {}
    for m in ATTRIBUTION_MODELS:
        chans = per_model.get(m, {})
        by_amount = sum(c[1] for c in chans.values()) > 0
        total = sum((c[1] if by_amount else c[0]) for c in chans.values())
        shares[m] = {ch: (c[1] if by_amount else c[0]) / total for ch, c in chans.items()} if total else {}
        for ch, sh in shares[m].items():
            totals[ch] = totals.get(ch, 0.0) + sh
    order = sorted(totals, key=lambda ch: (-totals[ch], str(ch)))
    width, row_h, top = 620, 34, 10
    label_w = 150
    height = top + row_h * len(ATTRIBUTION_MODELS) + 44
    area = width - label_w - 24
    svg = Svg(f"chart-{pid}", f"attribution_{target}", width, height, title,
              f"100% stacked horizontal bars, one per attribution model, split by channel share of {what}.")
    base = top + row_h * len(ATTRIBUTION_MODELS)
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + 10 + area * t
        svg.rule(x, top, x, base)
        svg.text(x, base + 15, fmt_pct(t, 0), cls="tick")
    svg.text(label_w + 10 + area / 2, base + 34, f"Share of attributed {what}", cls="axis-title")
    rows = []
    for i, m in enumerate(ATTRIBUTION_MODELS):
        y = top + i * row_h
        svg.text(label_w, y + row_h / 2 + 4, MODEL_LABELS[m], anchor="end", cls="cat strong")
        x = label_w + 10
        if not shares[m]:
            svg.text(x + 4, y + row_h / 2 + 4, "no credits", anchor="start", cls="label muted")
        for ch in order:
            sh = shares[m].get(ch, 0.0)
            if sh <= 0:
                continue
            w = area * sh
            color = channel_color(ch)
            svg.bar(x, y + 5, w, row_h - 10, color, f"{MODEL_LABELS[m]} · {channel_label(ch)}: {fmt_pct(sh)}", sh,
                    series=ch, category=m)
            if w >= 34:
                svg.text(x + w / 2, y + row_h / 2 + 4, fmt_pct(sh, 0), fill=_text_color(color), size=10)
            x += w
        rows.append([esc(MODEL_LABELS[m])] + [esc(fmt_pct(shares[m].get(ch)) if ch in shares[m] else "—")
                                              for ch in order])
    table = _table(["Model"] + [channel_label(ch) for ch in order], rows, numeric=range(1, len(order) + 1))
    return _panel(pid, title, sub, _legend([(channel_label(ch), channel_color(ch)) for ch in order]) + svg.render(),
                  extra=_details(table))


def goals_panels(data: Data, cur: str) -> list[str]:
    sub_none = "Add a [[goals]] table to funnelsync.toml (plan_year, target) to see pacing here."
    if not data.goals:
        return [_panel("goal-pacing", "Goal pacing", "", _nodata(sub_none))]
    out = []
    for year in sorted({r["plan_year"] for r in data.goals}):
        rows = [r for r in data.goals if r["plan_year"] == year]
        rev = [r for r in rows if r["metric"] == "closed_won_revenue"]
        quarters = [r for r in rev if r["quarter"] is not None]
        annual = next((r for r in rev if r["quarter"] is None), None)
        pid = f"goal-pacing-{year}"
        as_of = next((r["as_of"] for r in rows if r["as_of"]), None)
        sub = ""
        if annual:
            band = annual["band"]
            sub = (f"Year to date as of {esc(as_of)}: {esc(fmt_money(_num(annual['actual_to_date']), cur))} actual vs "
                   f"{esc(fmt_money(_num(annual['expected_to_date']), cur))} expected "
                   f"({esc(fmt_pct(_num(annual['pacing']), 0))}, "
                   f'<span class="band {esc(band)}">{esc(BAND_LABELS.get(band, band))}</span>); annual target '
                   f"{esc(fmt_money(_num(annual['target']), cur))}.")
        if not quarters:
            out.append(_panel(pid, f"Goal pacing {year}: closed-won revenue", sub, _nodata("no quarterly pacing rows")))
            continue
        series = [("target", "Target", GOAL_COLORS["target"]),
                  ("expected", "Expected to date", GOAL_COLORS["expected"]), ("actual", "Actual", BAND_COLORS[None])]
        values, bands = {}, {}
        for r in quarters:
            q = f"Q{r['quarter']}"
            values[(q, "target")] = _num(r["target"])
            values[(q, "expected")] = _num(r["expected_to_date"])
            values[(q, "actual")] = _num(r["actual_to_date"])
            bands[q] = r["band"]
        chart = grouped_bars(f"chart-{pid}", "goal_pacing", f"Goal pacing {year}: closed-won revenue per quarter",
                             "Grouped bars per quarter: target, expected to date and actual closed-won revenue; the "
                             "actual bar is coloured by pacing band (green on track, amber at risk, red behind).",
                             [(f"Q{r['quarter']}", f"Q{r['quarter']}") for r in quarters], series, values,
                             lambda v: fmt_money_short(v, cur), lambda t: fmt_money_short(t, cur),
                             f"Closed-won revenue ({cur})", width=620, height=320,
                             color_of=lambda s, q, bands=bands: BAND_COLORS.get(bands.get(q), BAND_COLORS[None])
                             if s == "actual" else GOAL_COLORS[s])
        legend = _legend([("Target", GOAL_COLORS["target"]), ("Expected to date", GOAL_COLORS["expected"])]
                         + [(f"Actual: {BAND_LABELS[b]}", BAND_COLORS[b]) for b in ("on_track", "at_risk", "behind")])
        trows = []
        for r in rows:
            money = r["metric"] == "closed_won_revenue"
            f = (lambda v: fmt_money(v, cur)) if money else fmt_count
            period = "year" if r["quarter"] is None else f"Q{r['quarter']}"
            trows.append([esc(r["metric"].replace("_", " ")), esc(period),
                          esc(f(_num(r["target"]))), esc(f(_num(r["expected_to_date"]))),
                          esc(f(_num(r["actual_to_date"]))), esc(fmt_pct(_num(r["pacing"]), 0)),
                          f'<span class="band {esc(r["band"])}">{esc(BAND_LABELS.get(r["band"], r["band"]))}</span>'])
        table = _table(["Metric", "Quarter", "Target", "Expected to date", "Actual", "Pacing", "Band"], trows,
                       numeric=range(2, 6), caption="Goal cascade (spec §6): every metric, per quarter and year")
        out.append(_panel(pid, f"Goal pacing {year}: closed-won revenue", sub, legend + chart,
                          extra=_details(table)))
    return out


def _status_cell(status: str | None) -> str:
    if status in STATUS_MARKS:
        sym, word = STATUS_MARKS[status]
        return f'<span class="status {status}"><span aria-hidden="true">{sym}</span> {word}</span>'
    return esc(status or "")


def kpi_panel(data: Data, cur: str) -> str:
    sub = ("In-period values (spec §4.1) of the whole period; markers: ⚠ warning (deliverability < 95%, paid-social "
           "lead → MQL below the zero-waste target), ✓ good (webinar attendance ≥ 50%), ★ profitable "
           "(CLV : CAC > 1).")
    if not data.totals:
        return _panel("kpis", "KPIs", sub, _nodata("no KPI values for this period"), wide=True)
    shown = set()
    groups = []
    for title, names in KPI_SECTIONS + (("Other", tuple(sorted(set(data.totals) - {n for _, ns in KPI_SECTIONS
                                                                                    for n in ns}
                                                                - set(HIDDEN_TOTALS)))),):
        rows = []
        for k in names:
            r = data.totals.get(k)
            if r is None:
                continue
            shown.add(k)
            num, den = _num(r.get("numerator")), _num(r.get("denominator"))
            detail = ""
            if num is not None and den is not None and KPI_INFO.get(k, ("", ""))[1] == "rate":
                part = (lambda v: fmt_money(v, cur)) if k in MONEY_RATIOS else fmt_count
                detail = f"{part(num)} / {part(den)}"
            status = r.get("status")
            rows.append(f'<tr class="kpi{" flagged " + esc(status) if status else ""}" data-kpi="{esc(k)}">'
                        f'<th scope="row">{esc(KPI_INFO.get(k, (k,))[0])} <code>{esc(k)}</code></th>'
                        f'<td class="num">{esc(fmt_kpi(k, _num(r.get("value")), cur))}</td>'
                        f'<td class="num muted">{esc(detail)}</td><td>{_status_cell(status)}</td></tr>')
        if rows:
            groups.append(f'<tbody><tr class="group"><th colspan="4" scope="rowgroup">{esc(title)}</th></tr>'
                          + "".join(rows) + "</tbody>")
    table = ('<table class="kpi-table"><thead><tr><th scope="col">KPI</th><th scope="col" class="num">Value</th>'
             '<th scope="col" class="num">Numerator / denominator</th><th scope="col">Marker</th></tr></thead>'
             + "".join(groups) + "</table>")
    flags = ""
    if data.flags:
        items = []
        for r in sorted(data.flags, key=lambda r: (r["kpi"], str(r.get("channel")), str(r.get("campaign_key")))):
            if r.get("channel") is not None:
                where = channel_label(r["channel"])
            else:
                where = data.campaign_names.get(r.get("campaign_key")) or r.get("campaign_key") or ""
            items.append(f'<li class="flag {esc(r["status"])}">{_status_cell(r["status"])} '
                         f'{esc(KPI_INFO.get(r["kpi"], (r["kpi"],))[0])} · {esc(where)}: '
                         f'<strong>{esc(fmt_kpi(r["kpi"], _num(r.get("value")), cur))}</strong></li>')
        flags = ('<h3>Markers on channels and campaigns</h3><ul class="flags">' + "".join(items) + "</ul>")
    return _panel("kpis", "KPIs", sub, '<div class="kpi-grid">' + table + "</div>" + flags, wide=True)


def freshness_panel(data: Data) -> str:
    sub = ("Per source (sync_state): the last successful sync of its stalest stream, rows written, records in "
           "quarantine, and the streams whose last run failed.")
    if not data.freshness:
        return _panel("freshness", "Data freshness", sub, _nodata("no sync has run yet"))
    by_source: dict[str, list[dict]] = {}
    for r in data.freshness:
        by_source.setdefault(r["source_name"], []).append(r)
    rows = []
    for name, streams in sorted(by_source.items()):
        done = [ts(r["last_success_at"]) for r in streams if r.get("last_success_at")]
        stalest = "never" if len(done) < len(streams) else min(done).replace("T", " ").removesuffix("Z")
        errors = [f"{r['stream']}: {r['last_error']}" for r in streams if r.get("last_error")]
        rows.append([f'{esc(name)} <span class="muted">({len(streams)})</span>',
                     f'<span class="nowrap">{esc(stalest)}</span>',
                     esc(fmt_count(sum(_num(r.get("rows_written")) or 0 for r in streams))),
                     esc(fmt_count(sum(_num(r.get("rows_quarantined")) or 0 for r in streams))),
                     "<br>".join(f'<span class="status warning">{esc(e)}</span>' for e in errors)])
    return _panel("freshness", "Data freshness", sub,
                  _table(["Source (streams)", "Last success (UTC)", "Rows", "Quarantined", "Errors"], rows,
                         numeric=(2, 3)))


# ---- the page -----------------------------------------------------------------------------------------------------

CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,"DejaVu Sans",sans-serif}
header{padding:22px 28px 8px}
h1{margin:0 0 4px;font-size:24px}
h2{margin:0 0 2px;font-size:17px}
h3{font-size:14px;margin:16px 0 6px}
.meta{color:var(--muted);margin:0}
main{padding:8px 28px 28px;display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;min-width:0}
.panel.wide,.tiles,.warnings{grid-column:1/-1}
.sub{color:var(--muted);margin:0 0 8px;font-size:13px}
svg.chart{display:block;max-width:100%;height:auto;overflow:visible}
svg .grid{stroke:#edf0f3;stroke-width:1}
svg .axis{stroke:#9aa5b1;stroke-width:1}
svg .ref{stroke:#52606d;stroke-width:1.2;stroke-dasharray:5 4}
svg text{font-family:inherit;fill:var(--ink)}
svg .tick{font-size:11px;fill:var(--muted)}
svg .cat{font-size:11.5px}
svg .label{font-size:11px}
svg .strong{font-weight:600}
svg .muted{fill:var(--muted)}
svg .axis-title{font-size:12px;fill:var(--muted)}
svg .mark:hover{opacity:.8}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 14px;margin:0 0 8px;padding:0;font-size:12.5px}
.legend li{display:flex;align-items:center;gap:6px}
.swatch{width:12px;height:12px;border-radius:2px;display:inline-block;border:1px solid rgba(0,0,0,.15)}
.nodata{border:1px dashed #cbd2d9;border-radius:8px;padding:28px;text-align:center;color:var(--muted);
display:flex;flex-direction:column;gap:4px}
.nodata strong{color:var(--ink);font-size:15px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(110px,1fr));gap:12px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 12px}
.tile-label{color:var(--muted);font-size:12.5px}
.tile-value{font-size:18px;font-weight:650;margin-top:2px;white-space:nowrap}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.muted,.muted{color:var(--muted)}
caption{text-align:left;color:var(--muted);padding:4px 0}
code{font-size:11.5px;color:var(--muted);font-weight:400}
tr.group th{background:#f0f4f8;font-size:12.5px;text-transform:uppercase;letter-spacing:.04em;color:#3e4c59}
.kpi-grid{columns:2 480px;column-gap:24px}
.scroll{overflow-x:auto}
.kpi-table tbody{break-inside:avoid}
.status{font-weight:600;white-space:nowrap}
.nowrap{white-space:nowrap}
.status.warning{color:#b42318}.status.good{color:#217a45}.status.profitable{color:#7a5a00}
tr.flagged.warning td,tr.flagged.warning th{background:#fff4f2}
tr.flagged.good td,tr.flagged.good th{background:#f0faf3}
tr.flagged.profitable td,tr.flagged.profitable th{background:#fffaeb}
.flags{margin:0;padding-left:18px}
.band{font-weight:600}.band.on_track{color:#217a45}.band.at_risk{color:#9a6b00}.band.behind{color:#b42318}
details.numbers{margin-top:8px}
details.numbers summary{cursor:pointer;color:var(--muted);font-size:12.5px}
.warnings{background:#fffbeb;border:1px solid #f5d67a;border-radius:10px;padding:10px 16px}
footer{color:var(--muted);padding:0 28px 24px;font-size:12px}
@media print{body{background:#fff}.panel{break-inside:avoid}main{display:block}.panel{margin-bottom:12px}}
"""

# Records, per chart, how many data marks the browser laid out (non-empty box), and on <html> how many charts have
# all of theirs: `data-charts-drawn="k/n"`. Read by tests/test_report.py through headless Chromium.
RENDER_CHECK = """
(function(){var c=document.querySelectorAll('svg.chart'),ok=0;
for(var i=0;i<c.length;i++){var m=c[i].querySelectorAll('.mark'),n=0;
for(var j=0;j<m.length;j++){var b=m[j].getBBox(),line=m[j].tagName.toLowerCase()==='path';
if(line?(b.width>0||b.height>0):(b.width>0&&b.height>0))n++;}
c[i].setAttribute('data-drawn-marks',n);if(n>0&&n===+c[i].getAttribute('data-marks'))ok++;}
document.documentElement.setAttribute('data-charts-drawn',ok+'/'+c.length);})();
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def render(data: Data, model: Model, start: date, end: date, generated: datetime, backend: str) -> str:
    cur = model.reporting_currency
    panels = [headline(data, cur), funnel_panel(data, cur), dark_panel(data, cur), funnel_channel_panel(data, cur),
              money_panel(data, cur, model), attribution_panel(data, cur, "pipeline"),
              attribution_panel(data, cur, "revenue"), *goals_panels(data, cur), freshness_panel(data),
              kpi_panel(data, cur)]
    warn = ""
    if data.warnings:
        warn = ('<div class="warnings" role="status"><strong>Warnings</strong><ul>'
                + "".join(f"<li>{esc(w)}</li>" for w in data.warnings) + "</ul></div>")
    empty = "" if data.has_events else " The warehouse has no events in this period yet: run `funnelsync sync`."
    title = f"funnelsync report · {fmt_date(start)} – {fmt_date(end)}"
    return (
        '<!DOCTYPE html>\n<html lang="en" data-charts-drawn="pending"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>Marketing funnel report</h1><p class="meta">{esc(fmt_date(start))} – {esc(fmt_date(end))}'
        f" · amounts in {esc(cur)} · default attribution model "
        f"{esc(MODEL_LABELS.get(model.default_model, model.default_model))} · reporting time zone "
        f"{esc(model.timezone)} · generated {esc(generated.strftime('%Y-%m-%d %H:%M UTC'))} from the "
        f"{esc(backend)} warehouse.{esc(empty)}</p></header>"
        f'<main>{warn}{"".join(panels)}</main>'
        "<footer>Generated by funnelsync. Self-contained: opens without network. KPI names and formulas: spec §4 "
        "and §9; hover a bar for its exact value, or open “Show the numbers”.</footer>"
        f"<script>{RENDER_CHECK}</script></body></html>\n")


def write_report(wh: Any, model: Model, out_path: str | Path, start: date | None = None, end: date | None = None,
                 now: datetime | None = None) -> Path:
    """Write the HTML report of [start, end] (default: the data's range up to `end`/today) to `out_path`."""
    conn = wh.conn
    owned = begin_owned(conn)
    now = now or datetime.now(timezone.utc)
    try:
        s, e = report_period(conn, model, start, end, now)
        data = collect(conn, model, s, e)
    finally:
        if owned and dialect(conn) != "sqlite":
            conn.rollback()  # end the read transaction psycopg opened (the report writes nothing)
    generated = now.astimezone(timezone.utc) if now.tzinfo else now
    page = render(data, model, s, e, generated, "SQLite" if dialect(conn) == "sqlite" else "PostgreSQL")
    path = Path(out_path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
