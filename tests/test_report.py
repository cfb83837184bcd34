"""The HTML report (funnelsync/report.py) opened in headless Chromium, and the Datasette canned queries.

The warehouse is the offline demo (`python -m funnelsync demo --out DIR`: the cassettes replayed through the real
connectors, normalizers, derive, KPIs and goals). When the demo cannot build a complete warehouse, the §7 worked
example (tests/warehouse/fixture_q1.py) is loaded instead, so the report is still exercised; every expectation below
is read from the warehouse's own tables with plain SQL, never from the report code.

"Drawn" means: Chromium loaded the file with the network disabled, the SVG charts are in its DOM with one data mark
per expected bar / point / segment carrying the expected values, the browser laid out every mark (the page's
render check writes `data-drawn-marks` and `data-charts-drawn` after layout; --dump-dom shows the DOM after scripts
ran), and a screenshot holds the charts' colours in quantity (its pixels counted after decoding the PNG).

Chromium is required: without it these tests FAIL with the install command, unless FUNNELSYNC_SKIP_BROWSER=1 is set
(then only the browser parts are skipped). FUNNELSYNC_CHROMIUM may name the executable.
"""
from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from funnelsync import report as rep
from funnelsync.report import write_report
from tests.pg import fresh_db, pg_url  # noqa: F401  (pg_url: the PostgreSQL test's server)
from warehouse import open_warehouse

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2024, 4, 1, tzinfo=timezone.utc)
Q1 = (date(2024, 1, 1), date(2024, 3, 31))
STAGE_KPIS = [k for k, _ in rep.STAGES]
MONEY_KPIS = [k for k, _ in rep.MONEY_SERIES]
TOTAL = "channel IS NULL AND campaign_key IS NULL AND source_system IS NULL AND landing_path IS NULL"
CHANNEL = "channel IS NOT NULL AND campaign_key IS NULL AND source_system IS NULL AND landing_path IS NULL"
METADATA = ROOT / "funnelsync" / "datasette" / "metadata.yml"
DOCS_SHOT = ROOT / "funnelsync" / "docs" / "report-demo.png"
APT = "apt-get install -y chromium"


# ---- the browser --------------------------------------------------------------------------------------------------


def find_chromium() -> str | None:
    return os.environ.get("FUNNELSYNC_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")) if p),
        None)


def skipping_browser() -> bool:
    return os.environ.get("FUNNELSYNC_SKIP_BROWSER") == "1" and not find_chromium()


def chromium() -> str:
    exe = find_chromium()
    if exe:
        return exe
    if os.environ.get("FUNNELSYNC_SKIP_BROWSER") == "1":
        pytest.skip("FUNNELSYNC_SKIP_BROWSER=1: the headless-browser checks are skipped")
    pytest.fail("headless Chromium is needed to check that the report's charts are drawn, and none was found "
                f"(chromium, chromium-browser, google-chrome). Install it with `{APT}` (Debian), or set "
                "FUNNELSYNC_SKIP_BROWSER=1 to skip these checks explicitly.", pytrace=False)


def browser(profile: Path, *args: str) -> str:
    """Run headless Chromium offline on `args`; returns stdout."""
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-extensions", "--no-default-browser-check",
           "--disable-features=Translate,MediaRouter,OptimizationHints", "--hide-scrollbars",
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def dump_dom(page: Path, profile: Path) -> str:
    dom = browser(profile, "--dump-dom", page.as_uri())
    assert "<svg" in dom or "nodata" in dom, f"Chromium returned no page: {dom[:300]!r}"
    return dom


