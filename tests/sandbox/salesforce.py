"""Salesforce as the connector meets it (instance_url = login_url = https://127.0.0.1:PORT/salesforce).

- POST /services/oauth2/token, grant_type=client_credentials (client_id, client_secret) -> {access_token,
  instance_url, id, token_type, issued_at, signature}; a bad client -> 400 {"error": "invalid_client"}.
- GET /services/data/vNN.0/sobjects/{Object}/describe -> {name, fields[{name, type, relationshipName, referenceTo}]};
  unknown object -> 404 NOT_FOUND.
- GET /services/data/vNN.0/query|queryAll?q=SOQL, SOQL parsed as far as the connector needs it:
  `SELECT f1, f2, Parent.Field FROM Object WHERE <cursor> >= <datetime> [AND <cursor> < <datetime>]
  [AND Field = 'value'] [ORDER BY <cursor>, Id]` and `SELECT COUNT() FROM ...`; unknown fields -> 400 INVALID_FIELD,
  anything else -> 400 MALFORMED_QUERY. Answer {totalSize, done, nextRecordsUrl, records[{attributes{type,url},
  ...}]}, 2,000 records per page, `nextRecordsUrl` = /services/data/vNN.0/query/<locator>-<offset> (served too).
  Records come in (cursor, Id) order; parent fields nest ({"Lead": {"attributes": ..., "Email": ...}}).
- Bulk API 2.0: POST /services/data/vNN.0/jobs/query {operation query|queryAll, query, contentType CSV} -> job
  (state UploadComplete); GET .../jobs/query/{id} -> InProgress for `bulk_polls` polls, then JobComplete;
  GET .../jobs/query/{id}/results?maxRecords=&locator= -> CSV (header = the SELECT list, `Lead.Email` columns,
  booleans true/false, datetimes ...Z, empty = null), streamed chunked, headers Sforce-Locator (next, or "null")
  and Sforce-NumberOfRecords.
Every API response carries `Sforce-Limit-Info: api-usage=N/M` (N counts this sandbox's API requests plus
`api_usage`; M = `daily_limit`); once N >= M every call is 403 [{"errorCode": "REQUEST_LIMIT_EXCEEDED"}].
Auth: Bearer token (static `test-token-salesforce` or one issued by the token endpoint); 401
[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}].
Throttle fault: 403 REQUEST_LIMIT_EXCEEDED (Salesforce has no 429: its limits are the daily allocation and the
concurrent long-running requests, both answered this way). 5xx: 503 [{"errorCode": "SERVER_UNAVAILABLE"}].
Malformed records: Leads whose index is in `malformed` have no CreatedDate.
"""
from __future__ import annotations

import csv
import io
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .base import Api
from .common import (
    DAY_MS, END_MS, START_MS, company_domain, company_name, day_of, parse_time, pick, sf_datetime,
    token, untoken,
)
from .server import Request, Response, chunks, json_response
from .timeline import Timeline

PAGE = 2000
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order: Ids sort like indices
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Marketing Qualified", "Sales Qualified",
                 "Closed - Converted")
OPP_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote", "Closed Won", "Closed Lost")
CAMPAIGN_TYPES = ("Webinar", "Event", "Email", "Content Syndication", "Direct Mail", "Advertisement", "Trade Show")
MEMBER_STATUSES = ("Registered", "Attended", "Sent", "Responded", "Claimed", "Meeting Booked")
SOURCES = ("Web", "Webinar", "Partner Referral", "Advertisement", "Trade Show", "Other")


def sf_id(prefix: str, i: int) -> str:
    digits = ""
    n = i
    for _ in range(10):
        digits = _B62[n % 62] + digits
        n //= 62
    return f"{prefix}5e{digits}AAA"


def sf_index(value: str) -> int:
    n = 0
    for ch in value[5:15]:
        n = n * 62 + _B62.index(ch)
    return n


