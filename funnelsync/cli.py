"""The `funnelsync` command. Thin commands over funnelsync/sync.py and the warehouse; all output lives here.

Exit codes (contract.md): 0 ok, 1 a stream failed, 2 usage/config error, 3 credentials rejected, 75 temporary
(lock held, rate limits / 5xx / network outlasted the retries, an API budget reached). Where streams fail
differently the code a person must act on wins: 2, then 3, then 1, then 75.
`--format json` prints one JSON document on stdout and nothing else there; logs and progress go to stderr.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AUTH, EXIT_TEMPFAIL = 0, 1, 2, 3, 75
FORMATS = click.Choice(["table", "json", "csv"])


class Fail(Exception):
    """A one-line error for the person at the terminal, with its exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _now() -> datetime:
    """The run's clock: FUNNELSYNC_NOW (ISO-8601, for tests and the demo) or the real time."""
    pinned = os.environ.get("FUNNELSYNC_NOW")
    if pinned:
        return datetime.fromisoformat(pinned.replace("Z", "+00:00")).astimezone(timezone.utc)
    return datetime.now(timezone.utc)


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Fail(f"{option} {value!r} is not a date; expected YYYY-MM-DD", EXIT_USAGE) from None


def load_settings(config_path: str | None):
    import config

    try:
        return config.load(config_path, extra_types=_plugin_key_schemas())
    except config.ConfigError as exc:
        raise Fail(str(exc), exc.exit_code) from None


def _plugin_key_schemas() -> dict:
    """Third-party connectors declare their config keys as `CONFIG_KEYS`; loaded only when installed."""
    import connectors

    out = {}
    for name, ep in connectors.plugin_types().items():
        try:
            out[name] = dict(getattr(ep.load(), "CONFIG_KEYS", {}))
        except Exception as exc:  # noqa: BLE001 - a broken plugin is a configuration problem
            raise Fail(f"connector plugin {name!r} could not be loaded: {type(exc).__name__}: {exc}", EXIT_USAGE)
    return out


def build_model(settings):
    from normalize import Model

    return Model.from_dict({**settings.model, "timezone": settings.timezone})


def open_wh(settings):
    from warehouse import WarehouseError, open_warehouse

    try:
        base = settings.path.parent if settings.path else Path.cwd()
        return open_warehouse(settings.warehouse_url, base)
    except WarehouseError as exc:
        raise Fail(str(exc), EXIT_USAGE) from None
    except Exception as exc:  # noqa: BLE001 - e.g. unreachable PostgreSQL server, unreadable file
        from connectors.http import redact

        raise Fail(f"cannot open the warehouse: {redact(exc)}", EXIT_TEMPFAIL) from None


