"""Peak memory of a sync at 100x the data against 1x, from the HTTPS sandbox (tests/sandbox).

    python bench/memory.py [--factor 100] [--source salesforce] [--stream NAME ...]

Each sync is the real command in its own process, `python -m funnelsync --config <toml> sync <source> -q`, pointed
at the sandbox exactly as a user points it at a proxy (instance_url / base_url in the config, the test CA through
REQUESTS_CA_BUNDLE / SSL_CERT_FILE). The sandbox runs in this process and generates every page lazily, so its own
memory does not count. Peak RSS is the child's `ru_maxrss` (os.wait4), side by side in one run: 1x (the sandbox's
default sizes), then `factor` x every size. Goal: peak RSS at 100x <= 1.3x the peak at 1x. `python -m funnelsync
--help` gives the floor (the interpreter and funnelsync's imports) for context.
To say where memory goes, the same sync is also run as "loop only": a child that calls funnelsync.sync.sync_source
and nothing after it (no derive / KPI refresh): as shipped, with `--what-if-batch` rows per batch (default 5,000),
and with that batch plus an 8 MB SQLite page cache.
`--post-sync` measures the step `funnelsync sync` runs after the loop (funnelsync.sync.post_sync: derive, KPI
refresh, goal pacing) on its own: a loop-only child fills the warehouse, then another child runs post_sync on it; its
peak RSS is reported with that child's floor (imports and the open warehouse, before post_sync), as shipped and with
`--what-if-cache` MiB of SQLite page cache for the rebuild instead of warehouse/sqlite.py REBUILD_CACHE_MB (default 12,
the sync's own cache: what the small rebuild cache saves; the default breakdown shows the same lines).
The default source, Salesforce, has no client-side pacing, so 100x runs at network speed: at 1x every object goes
through REST queryAll pages, at 100x through Bulk API 2.0 CSV results (the path meant for large pulls).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET_KEYS = {"access_token", "api_key", "client_secret", "refresh_token", "developer_token"}


def write_config(sb, source: str, directory: Path) -> tuple[Path, dict]:
    src = sb.source(source)
    src.pop("name")
    env, lines = {}, ["[warehouse]", 'url = "sqlite:///wh.db"', "", f"[sources.{source}]"]
    for key, value in src.items():
        if key in SECRET_KEYS:
            var = f"BENCH_{key.upper()}"
            env[var] = value
            value = "${" + var + "}"
        lines.append(f"{key} = {json.dumps(value)}")
    cfg = directory / "funnelsync.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg, env


def run_child(args: list[str], env: dict, cwd: Path) -> tuple[int, int, float, str]:
    """(exit code, peak RSS in kB, seconds, stdout) of one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = b"", b""
    # read the pipes while waiting (a full pipe would block the child); then reap it with its own rusage
    import threading

    chunks: dict[str, bytes] = {}

    def drain(name, stream):
        chunks[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n, s)) for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = chunks.get("out", b""), chunks.get("err", b"")
    if proc.returncode not in (0,):
        sys.stderr.write(err.decode()[-2000:])
    return proc.returncode, usage.ru_maxrss, time.perf_counter() - t, out.decode()


LOOP_CHILD = """
import json, os, sys
from datetime import datetime, timezone
import funnelsync.sync as fsync
from connectors.http import setup_ca_bundle
from funnelsync.cli import build_model, load_settings
if os.environ.get("BENCH_BATCH_ROWS"):
    fsync.BATCH_ROWS = int(os.environ["BENCH_BATCH_ROWS"])
settings = load_settings(sys.argv[1])
setup_ca_bundle()
from warehouse import open_warehouse
wh = open_warehouse(settings.warehouse_url, settings.path.parent)
if os.environ.get("BENCH_CACHE_KB"):
    wh.conn.execute(f"PRAGMA cache_size=-{int(os.environ['BENCH_CACHE_KB'])}")
opts = fsync.Options(now=datetime(2024, 4, 1, tzinfo=timezone.utc), streams=tuple(sys.argv[3:]))
results = fsync.sync_source(wh, settings.sources[sys.argv[2]], build_model(settings), opts)
print(json.dumps({"exit_code": fsync.worst(r.exit_code for r in results), "streams": [r.as_dict() for r in results]}))
"""


POST_CHILD = """
import json, os, resource, sys
from datetime import datetime, timezone
from funnelsync.cli import build_model, load_settings
from funnelsync.sync import post_sync
from warehouse import open_warehouse
settings = load_settings(sys.argv[1])
wh = open_warehouse(settings.warehouse_url, settings.path.parent)
if os.environ.get("BENCH_REBUILD_CACHE_MB"):
    import warehouse.sqlite
    warehouse.sqlite.REBUILD_CACHE_MB = int(os.environ["BENCH_REBUILD_CACHE_MB"])
floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
warnings = post_sync(wh, build_model(settings), datetime(2024, 4, 1, tzinfo=timezone.utc), settings.goals,
                     settings.fx_rates)
print(json.dumps({"floor_kb": floor, "warnings": warnings}))
"""