def screenshot(page: Path, png: Path, profile: Path, size: str = "1400,3000") -> bytes:
    browser(profile, f"--screenshot={png}", f"--window-size={size}", page.as_uri())
    return png.read_bytes()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def pixel_counts(png: bytes, colors: list[str], profile: Path, tmp: Path) -> tuple[str, dict[str, int]]:
    """Decode `png` (in a canvas: an image from a data: URL does not taint it) and count pixels of each colour."""
    page = tmp / "pixels.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img id="shot" src="data:image/png;base64,'
        + base64.b64encode(png).decode() + '"><script>'
        "window.addEventListener('load', function () {"
        " var img = document.getElementById('shot'), c = document.createElement('canvas');"
        " c.width = img.naturalWidth; c.height = img.naturalHeight;"
        " var g = c.getContext('2d'); g.drawImage(img, 0, 0);"
        " var d = g.getImageData(0, 0, c.width, c.height).data, counts = {}, keys = {};"
        f" {json.dumps(colors)}.forEach(function (h) {{ counts[h] = 0; keys[parseInt(h.slice(1), 16)] = h; }});"
        " for (var i = 0; i < d.length; i += 4) {"
        "  var k = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2]; if (k in keys) counts[keys[k]]++; }"
        " document.body.setAttribute('data-size', c.width + 'x' + c.height);"
        " document.body.setAttribute('data-counts', JSON.stringify(counts)); });"
        "</script></body></html>")
    dom = browser(profile, "--dump-dom", page.as_uri())
    m = re.search(r'data-size="([^"]*)" data-counts="([^"]*)"', dom)
    assert m, "the pixel counter did not run"
    import html as _html

    return m.group(1), json.loads(_html.unescape(m.group(2)))


