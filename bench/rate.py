"""Achieved request rate while the sandbox enforces 100 requests per 10 s (sliding window), real sleeps.

    python bench/rate.py [--limit 100] [--window 10]

The sandbox (tests/sandbox) answers beyond the window with each platform's throttle answer and Retry-After; the
connectors pace themselves with connectors.http.Pacer (a sliding window per source) and really sleep (SLEEP is
time.sleep here). Each case is a real sync (funnelsync.sync.sync_source into a SQLite warehouse), side by side in
one run. The rate is measured over whole windows: requests served in the first k x `window` seconds of the sync
(k = as many whole windows as the sync lasted, at least 2) divided by k x `window`; a sliding-window pacer may
burst and idle inside a window, so a partial window would flatter or penalize it. The overall rate (all requests
/ the whole sync) is printed too. Goal: rate >= 90 % of the limit, with no 429 storm (refused requests <= 1 % of
those sent).
How each connector's pacing is set (connectors/*.py):
- LinkedIn and Meta: source setting `requests_per_second` (10 = the limit); Meta also slows down on its own when
  its usage headers (here: the share of the sandbox's window in use) pass `usage_threshold` (75 %).
- HubSpot: fixed in the connector, 90 requests / 10 s for every request plus 4 searches / s (HubSpot documents
  100-190 / 10 s and 5 searches / s); no setting. Measured on email events (the requests-based path).
- Salesforce, Mailchimp, GA4: no pacing at all; Google Ads: fixed 5 / s. Mailchimp runs as the unpaced example.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_case(name: str, api: str, streams: tuple[str, ...], sizes: dict, limit: int, window: float,
             settings: dict | None = None, patch=None) -> dict:
    from tests.sandbox import RateLimit, Sandbox
    from tests.sandbox.harness import sync

    with Sandbox(sizes=sizes) as sb, tempfile.TemporaryDirectory(prefix="funnelsync-rate-") as tmp:
        os.environ.update(sb.ca_env())
        restore = patch() if patch else None
        sb.rate_limits.append(RateLimit(limit, window))
        t = time.perf_counter()
        results = sync(sb, api, Path(tmp) / "wh.db", streams=streams, **(settings or {}))
        elapsed = time.perf_counter() - t
        if restore:
            restore()
        served = sb.stats.total("served")
        refused = sb.stats.total("rate_limited")
        log = [e for e in sb.stats.requests() if e.api != "google_oauth"]
        t0, t_end = log[0].at, log[-1].at
        k = int((t_end - t0) // window)
        if k < 2:
            raise SystemExit(f"{name}: the sync lasted {t_end - t0:.1f} s, under two windows; give it more data")
        steady = [e for e in log if e.at < t0 + k * window and e.outcome == "ok"]
        steady_rate = len(steady) / (k * window)
        status = ", ".join(sorted({r.status for r in results}))
        return {"case": name, "served": served, "refused": refused, "seconds": round(elapsed, 2),
                "overall_rate_per_s": round(served / elapsed, 3), "steady_rate_per_s": round(steady_rate, 3),
                "share_of_limit": steady_rate / (limit / window),
                "refused_share": refused / max(1, served + refused), "status": status,
                "records": sum(r.records for r in results)}


def hubspot_small_pages():
    """HubSpot reads email events 1,000 per request; ask 100 so the run is long enough to measure the pacing."""
    import connectors.hubspot

    real = connectors.hubspot.connect

    def connect(source):
        client = real(source)
        client.email_events_limit = 100
        return client

    connectors.hubspot.connect = connect

    def restore():
        connectors.hubspot.connect = real

    return restore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    per_second = args.limit / args.window
    cases = [
        ("LinkedIn ad_analytics, requests_per_second=10", "linkedin_ads", ("ad_analytics",),
         {"linkedin_ads.campaigns": 3, "linkedin_ads.accounts": 2},
         {"requests_per_second": per_second, "window_days": 1}, None),
        ("Meta insights, requests_per_second=10", "meta_ads", ("insights",), {"meta_ads.campaigns": 3},
         {"requests_per_second": per_second, "window_days": 1, "page_size": 1}, None),
        ("HubSpot email events, fixed 90/10 s", "hubspot", ("email_events",), {"hubspot.email_events": 25_000},
         None, hubspot_small_pages),
        ("Mailchimp members, no pacing", "mailchimp", ("list_members",),
         {"mailchimp.members": 25_000, "mailchimp.lists": 1}, {"page_size": 100}, None),
    ]
    rows = []
    for name, api, streams, sizes, settings, patch in cases:
        r = run_case(name, api, streams, sizes, args.limit, args.window, settings, patch)
        rows.append(r)
        met = r["share_of_limit"] >= 0.9 and r["refused_share"] <= 0.01
        print(f"{name:46s} {r['served']:4d} served, {r['refused']:3d} refused (429/throttle) in {r['seconds']:6.1f} s;"
              f" {r['steady_rate_per_s']:5.2f}/s over whole windows = {r['share_of_limit']:6.1%} of the limit (overall "
              f"{r['overall_rate_per_s']:5.2f}/s) [{r['status']}]  {'MET' if met else 'MISSED'}", flush=True)
    head = rows[0]
    met = head["share_of_limit"] >= 0.9 and head["refused_share"] <= 0.01
    print(f"\nrate at a limit of {args.limit}/{args.window:g} s, LinkedIn paced at the limit: "
          f"{head['share_of_limit']:.1%} of the limit, {head['refused']} refused   (goal >= 90%, no 429 storm) "
          f"{'MET' if met else 'MISSED'}")
    print("RESULT " + json.dumps({"bench": "rate", "limit": args.limit, "window_s": args.window,
                                  "share_of_limit": round(head["share_of_limit"], 4), "refused": head["refused"],
                                  "goal": ">= 90% of the limit, no 429 storm", "met": met, "cases": rows}))


if __name__ == "__main__":
    main()