@dataclass
class SObject:
    name: str
    prefix: str
    default_size: int
    cursor: str
    fields: dict[str, tuple[str, str | None, str | None]]  # name -> (type, relationshipName, referenceTo)
    values: Callable[..., dict] = None  # (i, version, t) -> {field: value}
    constant: dict[str, str] = field(default_factory=dict)  # fields every record has with this value
    timeline: Timeline | None = None


def _f(spec: str) -> dict[str, tuple[str, str | None, str | None]]:
    """"Id:id, LeadId:reference>Lead, ..." -> fields."""
    out = {}
    for part in spec.split(","):
        name, _, kind = part.strip().partition(":")
        kind, _, ref = kind.partition(">")
        relationship = (name[:-2] if name.endswith("Id") else name) if kind == "reference" else None
        out[name] = (kind, relationship, ref or None)
    return out


class Salesforce(Api):
    name = "salesforce"
    token = "test-token-salesforce"
    client_id = "sandbox-salesforce-client-id"
    client_secret = "sandbox-salesforce-client-secret"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self.lock = threading.Lock()
        self.daily_limit = 1_000_000
        self.api_usage = 0
        self.bulk_polls = 1
        self.page_size = PAGE  # records per REST query page (Salesforce's default batch size)
        self.jobs: dict[str, dict] = {}
        self.cursors: dict[str, tuple] = {}
        self.objects: dict[str, SObject] = {}
        span = END_MS - START_MS
        common = "IsDeleted:boolean, CreatedDate:datetime, SystemModstamp:datetime"
        defs = [
            SObject("Lead", "00Q", 1500, "SystemModstamp", _f(
                "Id:id, Email:email, FirstName:string, LastName:string, Company:string, Status:picklist, "
                "LeadSource:picklist, IsConverted:boolean, ConvertedDate:date, ConvertedContactId:reference>Contact, "
                "ConvertedAccountId:reference>Account, ConvertedOpportunityId:reference>Opportunity, "
                f"Annual_Revenue__c:currency, How_Did_You_Hear__c:string, {common}"), self._lead),
            SObject("LeadHistory", "017", 600, "CreatedDate", _f(
                "Id:id, LeadId:reference>Lead, Field:picklist, OldValue:anyType, NewValue:anyType, "
                "IsDeleted:boolean, CreatedDate:datetime"), self._lead_history, {"Field": "Status"}),
            SObject("Contact", "003", 800, "SystemModstamp", _f(
                "Id:id, Email:email, FirstName:string, LastName:string, AccountId:reference>Account, "
                f"LeadSource:picklist, How_Did_You_Hear__c:string, {common}"), self._contact),
            SObject("Account", "001", 200, "SystemModstamp", _f(
                f"Id:id, Name:string, Website:url, Industry:picklist, {common}"), self._account),
            SObject("Opportunity", "006", 150, "SystemModstamp", _f(
                "Id:id, Name:string, AccountId:reference>Account, Amount:currency, StageName:picklist, "
                "IsClosed:boolean, IsWon:boolean, CloseDate:date, LeadSource:picklist, CampaignId:reference>Campaign, "
                f"Type:picklist, {common}"), self._opportunity),
            SObject("OpportunityHistory", "008", 450, "SystemModstamp", _f(
                "Id:id, OpportunityId:reference>Opportunity, StageName:picklist, Amount:currency, CloseDate:date, "
                f"{common}"), self._opportunity_history),
            SObject("OpportunityContactRole", "00K", 200, "SystemModstamp", _f(
                "Id:id, OpportunityId:reference>Opportunity, ContactId:reference>Contact, Role:picklist, "
                f"IsPrimary:boolean, {common}"), self._contact_role),
            SObject("Campaign", "701", 20, "SystemModstamp", _f(
                "Id:id, Name:string, Type:picklist, Status:picklist, ParentId:reference>Campaign, StartDate:date, "
                "EndDate:date, BudgetedCost:currency, ActualCost:currency, IsActive:boolean, "
                f"{common}"), self._campaign),
            SObject("CampaignMember", "00v", 600, "SystemModstamp", _f(
                "Id:id, CampaignId:reference>Campaign, LeadId:reference>Lead, ContactId:reference>Contact, "
                f"Email:email, Status:picklist, HasResponded:boolean, FirstRespondedDate:date, {common}"),
                self._campaign_member),
        ]
        for obj in defs:
            n = self.size(obj.name, obj.default_size)
            obj.timeline = Timeline(n, START_MS, max(1, span // n))
            self.objects[obj.name] = obj
        sandbox.tokens.static[self.name].add(self.token)

    def n(self, obj: str) -> int:
        return self.objects[obj].timeline.n

    def source(self, **overrides: Any) -> dict:
        src = {"name": "salesforce", "type": "salesforce", "instance_url": self.base_url, "start_date": "2024-01-01"}
        if overrides.pop("oauth", False):
            src.update(client_id=self.client_id, client_secret=self.client_secret, login_url=self.base_url)
        else:
            src["access_token"] = self.token
        return {**src, **overrides}

    def change(self, obj: str, fraction: float = 0.01, at: int | None = None, step: int = 1000) -> list[str]:
        spec = self.objects[obj]
        tl = spec.timeline
        every = max(1, round(1 / fraction))
        picked = list(range(len(tl._rounds) % every, tl.n, every))
        tl.change(picked, at if at is not None else tl.end, step)
        return [sf_id(spec.prefix, i) for i in picked]

    # ---- record values ----------------------------------------------------------------------------------------

    def _created(self, obj: str, i: int, back_days: int = 2) -> int:
        return self.objects[obj].timeline.base_time(i) - (i % (back_days + 1)) * DAY_MS - 600_000

    def _lead(self, i: int, v: int, t: int) -> dict:
        status = LEAD_STATUSES[min(len(LEAD_STATUSES) - 1, i % 3 + v)]
        converted = status == "Closed - Converted"
        created = self._created("Lead", i)
        return {
            "Email": f"lead{i}@{company_domain(i % 40)}", "FirstName": pick(("Ada", "Bo", "Cy", "Di"), i),
            "LastName": f"Lead{i}", "Company": company_name(i % 40), "Status": status,
            "LeadSource": SOURCES[i % len(SOURCES)], "IsConverted": converted,
            "ConvertedDate": day_of(t) if converted else None,
            "ConvertedContactId": sf_id("003", i % self.n("Contact")) if converted else None,
            "ConvertedAccountId": sf_id("001", i % self.n("Account")) if converted else None,
            "ConvertedOpportunityId": sf_id("006", i % self.n("Opportunity")) if converted else None,
            "Annual_Revenue__c": float(100000 + i * 13 % 900000), "How_Did_You_Hear__c": pick(
                ("LinkedIn", "Podcast", None, None, "Google"), "hdyh", i),
            "IsDeleted": False, "CreatedDate": None if i in self.malformed else sf_datetime(created),
            "SystemModstamp": sf_datetime(t),
        }

    def _lead_history(self, i: int, v: int, t: int) -> dict:
        new = LEAD_STATUSES[1 + i % 3]
        return {"LeadId": sf_id("00Q", (i * 3) % self.n("Lead")), "Field": "Status",
                "OldValue": LEAD_STATUSES[i % 3], "NewValue": new, "IsDeleted": False, "CreatedDate": sf_datetime(t)}

    def _contact(self, i: int, v: int, t: int) -> dict:
        return {"Email": f"contact{i}@{company_domain(i % 300)}", "FirstName": pick(("Ann", "Ben", "Cleo"), i),
                "LastName": f"Contact{i}" + (f" v{v}" if v else ""), "AccountId": sf_id("001", i % self.n("Account")),
                "LeadSource": SOURCES[(i + v) % len(SOURCES)], "How_Did_You_Hear__c": None, "IsDeleted": False,
                "CreatedDate": sf_datetime(self._created("Contact", i)), "SystemModstamp": sf_datetime(t)}

    def _account(self, i: int, v: int, t: int) -> dict:
        return {"Name": company_name(i) + (f" v{v}" if v else ""), "Website": f"https://www.{company_domain(i)}",
                "Industry": pick(("Software", "Manufacturing", "Finance"), i), "IsDeleted": False,
                "CreatedDate": sf_datetime(self._created("Account", i, 20)), "SystemModstamp": sf_datetime(t)}

    def _opportunity(self, i: int, v: int, t: int) -> dict:
        stage = OPP_STAGES[min(len(OPP_STAGES) - 2, i % 4 + v) if i % 9 else 5]
        created = self._created("Opportunity", i, 5)
        closed = stage.startswith("Closed")
        return {"Name": f"Opportunity {i}", "AccountId": sf_id("001", i % self.n("Account")),
                "Amount": float(5000 + (i * 731) % 95000), "StageName": stage, "IsClosed": closed,
                "IsWon": stage == "Closed Won", "CloseDate": day_of(created + 30 * DAY_MS),
                "LeadSource": SOURCES[i % len(SOURCES)], "CampaignId": sf_id("701", i % self.n("Campaign")),
                "Type": "New Business", "IsDeleted": False, "CreatedDate": sf_datetime(created),
                "SystemModstamp": sf_datetime(t)}

    def _opportunity_history(self, i: int, v: int, t: int) -> dict:
        return {"OpportunityId": sf_id("006", (i // 3) % self.n("Opportunity")), "StageName": OPP_STAGES[i % 3],
                "Amount": float(5000 + ((i // 3) * 731) % 95000), "CloseDate": day_of(t + 30 * DAY_MS),
                "IsDeleted": False, "CreatedDate": sf_datetime(t), "SystemModstamp": sf_datetime(t)}

    def _contact_role(self, i: int, v: int, t: int) -> dict:
        return {"OpportunityId": sf_id("006", i % self.n("Opportunity")),
                "ContactId": sf_id("003", (i * 5) % self.n("Contact")), "Role": pick(
                    ("Decision Maker", "Economic Buyer", "Evaluator"), i), "IsPrimary": i % 3 == 0,
                "IsDeleted": False, "CreatedDate": sf_datetime(self._created("OpportunityContactRole", i)),
                "SystemModstamp": sf_datetime(t)}

    def _campaign(self, i: int, v: int, t: int) -> dict:
        start = self._created("Campaign", i, 10)
        return {"Name": f"Campaign {i}", "Type": CAMPAIGN_TYPES[i % len(CAMPAIGN_TYPES)], "Status": "Completed",
                "ParentId": None, "StartDate": day_of(start), "EndDate": day_of(start + 14 * DAY_MS),
                "BudgetedCost": 5000.0, "ActualCost": float(1000 + i * 250), "IsActive": True, "IsDeleted": False,
                "CreatedDate": sf_datetime(start - DAY_MS), "SystemModstamp": sf_datetime(t)}

    def _campaign_member(self, i: int, v: int, t: int) -> dict:
        lead = i % 2 == 0
        who = (i * 7) % (self.n("Lead") if lead else self.n("Contact"))
        status = MEMBER_STATUSES[(i + v) % len(MEMBER_STATUSES)]
        created = self._created("CampaignMember", i)
        return {"CampaignId": sf_id("701", i % self.n("Campaign")),
                "LeadId": sf_id("00Q", who) if lead else None, "ContactId": None if lead else sf_id("003", who),
                "Email": f"lead{who}@{company_domain(who % 40)}" if lead else f"contact{who}@{company_domain(who % 300)}",
                "Status": status, "HasResponded": status in ("Attended", "Responded", "Claimed", "Meeting Booked"),
                "FirstRespondedDate": day_of(created + DAY_MS) if status != "Registered" else None,
                "IsDeleted": False, "CreatedDate": sf_datetime(created), "SystemModstamp": sf_datetime(t)}

    def values(self, obj: str, i: int, v: int, t: int) -> dict:
        spec = self.objects[obj]
        out = spec.values(i, v, t)
        out["Id"] = sf_id(spec.prefix, i)
        return out

    def parent_value(self, obj: str, record: dict, dotted: str) -> Any:
        rel, _, fld = dotted.partition(".")
        spec = self.objects[obj]
        for name, (_, relationship, ref) in spec.fields.items():
            if relationship == rel:
                pid = record.get(name)
                if not pid:
                    return None
                target = self.objects[ref]
                i = sf_index(pid)
                tl = target.timeline
                return self.values(ref, i, tl.version_of(i), tl.time_of(i)).get(fld)
        return None

    # ---- SOQL -------------------------------------------------------------------------------------------------

    _SOQL = re.compile(r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<obj>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
                       r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", re.I | re.S)
    _COND = re.compile(r"^\s*(\w+(?:\.\w+)?)\s*(>=|<=|!=|=|<|>)\s*(.+?)\s*$")

    def parse(self, soql: str) -> tuple | Response:
        """(object, fields or None for COUNT(), lo, hi, limit) or a 400 answer."""
        m = self._SOQL.match(soql or "")
        if not m:
            return self.sf_error(400, "MALFORMED_QUERY", f"unexpected token in query: {soql[:60]!r}")
        obj = m.group("obj")
        spec = self.objects.get(obj)
        if spec is None:
            return self.sf_error(400, "INVALID_TYPE", f"sObject type '{obj}' is not supported.")
        select = [f.strip() for f in m.group("select").split(",")]
        count = [s.upper() for s in select] == ["COUNT()"]
        relations = {rel: ref for _, rel, ref in spec.fields.values() if rel}
        for f in ([] if count else select):
            base, _, sub = f.partition(".")
            if (not sub and f not in spec.fields) or (sub and (base not in relations
                                                               or sub not in self.objects[relations[base]].fields)):
                return self.sf_error(400, "INVALID_FIELD", f"No such column '{f}' on entity '{obj}'. If you are "
                                     "attempting to use a custom field, be sure to append the '__c' after the custom "
                                     "field name.")
        lo, hi = -(1 << 62), 1 << 62
        for cond in re.split(r"\s+AND\s+", m.group("where") or "", flags=re.I) if m.group("where") else []:
            c = self._COND.match(cond)
            if not c:
                return self.sf_error(400, "MALFORMED_QUERY", f"sandbox: cannot parse condition {cond!r}")
            name, op, raw = c.groups()
            if name == spec.cursor:
                t = parse_time(raw)
                if t is None:
                    return self.sf_error(400, "MALFORMED_QUERY", f"value of filter criterion for field '{name}' "
                                         "must be of type dateTime and should not be enclosed in quotes")
                if op == ">=":
                    lo = max(lo, t)
                elif op == ">":
                    lo = max(lo, t + 1)
                elif op == "<":
                    hi = min(hi, t)
                elif op == "<=":
                    hi = min(hi, t + 1)
                else:
                    return self.sf_error(400, "MALFORMED_QUERY", f"sandbox: operator {op} on {name}")
            elif name in spec.constant and op == "=":
                if raw.strip("'") != spec.constant[name]:
                    lo, hi = 0, 0  # nothing matches
            else:
                return self.sf_error(400, "MALFORMED_QUERY", f"sandbox: cannot filter on {name}")
        order = (m.group("order") or "").replace(" ", "")
        if order and order not in (spec.cursor, f"{spec.cursor},Id", f"{spec.cursor}ASC,IdASC"):
            return self.sf_error(400, "MALFORMED_QUERY", f"sandbox: ORDER BY {m.group('order')} is not supported")
        limit = int(m.group("limit")) if m.group("limit") else None
        return obj, (None if count else select), lo, hi, limit

    def rows(self, parsed: tuple, offset: int, limit: int | None) -> Iterator[dict]:
        """Every field's value of the matching records, in (cursor, Id) order."""
        obj, select, lo, hi, qlimit = parsed
        tl = self.objects[obj].timeline
        if qlimit is not None:
            limit = max(0, min(limit if limit is not None else qlimit, qlimit - offset))
        for i, t, v in tl.items(lo, hi, offset, limit):
            yield self.values(obj, i, v, t)

    def total(self, parsed: tuple) -> int:
        obj, _, lo, hi, qlimit = parsed
        n = self.objects[obj].timeline.count(lo, hi)
        return min(n, qlimit) if qlimit is not None else n

    def rest_record(self, obj: str, values: dict, select: list[str], version: str) -> dict:
        rec: dict[str, Any] = {"attributes": {"type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{values['Id']}"}}
        for f in select:
            if "." in f:
                rel, _, sub = f.partition(".")
                value = self.parent_value(obj, values, f)
                parent_type = next(ref for _, r, ref in self.objects[obj].fields.values() if r == rel)
                if rec.get(rel) is None and value is None:
                    rec[rel] = None
                    continue
                pid = values.get(next(n for n, (_, r, _) in self.objects[obj].fields.items() if r == rel))
                node = rec.get(rel) or {"attributes": {"type": parent_type,
                                                      "url": f"/services/data/v{version}/sobjects/{parent_type}/{pid}"}}
                node[sub] = value
                rec[rel] = node
            else:
                rec[f] = values.get(f)
        return rec

    # ---- routing ----------------------------------------------------------------------------------------------

    _DATA = re.compile(r"^/services/data/v(?P<version>\d+\.\d)/(?P<rest>.*)$")

    def is_token_endpoint(self, req: Request) -> bool:
        return req.path == "/services/oauth2/token"

    def handle(self, req: Request) -> Response:
        if req.path == "/services/oauth2/token" and req.method == "POST":
            return self.oauth(req)
        m = self._DATA.match(req.path)
        if not m:
            return self.sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        with self.lock:
            over = self.api_usage >= self.daily_limit
        if over:
            return self.throttle(req, 0)
        version, rest = m.group("version"), m.group("rest").strip("/")
        parts = rest.split("/")
        if parts[0] == "sobjects" and len(parts) == 3 and parts[2] == "describe":
            return self.describe(parts[1])
        if parts[0] in ("query", "queryAll") and req.method == "GET":
            if len(parts) == 2:
                return self.query_more(parts[1], version)
            return self.query(req, version, parts[0])
        if parts[:2] == ["jobs", "query"]:
            return self.bulk(req, parts[2:], version)
        return self.sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    def oauth(self, req: Request) -> Response:
        form = req.form()
        if form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return json_response(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        access = self.sandbox.tokens.issue(self.name, "00DSANDBOX!AQ")
        return json_response(200, {"access_token": access, "signature": "c2FuZGJveA==", "scope": "api",
                                   "instance_url": self.base_url, "id": f"{self.base_url}/id/00DSANDBOX/005SANDBOX",
                                   "token_type": "Bearer", "issued_at": str(START_MS)})

    def describe(self, obj: str) -> Response:
        spec = self.objects.get(obj)
        if spec is None:
            return self.sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        fields = [{"name": n, "type": kind, "label": n, "nillable": n != "Id", "relationshipName": rel,
                   "referenceTo": [ref] if ref else []} for n, (kind, rel, ref) in spec.fields.items()]
        return json_response(200, {"name": obj, "label": obj, "queryable": True, "keyPrefix": spec.prefix,
                                   "fields": fields})

    def query(self, req: Request, version: str, kind: str) -> Response:
        parsed = self.parse(req.q("q", ""))
        if isinstance(parsed, Response):
            return parsed
        total = self.total(parsed)
        if parsed[1] is None:
            return json_response(200, {"totalSize": total, "done": True, "records": []})
        with self.lock:
            qid = f"01gSB{len(self.cursors) + 1:013d}"
            self.cursors[qid] = parsed
        return self.page(qid, parsed, 0, total, version)

    def query_more(self, locator: str, version: str) -> Response:
        qid, _, offset = locator.rpartition("-")
        parsed = self.cursors.get(qid)
        if parsed is None or not offset.isdigit():
            return self.sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self.page(qid, parsed, int(offset), self.total(parsed), version)

    def page(self, qid: str, parsed: tuple, offset: int, total: int, version: str) -> Response:
        obj, select = parsed[0], parsed[1]
        records = [self.rest_record(obj, values, select, version) for values in self.rows(parsed, offset, self.page_size)]
        body: dict[str, Any] = {"totalSize": total, "done": offset + len(records) >= total, "records": records}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{qid}-{offset + len(records)}"
        return json_response(200, body)

    # ---- Bulk API 2.0 -----------------------------------------------------------------------------------------

    def bulk(self, req: Request, parts: list[str], version: str) -> Response:
        if not parts and req.method == "POST":
            body = req.json() or {}
            parsed = self.parse(body.get("query", ""))
            if isinstance(parsed, Response):
                return parsed
            if body.get("operation") not in ("query", "queryAll"):
                return self.sf_error(400, "INVALIDJOB", "operation must be query or queryAll")
            with self.lock:
                job_id = f"750SB{len(self.jobs) + 1:013d}"
                self.jobs[job_id] = {"parsed": parsed, "polls": 0, "operation": body["operation"],
                                     "body": body}
            return json_response(200, self.job_info(job_id, version, "UploadComplete"))
        job = self.jobs.get(parts[0]) if parts else None
        if job is None:
            return self.sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(parts) == 1 and req.method == "GET":
            with self.lock:
                job["polls"] += 1
                state = "InProgress" if job["polls"] <= self.bulk_polls else "JobComplete"
            return json_response(200, self.job_info(parts[0], version, state))
        if len(parts) == 2 and parts[1] == "results" and req.method == "GET":
            if job["polls"] <= self.bulk_polls:
                return self.sf_error(400, "API_ERROR", "job is not complete")
            return self.results(job, req)
        return self.sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    def job_info(self, job_id: str, version: str, state: str) -> dict:
        job = self.jobs[job_id]
        info = {"id": job_id, "operation": job["operation"], "object": job["parsed"][0],
                "createdById": "005SB0000000001AAA", "createdDate": sf_datetime(START_MS),
                "systemModstamp": sf_datetime(START_MS), "state": state, "concurrencyMode": "Parallel",
                "contentType": "CSV", "apiVersion": float(version), "lineEnding": "LF", "columnDelimiter": "COMMA"}
        if state == "JobComplete":
            info.update({"jobType": "V2Query", "numberRecordsProcessed": self.total(job["parsed"]), "retries": 0,
                         "totalProcessingTime": 1234})
        return info

    def results(self, job: dict, req: Request) -> Response:
        parsed = job["parsed"]
        obj, select = parsed[0], parsed[1] or ["Id"]
        total = self.total(parsed)
        offset = untoken(req.q("locator"))
        size = int(req.q("maxRecords") or 100_000)
        count = max(0, min(size, total - offset))
        nxt = token(offset + count) if offset + count < total else "null"

        def lines() -> Iterator[str]:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(select)
            for values in self.rows(parsed, offset, count):
                w.writerow([self.csv_cell(obj, values, f) for f in select])
                if buf.tell() > 1 << 15:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue()

        return Response(200, chunks(lines()), {"Content-Type": "text/csv", "Sforce-Locator": nxt,
                                              "Sforce-NumberOfRecords": str(count)})

    def csv_cell(self, obj: str, values: dict, f: str) -> str:
        value = self.parent_value(obj, values, f) if "." in f else values.get(f)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.endswith("+0000"):
            return value[:-5] + "Z"
        return str(value)

    # ---- answers ----------------------------------------------------------------------------------------------

    def sf_error(self, status: int, code: str, message: str) -> Response:
        return json_response(status, [{"message": message, "errorCode": code}])

    def decorate(self, req: Request, resp: Response) -> None:
        if self.is_token_endpoint(req):
            return
        with self.lock:
            self.api_usage += 1
            used = self.api_usage
        resp.headers["Sforce-Limit-Info"] = f"api-usage={used}/{self.daily_limit}"

    def throttle(self, req: Request, retry_after: float) -> Response:
        return self.sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def error(self, req: Request, status: int) -> Response:
        return self.sf_error(status, "SERVER_UNAVAILABLE", "Server temporarily unavailable, please try again")

    def unauthorized(self, req: Request) -> Response:
        return self.sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
