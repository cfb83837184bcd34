"""Multi-touch attribution (spec §5): every model of §5.2 for the `pipeline` and `revenue` targets.

Scope (§5.1): the touches (Touch = yes event types, §2) of every person in `opportunity_people`, ordered by
`(occurred_at, event_id)`, with `created_at − lookback_days ≤ occurred_at ≤ t_c`; `t_c` = `created_at` (pipeline) or
the close (revenue, won opportunities only; a date-only `close_date` counts to 23:59:59 local of that day so touches
on the close day are in). Anchors: first = t[0]; lead = last touch ≤ the earliest `lead_created` of the linked
people; opp = last touch ≤ `created_at`; close = last touch ≤ close; last = opp (pipeline) / close (revenue); an
anchor with no touch on or before its point is t[0].

Weights (§5.3): anchor weights add up on shared touches; the middle share is split over the touches holding no
anchor role of the model, and when there are none the anchor weights are renormalized. `time_decay`:
`2^(−Δ/half_life)` normalized (computed relative to the latest touch, which only cancels out and avoids underflow).
`hybrid_self_reported`: α to a synthetic touch (`touch_event_id` NULL) of the opportunity's self-reported channel
SR(o) (§5.4) and (1 − α) × the base model; no answer ⇒ the base model. No linked people or no touch in the window ⇒
one row `channel='unattributed', credit=1`. Zero-weight touches (e.g. the middle of `first_touch`) get no row.

`credited_amount` = credit × amount converted to the reporting currency at the conversion date (NULL when there is
no fx rate; `derive` returns the warning). `conversion_at` = `created_at` (pipeline) / `closed_at` (revenue).
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from normalize.events import date_only, end_of_local_day, local_date
from normalize.model import Model
from warehouse.derive import DIALECTS, UNATTRIBUTED, dialect, merge_groups, stream, ts

MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "full_path", "time_decay", "j_shaped",
          "inverse_j", "hybrid_self_reported")
TARGETS = ("pipeline", "revenue")
REVENUE_ONLY = ("full_path",)
# model -> (anchor weights, middle share)
POSITION: dict[str, tuple[dict[str, float], float]] = {
    "first_touch": ({"first": 1.0}, 0.0),
    "last_touch": ({"last": 1.0}, 0.0),
    "u_shaped": ({"first": 0.4, "last": 0.4}, 0.2),
    "w_shaped": ({"first": 0.3, "lead": 0.3, "opp": 0.3}, 0.1),
    "full_path": ({"first": 0.225, "lead": 0.225, "opp": 0.225, "close": 0.225}, 0.1),
    "j_shaped": ({"first": 0.2, "last": 0.6}, 0.2),
    "inverse_j": ({"first": 0.6, "last": 0.2}, 0.2),
}
COLUMNS = ("model", "target", "opportunity_key", "touch_event_id", "channel", "campaign_key", "credit",
           "credited_amount", "conversion_at")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text[:19])


def _last_at_or_before(times: list[str], point: str | None) -> int:
    """Index of the last touch at or before `point`; t[0] when none (or no point)."""
    if point is None:
        return 0
    best = -1
    for i, t in enumerate(times):
        if t <= point:
            best = i
        else:
            break
    return max(best, 0)


def position_weights(name: str, n: int, anchors: dict[str, int]) -> list[float]:
    """§5.3 for one position model over n ordered touches; `anchors` maps role -> touch index."""
    roles, middle_share = POSITION[name]
    w = [0.0] * n
    held = set()
    for role, x in roles.items():
        i = anchors[role]
        w[i] += x
        held.add(i)
    middle = [i for i in range(n) if i not in held]
    if middle:
        share = middle_share / len(middle)
        for i in middle:
            w[i] += share
    else:
        s = sum(w)
        w = [x / s for x in w]
    return w


def time_decay_weights(times: list[str], half_life_days: float) -> list[float]:
    latest = _dt(times[-1])
    raw = [2.0 ** (-((latest - _dt(t)).total_seconds() / 86400.0) / half_life_days) for t in times]
    s = sum(raw)
    return [x / s for x in raw]


def model_weights(name: str, times: list[str], anchors: dict[str, int], model: Model) -> list[float]:
    n = len(times)
    if name == "linear":
        return [1.0 / n] * n
    if name == "time_decay":
        return time_decay_weights(times, model.half_life_days)
    return position_weights(name, n, anchors)


def self_reported_of(people: list[str], lead_at: dict[str, str], sr_channel: dict[str, str]) -> str | None:
    """SR(o): the answer of the linked person with the earliest lead_created among those who answered (tie: lowest
    person_key; people without lead_created sort last)."""
    answered = sorted((lead_at.get(pk) or "~", pk) for pk in people if sr_channel.get(pk))
    return sr_channel[answered[0][1]] if answered else None


def linked_people(conn: Any) -> Iterator[tuple]:
    """(opportunity_key, person_key, self_reported_channel, earliest lead_created occurred_at) of every
    `opportunity_people` row, streamed by opportunity then person (the inputs of `self_reported_of`)."""
    c = DIALECTS[dialect(conn)]["order_c"]
    return stream(conn, f"SELECT op.opportunity_key, op.person_key, p.self_reported_channel, (SELECT "
                        f"MIN(e.occurred_at) FROM events e WHERE e.person_key = op.person_key AND e.event_type = "
                        f"'lead_created') FROM opportunity_people op LEFT JOIN people p ON p.person_key = "
                        f"op.person_key ORDER BY op.opportunity_key{c}, op.person_key{c}")


def self_reported_by_opportunity(conn: Any) -> Iterator[tuple[str, str]]:
    """(opportunity_key, SR(o)) of the opportunities with a self-reported channel, by opportunity_key."""
    for ok, rows in merge_groups(linked_people(conn)):
        sr = self_reported_of([r[1] for r in rows], {r[1]: ts(r[3]) for r in rows if r[3] is not None},
                              {r[1]: r[2] for r in rows if r[2]})
        if sr:
            yield ok, sr


def compute(model: Model, opps: dict[str, dict], people_of: dict[str, list[str]], touches: dict[str, list[tuple]],
            lead_at: dict[str, str], sr_channel: dict[str, str], fx: Any) -> list[tuple]:
    """All credit rows (tuples in COLUMNS order), deterministic order.

    opps: opportunity_key -> {created_at, closed_at, close_date, is_won, amount, currency}; touches: person ->
    sorted [(occurred_at, event_id, channel, campaign_key)]; lead_at: person -> earliest lead_created;
    sr_channel: person -> self_reported_channel (non-NULL only).
    """
    tz = model.timezone
    base_name = model.hybrid_base_model
    alpha = model.hybrid_alpha
    out: list[tuple] = []
    for ok in sorted(opps):
        o = opps[ok]
        created = o["created_at"]
        if not created:
            continue
        linked = sorted(people_of.get(ok, ()))
        start = (_dt(created) - timedelta(days=model.lookback_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        allt = sorted({t for pk in linked for t in touches.get(pk, ())}, key=lambda t: (t[0], t[1]))
        lead_points = [lead_at[pk] for pk in linked if pk in lead_at]
        lead_point = min(lead_points) if lead_points else None
        sr = self_reported_of(linked, lead_at, sr_channel)
        targets = [("pipeline", created, created)]
        if o["is_won"] and (o["closed_at"] or o["close_date"]):
            midnight = date_only(o["close_date"], tz) if o["close_date"] else None
            conv = o["closed_at"] or midnight
            # a date-only close (Salesforce CloseDate: closed_at is that day's local midnight) lets touches of the
            # close day count (spec §5.1); a close with a time of day (HubSpot closedate) ends the window there
            t_close = end_of_local_day(o["close_date"], tz) if conv == midnight else conv
            targets.append(("revenue", t_close, conv))
        for target, t_c, conv in targets:
            window = [t for t in allt if start <= t[0] <= t_c]
            amount = fx.convert(o["amount"], o["currency"], local_date(conv, tz)) if o["amount"] is not None else None
            times = [t[0] for t in window]
            anchors = {}
            if window:
                opp_i = _last_at_or_before(times, created)
                close_i = _last_at_or_before(times, t_c) if target == "revenue" else opp_i
                anchors = {"first": 0, "lead": _last_at_or_before(times, lead_point) if lead_point else 0,
                           "opp": opp_i, "close": close_i, "last": close_i if target == "revenue" else opp_i}
            for name in MODELS:
                if target == "pipeline" and name in REVENUE_ONLY:
                    continue
                base = base_name if name == "hybrid_self_reported" else name
                if window:
                    w = model_weights(base, times, anchors, model)
                    rows = [(t[1], t[2], t[3], x) for t, x in zip(window, w) if x > 0]
                else:
                    rows = [(None, UNATTRIBUTED, None, 1.0)]
                if name == "hybrid_self_reported" and sr:
                    rows = [(eid, ch, camp, x * (1.0 - alpha)) for eid, ch, camp, x in rows]
                    rows.append((None, sr, None, alpha))
                for eid, ch, camp, x in rows:
                    out.append((name, target, ok, eid, ch, camp, x, None if amount is None else x * amount, conv))
    return out


def summarize(conn: Any, model: Model, start: str, end: str, model_name: str | None = None,
              target: str = "pipeline", by: str = "channel") -> list[dict]:
    """Credited amount and credit per channel (or campaign_key) over conversions with local date in [start, end]."""
    name = model_name or model.default_model
    col = "campaign_key" if by == "campaign" else "channel"
    tz = model.timezone
    totals: dict[Any, list[float]] = {}
    for key, conv, credit, amount in stream(
        conn, f"SELECT {col}, conversion_at, credit, credited_amount FROM attribution_credits "
              f"WHERE model = ? AND target = ?", (name, target)):
        if conv is None:
            continue
        d = local_date(conv if isinstance(conv, str) else conv.strftime("%Y-%m-%dT%H:%M:%SZ"), tz)
        if start <= d <= end:
            t = totals.setdefault(key, [0.0, 0.0])
            t[0] += credit or 0.0
            t[1] += amount or 0.0
    return [{"model": name, "target": target, by: k, "credit": v[0], "credited_amount": v[1]}
            for k, v in sorted(totals.items(), key=lambda kv: (-kv[1][1], str(kv[0])))]
