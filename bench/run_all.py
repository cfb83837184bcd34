"""Run every benchmark (each in its own process, output shown as it goes) and print a summary table.

    python bench/run_all.py [--quick] [--only NAME ...]

Full parameters by default (pipeline 1,000,000 records incl. dlt, memory at 100x, incremental at 50,000 records,
rate at 100 requests / 10 s, startup 15 runs): expect tens of minutes on a small machine, most of it dlt and the
100x memory syncs. `--quick` shrinks the volumes (pipeline 100,000, memory 10x, incremental 20,000): the ratios
are then indicative only and the summary says so. Each benchmark prints a last line `RESULT {json}`; a benchmark
that fails is reported as such and the others still run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = {"pipeline": [], "memory": [], "incremental": [], "rate": [], "startup": []}
QUICK = {"pipeline": ["100000"], "memory": ["--factor", "10"], "incremental": ["--records", "20000"], "rate": [],
         "startup": ["--runs", "7"]}


def run(name: str, args: list[str]) -> tuple[dict | None, float]:
    print(f"\n=== bench/{name}.py {' '.join(args)}", flush=True)
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(HERE / f"{name}.py"), *args], stdout=subprocess.PIPE, text=True)
    result = None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
        else:
            print(line, end="", flush=True)
    proc.wait()
    if proc.returncode != 0:
        print(f"bench/{name}.py exited {proc.returncode}", flush=True)
    return result, time.perf_counter() - t


def rows_for(name: str, r: dict | None) -> list[tuple[str, str, str, str]]:
    if r is None:
        return [(name, "failed (no result)", "", "FAILED")]

    def mark(ok):
        return "n/a" if ok is None else ("MET" if ok else "MISSED")

    if name == "pipeline":
        out = [("pipeline vs bare sqlite3", f"{r['ratio_vs_bare']:.2f}x slower ({r['records']:,} {r['stream']})",
                r["goal_vs_bare"], mark(r["met_vs_bare"]))]
        speed = f"{r['speedup_vs_dlt']:.2f}x faster" if r.get("speedup_vs_dlt") else "dlt not installed"
        out.append(("pipeline vs dlt", speed, ">= 8x faster", mark(r["met_vs_dlt"])))
        return out
    if name == "memory":
        return [("memory", f"peak RSS {r['factor']:g}x / 1x = {r['ratio']:.2f}x ({r['rss_1x_mb']} -> {r['rss_nx_mb']} MB, "
                           f"{r['source']})", "<= 1.3x" + ("" if r["factor"] == 100 else f" (at 100x; ran {r['factor']:g}x)"),
                 mark(r["met"]))]
    if name == "incremental":
        return [("incremental", f"{r['ratio']:.2%} of a full sync's requests (HubSpot contacts, {r['records']:,})",
                 r["goal"], mark(r["met"]))]
    if name == "rate":
        return [("rate", f"{r['share_of_limit']:.1%} of {r['limit']}/{r['window_s']:g} s, {r['refused']} refused "
                         "(LinkedIn paced at the limit)", ">= 90%, no 429 storm", mark(r["met"]))]
    if name == "startup":
        return [("startup", f"{r['ratio']:.2f}x ({r['funnelsync_ms']} ms vs {r['python_ms']} ms)", r["goal"],
                 mark(r["met"]))]
    return [(name, json.dumps(r)[:60], "", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes (indicative ratios only)")
    parser.add_argument("--only", action="append", choices=sorted(FULL), help="run only these (repeatable)")
    args = parser.parse_args()
    params = QUICK if args.quick else FULL
    table = []
    started = time.perf_counter()
    for name in args.only or list(FULL):
        result, seconds = run(name, params[name])
        for row in rows_for(name, result):
            table.append(row + (f"{seconds:.0f} s",))
    header = ("benchmark", "figure", "goal", "result", "time")
    widths = [max(len(str(r[i])) for r in table + [header]) for i in range(len(header))]
    print("\n" + ("QUICK RUN: volumes reduced, ratios indicative only\n" if args.quick else ""))
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