class Dom(HTMLParser):
    """The parts of a report page the tests look at."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.root: dict = {}
        self.charts: dict[str, dict] = {}
        self.nodata = 0
        self.kpi_rows: dict[str, list[str]] = {}
        self.flags: list[str] = []
        self._chart: dict | None = None
        self._text: list[str] | None = None
        self._flag: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "html":
            self.root = a
        if tag == "svg" and "chart" in cls:
            self._chart = self.charts[a["id"]] = {"attrs": a, "marks": [], "texts": []}
        elif self._chart is not None and "mark" in cls:
            self._chart["marks"].append((tag, a))
        elif self._chart is not None and tag == "text":
            self._text = []
        if "nodata" in cls:
            self.nodata += 1
        if tag == "tr" and "kpi" in cls:
            self.kpi_rows[a["data-kpi"]] = cls
        if tag == "li" and "flag" in cls:
            self._flag = []

    def handle_endtag(self, tag):
        if tag == "svg":
            self._chart = None
        if tag == "text" and self._text is not None and self._chart is not None:
            self._chart["texts"].append("".join(self._text))
            self._text = None
        if tag == "li" and self._flag is not None:
            self.flags.append(" ".join("".join(self._flag).split()))
            self._flag = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)
        if self._flag is not None:
            self._flag.append(data)

    def marks(self, chart: str) -> dict[tuple, float]:
        return {(a.get("data-category"), a.get("data-series")): float(a["data-value"])
                for tag, a in self.charts[chart]["marks"] if tag != "path"}


# ---- the warehouse ------------------------------------------------------------------------------------------------


def _complete(db: Path) -> bool:
    if not db.is_file():
        return False
    with sqlite3.connect(db) as c:
        return all(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in
                   ("events", "kpi_values", "attribution_credits", "goal_pacing"))


def _fixture_warehouse(db: Path) -> None:
    from tests.warehouse import fixture_q1 as fx
    from warehouse.derive import derive
    from warehouse.goals import refresh_goal_pacing
    from warehouse.kpis import refresh_kpis

    conn = fx.create(str(db))
    conn.execute("INSERT INTO sync_state (source_name, stream, last_success_at, last_run_at, rows_written, "
                 "rows_quarantined) VALUES ('fixture', 'q1', '2024-04-01T00:00:00Z', '2024-04-01T00:00:00Z', 1, 0)")
    derive(conn, fx.MODEL, "2024-04-01")
    refresh_kpis(conn, fx.MODEL)
    refresh_goal_pacing(conn, fx.MODEL, "2024-04-01", goals=[
        {"plan_year": 2024, "metric": "closed_won_revenue", "target": 600000,
         "quarter_weights": [0.2, 0.25, 0.25, 0.3]}])
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo warehouse (or the §7 fixture when the demo cannot build one), its model and a config file."""
    import config
    from funnelsync.cli import build_model
    from funnelsync.demo import DEMO_SOURCES, demo_config_text
    from funnelsync.replay import CASSETTES

    out = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != "FUNNELSYNC_CONFIG"}
    done = subprocess.run([sys.executable, "-m", "funnelsync", "-q", "demo", "--out", str(out), "--format", "json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    db = out / "warehouse.db"
    cfg = out / "funnelsync.toml"
    if _complete(db):
        source = "demo"
        text = demo_config_text([n for n in DEMO_SOURCES if (CASSETTES / n / "demo.yaml").is_file()])
        model = build_model(config.parse(text, path=cfg, environ={}))
        if not cfg.is_file():  # the demo writes it last; write the same text when it stopped before
            cfg.write_text(text)
    else:
        from tests.warehouse import fixture_q1 as fx

        source = "fixture_q1"
        print(f"funnelsync demo built no complete warehouse (exit {done.returncode}: {done.stderr[-500:]}); "
              "using tests/warehouse/fixture_q1.py")
        for p in out.glob("warehouse.db*"):
            p.unlink()
        _fixture_warehouse(db)
        model = fx.MODEL
        cfg.write_text('[warehouse]\nurl = "sqlite:///warehouse.db"\ntimezone = "UTC"\n')
    return SimpleNamespace(dir=out, db=db, cfg=cfg, model=model, source=source)


def sql(db: Path, text: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(text, params).fetchall()


@pytest.fixture(scope="module")
def q1_report(demo, tmp_path_factory) -> Path:
    wh = open_warehouse(f"sqlite:///{demo.db}")
    try:
        return write_report(wh, demo.model, tmp_path_factory.mktemp("report") / "report.html", start=Q1[0],
                            end=Q1[1], now=NOW)
    finally:
        wh.close()


@pytest.fixture(scope="module")
def q1_dom(q1_report, tmp_path_factory) -> Dom:
    """The page as Chromium has it after load (as written, when FUNNELSYNC_SKIP_BROWSER=1 and there is none)."""
    if skipping_browser():
        return Dom(q1_report.read_text())
    return Dom(dump_dom(q1_report, tmp_path_factory.mktemp("profile")))


def quarter_totals(db: Path) -> dict[str, tuple]:
    return {k: (v, s) for k, v, s in sql(db, "SELECT kpi, value, status FROM kpi_values WHERE grain = 'quarter' "
                                             f"AND period_start = '2024-01-01' AND {TOTAL}")}


def assert_same_values(drawn: dict, expected: dict, what: str) -> None:
    assert set(drawn) == set(expected), f"{what}: bars {sorted(drawn)} != expected {sorted(expected)}"
    for key, v in expected.items():
        assert math.isclose(drawn[key], v, rel_tol=1e-9, abs_tol=1e-9), f"{what} {key}: {drawn[key]} != {v}"


# ---- the charts, in the browser -----------------------------------------------------------------------------------


CHARTS = {"chart-funnel": "funnel", "chart-dark-social": "dark_social_share", "chart-funnel-channel":
          "funnel_by_channel", "chart-money": "spend_pipeline_revenue", "chart-attribution-pipeline":
          "attribution_pipeline", "chart-attribution-revenue": "attribution_revenue",
          "chart-goal-pacing-2024": "goal_pacing"}


def test_every_chart_is_laid_out_by_the_browser(q1_dom):
    chromium()
    dom = q1_dom
    assert set(dom.charts) == set(CHARTS), sorted(dom.charts)
    assert dom.root.get("data-charts-drawn") == f"{len(CHARTS)}/{len(CHARTS)}", (
        "the page's render check did not run or found charts with marks that have no size: "
        + str({k: (c["attrs"].get("data-marks"), c["attrs"].get("data-drawn-marks")) for k, c in dom.charts.items()}))
    for cid, chart in dom.charts.items():
        a = chart["attrs"]
        assert a["data-chart"] == CHARTS[cid]
        assert int(a["data-marks"]) == len(chart["marks"]) > 0, cid
        assert a.get("data-drawn-marks") == a["data-marks"], f"{cid}: {a.get('data-drawn-marks')} of {a['data-marks']}"
        assert a.get("role") == "img" and a.get("aria-labelledby"), f"{cid} is not labelled for screen readers"
    assert dom.nodata == 0


def test_funnel_bars_are_the_quarters_stage_counts(demo, q1_dom):
    totals = quarter_totals(demo.db)
    expected = {(None, k): totals[k][0] for k in STAGE_KPIS if totals[k][0]}
    assert len(expected) == 5, f"the {demo.source} warehouse should reach every stage: {expected}"
    assert_same_values(q1_dom.marks("chart-funnel"), expected, "funnel")
    labels = q1_dom.charts["chart-funnel"]["texts"]
    for k in STAGE_KPIS:
        assert f"{totals[k][0]:,.0f}" in labels
    assert f"{totals['lead_to_mql_rate'][0] * 100:.1f}% of Leads" in labels


def test_funnel_by_channel_has_one_bar_per_channel_and_stage(demo, q1_dom):
    rows = sql(demo.db, "SELECT channel, kpi, value FROM kpi_values WHERE grain = 'quarter' AND period_start = "
                        f"'2024-01-01' AND {CHANNEL} AND kpi IN ({', '.join('?' * 5)}) AND value > 0",
               tuple(STAGE_KPIS))
    expected = {(ch, k): v for ch, k, v in rows}
    assert len({ch for ch, _ in expected}) >= 3
    assert_same_values(q1_dom.marks("chart-funnel-channel"), expected, "funnel by channel")
    chart = q1_dom.charts["chart-funnel-channel"]
    assert "People / opportunities" in chart["texts"]  # y-axis title
    assert rep.channel_label(rows[0][0]) in " ".join(chart["texts"])  # channel names on the x axis


def test_spend_pipeline_revenue_bars_per_channel(demo, q1_dom):
    rows = sql(demo.db, "SELECT channel, kpi, value FROM kpi_values WHERE grain = 'quarter' AND period_start = "
                        f"'2024-01-01' AND {CHANNEL} AND kpi IN (?, ?, ?) AND value > 0", tuple(MONEY_KPIS))
    expected = {(ch, k): v for ch, k, v in rows}
    assert {k for _, k in expected} == set(MONEY_KPIS), "spend, pipeline and revenue should all be present"
    assert_same_values(q1_dom.marks("chart-money"), expected, "spend/pipeline/revenue")
    texts = q1_dom.charts["chart-money"]["texts"]
    assert "Amount (USD)" in texts
    top = max(expected.values())
    assert rep.fmt_money_short(top) in texts and rep.fmt_money_short(top).startswith("$")


def test_dark_social_line_has_one_point_per_week(demo, q1_dom):
    rows = sql(demo.db, "SELECT period_start, value FROM kpi_values WHERE grain = 'week' AND kpi = "
                        f"'dark_social_traffic_share' AND {TOTAL} AND period_start >= '2024-01-01' AND period_end <= "
                        "'2024-03-31' AND value IS NOT NULL ORDER BY period_start")
    assert rows
    chart = q1_dom.charts["chart-dark-social"]
    paths = [a for tag, a in chart["marks"] if tag == "path"]
    points = [a for tag, a in chart["marks"] if tag == "circle"]
    if len(rows) > 1:
        assert len(paths) == 1 and paths[0]["d"].count("L") == len(rows) - 1, "one unbroken line through the weeks"
    else:
        assert paths == []  # one week: its point, no line
    starts = [date.fromisoformat(p["data-period"]) for p in points]
    monday = [(d - timedelta(days=d.weekday())).isoformat() for d in starts]  # edge weeks start at the data
    assert monday == [d for d, _ in rows]
    assert [float(p["data-value"]) for p in points] == pytest.approx([v for _, v in rows])
    assert f"{rows[0][1] * 100:.1f}%" in chart["texts"]
    assert "Share of sessions" in chart["texts"] and "Week starting" in chart["texts"]


@pytest.mark.parametrize("target", ["pipeline", "revenue"])
def test_attribution_segments_are_each_models_channel_shares(demo, q1_dom, target):
    rows = sql(demo.db, "SELECT model, channel, SUM(credited_amount) FROM attribution_credits WHERE target = ? AND "
                        "conversion_at >= '2024-01-01' AND conversion_at < '2024-04-01' GROUP BY model, channel",
               (target,))
    per_model: dict[str, dict] = {}
    for m, ch, amount in rows:
        if m in rep.ATTRIBUTION_MODELS and amount:
            per_model.setdefault(m, {})[ch] = amount
    assert set(per_model) == set(rep.ATTRIBUTION_MODELS)
    expected = {(m, ch): a / sum(chans.values()) for m, chans in per_model.items() for ch, a in chans.items()}
    drawn = q1_dom.marks(f"chart-attribution-{target}")
    assert_same_values(drawn, expected, f"attribution {target}")
    for m in rep.ATTRIBUTION_MODELS:
        assert sum(v for (mm, _), v in drawn.items() if mm == m) == pytest.approx(1.0)
    assert any(t.endswith("%") for t in q1_dom.charts[f"chart-attribution-{target}"]["texts"])


def test_goal_pacing_bars_and_band_colour(demo, q1_dom):
    rows = sql(demo.db, "SELECT quarter, target, expected_to_date, actual_to_date, band FROM goal_pacing WHERE "
                        "plan_year = 2024 AND metric = 'closed_won_revenue' AND quarter IS NOT NULL")
    expected = {}
    for q, target, exp, actual, _ in rows:
        for series, v in (("target", target), ("expected", exp), ("actual", actual)):
            if v:
                expected[(f"Q{q}", series)] = v
    assert_same_values(q1_dom.marks("chart-goal-pacing-2024"), expected, "goal pacing")
    marks = q1_dom.charts["chart-goal-pacing-2024"]["marks"]
    fills = {(a["data-category"], a["data-series"]): a["fill"] for _, a in marks}
    for q, _, _, actual, band in rows:
        if actual:
            assert fills[(f"Q{q}", "actual")] == rep.BAND_COLORS[band]


def test_kpi_table_carries_the_threshold_markers(demo, q1_dom):
    totals = quarter_totals(demo.db)
    assert set(q1_dom.kpi_rows) <= set(totals) and len(q1_dom.kpi_rows) >= 50
    flagged = {k: s for k, (_, s) in totals.items() if s}
    assert flagged, "the warehouse should have at least one marked KPI"
    for k, cls in q1_dom.kpi_rows.items():
        assert ("flagged" in cls) == (k in flagged), k
        if k in flagged:
            assert flagged[k] in cls
    sliced = sql(demo.db, "SELECT kpi, channel, status FROM kpi_values WHERE grain = 'quarter' AND period_start = "
                          f"'2024-01-01' AND status IS NOT NULL AND {CHANNEL}")
    for kpi, ch, status in sliced:
        assert any(status in f and rep.channel_label(ch) in f for f in q1_dom.flags), (kpi, ch, q1_dom.flags)


def test_screenshot_shows_the_charts(demo, q1_report, tmp_path):
    profile = tmp_path / "profile"
    shot = screenshot(q1_report, tmp_path / "report.png", profile)
    assert png_size(shot) == (1400, 3000)
    # a blank 1400×3000 page compresses to about 10 KB; the drawn report to about 350 KB
    assert len(shot) > 100_000, len(shot)
    colors = {"funnel": rep.STAGE_COLORS[0], "spend": rep.MONEY_COLORS[0], "pipeline": rep.MONEY_COLORS[1],
              "revenue": rep.MONEY_COLORS[2], "dark social": rep.CHANNEL_COLORS["dark_social"], "white": "#ffffff"}
    size, counts = pixel_counts(shot, sorted(set(colors.values())), profile, tmp_path)
    assert size == "1400x3000"
    for what, c in colors.items():
        assert counts[c] >= 500, f"{what} ({c}): only {counts[c]} pixels in the screenshot"
    assert counts["#ffffff"] < 1400 * 3000 * 0.9, "the screenshot is mostly blank"


# ---- the page as a file -------------------------------------------------------------------------------------------


def test_the_file_needs_no_network(q1_report):
    text = q1_report.read_text()
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", text, re.IGNORECASE)
    assert "<link" not in text.lower() and "@import" not in text and "url(" not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text


def test_source_text_is_escaped(demo, tmp_path):
    db = tmp_path / "warehouse.db"
    shutil.copy(demo.db, db)
    flagged = sql(db, "SELECT campaign_key FROM kpi_values WHERE campaign_key IS NOT NULL AND status IS NOT NULL")
    evil = '<img src=x onerror="alert(1)">&'
    with sqlite3.connect(db) as c:
        c.execute("UPDATE campaigns SET name = ?", (evil,))
    wh = open_warehouse(f"sqlite:///{db}")
    text = write_report(wh, demo.model, tmp_path / "r.html", start=Q1[0], end=Q1[1], now=NOW).read_text()
    wh.close()
    assert evil not in text
    if flagged:
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in text


def test_default_period_is_the_data_range_clipped_to_now(demo, tmp_path):
    lo, hi = sql(demo.db, "SELECT MIN(event_date), MAX(event_date) FROM events")[0]
    wh = open_warehouse(f"sqlite:///{demo.db}")
    try:
        assert rep.report_period(wh.conn, demo.model, None, None, NOW) == (date.fromisoformat(lo),
                                                                           date.fromisoformat(hi))
        early = datetime(2024, 2, 10, 12, tzinfo=timezone.utc)
        assert rep.report_period(wh.conn, demo.model, None, None, early) == (date.fromisoformat(lo), date(2024, 2, 10))
        assert rep.report_period(wh.conn, demo.model, None, date(2024, 3, 1), NOW)[1] == date(2024, 3, 1)
        late, future = date(2024, 3, 20), date(2024, 5, 1)
        assert rep.report_period(wh.conn, demo.model, late, None, NOW) == (late, date.fromisoformat(hi))
        assert rep.report_period(wh.conn, demo.model, future, None, NOW) == (future, future)
        with pytest.raises(ValueError, match="after its end"):
            rep.report_period(wh.conn, demo.model, date(2024, 3, 2), date(2024, 3, 1), NOW)
        text = write_report(wh, demo.model, tmp_path / "r.html", now=NOW).read_text()
    finally:
        wh.close()
    assert f"{rep.fmt_date(lo)} – {rep.fmt_date(hi)}" in text


def test_cli_report_command(demo, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FUNNELSYNC_CONFIG"}
    env["FUNNELSYNC_NOW"] = "2024-04-01T00:00:00Z"
    out = tmp_path / "out" / "report.html"
    done = subprocess.run([sys.executable, "-m", "funnelsync", "--config", str(demo.cfg), "report", "--out", str(out),
                           "--start", "2024-01-01", "--end", "2024-03-31"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    dom = Dom(out.read_text())
    assert set(dom.charts) == set(CHARTS) and dom.nodata == 0


def test_empty_warehouse_gives_no_data_panels(tmp_path):
    from normalize import Model

    wh = open_warehouse(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        page = write_report(wh, Model(), tmp_path / "sub" / "report.html", now=NOW)
    finally:
        wh.close()
    dom = Dom(page.read_text())
    assert dom.charts == {}
    assert dom.nodata == 8  # funnel, dark social, by channel, money, attribution ×2, goals, freshness
    assert "Jan 3, 2024 – Apr 1, 2024" in page.read_text()  # 90 days up to today
    browsed = Dom(dump_dom(page, tmp_path / "profile"))
    assert browsed.root.get("data-charts-drawn") == "0/0" and browsed.nodata == 8


# ---- PostgreSQL: the same report, through a read-only dashboards role ----------------------------------------------


def readonly_role_sql(role: str, database: str, owner: str) -> list[str]:
    """The README's read-only role for dashboards (role and database names filled in)."""
    return [
        f"CREATE ROLE {role} LOGIN PASSWORD 'change-me'",
        f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
        f"ALTER ROLE {role} SET default_transaction_read_only = on",
    ]


@pytest.mark.postgres
def test_postgresql_report_matches_sqlite_through_a_read_only_role(demo, q1_report, pg_url, tmp_path):  # noqa: F811
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from warehouse import schema
    from warehouse.derive import insert_rows
    from warehouse.postgres import PostgresWarehouse, connect

    role = f"dashboards_t{os.getpid()}"
    try:
        with fresh_db(pg_url, "report", database=True) as url:
            parts = urlsplit(url)
            wh = PostgresWarehouse(url)
            src = sqlite3.connect(demo.db)
            for table in schema.TABLES:
                if table.name in ("raw_records", "quarantine", "sync_runs", "kpi_values", "person_sources"):
                    continue  # what the report does not read (its KPIs come from compute_kpis)
                cols = table.column_names
                insert_rows(wh.conn, table.name, cols, src.execute(f"SELECT {', '.join(cols)} FROM {table.name}"))
            wh.conn.commit()
            src.close()
            owner = wh.conn.execute("SELECT current_user").fetchone()[0]
            for stmt in readonly_role_sql(role, parts.path.lstrip("/"), owner):
                wh.conn.execute(stmt)
            wh.conn.commit()
            wh.close()
            ro_url = urlunsplit((parts.scheme, f"{role}@{parts.hostname}:{parts.port}", parts.path, parts.query, ""))
            conn = connect(ro_url)
            try:
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    conn.execute("DELETE FROM kpi_rows")
                conn.rollback()
                page = write_report(SimpleNamespace(conn=conn), demo.model, tmp_path / "pg.html", start=Q1[0],
                                    end=Q1[1], now=NOW)
            finally:
                conn.close()
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {role}")
    pg, lite = Dom(page.read_text()), Dom(q1_report.read_text())
    assert set(pg.charts) == set(lite.charts) == set(CHARTS)
    for cid in CHARTS:
        assert_same_values(pg.marks(cid), lite.marks(cid), f"PostgreSQL {cid}")
    assert pg.kpi_rows == lite.kpi_rows
    assert "from the PostgreSQL warehouse" in page.read_text()


# ---- formatting ---------------------------------------------------------------------------------------------------


def test_number_formats():
    assert rep.fmt_money(60957.69) == "$60,958"
    assert rep.fmt_money(952.4639) == "$952.46"
    assert rep.fmt_money(0.0) == "$0"
    assert rep.fmt_money(-1200, "EUR") == "-€1,200"
    assert rep.fmt_money(1234.0, "SEK") == "1,234 SEK"
    assert rep.fmt_money_short(33308.18) == "$33k"
    assert rep.fmt_money_short(1_234_567) == "$1.2M"
    assert rep.fmt_money_short(400) == "$400"
    assert rep.fmt_pct(0.06351) == "6.4%" and rep.fmt_pct(None) == "—" and rep.fmt_pct(0.0004) == "0.04%"
    assert rep.fmt_kpi("roas", 3.19018, "USD") == "3.19×"
    assert rep.fmt_kpi("average_sales_cycle_days", 73.333, "USD") == "73.3 days"
    assert rep.nice_ticks(11, integer=True) == [0, 5, 10, 15]
    assert rep.nice_ticks(91440)[-1] == 100000
    assert rep.nice_ticks(0) == [0.0, 1.0]


# ---- the screenshot in the docs -----------------------------------------------------------------------------------


def test_docs_screenshot_is_a_small_png():
    data = DOCS_SHOT.read_bytes()
    width, height = png_size(data)
    assert width == 1200 and height > 1000
    assert len(data) < 400_000


# ---- Datasette canned queries -------------------------------------------------------------------------------------


def canned_queries() -> dict[str, dict]:
    return yaml.safe_load(METADATA.read_text())["databases"]["warehouse"]["queries"]


def test_canned_queries_cover_the_main_kpis():
    queries = canned_queries()
    assert {"funnel_by_channel", "spend_pipeline_revenue_by_channel", "dark_social_share_by_month",
            "attribution_by_model", "goal_pacing", "sync_freshness"} <= set(queries)
    for name, q in queries.items():
        assert q.get("title") and q.get("description"), f"{name} needs a title and a description"
        assert not re.search(r"(?<!:):[A-Za-z_]\w*", q["sql"]), f"{name}: a named parameter would need a form value"


@pytest.mark.parametrize("name", sorted(canned_queries()))
def test_canned_query_runs_on_the_demo_warehouse(demo, name, tmp_path):
    q = canned_queries()[name]
    with sqlite3.connect(f"{demo.db.as_uri()}?mode=ro", uri=True) as c:
        cur = c.execute(q["sql"])
        rows = cur.fetchall()
        columns = [d[0] for d in cur.description]
    assert rows, f"{name} returned no rows on the {demo.source} warehouse"
    assert len(columns) == len(set(columns)) >= 3
    empty = open_warehouse(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        empty.conn.execute(q["sql"]).fetchall()  # the schema alone is enough
    finally:
        empty.close()
