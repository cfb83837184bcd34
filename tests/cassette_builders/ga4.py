"""Build cassettes/ga4/*.yaml: run the real connector (google-analytics-data REST transport) against an in-process
fake GA4 Data API and keep each request it sent with the answer the fake gave.

Run from the repository root: `/work/venv/bin/python tests/cassette_builders/ga4.py`.

Why this way: vcrpy matches on the request body, and the body of a runReport request is serialized by the SDK
(`$alt=json;enum-encoding=int`, int64 as strings, field order), so the cassette must hold exactly what the SDK
sends. `requests.adapters.HTTPAdapter.send` is replaced by the fake, which also checks that each request is the
one this scenario expects (date range, offset, limit), so a cassette cannot silently encode a wrong request.
The recorded interactions go through the same vcrpy filters as a live recording (funnelsync.replay): the
Authorization header, the JWT `assertion` form field and the token response's `access_token` become REDACTED.

Shapes, from the API reference:
- runReport: POST https://analyticsdata.googleapis.com/v1beta/properties/{property}:runReport; response
  RunReportResponse {dimensionHeaders[{name}], metricHeaders[{name,type}], rows[{dimensionValues[{value}],
  metricValues[{value}]}], rowCount, metadata{currencyCode,timeZone}, propertyQuota{tokensPerDay, tokensPerHour,
  concurrentRequests, serverErrorsPerProjectPerHour, potentiallyThresholdedRequestsPerHour,
  tokensPerProjectPerHour: QuotaStatus{consumed, remaining}}, kind "analyticsData#runReport"}
  (developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/RunReportResponse; proto3 JSON
  leaves out zero / empty fields: no `rows` and no `rowCount` on an empty report).
- errors: google.rpc.Status JSON {"error": {code, message, status}} (429 RESOURCE_EXHAUSTED for a spent token
  bucket, see .../data/v1/quotas; 401 UNAUTHENTICATED; 503 UNAVAILABLE).
- token: POST https://oauth2.googleapis.com/token, form grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer &
  assertion=<JWT> -> {"access_token", "expires_in", "token_type": "Bearer"} (developers.google.com/identity/
  protocols/oauth2/service-account#httprest).
The service-account key is generated here (RSA, cryptography) and never written anywhere.
"""
from __future__ import annotations

import inspect
import json
import random
import sys
import tempfile
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from requests.structures import CaseInsensitiveDict  # noqa: E402

from connectors import ga4  # noqa: E402
from connectors.core import Run  # noqa: E402
from connectors.errors import QuotaError  # noqa: E402
from funnelsync.replay import CASSETTES, make_vcr  # noqa: E402

PROPERTY = "123456789"
RUN_REPORT = f"https://analyticsdata.googleapis.com/v1beta/properties/{PROPERTY}:runReport"
TOKEN_URI = "https://oauth2.googleapis.com/token"
DATE_HEADER = "Mon, 01 Apr 2024 00:00:00 GMT"
JSON_HEADERS = {"Content-Type": "application/json; charset=UTF-8", "Vary": "Origin, X-Origin, Referer",
                "Server": "ESF", "Cache-Control": "private", "X-Content-Type-Options": "nosniff",
                "Date": DATE_HEADER}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}
METRIC_TYPES = (("sessions", "TYPE_INTEGER"), ("engagedSessions", "TYPE_INTEGER"), ("newUsers", "TYPE_INTEGER"),
                ("screenPageViews", "TYPE_INTEGER"), ("keyEvents", "TYPE_INTEGER"),
                ("userEngagementDuration", "TYPE_SECONDS"))


# ---- capture ------------------------------------------------------------------------------------------------


class Script:
    """The fake server: answers the requests in order, each step checking the request it gets."""

    def __init__(self, steps: list[Callable]):
        self.steps = list(steps)
        self.pairs: list[tuple] = []

    def send(self, adapter, request, **kwargs):
        if not self.steps:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        status, headers, body = self.steps.pop(0)(request)
        response = requests.Response()
        response.status_code = status
        response.reason = REASONS.get(status, "")
        response.headers = CaseInsensitiveDict(headers)
        response._content = body.encode("utf-8")
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        self.pairs.append((request, status, headers, body))
        return response


