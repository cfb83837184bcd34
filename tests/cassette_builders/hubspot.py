"""Write cassettes/hubspot/*.yaml by running the real connector (connectors/hubspot.py) against a small in-memory
fake of HubSpot's API, so every recorded request (search bodies included, which vcrpy matches) is byte for byte what
the connector sends.

Run once from the repository root: `/work/venv/bin/python tests/cassette_builders/hubspot.py`; commit the YAML.

How: `urllib3.connectionpool.HTTPConnectionPool.urlopen` (under both the SDK's urllib3 PoolManager and requests) is
replaced by a function that answers from `FakeHubSpot` and records the exchange; the exchanges are serialized with
vcrpy's own serializer (Authorization filtered to REDACTED, as funnelsync/replay.py would on a live recording).

Where the shapes come from:
- CRM search `POST /crm/v3/objects/{type}/search`: request {filterGroups: [{filters: [{propertyName, operator,
  value}]}], sorts: [{propertyName, direction}], properties, limit, after}; response {total, results: [{id,
  properties (the requested ones, null when unset, plus hs_object_id, createdate and the last-modified property),
  createdAt, updatedAt, archived}], paging: {next: {after}}} -- developers.hubspot.com/docs/guides/api/crm/search,
  SDK hubspot/crm/contacts/models/{public_object_search_request,filter,filter_group,
  collection_response_with_total_simple_public_object_forward_paging,simple_public_object,forward_paging,
  next_page}.py. Past 10,000 results the API answers HTTP 400; the fake does too.
- Archived list `GET /crm/v3/objects/{type}?limit=&after=&properties=..&archived=true`: {results: [{id, properties,
  createdAt, updatedAt, archived: true, archivedAt}], paging: {next: {after, link}}} -- SDK basic_api.get_page,
  models/collection_response_simple_public_object_with_associations_forward_paging.py.
- Associations `POST /crm/v4/associations/{from}/{to}/batch/read` {inputs: [{id, after?}]} -> {status, results:
  [{from: {id}, to: [{toObjectId, associationTypes: [{category, typeId, label}]}], paging?}], startedAt,
  completedAt}; objects without associations come back under `errors` with HTTP 207 -- SDK
  hubspot/crm/associations/v4/models/batch_response_public_association_multi_with_label*.py and
  developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/batch/get-associations.
- Email events `GET /email/public/v1/events?startTimestamp=&endTimestamp=&limit=&offset=` -> {hasMore, offset,
  events: [{id, created, type, recipient, portalId, appId, appName, emailCampaignId, sentBy, ...type fields}]} --
  developers.hubspot.com/docs/api-reference/legacy/email-analytics-v1/guide (BOUNCE category, CLICK url,
  STATUSCHANGE subscriptions/portalSubscriptionStatus/source, filteredEvent).
- Forms `GET /marketing/v3/forms/?limit=` -> {results: [{id, name, formType, createdAt, updatedAt, archived,
  fieldGroups}], paging}; submissions `GET /form-integrations/v1/submissions/forms/{guid}?limit=&after=` ->
  {results: [{conversionId, submittedAt, values: [{name, value}], pageUrl}], paging: {next: {after, link}}},
  newest first -- developers.hubspot.com/docs/api-reference/legacy/marketing/forms/v1/
  get-form-integrations-v1-submissions-forms-form_guid.
- Errors: HubSpot's JSON error body {status: "error", message, correlationId, category}; 429 adds errorType
  RATE_LIMIT / policyName and a Retry-After header.
Test scenarios shrink page sizes and the 10,000 cap through the client's attributes (`page_size`, `search_cap`,
...) so cassettes stay a few kB; demo.yaml uses HubSpot's real values. All people and ids are invented.
"""
from __future__ import annotations

import base64
import io
import json
import random
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# run as a script, this directory is sys.path[0] and this file would shadow the SDK package `hubspot`
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from vcr.request import Request
from vcr.serialize import serialize
from vcr.serializers import yamlserializer

import connectors.http
from connectors import hubspot
from connectors.core import Run

OUT = ROOT / "cassettes" / "hubspot"
TOKEN = "test-token-hubspot"
PORTAL = 4711001
JSON_TYPE = "application/json;charset=utf-8"
SOURCE = {"name": "hubspot", "type": "hubspot", "access_token": TOKEN}



def demo_source() -> dict:
    """What funnelsync/sync.py `connector_source` hands the connector in `funnelsync demo`: the source table plus
    the demo model's sqo_stages (Salesforce StageNames there, which name no HubSpot property) and self-report field."""
    import tomllib

    model = tomllib.loads((ROOT / "funnelsync" / "demo" / "funnelsync.toml").read_text()).get("model", {})
    return {**SOURCE, "start_date": "2024-01-01", "sqo_stages": list(model.get("sqo_stages", [])),
            "self_report_property": model.get("self_report_fields", {}).get("hubspot")}
