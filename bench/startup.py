"""Start-up time of `funnelsync --help` against `python -c pass`, median of several runs, side by side.

    python bench/startup.py [--runs 15]

Both commands run alternately as fresh processes (the installed `funnelsync` console script next to this Python,
else `python -m funnelsync`), after one untimed warm-up each (file-system cache). Goal: <= 4x `python -c pass`.
Also reported: `python -X importtime` of `--help`, the five slowest imports (what to make lazy if the goal slips).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def funnelsync_command() -> list[str]:
    script = Path(sys.executable).with_name("funnelsync")
    return [str(script), "--help"] if script.exists() else [sys.executable, "-m", "funnelsync", "--help"]


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def slowest_imports(env: dict, top: int = 5) -> list[tuple[str, float]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "funnelsync", "--help"], env=env,
                          capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and len(m.group(3)) <= 2:  # top-level imports only (cumulative time)
            rows.append((m.group(4), int(m.group(2)) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fs_cmd = funnelsync_command()
    base_cmd = [sys.executable, "-c", "pass"]
    timed(fs_cmd, env), timed(base_cmd, env)  # warm-up
    fs, base = [], []
    for _ in range(args.runs):
        base.append(timed(base_cmd, env))
        fs.append(timed(fs_cmd, env))
    fs_med, base_med = statistics.median(fs), statistics.median(base)
    ratio = fs_med / base_med
    print(f"python -c pass:     median {base_med * 1000:6.1f} ms  (min {min(base) * 1000:.1f}, max {max(base) * 1000:.1f}, "
          f"{args.runs} runs)")
    print(f"{' '.join(Path(fs_cmd[0]).name if i == 0 else c for i, c in enumerate(fs_cmd)):18s} median "
          f"{fs_med * 1000:6.1f} ms  (min {min(fs) * 1000:.1f}, max {max(fs) * 1000:.1f})")
    print(f"ratio: {ratio:.2f}x   (goal <= 4x) {'MET' if ratio <= 4 else 'MISSED'}")
    top = slowest_imports(env)
    print("slowest top-level imports of --help: " + ", ".join(f"{name} {s * 1000:.0f} ms" for name, s in top))
    print("RESULT " + json.dumps({"bench": "startup", "funnelsync_ms": round(fs_med * 1000, 1),
                                  "python_ms": round(base_med * 1000, 1), "ratio": round(ratio, 3), "goal": "<= 4x",
                                  "met": ratio <= 4, "slowest_imports": top}))


if __name__ == "__main__":
    main()