@contextmanager
def serve(script: Script):
    original = requests.adapters.HTTPAdapter.send
    requests.adapters.HTTPAdapter.send = lambda adapter, request, **kw: script.send(adapter, request, **kw)
    try:
        yield script
    finally:
        requests.adapters.HTTPAdapter.send = original
    if script.steps:
        raise AssertionError(f"{len(script.steps)} scripted responses were never requested")


def write_cassette(name: str, pairs: list[tuple]) -> Path:
    """Write the interactions through the replay filters, exactly as vcrpy would record them."""
    from vcr.cassette import Cassette
    from vcr.request import Request

    config = make_vcr("new_episodes").get_merged_config()
    accepted = inspect.signature(Cassette.__init__).parameters
    path = CASSETTES / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    cassette = Cassette(str(path), **{k: v for k, v in config.items() if k in accepted and k != "path"})
    for request, status, headers, body in pairs:
        req = Request(request.method, request.url, request.body, dict(request.headers))
        cassette.append(req, {"status": {"code": status, "message": REASONS.get(status, "")},
                              "headers": {k: [v] for k, v in headers.items()},
                              "body": {"string": body}})
    cassette._save(force=True)
    return path


# ---- fake API responses -------------------------------------------------------------------------------------


def token_step(request) -> tuple:
    assert request.url == TOKEN_URI, request.url
    form = dict(x.split("=", 1) for x in request.body.split("&"))
    assert form["grant_type"] == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer", form
    assert form["assertion"].count(".") == 2  # a signed JWT
    body = {"access_token": "ya29.c.fake-ga4-token", "expires_in": 3599, "token_type": "Bearer"}
    return 200, {"Content-Type": "application/json; charset=utf-8", "Date": DATE_HEADER}, json.dumps(body)


def quota(consumed_day: int, consumed_hour: int, day_limit: int = 200_000, hour_limit: int = 40_000,
          project_hour: int | None = None) -> dict:
    def status(consumed: int, limit: int) -> dict:
        out = {"consumed": consumed, "remaining": limit - consumed}
        return {k: v for k, v in out.items() if v}  # proto3 JSON drops zeros

    return {
        "tokensPerDay": status(consumed_day, day_limit),
        "tokensPerHour": status(consumed_hour, hour_limit),
        "concurrentRequests": status(0, 10),
        "serverErrorsPerProjectPerHour": status(0, 10),
        "potentiallyThresholdedRequestsPerHour": status(0, 120),
        "tokensPerProjectPerHour": status(project_hour if project_hour is not None else consumed_hour, 14_000),
    }


def report_step(rows: list[tuple], start: str, end: str, offset: int, limit: int, property_quota: dict,
                metric: str = "keyEvents") -> Callable:
    """A runReport answer for [start, end] at offset/limit over `rows` (date, 7 dimensions, 6 metrics)."""

    def step(request) -> tuple:
        assert request.url.startswith(RUN_REPORT + "?"), request.url
        assert request.headers["Content-Type"] == "application/json"
        body = json.loads(request.body)
        assert body["dateRanges"] == [{"startDate": start, "endDate": end}], body["dateRanges"]
        assert int(body.get("offset", 0)) == offset and int(body["limit"]) == limit, (body.get("offset"), body["limit"])
        assert [d["name"] for d in body["dimensions"]] == list(ga4.DIMENSIONS)
        assert [m["name"] for m in body["metrics"]] == [m if m != "keyEvents" else metric for m, _ in METRIC_TYPES]
        assert body["returnPropertyQuota"] is True
        lo, hi = start.replace("-", ""), end.replace("-", "")
        matching = sorted(r for r in rows if lo <= r[0] <= hi)
        page = matching[offset:offset + limit]
        out: dict = {
            "dimensionHeaders": [{"name": d} for d in ga4.DIMENSIONS],
            "metricHeaders": [{"name": m if m != "keyEvents" else metric, "type": t} for m, t in METRIC_TYPES],
        }
        if page:
            out["rows"] = [{"dimensionValues": [{"value": v} for v in r[:8]],
                            "metricValues": [{"value": str(v)} for v in r[8:]]} for r in page]
        if matching:
            out["rowCount"] = len(matching)
        out["metadata"] = {"currencyCode": "USD", "timeZone": "America/New_York"}
        out["propertyQuota"] = property_quota
        out["kind"] = "analyticsData#runReport"
        return 200, JSON_HEADERS, json.dumps(out, separators=(",", ":"))

    return step