NOW = datetime(2024, 4, 1, tzinfo=UTC)
REASONS = {200: "OK", 207: "Multi-Status", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}
CURSOR = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate"}
DATE_PROPS = {"lastmodifieddate", "hs_lastmodifieddate", "createdate", "closedate"}


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def ts(text: str) -> datetime:
    """'2024-01-05 10:00' or '2024-01-05 10:00:00.250' (UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---- the fake API ----------------------------------------------------------------------------------------------


class Fault:
    """Answer the next `count` requests whose method and path match with an error."""

    def __init__(self, method: str, path: str, status: int, count: int = 1, headers: dict | None = None,
                 body: dict | None = None):
        self.method, self.path, self.status, self.count = method, path, status, count
        self.headers = headers or {}
        self.body = body


class FakeHubSpot:
    def __init__(self) -> None:
        self.objects: dict[str, list[dict]] = {"contacts": [], "companies": [], "deals": []}
        self.associations: dict[tuple[str, str], dict[str, list[tuple[str, int, str | None]]]] = {}
        self.email_events: list[dict] = []
        self.forms: list[dict] = []
        self.submissions: dict[str, list[dict]] = {}
        self.faults: list[Fault] = []
        self.seq = 0
        self.requests = 0
        self.after_request: Callable[[int], None] | None = None  # called with the request count: change the data

    # -- data --

    def add(self, kind: str, oid: int | str, created: datetime | None, modified: datetime,
            archived_at: datetime | None = None,
            **props: Any) -> dict:
        record = {"id": str(oid), "created": created, "modified": modified, "archived_at": archived_at,
                  "props": {k: v for k, v in props.items()}}
        self.objects[kind].append(record)
        return record

    def associate(self, deal_id: int | str, to_type: str, to_id: int | str, primary: bool = False) -> None:
        table = self.associations.setdefault(("deals", to_type), {})
        type_id, label = (3, None) if to_type == "contacts" else ((5, "Primary") if primary else (341, None))
        table.setdefault(str(deal_id), []).append((str(to_id), type_id, label))

    # -- dispatch --

    def handle(self, method: str, url: str, body: bytes | None) -> tuple[int, dict, Any]:
        answer = self.answer(method, url, body)
        self.requests += 1
        if self.after_request:
            self.after_request(self.requests)
        return answer

    def answer(self, method: str, url: str, body: bytes | None) -> tuple[int, dict, Any]:
        parts = urlsplit(url)
        path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
        for fault in self.faults:
            if fault.count > 0 and fault.method == method and path.startswith(fault.path):
                fault.count -= 1
                return fault.status, fault.headers, fault.body or self.error_body(fault.status)
        data = json.loads(body) if body else None
        segs = path.strip("/").split("/")
        if method == "POST" and segs[:3] == ["crm", "v3", "objects"] and segs[-1] == "search":
            return self.search(segs[3], data)
        if method == "GET" and segs[:3] == ["crm", "v3", "objects"] and len(segs) == 4:
            return self.list_archived(segs[3], query)
        if method == "POST" and segs[:3] == ["crm", "v4", "associations"] and segs[-2:] == ["batch", "read"]:
            return self.batch_read(segs[3], segs[4], data)
        if method == "GET" and path == "/email/public/v1/events":
            return self.events(query)
        if method == "GET" and path == "/marketing/v3/forms/":
            return self.list_forms(query)
        if method == "GET" and path.startswith("/form-integrations/v1/submissions/forms/"):
            return self.list_submissions(segs[-1], query)
        return 404, {}, {"status": "error", "message": f"no route {method} {path}", "category": "OBJECT_NOT_FOUND",
                         "correlationId": self.correlation()}

    def correlation(self) -> str:
        self.seq += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hubspot-fake:{self.seq}"))

    def error_body(self, status: int) -> dict:
        if status == 429:
            return {"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
                    "correlationId": self.correlation(), "policyName": "SECONDLY",
                    "groupName": "publicapi:private-app:search"}
        if status == 401:
            return {"status": "error", "message": "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
                    "oauth-overview", "correlationId": self.correlation(), "category": "INVALID_AUTHENTICATION"}
        if status == 403:
            return {"status": "error", "message": "This app hasn't been granted all required scopes to make this call.",
                    "correlationId": self.correlation(), "category": "MISSING_SCOPES"}
        if status >= 500:
            return {"status": "error", "message": "internal error", "correlationId": self.correlation()}
        return {"status": "error", "message": "There was a problem with the request.",
                "correlationId": self.correlation(), "category": "VALIDATION_ERROR"}

    # -- CRM --

    def shape(self, kind: str, r: dict, props: list[str]) -> dict:
        values = dict(r["props"])
        values.setdefault("createdate", iso(r["created"]) if r["created"] else None)
        values[CURSOR[kind]] = iso(r["modified"])
        values["hs_object_id"] = r["id"]
        out = {p: values.get(p) for p in props}
        for p in ("hs_object_id", "createdate", CURSOR[kind]):
            out[p] = values[p]
        record = {"id": r["id"], "properties": dict(sorted(out.items()))}
        if r["created"]:  # a record without createdAt is malformed (the SDK would not notice)
            record["createdAt"] = iso(r["created"])
        record["updatedAt"] = iso(r["modified"])
        record["archived"] = r["archived_at"] is not None
        if r["archived_at"] is not None:
            record["archivedAt"] = iso(r["archived_at"])
        return record

    @staticmethod
    def value(kind: str, r: dict, prop: str) -> Any:
        if prop == "hs_object_id":
            return int(r["id"])
        if prop == CURSOR[kind]:
            return ms(r["modified"])
        if prop == "createdate":
            return ms(r["created"]) if r["created"] else None
        return r["props"].get(prop)

    def search(self, kind: str, req: dict) -> tuple[int, dict, Any]:
        def keep(r: dict) -> bool:
            for group in req.get("filterGroups") or []:
                ok = True
                for f in group["filters"]:
                    v, x = self.value(kind, r, f["propertyName"]), int(f["value"])
                    ok &= {"GTE": v >= x, "LT": v < x, "GT": v > x, "LTE": v <= x, "EQ": v == x}[f["operator"]]
                if ok:
                    return True
            return not req.get("filterGroups")

        found = [r for r in self.objects[kind] if r["archived_at"] is None and keep(r)]
        for sort in reversed(req.get("sorts") or []):
            found.sort(key=lambda r: (self.value(kind, r, sort["propertyName"]), int(r["id"])),
                       reverse=sort.get("direction") == "DESCENDING")
        offset, limit = int(req.get("after") or 0), int(req.get("limit") or 10)
        if offset + limit > 10_000:
            return 400, {}, self.error_body(400)
        page = found[offset:offset + limit]
        body: dict[str, Any] = {"total": len(found), "results": [self.shape(kind, r, req["properties"]) for r in page]}
        if offset + limit < len(found):
            body["paging"] = {"next": {"after": str(offset + limit)}}
        return 200, {}, body

    def list_archived(self, kind: str, query: dict) -> tuple[int, dict, Any]:
        assert query.get("archived") == ["true"], query
        found = sorted((r for r in self.objects[kind] if r["archived_at"] is not None), key=lambda r: int(r["id"]))
        after = int(query.get("after", ["0"])[0])
        limit = int(query["limit"][0])
        rest = [r for r in found if int(r["id"]) >= after]
        page = rest[:limit]
        body: dict[str, Any] = {"results": [self.shape(kind, r, query.get("properties", [])) for r in page]}
        if len(rest) > limit:
            nxt = rest[limit]["id"]
            link = f"https://api.hubapi.com/crm/v3/objects/{kind}?archived=true&limit={limit}&after={nxt}"
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return 200, {}, body

    def batch_read(self, from_type: str, to_type: str, req: dict) -> tuple[int, dict, Any]:
        table = self.associations.get((from_type, to_type), {})
        results, errors = [], []
        for item in req["inputs"]:
            links = table.get(item["id"])
            if not links:
                singular = to_type.rstrip("s").replace("companie", "company")
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                               "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                               "message": f"No {singular} is associated with deal {item['id']}.",
                               "context": {"fromObjectId": [item["id"]]}})
                continue
            results.append({"from": {"id": item["id"]},
                            "to": [{"toObjectId": int(to_id),
                                    "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id,
                                                          "label": label}]}
                                   for to_id, type_id, label in links]})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        body["startedAt"] = "2024-04-01T00:00:01.000Z"
        body["completedAt"] = "2024-04-01T00:00:01.020Z"
        return (207 if errors else 200), {}, body

    # -- email events --

    def events(self, query: dict) -> tuple[int, dict, Any]:
        lo, hi = int(query["startTimestamp"][0]), int(query["endTimestamp"][0])
        limit = int(query["limit"][0])
        start = int(base64.b64decode(query["offset"][0]).decode().split(":")[1]) if "offset" in query else 0
        found = sorted((e for e in self.email_events if lo <= e["created"] <= hi), key=lambda e: -e["created"])
        page = found[start:start + limit]
        more = start + limit < len(found)
        token = base64.b64encode(f"offset:{start + limit}:{lo}".encode()).decode()
        return 200, {}, {"hasMore": more, "offset": token, "events": page}

    # -- forms --

    def list_forms(self, query: dict) -> tuple[int, dict, Any]:
        limit = int(query["limit"][0])
        after = int(query.get("after", ["0"])[0])
        page = self.forms[after:after + limit]
        body: dict[str, Any] = {"results": page}
        if after + limit < len(self.forms):
            body["paging"] = {"next": {"after": str(after + limit),
                                       "link": f"https://api.hubapi.com/marketing/v3/forms/?after={after + limit}"}}
        return 200, {}, body

    def list_submissions(self, guid: str, query: dict) -> tuple[int, dict, Any]:
        subs = sorted(self.submissions.get(guid, []), key=lambda s: -s["submittedAt"])
        limit = int(query["limit"][0])
        start = int(base64.b64decode(query["after"][0]).decode()) if "after" in query else 0
        body: dict[str, Any] = {"results": subs[start:start + limit]}
        if start + limit < len(subs):
            token = base64.b64encode(str(start + limit).encode()).decode()
            body["paging"] = {"next": {"after": token, "link": "https://api.hubapi.com/form-integrations/v1/"
                                                                f"submissions/forms/{guid}?after={token}"}}
        return 200, {}, body


# ---- recording -------------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, fake: FakeHubSpot, date: str = "Mon, 01 Apr 2024 00:00:00 GMT"):
        self.fake, self.date = fake, date
        self.requests: list[Request] = []
        self.responses: list[dict] = []

    @contextmanager
    def active(self) -> Iterator[Recorder]:
        original = HTTPConnectionPool.urlopen
        recorder = self

        def urlopen(pool: HTTPConnectionPool, method: str, url: str, body: Any = None, headers: Any = None,
                    *args: Any, preload_content: bool = True, decode_content: bool = True, **kw: Any):
            raw = body.encode() if isinstance(body, str) else body
            port = "" if pool.port in (None, 443, 80) else f":{pool.port}"
            uri = f"{pool.scheme}://{pool.host}{port}{url}"
            return recorder.exchange(method, uri, raw, dict(headers or {}), preload_content, decode_content)

        HTTPConnectionPool.urlopen = urlopen  # type: ignore[method-assign]
        try:
            yield self
        finally:
            HTTPConnectionPool.urlopen = original  # type: ignore[method-assign]

    def exchange(self, method: str, uri: str, body: bytes | None, headers: dict, preload: bool, decode: bool):
        status, extra, payload = self.fake.handle(method, uri, body)
        text = json.dumps(payload, separators=(",", ":"))
        keep = {k: v for k, v in headers.items() if k.lower() in ("accept", "content-type")}
        keep["Authorization"] = "REDACTED"
        self.requests.append(Request(method, uri, body, keep))
        response_headers = {"Content-Type": [JSON_TYPE], "Date": [self.date],
                            "Content-Length": [str(len(text.encode()))],
                            "X-HubSpot-Correlation-Id": [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{uri}:{len(self.requests)}"))]}
        for k, v in extra.items():
            response_headers[k] = [str(v)]
        self.responses.append({"status": {"code": status, "message": REASONS.get(status, "")},
                               "headers": response_headers, "body": {"string": text}})
        flat = urllib3.HTTPHeaderDict()
        for k, values in response_headers.items():
            for v in values:
                flat.add(k, v)
        return urllib3.HTTPResponse(body=io.BytesIO(text.encode()), headers=flat, status=status,
                                    reason=REASONS.get(status, ""), preload_content=preload, decode_content=decode,
                                    request_method=method, request_url=uri)

    def write(self, name: str) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        text = serialize({"requests": self.requests, "responses": self.responses}, yamlserializer)
        assert TOKEN not in text, "the token leaked into a cassette"
        (OUT / name).write_text(text)
        print(f"wrote cassettes/hubspot/{name}: {len(self.requests)} interactions")


def run_for(source: dict, state: dict | None = None, start: date = date(2024, 1, 1), now: datetime = NOW,
            end: date | None = None) -> Run:
    return Run(source=source, state=state, start=start, end=end, now=now)


def record(name: str, fake: FakeHubSpot, jobs: list[tuple[str, Run]], tune: Callable[[Any], None] | None = None,
           source: dict = SOURCE, expect_error: type[BaseException] | None = None) -> list:
    """Run each (stream, run) of `jobs` with the real connector against `fake` and write the cassette."""
    connectors.http.SLEEP = lambda s: None
    recorder = Recorder(fake)
    pages: list = []
    with recorder.active():
        client = hubspot.connect(source)
        if tune:
            tune(client)
        for stream, run in jobs:
            try:
                pages += list(hubspot.STREAMS[stream].fetch(client, run))
            except BaseException as exc:
                if expect_error is None or not isinstance(exc, expect_error):
                    raise
    recorder.write(name)
    return pages


def small(client: Any) -> None:
    """Small pages (HubSpot's real cap of 10,000 results per query stays)."""
    client.page_size = 3
    client.list_limit = 2
    client.email_events_limit = 3
    client.forms_limit = 2
    client.submissions_limit = 2


def capped(client: Any) -> None:
    """Small pages and a search cap of 5 results per query: the 10,000-cap logic on a handful of records."""
    small(client)
    client.search_cap = 5


# ---- scenario data ---------------------------------------------------------------------------------------------


def contact(fake: FakeHubSpot, cid: int, email: str | None, created: str, modified: str, archived: str | None = None,
            **props: Any) -> dict:
    base = {"email": email, "lifecyclestage": props.pop("lifecyclestage", "lead")}
    base.update(props)
    return fake.add("contacts", cid, ts(created), ts(modified), ts(archived) if archived else None, **base)


def scenario_contacts_two_pages() -> None:
    fake = FakeHubSpot()
    contact(fake, 101, "alice@acme-corp.example", "2024-01-05 10:00", "2024-01-06 09:00",
            associatedcompanyid="9001", hs_v2_date_entered_lead="2024-01-06T09:00:00.000Z",
            hs_analytics_source="PAID_SOCIAL", hs_analytics_first_visit_timestamp="2024-01-05T10:00:00.000Z",
            hs_analytics_first_url="https://www.funnelsync.example/ebook?utm_source=linkedin&utm_medium=paid_social")
    contact(fake, 102, "bob@globex.example", "2024-01-20 14:10", "2024-01-25 08:00", associatedcompanyid="9002",
            hs_analytics_source="ORGANIC_SEARCH", hs_analytics_first_referrer="https://www.google.com/")
    contact(fake, 103, "carol@initech.example", "2024-02-14 12:00", "2024-02-20 10:00:00.250")
    contact(fake, 104, "dan@umbrella.example", "2024-02-15 09:00", "2024-03-01 09:00")
    contact(fake, 105, "erin@hooli.example", "2024-03-12 12:00", "2024-03-12 12:05")
    record("contacts_two_pages.yaml", fake, [("contacts", run_for(SOURCE))], small)


def scenario_contacts_modified_while_paging() -> None:
    fake = FakeHubSpot()
    stamps = ["2024-01-05 10:00", "2024-01-20 14:10", "2024-02-14 12:00", "2024-02-15 09:00", "2024-03-01 09:00",
              "2024-03-12 12:00", "2024-03-20 08:00"]
    for i, stamp in enumerate(stamps):
        contact(fake, 401 + i, f"paging{i + 1}@shift.example", stamp, stamp)

    def edit(n: int) -> None:
        if n == 1:  # after page 1 was served, someone edits contact 402: it moves to the end of time
            record = next(r for r in fake.objects["contacts"] if r["id"] == "402")
            record["modified"] = ts("2024-04-01 00:00:30")

    fake.after_request = edit
    record("contacts_modified_while_paging.yaml", fake, [("contacts", run_for(SOURCE))], small)


def scenario_contacts_since_cursor() -> None:
    fake = FakeHubSpot()
    # modified before cursor - 10 min: not asked for any more
    contact(fake, 101, "alice@acme-corp.example", "2024-01-05 10:00", "2024-03-20 11:00")
    # inside the 10-minute lookback: read again (the warehouse upsert absorbs the duplicate)
    contact(fake, 102, "bob@globex.example", "2024-01-20 14:10", "2024-03-20 11:55")
    contact(fake, 106, "frank@acme-corp.example", "2024-03-21 08:00", "2024-03-25 16:30",
            lifecyclestage="marketingqualifiedlead", hs_v2_date_entered_marketingqualifiedlead="2024-03-25T16:30:00.000Z")
    state = {"cursor": "2024-03-20T12:00:00.000Z", "archived_cursor": "2024-03-20T12:00:00.000Z"}
    record("contacts_since_cursor.yaml", fake, [("contacts", run_for(SOURCE, state))], small)


def scenario_contacts_archived() -> None:
    fake = FakeHubSpot()
    contact(fake, 107, "grace@globex.example", "2024-02-01 10:00", "2024-03-22 10:00")
    # archived long before the archived cursor: filtered out
    contact(fake, 150, "spam1@mailinator.example", "2024-01-02 10:00", "2024-01-03 10:00", archived="2024-01-03 10:00")
    # archived within the window: yielded with archived=true (one has engagement that stays)
    contact(fake, 151, "heidi.old@initech.example", "2024-01-10 10:00", "2024-03-21 09:00", archived="2024-03-21 09:00",
            hs_analytics_first_visit_timestamp="2024-01-10T09:55:00.000Z",
            hs_analytics_first_url="https://www.funnelsync.example/pricing", hs_analytics_source="DIRECT_TRAFFIC")
    contact(fake, 152, "dup@vandelay.example", "2024-02-10 10:00", "2024-03-28 15:00", archived="2024-03-28 15:00")
    state = {"cursor": "2024-03-20T12:00:00.000Z", "archived_cursor": "2024-03-20T12:00:00.000Z"}
    record("contacts_archived.yaml", fake, [("contacts", run_for(SOURCE, state))], small)


def scenario_contacts_window_split() -> None:
    fake = FakeHubSpot()
    stamps = ["2024-01-03 09:00", "2024-01-20 11:00", "2024-02-02 15:00", "2024-02-20 10:00", "2024-03-01 08:00",
              "2024-03-09 12:00", "2024-03-18 17:45", "2024-03-30 23:59"]
    for i, stamp in enumerate(stamps):
        contact(fake, 201 + i, f"person{i + 1}@split.example", stamp, stamp)
    record("contacts_window_split.yaml", fake, [("contacts", run_for(SOURCE))], capped)


def scenario_companies_same_instant() -> None:
    fake = FakeHubSpot()
    fake.add("companies", 9101, ts("2024-01-04 08:00"), ts("2024-01-04 08:00"), name="Early Inc", domain="early.example")
    bulk = ts("2024-02-01 03:00:00.123")  # a bulk import: 7 companies share one millisecond
    for i in range(7):
        fake.add("companies", 9110 + i, bulk, bulk, name=f"Imported {i + 1}", domain=f"imported{i + 1}.example")
    fake.add("companies", 9120, ts("2024-03-05 10:00"), ts("2024-03-05 10:00"), name="Late LLC", domain="late.example")
    record("companies_same_instant.yaml", fake, [("companies", run_for(SOURCE))], capped)


def scenario_contacts_429() -> None:
    fake = FakeHubSpot()
    contact(fake, 101, "alice@acme-corp.example", "2024-01-05 10:00", "2024-01-06 09:00")
    fake.faults.append(Fault("POST", "/crm/v3/objects/contacts/search", 429, headers={"Retry-After": "2"}))
    record("contacts_429_then_ok.yaml", fake, [("contacts", run_for(SOURCE))], small)


def scenario_companies_5xx() -> None:
    fake = FakeHubSpot()
    fake.add("companies", 9001, ts("2024-01-02 10:00"), ts("2024-02-02 10:00"), name="Acme Corp",
             domain="acme-corp.example")
    for status in (500, 502, 503):
        fake.faults.append(Fault("POST", "/crm/v3/objects/companies/search", status))
    record("companies_5xx_burst.yaml", fake, [("companies", run_for(SOURCE))], small)
    fake = FakeHubSpot()
    fake.faults.append(Fault("POST", "/crm/v3/objects/companies/search", 503, count=8))
    record("companies_5xx_exhausted.yaml", fake, [("companies", run_for(SOURCE))], small,
           expect_error=connectors.errors.TemporaryError)


def scenario_unauthorized() -> None:
    fake = FakeHubSpot()
    fake.faults.append(Fault("POST", "/crm/v3/objects/contacts/search", 401))
    fake.faults.append(Fault("GET", "/email/public/v1/events", 401))
    record("unauthorized.yaml", fake, [("contacts", run_for(SOURCE)), ("email_events", run_for(SOURCE))], small,
           expect_error=connectors.errors.AuthError)


def scenario_contacts_malformed() -> None:
    fake = FakeHubSpot()
    contact(fake, 301, "ivan@vandelay.example", "2024-01-15 10:00", "2024-01-16 10:00")
    contact(fake, 302, "judy@hooli.example", "2024-01-18 10:00", "2024-01-18 11:00",
            hs_v2_date_entered_lead="last tuesday")
    fake.add("contacts", 303, None, ts("2024-01-19 12:00"), email="nodate@hooli.example", lifecyclestage="lead")
    record("contacts_malformed.yaml", fake, [("contacts", run_for(SOURCE))], small)


def scenario_deals_associations() -> None:
    fake = FakeHubSpot()
    deal_props = dict(pipeline="default", deal_currency_code="USD")
    fake.add("deals", 5001, ts("2024-02-20 12:00"), ts("2024-03-15 17:00"), dealname="Acme platform", amount="12000",
             dealstage="closedwon", closedate="2024-03-15T17:00:00.000Z", hs_is_closed="true",
             hs_is_closed_won="true", **deal_props)
    fake.add("deals", 5002, ts("2024-03-01 09:00"), ts("2024-03-20 10:00"), dealname="Globex pilot", amount="6000",
             dealstage="qualifiedtobuy", closedate="2024-04-30T00:00:00.000Z", hs_is_closed="false",
             hs_is_closed_won="false", **deal_props)
    fake.add("deals", 5003, ts("2024-03-10 09:00"), ts("2024-03-25 10:00"), dealname="Orphan deal", amount="",
             dealstage="appointmentscheduled", hs_is_closed="false", hs_is_closed_won="false", **deal_props)
    fake.add("deals", 5004, ts("2024-02-01 09:00"), ts("2024-03-29 10:00"), archived_at=ts("2024-03-29 10:00"),
             dealname="Duplicate of Acme platform", amount="12000", dealstage="closedwon", **deal_props)
    fake.associate(5001, "contacts", 101)
    fake.associate(5001, "contacts", 102)
    fake.associate(5001, "companies", 9003)
    fake.associate(5001, "companies", 9001, primary=True)
    fake.associate(5002, "contacts", 103)
    fake.associate(5002, "companies", 9002, primary=True)
    record("deals_associations.yaml", fake, [("deals", run_for(SOURCE))], small)


def email_event(eid: str, created: datetime, etype: str, recipient: str | None, campaign: int | None = 11001,
                **extra: Any) -> dict:
    e: dict[str, Any] = {"appId": 113, "appName": "Batch", "created": ms(created),
                         "emailCampaignId": campaign, "id": eid, "portalId": PORTAL, "recipient": recipient,
                         "type": etype}
    if etype != "SENT":
        e["sentBy"] = {"created": ms(created - timedelta(minutes=5)), "id": f"sent-{eid}"}
    if etype in ("OPEN", "CLICK"):
        e.update({"browser": {"family": "Chrome", "name": "Chrome 122.0", "producer": "Google Inc.",
                              "producerUrl": "https://www.google.com/about/company/", "type": "Browser",
                              "url": "https://www.google.com/chrome/", "version": ["122.0"]},
                  "location": {"city": "Cambridge", "country": "United States", "state": "Massachusetts"},
                  "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Chrome/122.0"})
    if etype == "SENT":
        e.update({"from": "Funnelsync Marketing <marketing@funnelsync.example>", "subject": "What's new this month"})
    e.update(extra)
    if e.get("emailCampaignId") is None:
        e.pop("emailCampaignId")
    if recipient is None:
        e.pop("recipient")
    return e


def scenario_email_events() -> None:
    fake = FakeHubSpot()
    t = ts("2024-03-19 14:00")
    fake.email_events += [
        email_event("e-001", t, "SENT", "alice@acme-corp.example"),
        email_event("e-002", t + timedelta(minutes=1), "DELIVERED", "alice@acme-corp.example", response="250 OK",
                    smtpId="<a1@mail.funnelsync.example>"),
        email_event("e-003", t + timedelta(hours=2), "OPEN", "alice@acme-corp.example", duration=4200),
        email_event("e-004", t + timedelta(hours=2, minutes=1), "CLICK", "alice@acme-corp.example",
                    url="https://www.funnelsync.example/blog/dark-funnel?utm_source=hubspot&utm_medium=email"),
        email_event("e-005", t + timedelta(minutes=1), "BOUNCE", "nobody@initech.example", category="HARD_BOUNCE",
                    response="550 5.1.1 user unknown", status="5.1.1"),
        email_event("e-006", t + timedelta(hours=3), "OPEN", "bob@globex.example", filteredEvent=True),
        email_event("e-007", t + timedelta(minutes=1), "PROCESSED", "bob@globex.example"),
        email_event("e-008", ts("2024-03-27 09:30"), "STATUSCHANGE", "bob@globex.example", campaign=11002,
                    portalSubscriptionStatus="UNSUBSCRIBED", source="SOURCE_RECIPIENT",
                    subscriptions=[{"id": 2849, "status": "UNSUBSCRIBED"}]),
        email_event("e-009", ts("2024-03-27 09:45"), "SPAMREPORT", "dan@umbrella.example", campaign=11002),
        email_event("e-010", ts("2024-03-28 10:00"), "DELIVERED", None, campaign=11002),
    ]
    state = {"cursor": ms(ts("2024-03-18 00:10"))}
    record("email_events.yaml", fake, [("email_events", run_for(SOURCE, state))], small)


def form(guid: str, name: str, created: str, fields: list[str]) -> dict:
    return {"id": guid, "name": name, "formType": "hubspot", "createdAt": iso(ts(created)),
            "updatedAt": iso(ts(created)), "archived": False,
            "fieldGroups": [{"groupType": "default_group", "richTextType": "text",
                             "fields": [{"objectTypeId": "0-1", "name": f, "label": f.replace("_", " ").title(),
                                         "required": f == "email", "hidden": False,
                                         "fieldType": "email" if f == "email" else "single_line_text"}
                                        for f in fields]}]}


def submission(at: str, page: str, conversion: str | None, **values: str) -> dict:
    out: dict[str, Any] = {"submittedAt": ms(ts(at)), "values": [{"name": k, "value": v} for k, v in values.items()],
                           "pageUrl": page}
    if conversion:
        out = {"conversionId": conversion, **out}
    return out


CONTACT_FORM = "3f1c2b7a-1d2e-4f50-9a61-0c7d8e9f0a11"
DEMO_FORM = "7b9e4c2d-5a6f-4b1c-8d2e-3f4a5b6c7d80"
DEMO_CONFIG_DEMO_FORM = "6f3c2b1e-demo-4d2a-9c1b-000000000002"  # funnelsync/demo/funnelsync.toml demo_form_ids
EBOOK_FORM = "c0ffee00-1234-4abc-9def-0123456789ab"


def scenario_forms() -> None:
    fake = FakeHubSpot()
    fake.forms = [form(CONTACT_FORM, "Contact us", "2023-06-01 10:00", ["email", "firstname", "how_did_you_hear_about_us"]),
                  form(DEMO_FORM, "Request a demo", "2023-06-01 10:00", ["email", "company", "how_did_you_hear_about_us"])]
    fake.submissions[CONTACT_FORM] = [
        submission("2024-03-28 10:00", "https://www.funnelsync.example/contact?utm_source=newsletter&utm_medium=email",
                   "9a8b7c6d-0001-4000-8000-000000000001", email="grace@globex.example", firstname="Grace",
                   how_did_you_hear_about_us="A colleague shared it in Slack"),
        submission("2024-03-25 16:00", "https://www.funnelsync.example/contact", None, email="Frank@acme-corp.example",
                   firstname="Frank"),
        submission("2024-03-21 09:00", "https://www.funnelsync.example/contact", "9a8b7c6d-0001-4000-8000-000000000003",
                   email="heidi@initech.example"),
        submission("2024-03-10 09:00", "https://www.funnelsync.example/contact", "9a8b7c6d-0001-4000-8000-000000000004",
                   email="old@initech.example"),
    ]
    fake.submissions[DEMO_FORM] = [
        submission("2024-02-19 11:00", "https://www.funnelsync.example/demo?utm_source=google&utm_medium=cpc&gclid=Cj0K",
                   "9a8b7c6d-0002-4000-8000-000000000001", email="alice@acme-corp.example", company="Acme Corp",
                   how_did_you_hear_about_us="Google search"),
    ]
    # the contact form was read up to 2024-03-20 before; the demo form never
    state = {"forms": {CONTACT_FORM: ms(ts("2024-03-20 12:00"))}}
    record("forms.yaml", fake, [("form_submissions", run_for(SOURCE, state))], small)


# ---- the demo --------------------------------------------------------------------------------------------------

SITE = "https://www.funnelsync-demo.example"  # the demo config's own_domains
COMPANIES = [  # id, name, domain
    (9001, "Acme Corp", "acme-corp.example"), (9002, "Globex", "globex.example"), (9003, "Initech", "initech.example"),
    (9004, "Umbrella", "umbrella.example"), (9005, "Hooli", "hooli.example"), (9006, "Vandelay Industries",
    "vandelay.example"), (9007, "Stark Industries", "stark-ind.example"), (9008, "Wayne Enterprises",
    "wayne-ent.example"), (9009, "Wonka Industries", "wonka.example"), (9010, "Tyrell Corp", "tyrell.example"),
    (9011, "Cyberdyne Systems", "cyberdyne.example"), (9012, "Soylent", "soylent.example"), (9013, "Oscorp",
    "oscorp.example"), (9014, "Massive Dynamic", "massive-dynamic.example"), (9015, "Pied Piper", "pied-piper.example"),
]
DOMAIN_COMPANY = {d: cid for cid, _, d in COMPANIES}
# first touch: (hs_analytics_source, first url, first referrer)
TOUCHES = {
    "li_paid": ("PAID_SOCIAL", SITE + "/ebook/b2b-attribution?utm_source=linkedin&utm_medium=paid_social"
                "&utm_campaign=q1_abm&li_fat_id=5f2c", "https://www.linkedin.com/"),
    "google_cpc": ("PAID_SEARCH", SITE + "/pricing?utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=Cj0KCQ",
                   "https://www.google.com/"),
    "google_organic": ("ORGANIC_SEARCH", SITE + "/blog/what-is-dark-social", "https://www.google.com/"),
    "dark_deep": ("DIRECT_TRAFFIC", SITE + "/blog/dark-funnel-guide", None),
    "slack": ("REFERRALS", SITE + "/blog/dark-funnel-guide", "https://app.slack.com/"),
    "newsletter": ("EMAIL_MARKETING", SITE + "/blog/q1-report?utm_source=newsletter&utm_medium=email"
                   "&utm_campaign=jan_product_update", None),
    "webinar": ("OTHER_CAMPAIGNS", SITE + "/webinars/attribution-101?utm_source=zoom&utm_medium=webinar"
                "&utm_campaign=feb_webinar", None),
    "g2": ("REFERRALS", SITE + "/compare", "https://www.g2.com/products/funnelsync/reviews"),
    "twitter": ("SOCIAL_MEDIA", SITE + "/blog/what-is-dark-social", "https://t.co/AbCdEf"),
    "direct_home": ("DIRECT_TRAFFIC", SITE + "/", None),
    "offline": ("OFFLINE", None, None),
}
ANSWERS = {
    "slack": "A colleague shared it in Slack", "dark_deep": "Heard you on a podcast", "google_organic": "Google search",
    "li_paid": "LinkedIn ad", "webinar": "Your webinar", "g2": "G2 reviews", "twitter": "Saw a post on X",
    "newsletter": "Your newsletter", "direct_home": "don't remember",
}
STAGES = ("lead", "marketingqualifiedlead", "salesqualifiedlead", "customer")


def demo_people() -> list[tuple[str, str, str, int]]:
    """(email, touch, created 'YYYY-MM-DD HH:MM', furthest stage index) for ~50 contacts."""
    core = [
        ("alice@acme-corp.example", "li_paid", "2024-01-06 09:00", 3),
        ("bob@globex.example", "google_organic", "2024-01-20 14:10", 2),
        ("carol@initech.example", "webinar", "2024-02-14 12:00", 2),
        ("dan@umbrella.example", "twitter", "2024-01-15 10:00", 1),
        ("erin@hooli.example", "webinar", "2024-02-14 13:00", 1),
        ("frank@acme-corp.example", "slack", "2024-02-10 10:00", 1),
        ("grace@globex.example", "dark_deep", "2024-01-08 12:00", 0),
        ("heidi@initech.example", "direct_home", "2024-03-12 12:00", 0),
        ("ivan@vandelay.example", "g2", "2024-03-20 12:00", 1),
        ("judy@hooli.example", "google_cpc", "2024-02-26 09:00", 2),
    ]
    rng = random.Random(20240401)
    first = ["mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "uma", "victor", "walter", "xena",
             "yusuf", "zoe", "aaron", "bianca", "chen", "dora", "eli", "fatima", "gus", "hana", "igor", "jin", "kara",
             "liam", "mona", "nils", "omar", "priya", "quinn", "rosa", "sami", "tara", "ugo", "vera", "wade", "yara",
             "zane", "anya", "boris"]
    touches = list(TOUCHES)
    domains = [d for _, _, d in COMPANIES]
    people = list(core)
    for i, name in enumerate(first):
        day = datetime(2024, 1, 2, tzinfo=UTC) + timedelta(days=rng.randrange(0, 85), hours=rng.randrange(8, 19),
                                                             minutes=rng.choice((0, 15, 30, 45)))
        domain = rng.choice(domains + ["gmail.com"]) if i % 9 else "gmail.com"
        stage = rng.choices((0, 1, 2, 3), weights=(55, 30, 12, 3))[0]
        people.append((f"{name}@{domain}", touches[i % len(touches)], day.strftime("%Y-%m-%d %H:%M"), stage))
    return people


def demo_fake() -> FakeHubSpot:
    fake = FakeHubSpot()
    rng = random.Random(7)
    for cid, name, domain in COMPANIES:
        created = datetime(2023, 11, 1, tzinfo=UTC) + timedelta(days=cid - 9000, hours=3)
        modified = datetime(2024, 1, 3, tzinfo=UTC) + timedelta(days=(cid - 9000) * 5, minutes=17)
        fake.add("companies", cid, created, modified, name=name, domain=domain, website=f"https://www.{domain}")
    contacts: dict[str, int] = {}
    for i, (email, touch, created_text, stage) in enumerate(demo_people()):
        cid = 1001 + i
        contacts[email] = cid
        created = ts(created_text)
        source, url, ref = TOUCHES[touch]
        first_visit = created - timedelta(minutes=rng.choice((10, 45, 90)), days=rng.choice((0, 0, 1, 3)))
        props: dict[str, Any] = {
            "email": email, "hs_analytics_source": source, "lifecyclestage": STAGES[stage],
            "hs_analytics_source_data_1": {"li_paid": "linkedin", "google_cpc": "brand", "google_organic": "google",
                                           "slack": "app.slack.com", "g2": "g2.com", "twitter": "t.co"}.get(touch),
        }
        domain = email.split("@")[1]
        if domain in DOMAIN_COMPANY:
            props["associatedcompanyid"] = str(DOMAIN_COMPANY[domain])
        if url or ref:
            props.update({"hs_analytics_first_visit_timestamp": iso(first_visit),
                          "hs_analytics_first_timestamp": iso(first_visit), "hs_analytics_first_url": url,
                          "hs_analytics_first_referrer": ref})
        else:
            props["hs_analytics_first_timestamp"] = iso(created)
        entered = created
        for s in range(stage + 1):
            if s:
                entered = entered + timedelta(days=rng.randrange(3, 20), hours=rng.randrange(0, 6))
            if entered >= NOW:
                break
            props[f"hs_v2_date_entered_{STAGES[s]}"] = iso(entered)
            if i % 4 == 0:  # older portals also carry the legacy stage dates
                props[f"hs_lifecyclestage_{STAGES[s]}_date"] = iso(entered)
        if stage >= 1 and i % 3 == 0:  # a later return visit from the newsletter
            latest = min(entered + timedelta(hours=2), NOW - timedelta(hours=1))
            issue = {1: "jan_product_update", 2: "feb_newsletter", 3: "webinar_march"}[latest.month]  # Mailchimp demo
            props.update({"hs_latest_source": "EMAIL_MARKETING", "hs_latest_source_timestamp": iso(latest),
                          "hs_analytics_last_url": SITE + "/pricing?utm_source=newsletter&utm_medium=email"
                          f"&utm_campaign={issue}", "hs_analytics_last_referrer": None})
        else:
            props.update({"hs_latest_source": source, "hs_latest_source_timestamp": props.get(
                "hs_analytics_first_visit_timestamp")})
        if touch in ANSWERS and i % 2 == 0:
            props["how_did_you_hear_about_us"] = ANSWERS[touch]
        modified = max(entered, created) + timedelta(minutes=rng.randrange(1, 600), milliseconds=rng.randrange(0, 999))
        modified = min(modified, NOW - timedelta(minutes=5))
        fake.add("contacts", cid, created, modified, **props)
    # one spam contact archived in February: its visit stays, its person row goes
    fake.add("contacts", 1099, ts("2024-02-02 03:00"), ts("2024-02-05 10:00"), archived_at=ts("2024-02-05 10:00"),
             email="test123@mailinator.example", lifecyclestage="lead", hs_analytics_source="DIRECT_TRAFFIC",
             hs_analytics_first_visit_timestamp="2024-02-02T02:58:00.000Z", hs_analytics_first_url=SITE + "/signup")
    deals = [  # id, name, company, contacts, created, amount, stage, closedate, won
        (5001, "Acme Corp - Platform", 9001, ["alice@acme-corp.example", "frank@acme-corp.example"], "2024-02-20 12:00",
         "12000", "closedwon", "2024-03-15 17:00", True),
        (5002, "Globex - Annual", 9002, ["bob@globex.example"], "2024-03-01 09:00", "6000", "closedwon",
         "2024-03-28 16:00", True),
        (5003, "Initech - Team plan", 9003, ["carol@initech.example", "heidi@initech.example"], "2024-03-10 09:00",
         "9000", "presentationscheduled", "2024-04-30 00:00", None),
        (5004, "Hooli - Pilot", 9005, ["judy@hooli.example", "erin@hooli.example"], "2024-03-05 11:00", "4800",
         "decisionmakerboughtin", "2024-04-15 00:00", None),
        (5005, "Umbrella - Enterprise", 9004, ["dan@umbrella.example"], "2024-01-25 14:00", "30000", "closedlost",
         "2024-03-08 10:00", False),
        (5006, "Vandelay - Starter", 9006, ["ivan@vandelay.example"], "2024-03-22 10:00", "2400", "qualifiedtobuy",
         "2024-05-31 00:00", None),
        (5007, "Stark - Expansion", 9007, [], "2024-02-05 10:00", "18000", "contractsent", "2024-04-10 00:00", None),
        (5008, "Wayne - Platform", 9008, [], "2024-01-18 10:00", "15000", "closedwon", "2024-02-29 12:00", True),
        (5009, "Wonka - Team plan", 9009, [], "2024-02-27 10:00", "7200", "closedlost", "2024-03-27 09:00", False),
        (5010, "Tyrell - EU rollout", 9010, [], "2024-03-18 10:00", "20000", "appointmentscheduled", "2024-06-30 00:00",
         None),
    ]
    for did, name, company, people, created, amount, stage, closedate, won in deals:
        created_at = ts(created)
        closed = won is not None
        modified = ts(closedate) if closed else created_at + timedelta(days=2)
        modified = min(modified, NOW - timedelta(hours=2))
        props = {"dealname": name, "amount": amount, "dealstage": stage, "pipeline": "default",
                 "deal_currency_code": "EUR" if did == 5010 else "USD", "closedate": iso(ts(closedate)),
                 "hs_is_closed": "true" if closed else "false", "hs_is_closed_won": "true" if won else "false"}
        fake.add("deals", did, created_at, modified, **props)
        fake.associate(did, "companies", company, primary=True)
        for email in people:
            fake.associate(did, "contacts", contacts[email])
    fake.add("deals", 5099, ts("2024-02-21 09:00"), ts("2024-02-21 09:30"), archived_at=ts("2024-02-21 09:30"),
             dealname="Acme Corp - Platform (duplicate)", amount="12000", dealstage="appointmentscheduled",
             pipeline="default", deal_currency_code="USD", hs_is_closed="false", hs_is_closed_won="false")
    demo_email_events(fake, list(contacts))
    demo_forms(fake, demo_people())
    return fake


def demo_email_events(fake: FakeHubSpot, emails: list[str]) -> None:
    rng = random.Random(11)
    sends = [(11001, ts("2024-01-17 14:00"), "January newsletter"), (11002, ts("2024-02-07 15:00"), "Webinar invite"),
             (11003, ts("2024-03-13 14:00"), "March product update")]
    n = 0
    for campaign, at, subject in sends:
        for j, email in enumerate(emails[:32]):
            n += 1
            base = f"{campaign}-{j:03d}"
            sent = at + timedelta(seconds=j * 7)
            fake.email_events.append(email_event(f"{base}-s", sent, "SENT", email, campaign, subject=subject))
            fake.email_events.append(email_event(f"{base}-p", sent + timedelta(seconds=2), "PROCESSED", email, campaign))
            if j == 6 and campaign == 11001:
                fake.email_events.append(email_event(f"{base}-b", sent + timedelta(seconds=30), "BOUNCE", email, campaign,
                                                     category="HARD_BOUNCE", response="550 5.1.1 user unknown"))
                continue
            fake.email_events.append(email_event(f"{base}-d", sent + timedelta(seconds=40), "DELIVERED", email, campaign,
                                                 response="250 2.0.0 OK"))
            if rng.random() < 0.08:  # security scanners: HubSpot flags them as filtered
                fake.email_events.append(email_event(f"{base}-f", sent + timedelta(seconds=50), "OPEN", email, campaign,
                                                     filteredEvent=True))
            if rng.random() < 0.45:
                opened = sent + timedelta(hours=rng.randrange(1, 30), minutes=rng.randrange(0, 59))
                fake.email_events.append(email_event(f"{base}-o", opened, "OPEN", email, campaign,
                                                     duration=rng.randrange(1000, 20000)))
                if rng.random() < 0.35:
                    url = {11001: SITE + "/blog/q1-report", 11002: SITE + "/webinars/attribution-101",
                           11003: SITE + "/pricing"}[campaign]
                    fake.email_events.append(email_event(f"{base}-c", opened + timedelta(minutes=1), "CLICK", email,
                                                         campaign, url=url + "?utm_source=hubspot&utm_medium=email"))
    fake.email_events.append(email_event("11002-x-u", ts("2024-02-08 10:00"), "STATUSCHANGE", emails[4], 11002,
                                         portalSubscriptionStatus="UNSUBSCRIBED", source="SOURCE_RECIPIENT",
                                         subscriptions=[{"id": 2849, "status": "UNSUBSCRIBED"}]))
    fake.email_events.append(email_event("11003-x-r", ts("2024-03-14 08:00"), "STATUSCHANGE", emails[9], 11003,
                                         portalSubscriptionStatus="SUBSCRIBED", source="SOURCE_RECIPIENT",
                                         subscriptions=[{"id": 2849, "status": "SUBSCRIBED"}]))
    fake.email_events.append(email_event("11003-x-spam", ts("2024-03-14 09:00"), "SPAMREPORT", emails[17], 11003))


def demo_forms(fake: FakeHubSpot, people: list[tuple[str, str, str, int]]) -> None:
    webinar_form = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
    demo_form = DEMO_CONFIG_DEMO_FORM
    fake.forms = [
        form(CONTACT_FORM, "Contact us", "2023-06-01 10:00", ["email", "firstname", "how_did_you_hear_about_us"]),
        form(demo_form, "Request a demo", "2023-06-01 10:00", ["email", "company", "how_did_you_hear_about_us"]),
        form(EBOOK_FORM, "Ebook: B2B attribution", "2023-11-15 10:00", ["email", "firstname"]),
        form(webinar_form, "Webinar: Attribution 101", "2024-01-20 10:00", ["email", "firstname", "company"]),
    ]
    for guid in (CONTACT_FORM, demo_form, EBOOK_FORM, webinar_form):
        fake.submissions[guid] = []
    for i, (email, touch, created_text, stage) in enumerate(people):
        created = ts(created_text)
        _, url, _ = TOUCHES[touch]
        page_query = url.split("?", 1)[1] if url and "?" in url else ""
        if touch == "webinar":
            guid, page = webinar_form, SITE + "/webinars/attribution-101" + (f"?{page_query}" if page_query else "")
        elif touch == "li_paid":
            guid, page = EBOOK_FORM, SITE + "/ebook/b2b-attribution" + (f"?{page_query}" if page_query else "")
        else:
            guid, page = CONTACT_FORM, SITE + "/contact"
        values = {"email": email, "firstname": email.split("@")[0].title()}
        if guid == CONTACT_FORM and touch in ANSWERS:
            values["how_did_you_hear_about_us"] = ANSWERS[touch]
        fake.submissions[guid].append(submission(created_text, page, str(uuid.uuid5(uuid.NAMESPACE_URL, f"c:{email}")),
                                                 **values))
        if stage >= 2:  # sales-qualified people asked for a demo
            at = created + timedelta(days=9, hours=2)
            if at < NOW:
                demo_page = SITE + "/demo" + ("?utm_source=google&utm_medium=cpc&gclid=Cj0KCQdemo" if i % 2 else "")
                answer = ANSWERS.get(touch, "Friend recommended you")
                fake.submissions[demo_form].append(submission(
                    at.strftime("%Y-%m-%d %H:%M"), demo_page, str(uuid.uuid5(uuid.NAMESPACE_URL, f"d:{email}")),
                    email=email, company=email.split("@")[1].split(".")[0].title(),
                    how_did_you_hear_about_us=answer))
    # a submission without any email (a bot that got through)
    fake.submissions[CONTACT_FORM].append(submission("2024-03-02 04:12", SITE + "/contact", None, firstname="asdf"))


def scenario_demo() -> None:
    fake = demo_fake()
    source = demo_source()
    run = run_for(source)
    jobs = [(name, run) for name in ("contacts", "companies", "deals", "email_events", "form_submissions")]
    pages = record("demo.yaml", fake, jobs, source=source)
    print(f"  demo: {sum(len(p.records) for p in pages)} records")


SCENARIOS = [
    scenario_contacts_two_pages, scenario_contacts_modified_while_paging, scenario_contacts_since_cursor, scenario_contacts_archived,
    scenario_contacts_window_split, scenario_companies_same_instant, scenario_contacts_429, scenario_companies_5xx,
    scenario_unauthorized, scenario_contacts_malformed, scenario_deals_associations, scenario_email_events,
    scenario_forms, scenario_demo,
]


def main() -> None:
    import connectors.errors  # noqa: F401 - referenced by the error scenarios

    for scenario in SCENARIOS:
        scenario()


if __name__ == "__main__":
    main()
