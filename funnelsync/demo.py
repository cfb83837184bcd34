"""`funnelsync demo`: the whole pipeline offline. Replays cassettes/<type>/demo.yaml through the real connectors,
normalizers and warehouse into a fresh SQLite file, then prints what it loaded and the KPI summary."""
from __future__ import annotations

import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import click

DEMO_NOW = datetime(2024, 4, 1, tzinfo=timezone.utc)
DEMO_CONFIG = Path(__file__).parent / "demo" / "funnelsync.toml"
# One source per connector; the cassette decides whether it takes part.
DEMO_SOURCES = {
    "hubspot": {"access_token": "test-token-hubspot"},
    "salesforce": {"instance_url": "https://acme.my.salesforce.com", "access_token": "test-token-salesforce"},
    "mailchimp": {"api_key": "fakekey-us6"},
    "ga4": {"property_id": "123456789", "access_token": "test-token-ga4"},
    "linkedin_ads": {"access_token": "test-token-linkedin", "account_ids": ["508000000"]},
    "meta_ads": {"access_token": "test-token-meta", "account_ids": ["act_1234567890"]},
    "google_ads": {"developer_token": "test-developer-token", "customer_ids": ["1234567890"],
                   "client_id": "test-client-id", "client_secret": "test-client-secret",
                   "refresh_token": "test-refresh-token"},
}
SUMMARY_KPIS = ("new_leads", "mqls", "sqls", "opportunities_created", "sqos", "deals_won", "marketing_spend", "cpl",
                "cost_per_mql", "cac", "pipeline_created", "closed_won_revenue", "roas", "emails_sent",
                "deliverability_rate", "sessions", "dark_social_traffic_share", "dark_funnel_gap")


def demo_config_text(sources: list[str]) -> str:
    """The embedded config plus one [sources.<type>] table per connector that has a demo cassette."""
    lines = [DEMO_CONFIG.read_text()]
    for name in sources:
        lines.append(f"\n[sources.{name}]\nstart_date = \"2024-01-01\"")
        for key, value in DEMO_SOURCES[name].items():
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def run_demo(out_dir: str | None, fmt: str, quiet: bool = False) -> int:
    import config
    from funnelsync.cli import build_model, emit, render_table
    from funnelsync.progress import make_progress
    from funnelsync.replay import CASSETTES, make_vcr
    from funnelsync.sync import Options, post_sync, sync_source, worst
    from warehouse import open_warehouse

    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="funnelsync-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", ".lock"):
        (out / f"warehouse.db{suffix}").unlink(missing_ok=True)
    available = [name for name in DEMO_SOURCES if (CASSETTES / name / "demo.yaml").is_file()]
    settings = config.parse(demo_config_text(available), path=out / "funnelsync.toml", environ={})
    model = build_model(settings)
    wh = open_warehouse(settings.warehouse_url, out)
    progress = make_progress(quiet)
    recorder = make_vcr("none")
    results = []
    with wh.lock():
        for name in available:
            with recorder.use_cassette(f"{name}/demo.yaml", allow_playback_repeats=True):
                results += sync_source(wh, settings.sources[name], model, Options(now=DEMO_NOW), progress)
        warnings = post_sync(wh, model, DEMO_NOW, settings.goals, settings.fx_rates)
    code = worst(r.exit_code for r in results)
    loaded = {t: wh.query(f"SELECT count(*) FROM {t}")[0][0]
              for t in ("raw_records", "events", "people", "accounts", "campaigns", "opportunities", "quarantine")}
    summary_rows = []
    try:
        from warehouse import kpis as kpi_mod

        rows = kpi_mod.compute_kpis(wh.conn, model, "2024-01-01", "2024-03-31", grain="quarter", by=None,
                                    warnings=warnings)
        summary_rows = [r for r in rows if r["kpi"] in SUMMARY_KPIS]
        summary_rows.sort(key=lambda r: SUMMARY_KPIS.index(r["kpi"]))
    except ImportError:
        pass
    if fmt == "json":
        emit({"warehouse": str(out / "warehouse.db"), "exit_code": code, "loaded": loaded,
              "streams": [r.as_dict() for r in results], "kpis": summary_rows, "warnings": warnings}, "json")
    else:
        click.echo(f"Demo warehouse: {out / 'warehouse.db'}  (sources: {', '.join(available) or 'none'})")
        click.echo("Loaded: " + ", ".join(f"{k} {v}" for k, v in loaded.items()))
        if summary_rows:
            click.echo("\nKPI summary, 2024-Q1 (in-period):")
            shown = [{"kpi": r["kpi"], "value": r["value"], "status": r.get("status") or ""} for r in summary_rows]
            click.echo(render_table(shown, ["kpi", "value", "status"]))
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        failed = [r for r in results if r.error]
        for r in failed:
            click.echo(f"Error: {r.source}.{r.stream}: {r.error}", err=True)
        click.echo(f"\nExplore it: funnelsync --config {out / 'funnelsync.toml'} kpis --start 2024-01-01 "
                   f"--end 2024-03-31 --by channel")
    (out / "funnelsync.toml").write_text(demo_config_text(available))
    return code