def error_step(status: int, code: str, message: str) -> Callable:
    def step(request) -> tuple:
        assert request.url.startswith(RUN_REPORT + "?"), request.url
        return status, JSON_HEADERS, json.dumps({"error": {"code": status, "message": message, "status": code}})

    return step


# ---- scenarios ----------------------------------------------------------------------------------------------


def key_file(directory: str) -> str:
    """A throwaway service-account key generated now (never committed)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "funnelsync-test", "private_key_id": "0123456789abcdef",
            "private_key": pem, "client_email": "funnelsync@funnelsync-test.iam.gserviceaccount.com",
            "client_id": "100000000000000000001", "token_uri": TOKEN_URI}
    path = Path(directory) / "key.json"
    path.write_text(json.dumps(info))
    return str(path)


def row(day: str, source: str, medium: str, landing: str, group: str, metrics: tuple, campaign: str = "(not set)",
        content: str = "(not set)", term: str = "(not set)") -> tuple:
    return (day.replace("-", ""), source, medium, campaign, content, term, group, landing, *metrics)


def run(source: dict, now: datetime, start: date, state: dict | None = None, end: date | None = None):
    client = ga4.connect({"name": "ga4", "type": "ga4", "property_id": PROPERTY, **source})
    return list(ga4.fetch_report(client, Run(source=source, state=state, start=start, end=end, now=now)))


TWO_PAGE_ROWS = [
    row("2024-03-02", "google", "cpc", "/pricing", "Paid Search", (40, 24, 30, 80, 2, 1800), campaign="brand",
        term="funnelsync"),
    row("2024-03-02", "(direct)", "(none)", "/blog/dark-funnel-guide", "Direct", (6, 3, 5, 9, 0, 240)),
    row("2024-03-04", "l.messenger.com", "referral", "/blog/x", "Referral", (2, 1, 2, 4, 0, 95)),
    row("2024-03-06", "lnkd.in", "referral", "/blog/x", "Organic Social", (4, 2, 3, 6, 0, 130)),
    row("2024-03-06", "linkedin", "paid_social", "/ebook", "Paid Social", (9, 5, 8, 15, 1, 410), campaign="li-ebook",
        content="carousel-a"),
]


def two_pages(tmp: str) -> list:
    script = Script([token_step,
                     report_step(TWO_PAGE_ROWS, "2024-03-01", "2024-03-07", 0, 3, quota(14, 14)),
                     report_step(TWO_PAGE_ROWS, "2024-03-01", "2024-03-07", 3, 3, quota(28, 28))])
    with serve(script):
        pages = run({"credentials_file": key_file(tmp), "page_size": 3}, datetime(2024, 3, 8, 6, tzinfo=timezone.utc),
                    date(2024, 3, 1))
    assert [len(p.records) for p in pages] == [3, 2]
    return script.pairs


REREAD_V1 = [
    row("2024-03-05", "(direct)", "(none)", "/", "Direct", (20, 11, 9, 31, 0, 600)),
    row("2024-03-07", "google", "cpc", "/pricing", "Paid Search", (10, 6, 7, 18, 1, 420), campaign="brand"),
    row("2024-03-08", "google", "organic", "/blog/x", "Organic Search", (5, 3, 4, 7, 0, 150)),
    row("2024-03-09", "google", "cpc", "/pricing", "Paid Search", (8, 4, 6, 12, 0, 300), campaign="brand"),
]
# GA4 finished processing: 03-07 restated upwards, the 03-08 organic row moved to another landing page.
REREAD_V2 = [
    row("2024-03-07", "google", "cpc", "/pricing", "Paid Search", (12, 7, 8, 21, 2, 505), campaign="brand"),
    row("2024-03-08", "google", "organic", "/blog/dark-funnel-guide", "Organic Search", (5, 3, 4, 7, 0, 150)),
    row("2024-03-09", "google", "cpc", "/pricing", "Paid Search", (9, 5, 6, 13, 0, 330), campaign="brand"),
    row("2024-03-10", "(direct)", "(none)", "/blog/x", "Direct", (3, 1, 3, 3, 0, 45)),
    row("2024-03-11", "google", "cpc", "/pricing", "Paid Search", (7, 4, 5, 10, 1, 260), campaign="brand"),
]


def reread(tmp: str) -> list:
    script = Script([report_step(REREAD_V1, "2024-03-05", "2024-03-09", 0, 100000, quota(20, 20)),
                     report_step(REREAD_V2, "2024-03-07", "2024-03-11", 0, 100000, quota(40, 20))])
    with serve(script):
        first = run({"access_token": "test-token-ga4"}, datetime(2024, 3, 10, 5, tzinfo=timezone.utc),
                    date(2024, 3, 5))
        assert first[-1].state == {"last_day": "2024-03-09", "provisional_from": "2024-03-07"}, first[-1].state
        run({"access_token": "test-token-ga4"}, datetime(2024, 3, 12, 5, tzinfo=timezone.utc), date(2024, 3, 5),
            state=first[-1].state)
    return script.pairs


QUOTA_ROWS = [
    row("2024-03-03", "google", "cpc", "/pricing", "Paid Search", (30, 20, 25, 60, 2, 1500), campaign="brand"),
    row("2024-03-10", "google", "cpc", "/pricing", "Paid Search", (33, 21, 27, 64, 3, 1640), campaign="brand"),
]


def quota_stop(tmp: str) -> list:
    script = Script([report_step(QUOTA_ROWS, "2024-03-01", "2024-03-07", 0, 100000, quota(150_000, 36_500)),
                     report_step(QUOTA_ROWS, "2024-03-08", "2024-03-14", 0, 100000, quota(150_020, 20))])
    source = {"access_token": "test-token-ga4", "window_days": 7}
    with serve(script):
        client = ga4.connect({"name": "ga4", "type": "ga4", "property_id": PROPERTY, **source})
        pages = []
        try:
            for page in ga4.fetch_report(client, Run(source=source, state=None, start=date(2024, 3, 1),
                                                     now=datetime(2024, 3, 15, 6, tzinfo=timezone.utc))):
                pages.append(page)
        except QuotaError:
            pass
        else:
            raise AssertionError("the quota stop did not happen")
        run(source, datetime(2024, 3, 15, 7, 5, tzinfo=timezone.utc), date(2024, 3, 1), state=pages[-1].state)
    return script.pairs


def token_refresh(tmp: str) -> list:
    rows = TWO_PAGE_ROWS[:2]
    script = Script([token_step,
                     error_step(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected "
                                "OAuth 2 access token, login cookie or other valid authentication credential. See "
                                "https://developers.google.com/identity/sign-in/web/devconsole-project."),
                     token_step,
                     report_step(rows, "2024-03-01", "2024-03-07", 0, 100000, quota(14, 14))])
    with serve(script):
        pages = run({"credentials_file": key_file(tmp)}, datetime(2024, 3, 8, 6, tzinfo=timezone.utc),
                    date(2024, 3, 1))
    assert [len(p.records) for p in pages] == [2]
    return script.pairs


def rate_limited(tmp: str) -> list:
    script = Script([error_step(429, "RESOURCE_EXHAUSTED", "Exhausted property tokens per hour for a project per "
                                "property. These quota tokens will return in under an hour. To learn more, see "
                                "https://developers.google.com/analytics/devguides/reporting/data/v1/quotas")])
    with serve(script):
        try:
            run({"access_token": "test-token-ga4"}, datetime(2024, 3, 8, 6, tzinfo=timezone.utc), date(2024, 3, 1))
        except QuotaError:
            pass
        else:
            raise AssertionError("429 did not stop the stream")
    return script.pairs


def server_error(tmp: str) -> list:
    rows = TWO_PAGE_ROWS[:1]
    script = Script([error_step(503, "UNAVAILABLE", "The service is currently unavailable."),
                     report_step(rows, "2024-03-01", "2024-03-07", 0, 100000, quota(14, 14))])
    with serve(script):
        pages = run({"access_token": "test-token-ga4"}, datetime(2024, 3, 8, 6, tzinfo=timezone.utc), date(2024, 3, 1))
    assert [len(p.records) for p in pages] == [1]
    return script.pairs


# ---- demo: Q1 2024 of a B2B site ----------------------------------------------------------------------------

DEMO_SPEC = [  # source, medium, campaign, content, term, channel group, landing, every n days, sessions range
    ("google", "cpc", "brand", "(not set)", "funnelsync", "Paid Search", "/pricing", 1, (8, 18)),
    ("google", "organic", "(organic)", "(not set)", "(not provided)", "Organic Search", "/blog/x", 2, (10, 16)),
    ("(direct)", "(none)", "(direct)", "(not set)", "(not set)", "Direct", "/", 2, (4, 9)),
    ("(direct)", "(none)", "(direct)", "(not set)", "(not set)", "Direct", "/blog/dark-funnel-guide", 3, (2, 6)),
    ("linkedin", "paid_social", "li-ebook-q1", "carousel-a", "(not set)", "Paid Social", "/ebook", 3, (3, 8)),
    ("l.messenger.com", "referral", "(referral)", "(not set)", "(not set)", "Referral", "/blog/x", 7, (1, 3)),
    ("lnkd.in", "referral", "(referral)", "(not set)", "(not set)", "Organic Social", "/blog/x", 7, (2, 5)),
    ("newsletter", "email", "feb-newsletter", "(not set)", "(not set)", "Email", "/webinar/pipeline-math", 14, (6, 12)),
]
# Spec §7's GA4 rows for 2024-02-01 (sessions, engaged, page views, new users, key events) are used verbatim.
SPEC_DAY = {
    ("google", "cpc", "/pricing"): (400, 240, 300, 800, 8),
    ("linkedin", "paid_social", "/ebook"): (90, 45, 80, 150, 2),
    ("google", "organic", "/blog/x"): (300, 150, 250, 600, 3),
    ("(direct)", "(none)", "/"): (100, 60, 40, 250, 1),
    ("(direct)", "(none)", "/blog/dark-funnel-guide"): (60, 30, 50, 90, 0),
    ("l.messenger.com", "referral", "/blog/x"): (10, 5, 10, 20, 0),
    ("lnkd.in", "referral", "/blog/x"): (40, 20, 30, 60, 0),
}


def demo_rows() -> list[tuple]:
    rng = random.Random(2024)
    rows = []
    day = date(2024, 1, 1)
    while day <= date(2024, 3, 31):
        n = (day - date(2024, 1, 1)).days
        for source, medium, campaign, content, term, group, landing, every, (lo, hi) in DEMO_SPEC:
            spec = SPEC_DAY.get((source, medium, landing)) if day == date(2024, 2, 1) else None
            if spec:
                sessions, engaged, new, views, key = spec
            elif n % every:
                continue
            else:
                sessions = rng.randint(lo, hi)
                engaged = rng.randint(sessions // 3, sessions)
                new = rng.randint(sessions // 2, sessions)
                views = sessions + rng.randint(0, sessions * 2)
                key = rng.randint(0, max(0, sessions // 6))
            duration = engaged * rng.randint(40, 140)
            rows.append((day.strftime("%Y%m%d"), source, medium, campaign, content, term, group, landing,
                         sessions, engaged, new, views, key, duration))
        day += timedelta(days=1)
    return rows


def demo(tmp: str) -> list:
    rows = demo_rows()
    windows = [("2024-01-01", "2024-01-30"), ("2024-01-31", "2024-02-29"), ("2024-03-01", "2024-03-30"),
               ("2024-03-31", "2024-03-31")]
    script = Script([report_step(rows, a, b, 0, 100000, quota(25 * (i + 1), 25 * (i + 1)))
                     for i, (a, b) in enumerate(windows)])
    with serve(script):
        pages = run({"access_token": "demo-token-ga4"}, datetime(2024, 4, 1, tzinfo=timezone.utc), date(2024, 1, 1))
    assert sum(len(p.records) for p in pages) == len(rows)
    print(f"demo: {len(rows)} GA4 rows")
    return script.pairs


SCENARIOS = {
    "ga4/two_pages.yaml": two_pages,
    "ga4/reread.yaml": reread,
    "ga4/quota_stop.yaml": quota_stop,
    "ga4/token_refresh.yaml": token_refresh,
    "ga4/rate_limited.yaml": rate_limited,
    "ga4/server_error.yaml": server_error,
    "ga4/demo.yaml": demo,
}


def main(names: list[str]) -> None:
    import connectors.http

    connectors.http.SLEEP = lambda seconds: None
    for name, build in SCENARIOS.items():
        if names and name not in names:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = write_cassette(name, build(tmp))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