def emit(data: Any, fmt: str, table_rows: list[dict] | None = None, columns: list[str] | None = None) -> None:
    """Print `data` as JSON, or `table_rows` as CSV / an aligned table."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
        return
    rows = table_rows if table_rows is not None else (data if isinstance(data, list) else [data])
    columns = columns or (list(rows[0].keys()) if rows else [])
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r)
        click.echo(buf.getvalue(), nl=False)
        return
    click.echo(render_table(rows, columns))


def fmt_value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if abs(v) >= 1 and abs(v - round(v)) < 1e-6:  # whole numbers (float noise included) without decimals
            return f"{round(v):,}"
        return f"{v:,.4f}"
    return str(v)


def render_table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(no rows)"
    cells = [[fmt_value(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows) for c in columns]
    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()
    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)


# ---- the command group -------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", help="funnelsync.toml (default: $FUNNELSYNC_CONFIG, else ./funnelsync.toml)")
@click.option("-q", "--quiet", is_flag=True, help="No progress output on stderr.")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.version_option("0.1.0", prog_name="funnelsync")
@click.pass_context
def cli(ctx, config_path, quiet, debug):
    """Sync marketing and sales sources into one warehouse and compute funnel KPIs, attribution and dark social."""
    ctx.obj = {"config": config_path, "quiet": quiet, "debug": debug}


def _sync_and_report(ctx, names: tuple[str, ...], mode: str, fmt: str, start=None, end=None,
                     stream_names: tuple[str, ...] = ()) -> int:
    from funnelsync.progress import make_progress
    from funnelsync.sync import Options, post_sync, sync_source, worst
    from connectors.http import setup_ca_bundle
    from warehouse import LockedError

    settings = load_settings(ctx.obj["config"])
    unknown = [n for n in names if n not in settings.sources]
    if unknown:
        known = ", ".join(sorted(settings.sources)) or "none"
        raise Fail(f"{settings.path}: no source named {unknown[0]!r}; configured sources: {known}", EXIT_USAGE)
    setup_ca_bundle()
    model = build_model(settings)
    wh = open_wh(settings)
    now = _now()
    options = Options(mode=mode, start=start, end=end, now=now, streams=stream_names)
    progress = make_progress(ctx.obj["quiet"])
    selected = [settings.sources[n] for n in (names or sorted(settings.sources))]
    results = []
    warnings: list[str] = []
    try:
        with wh.lock([s["name"] for s in selected]):
            for source in selected:
                results += sync_source(wh, source, model, options, progress)
            try:
                warnings = post_sync(wh, model, now, settings.goals, settings.fx_rates)
            except Exception as exc:  # noqa: BLE001 - synced data is committed; KPIs are rebuilt next run
                if ctx.obj["debug"]:
                    raise
                warnings = [f"KPI refresh failed ({type(exc).__name__}: {exc}); the synced data is committed"]
    except LockedError as exc:
        raise Fail(str(exc), EXIT_TEMPFAIL) from None
    code = worst(r.exit_code for r in results)
    if any(r.status == "failed" and r.exit_code == 0 for r in results):
        code = worst([code, 1])
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    summary = {"command": mode, "exit_code": code, "streams": [r.as_dict() for r in results], "warnings": warnings}
    if fmt == "json":
        emit(summary, "json")
    else:
        rows = [{"stream": f"{r.source}.{r.stream}", "status": r.status, "records": r.records, "rows": r.rows,
                 "quarantined": r.quarantined, "requests": r.requests, "error": r.error or ""} for r in results]
        emit(rows, fmt, rows, ["stream", "status", "records", "rows", "quarantined", "requests", "error"])
    for r in results:
        if r.error and fmt != "json":
            click.echo(f"Error: {r.source}.{r.stream}: {r.error}{_advice(r.exit_code, r.source)}", err=True)
    return code


def _advice(code: int, source: str) -> str:
    return {
        3: f" — renew the credentials of [sources.{source}] and run `funnelsync sync {source}`",
        75: " — temporary; the next scheduled run continues where this one stopped",
    }.get(code, "")


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--full-refresh", is_flag=True, help="Re-pull everything from start_date (ignores stored cursors).")
@click.option("--stream", "streams", multiple=True, help="Only this stream (repeatable).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_context
def sync(ctx, names, full_refresh, streams, fmt):
    """Incremental sync of the named sources (all when none named); safe to run from cron."""
    ctx.exit(_sync_and_report(ctx, names, "full_refresh" if full_refresh else "incremental", fmt,
                              stream_names=streams))


@cli.command()
@click.argument("name")
@click.option("--start", required=True, help="First day (YYYY-MM-DD), inclusive.")
@click.option("--end", required=True, help="Last day (YYYY-MM-DD), inclusive.")
@click.option("--stream", "streams", multiple=True, help="Only this stream (repeatable).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_context
def backfill(ctx, name, start, end, streams, fmt):
    """Re-pull a closed date range of one source; leaves incremental state as it was."""
    s, e = _parse_day(start, "--start"), _parse_day(end, "--end")
    if e < s:
        raise Fail(f"--end {end} is before --start {start}", EXIT_USAGE)
    ctx.exit(_sync_and_report(ctx, (name,), "backfill", fmt, start=s, end=e, stream_names=streams))


@cli.command()
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_context
def status(ctx, fmt):
    """Per source and stream: last successful sync, cursor, rows, last error."""
    settings = load_settings(ctx.obj["config"])
    wh = open_wh(settings)
    rows = wh.status()
    for r in rows:
        cur = r.get("cursor")
        if isinstance(cur, str):
            try:
                r["cursor"] = json.loads(cur)
            except ValueError:
                pass
    if fmt == "json":
        emit({"warehouse": settings.warehouse_url.split("@")[-1], "streams": rows}, "json")
    else:
        def short(cursor: Any) -> Any:  # the table stays terminal-wide; --format json has the whole cursor
            text = json.dumps(cursor, separators=(",", ":")) if isinstance(cursor, dict) else cursor
            return text if fmt == "csv" or not isinstance(text, str) or len(text) <= 60 else text[:59] + "…"

        flat = [{**r, "cursor": short(r.get("cursor"))} for r in rows]
        emit(flat, fmt, flat, ["source", "stream", "last_success_at", "cursor", "rows_written", "quarantined_now",
                               "last_error"])


@cli.command()
@click.option("--start", help="First day (YYYY-MM-DD); default: first day of the current quarter.")
@click.option("--end", help="Last day (YYYY-MM-DD); default: today.")
@click.option("--grain", type=click.Choice(["day", "week", "month", "quarter", "year"]), default="quarter",
              show_default=True)
@click.option("--by", type=click.Choice(["channel", "campaign", "source"]), default=None)
@click.option("--kpi", "kpi_names", multiple=True, help="Only these KPIs (repeatable).")
@click.option("--mode", type=click.Choice(["in_period", "cohort"]), default="in_period", show_default=True)
@click.option("--refresh", is_flag=True, help="Rebuild derived tables, attribution and kpi_values first.")
@click.option("--goals", "show_goals", is_flag=True, help="Show goal pacing (goal_pacing) instead of KPIs.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_context
def kpis(ctx, start, end, grain, by, kpi_names, mode, refresh, show_goals, fmt):
    """KPI values from the warehouse (names of spec §9), by period and optionally by channel/campaign/source."""
    from funnelsync.sync import post_sync

    settings = load_settings(ctx.obj["config"])
    model = build_model(settings)
    wh = open_wh(settings)
    now = _now()
    e = _parse_day(end, "--end") or now.date()
    s = _parse_day(start, "--start") or _quarter_start(e)
    if e < s:
        raise Fail(f"--end {e} is before --start {s}", EXIT_USAGE)
    warnings = []
    if refresh:
        warnings = post_sync(wh, model, now, settings.goals, settings.fx_rates)
    if show_goals:
        from warehouse import goals as goals_mod

        rows = []
        for goal in settings.goals:
            got, more = goals_mod.pacing(wh.conn, model, goal, e.isoformat())
            rows += got
            warnings += more
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        emit({"as_of": e.isoformat(), "rows": rows}, fmt, rows,
             ["plan_year", "metric", "quarter", "target", "expected_to_date", "actual_to_date", "pacing", "band"])
        return
    from warehouse import kpis as kpi_mod

    rows = kpi_mod.compute_kpis(wh.conn, model, s.isoformat(), e.isoformat(), grain=grain, by=by, mode=mode,
                                as_of=now.date().isoformat(), warnings=warnings)
    if kpi_names:
        rows = [r for r in rows if r["kpi"] in kpi_names]
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    columns = ["grain", "period_start", "period_end", "kpi", "channel", "campaign_key", "source_system", "value",
               "numerator", "denominator", "status"]
    if fmt == "json":
        emit({"start": s.isoformat(), "end": e.isoformat(), "grain": grain, "by": by, "rows": rows}, "json")
    elif fmt == "csv":
        emit(rows, "csv", rows, columns)
    else:
        shown = [{**r, "status": {"warning": "⚠ warning", "good": "✓ good", "profitable": "✓ profitable"}.get(
            r.get("status"), r.get("status") or "")} for r in rows]
        cols = ["period_start", "kpi"] + ([{"channel": "channel", "campaign": "campaign_key",
                                           "source": "source_system"}[by]] if by else []) + ["value", "status"]
        emit(shown, "table", shown, cols)


def _quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


@cli.command()
@click.option("--start", help="First day (YYYY-MM-DD) of conversions; default: first day of the current quarter.")
@click.option("--end", help="Last day (YYYY-MM-DD); default: today.")
@click.option("--model", "model_name", default=None, help="Attribution model (default: [model] default_model).")
@click.option("--target", type=click.Choice(["pipeline", "revenue"]), default="pipeline", show_default=True)
@click.option("--by", type=click.Choice(["channel", "campaign"]), default="channel", show_default=True)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_context
def attribution(ctx, start, end, model_name, target, by, fmt):
    """Attribution credit per channel or campaign for opportunities converting in the period."""
    settings = load_settings(ctx.obj["config"])
    model = build_model(settings)
    wh = open_wh(settings)
    now = _now()
    s = _parse_day(start, "--start") or _quarter_start(now.date())
    e = _parse_day(end, "--end") or now.date()
    name = model_name or model.default_model
    from warehouse import attribution as attr

    if name not in attr.MODELS:
        raise Fail(f"--model {name!r} is not a model; choose one of: {', '.join(attr.MODELS)}", EXIT_USAGE)
    rows = attr.summarize(wh.conn, model, s.isoformat(), e.isoformat(), model_name=name, target=target, by=by)
    if fmt == "json":
        emit({"start": s.isoformat(), "end": e.isoformat(), "model": name, "target": target, "by": by,
              "rows": rows}, "json")
    else:
        emit(rows, fmt, rows)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for the demo warehouse (default: a new temporary directory).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_context
def demo(ctx, out_dir, fmt):
    """Offline: replay the recorded HTTP in cassettes/ into a fresh SQLite warehouse and print the KPI summary."""
    from funnelsync.demo import run_demo

    ctx.exit(run_demo(out_dir, fmt, quiet=ctx.obj["quiet"]))


@cli.command()
@click.option("--out", "out_path", default="report.html", show_default=True, type=click.Path(dir_okay=False))
@click.option("--start", help="First day (YYYY-MM-DD); default: first day of the data.")
@click.option("--end", help="Last day (YYYY-MM-DD); default: today.")
@click.pass_context
def report(ctx, out_path, start, end):
    """Write one self-contained HTML report (charts + KPI table) that opens without network."""
    settings = load_settings(ctx.obj["config"])
    model = build_model(settings)
    wh = open_wh(settings)
    try:
        from funnelsync.report import write_report
    except ImportError:
        raise Fail("the HTML report is not available in this version", EXIT_FAILED) from None
    s, e = _parse_day(start, "--start"), _parse_day(end, "--end")
    if s and e and e < s:
        raise Fail(f"--end {e} is before --start {s}", EXIT_USAGE)
    path = write_report(wh, model, out_path, start=s, end=e, now=_now())
    click.echo(str(path))


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps every error to its exit code and one line on stderr, never a traceback (unless --debug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="funnelsync", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.UsageError as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        if exc.ctx is not None:
            click.echo(f"Try '{exc.ctx.command_path} --help'.", err=True)
        code = EXIT_USAGE
    except click.Abort:
        click.echo("Aborted.", err=True)
        code = EXIT_FAILED
    except Fail as exc:
        click.echo(f"Error: {exc}", err=True)
        code = exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no secrets
        if debug:
            raise
        from connectors.http import redact

        click.echo(f"Error: internal error ({type(exc).__name__}: {redact(exc)}); rerun with --debug for details",
                   err=True)
        code = EXIT_FAILED
    sys.exit(code or 0)