def measure(scale: float, source: str, streams: list[str], mode: str = "cli", batch: int | None = None,
            cache_kb: int | None = None) -> dict:
    """One child's figures: mode "cli" (the whole command), "loop" (sync_source only) or "post" (post_sync only, on
    the warehouse a loop-only child filled as shipped; `floor_kb` = that child's peak before post_sync)."""
    from tests.sandbox import Sandbox

    with Sandbox(scale=scale) as sb, tempfile.TemporaryDirectory(prefix="funnelsync-mem-") as tmp:
        d = Path(tmp)
        cfg, secrets = write_config(sb, source, d)
        env = {**os.environ, **secrets, **sb.ca_env(), "FUNNELSYNC_NOW": "2024-04-01T00:00:00Z",
               "PYTHONPATH": str(ROOT)}
        if mode == "cli":
            args = [sys.executable, "-m", "funnelsync", "--config", str(cfg), "-q", "sync", source, "--format", "json"]
            for s in streams:
                args += ["--stream", s]
        else:
            args = [sys.executable, "-c", LOOP_CHILD, str(cfg), source, *streams]
            if batch:
                env["BENCH_BATCH_ROWS"] = str(batch)
            if cache_kb and mode == "loop":
                env["BENCH_CACHE_KB"] = str(cache_kb)
        code, rss, seconds, out = run_child(args, env, d)
        doc = json.loads(out) if out.strip() else {}
        result = {"scale": scale, "exit": code, "rss_kb": rss, "seconds": seconds,
                  "records": sum(s.get("records", 0) for s in doc.get("streams", [])),
                  "requests": sum(s.get("requests", 0) for s in doc.get("streams", []))}
        if mode == "post" and code == 0:
            if cache_kb:
                env["BENCH_REBUILD_CACHE_MB"] = str(cache_kb // 1024)
            code, rss, seconds, out = run_child([sys.executable, "-c", POST_CHILD, str(cfg)], env, d)
            result.update(exit=code, rss_kb=rss, seconds=seconds,
                          floor_kb=json.loads(out)["floor_kb"] if out.strip() else 0)
        result["db_mb"] = (d / "wh.db").stat().st_size / 1e6 if (d / "wh.db").exists() else 0
        return result


def post_sync_figures(args: argparse.Namespace, out: dict) -> None:
    """Peak RSS of post_sync alone at 1x and factor x (as shipped, then with a `--what-if-cache` MB rebuild cache),
    each beside its child's floor."""
    variants = [("post-sync only, as shipped", None)]
    if args.what_if_cache:
        variants.append((f"  with a {args.what_if_cache} MB rebuild cache", args.what_if_cache * 1024))
    for label, cache in variants:
        pair = [measure(scale, args.source, args.stream, mode="post", cache_kb=cache) for scale in (1.0, args.factor)]
        if any(p["exit"] != 0 for p in pair):
            raise SystemExit(f"{label}: a child failed (exit {[p['exit'] for p in pair]})")
        r = pair[1]["rss_kb"] / pair[0]["rss_kb"]
        mb = [(p["rss_kb"] / 1024, (p["rss_kb"] - p["floor_kb"]) / 1024) for p in pair]
        print(f"  {label:36s} 1x {mb[0][0]:6.1f} MB (+{mb[0][1]:.1f} over the child's floor), {args.factor:g}x "
              f"{mb[1][0]:6.1f} MB (+{mb[1][1]:.1f}; {pair[1]['seconds']:.0f} s): {r:.2f}x", flush=True)
        out["post_sync" + (f"_cache_{cache}kb" if cache else "")] = {
            "rss_1x_mb": round(pair[0]["rss_kb"] / 1024, 1), "rss_nx_mb": round(pair[1]["rss_kb"] / 1024, 1),
            "floor_1x_mb": round(pair[0]["floor_kb"] / 1024, 1), "floor_nx_mb": round(pair[1]["floor_kb"] / 1024, 1),
            "ratio": round(r, 3), "seconds_nx": round(pair[1]["seconds"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--factor", type=float, default=100.0)
    parser.add_argument("--source", default="salesforce",
                        choices=("salesforce", "mailchimp", "hubspot", "ga4", "linkedin_ads", "meta_ads", "google_ads"))
    parser.add_argument("--stream", action="append", default=[])
    parser.add_argument("--what-if-batch", type=int, default=5_000,
                        help="BATCH_ROWS for the extra loop-only run (0: skip it)")
    parser.add_argument("--no-breakdown", action="store_true", help="only the CLI figure")
    parser.add_argument("--post-sync", action="store_true", help="only the post-sync step (derive / KPIs / goals)")
    parser.add_argument("--what-if-cache", type=int, default=12,
                        help="MB of SQLite cache for the rebuild in the extra post-sync run (0: skip it)")
    args = parser.parse_args()
    if args.post_sync:
        print(f"{args.source}: post_sync on the warehouse a loop-only sync filled, 1x and {args.factor:g}x", flush=True)
        out: dict = {"bench": "memory-post-sync", "source": args.source, "factor": args.factor}
        post_sync_figures(args, out)
        print("RESULT " + json.dumps(out))
        return
    _, floor, _, _ = run_child([sys.executable, "-m", "funnelsync", "--help"],
                               {**os.environ, "PYTHONPATH": str(ROOT)}, ROOT)
    print(f"floor: `python -m funnelsync --help` peak RSS {floor / 1024:.1f} MB", flush=True)
    results = []
    for scale in (1.0, args.factor):
        r = measure(scale, args.source, args.stream)
        results.append(r)
        print(f"{args.source} at {scale:g}x: {r['records']:>9,} records, {r['requests']:>5,} requests, "
              f"{r['seconds']:6.1f} s, warehouse {r['db_mb']:7.1f} MB, exit {r['exit']}, "
              f"peak RSS {r['rss_kb'] / 1024:7.1f} MB", flush=True)
        if r["exit"] != 0:
            raise SystemExit(f"the sync at {scale:g}x failed (exit {r['exit']})")
    ratio = results[1]["rss_kb"] / results[0]["rss_kb"]
    above = (results[1]["rss_kb"] - floor) / max(1, results[0]["rss_kb"] - floor)
    print(f"ratio peak RSS {args.factor:g}x / 1x: {ratio:.2f}x   (goal <= 1.3x) {'MET' if ratio <= 1.3 else 'MISSED'}")
    print(f"(above the import floor: {above:.2f}x; records {results[1]['records'] / max(1, results[0]['records']):.0f}x)",
          flush=True)
    out = {"bench": "memory", "source": args.source, "factor": args.factor,
           "rss_1x_mb": round(results[0]["rss_kb"] / 1024, 1), "rss_nx_mb": round(results[1]["rss_kb"] / 1024, 1),
           "floor_mb": round(floor / 1024, 1), "records_1x": results[0]["records"],
           "records_nx": results[1]["records"], "ratio": round(ratio, 3), "goal": "<= 1.3x", "met": ratio <= 1.3}
    if not args.no_breakdown:
        print("\nwhere it goes (the same syncs without the derive / KPI step that `funnelsync sync` runs after them):")
        variants = [("loop only, as shipped", None, None)]
        if args.what_if_batch:
            variants.append((f"loop only, BATCH_ROWS={args.what_if_batch:,}", args.what_if_batch, None))
            variants.append(("  + SQLite cache_size 8 MB", args.what_if_batch, 8192))
        for label, batch, cache in variants:
            pair = [measure(scale, args.source, args.stream, mode="loop", batch=batch, cache_kb=cache)
                    for scale in (1.0, args.factor)]
            r = pair[1]["rss_kb"] / pair[0]["rss_kb"]
            print(f"  {label:36s} 1x {pair[0]['rss_kb'] / 1024:6.1f} MB, {args.factor:g}x {pair[1]['rss_kb'] / 1024:6.1f} MB"
                  f" ({pair[1]['seconds']:.0f} s): {r:.2f}x", flush=True)
            out["loop_batch_" + (str(batch) if batch else "default") + (f"_cache_{cache}kb" if cache else "")] = {
                "rss_1x_mb": round(pair[0]["rss_kb"] / 1024, 1), "rss_nx_mb": round(pair[1]["rss_kb"] / 1024, 1),
                "ratio": round(r, 3), "seconds_nx": round(pair[1]["seconds"], 1)}
        post_sync_figures(args, out)
        print("  => the full command peaks at the larger of its loop and its post-sync step (in one process, on top of "
              "what the loop left); the loop's own growth is its batch (BATCH_ROWS rows held until commit) and "
              "SQLite's page cache, which fills as the warehouse grows, up to cache_size; the post-sync step streams "
              "(Python holds one person / opportunity / account at a time, plus KPI aggregates: totals and channels by "
              "day, campaigns / sources / paths by week-within-month) and runs with a 2 MB SQLite cache, which also "
              "bounds each sorter (warehouse/sqlite.py REBUILD_CACHE_MB)")
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
