"""Write cassettes/salesforce/*.yaml: synthesized Salesforce HTTP in the documented shapes (no live org here).

Run from the repository root:  python tests/cassette_builders/salesforce.py

Where each shape comes from (Salesforce developer docs, API v60.0, and simple-salesforce 1.12 in the venv):
- OAuth 2.0 client credentials: POST {login_url}/services/oauth2/token, form body grant_type=client_credentials
  &client_id&client_secret; JSON answer {access_token, signature, instance_url, id, token_type, issued_at, scope}
  ("OAuth 2.0 Client Credentials Flow for Server-to-Server Integration"; Connect REST API quick start).
- Errors: HTTP 401 [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]; 403
  REQUEST_LIMIT_EXCEEDED; 404 NOT_FOUND (REST API "Status Codes and Error Responses"; simple_salesforce/api.py
  `_call_salesforce` reads `result.json()[0]['errorCode']`).
- `Sforce-Limit-Info: api-usage=N/M` on every REST response (REST API "Limit Info Header";
  simple_salesforce `Salesforce.parse_api_usage`).
- describe: GET /services/data/v60.0/sobjects/{object}/describe -> {name, label, ..., fields: [{name, type,
  soapType, relationshipName, referenceTo, nillable, ...}], urls} ("sObject Describe"); trimmed to the keys used.
- SOQL: GET /services/data/v60.0/queryAll?q=... -> {totalSize, done, nextRecordsUrl?, records: [{attributes:
  {type, url}, ...}]}; child-to-parent fields nest as {"Lead": {"attributes": {...}, "Email": ...}};
  nextRecordsUrl = /services/data/v60.0/query/<locator>-<n> even for queryAll ("QueryAll", "Execute a SOQL
  Query that Includes Deleted Items"); COUNT() answers {totalSize, done, records: []}.
- Bulk API 2.0 query: POST /services/data/v60.0/jobs/query {operation, query, contentType, columnDelimiter,
  lineEnding} -> job info {id, operation, object, createdById, createdDate, systemModstamp, state:
  UploadComplete, concurrencyMode, contentType, apiVersion, jobType: V2Query, lineEnding, columnDelimiter};
  GET .../jobs/query/{id} -> the same with state InProgress/JobComplete, numberRecordsProcessed, retries,
  totalProcessingTime; GET .../jobs/query/{id}/results?maxRecords=N[&locator=L] -> text/csv (header row,
  every value quoted, LF), headers Sforce-Locator (next set, "null" on the last) and Sforce-NumberOfRecords
  ("Create a Query Job", "Get Information About a Query Job", "Get Results for a Query Job";
  simple_salesforce/bulk2.py `create_job`, `get_query_results`).
The SOQL text is built by connectors/salesforce.py itself (the same field selection from the same describes),
so requests match exactly; tests/connectors/test_salesforce.py asserts the SOQL shape separately.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import connectors.salesforce as sf  # noqa: E402
from connectors.core import Run  # noqa: E402

HOST = "https://acme.my.salesforce.com"
LOGIN = "https://login.salesforce.com"
V = "60.0"
DATA = f"{HOST}/services/data/v{V}"
OUT = ROOT / "cassettes" / "salesforce"
SELF_REPORT = "How_did_you_hear_about_us__c"
USER = "0055g0000000001IAA"

# ---- describes ---------------------------------------------------------------------------------------------

SOAP = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "datetime": "xsd:dateTime", "date": "xsd:date",
        "currency": "xsd:double", "double": "xsd:double", "percent": "xsd:double", "int": "xsd:int",
        "anyType": "xsd:anyType"}
LABELS = {"Lead": "Leads", "Contact": "Contacts", "Account": "Accounts", "Opportunity": "Opportunities",
          "OpportunityHistory": "Opportunity History", "OpportunityFieldHistory": "Opportunity Field History",
          "LeadHistory": "Lead History", "OpportunityContactRole": "Opportunity Contact Role",
          "Campaign": "Campaigns", "CampaignMember": "Campaign Members"}
PREFIX = {"Lead": "00Q", "Contact": "003", "Account": "001", "Opportunity": "006", "OpportunityHistory": "008",
          "OpportunityFieldHistory": "017", "LeadHistory": "017", "OpportunityContactRole": "00K",
          "Campaign": "701", "CampaignMember": "00v"}
COMMON = [("Id", "id"), ("IsDeleted", "boolean"), ("CreatedDate", "datetime"), ("CreatedById", "reference:CreatedBy:User")]
FIELDS = {
    "Lead": COMMON + [("Email", "email"), ("FirstName", "string"), ("LastName", "string"), ("Company", "string"),
                      ("Status", "picklist"), ("LeadSource", "picklist"), ("IsConverted", "boolean"),
                      ("ConvertedDate", "date"), ("ConvertedContactId", "reference:ConvertedContact:Contact"),
                      ("ConvertedAccountId", "reference:ConvertedAccount:Account"),
                      ("ConvertedOpportunityId", "reference:ConvertedOpportunity:Opportunity"),
                      ("SystemModstamp", "datetime")],
    "LeadHistory": COMMON + [("LeadId", "reference:Lead:Lead"), ("Field", "picklist"), ("DataType", "picklist"),
                             ("OldValue", "anyType"), ("NewValue", "anyType")],
    "Contact": COMMON + [("Email", "email"), ("FirstName", "string"), ("LastName", "string"),
                         ("AccountId", "reference:Account:Account"), ("LeadSource", "picklist"),
                         ("SystemModstamp", "datetime")],
    "Account": COMMON + [("Name", "string"), ("Website", "url"), ("Industry", "picklist"), ("SystemModstamp", "datetime")],
    "Opportunity": COMMON + [("Name", "string"), ("AccountId", "reference:Account:Account"), ("Amount", "currency"),
                             ("StageName", "picklist"), ("IsClosed", "boolean"), ("IsWon", "boolean"),
                             ("CloseDate", "date"), ("LeadSource", "picklist"), ("CampaignId", "reference:Campaign:Campaign"),
                             ("Type", "picklist"), ("Probability", "percent"), ("SystemModstamp", "datetime")],
    "OpportunityHistory": COMMON + [("OpportunityId", "reference:Opportunity:Opportunity"), ("StageName", "picklist"),
                                    ("Amount", "currency"), ("CloseDate", "date"), ("Probability", "percent"),
                                    ("SystemModstamp", "datetime")],
    "OpportunityFieldHistory": COMMON + [("OpportunityId", "reference:Opportunity:Opportunity"), ("Field", "picklist"),
                                         ("DataType", "picklist"), ("OldValue", "anyType"), ("NewValue", "anyType")],
    "OpportunityContactRole": COMMON + [("OpportunityId", "reference:Opportunity:Opportunity"),
                                        ("ContactId", "reference:Contact:Contact"), ("Role", "picklist"),
                                        ("IsPrimary", "boolean"), ("SystemModstamp", "datetime")],
    "Campaign": COMMON + [("Name", "string"), ("Type", "picklist"), ("Status", "picklist"),
                          ("ParentId", "reference:Parent:Campaign"), ("StartDate", "date"), ("EndDate", "date"),
                          ("BudgetedCost", "currency"), ("ActualCost", "currency"), ("IsActive", "boolean"),
                          ("SystemModstamp", "datetime")],
    "CampaignMember": COMMON + [("CampaignId", "reference:Campaign:Campaign"), ("LeadId", "reference:Lead:Lead"),
                                ("ContactId", "reference:Contact:Contact"), ("Email", "email"), ("Status", "picklist"),
                                ("HasResponded", "boolean"), ("FirstRespondedDate", "date"), ("SystemModstamp", "datetime")],
}


def describe(obj: str, extra: tuple[tuple[str, str], ...] = ()) -> dict:
    fields = []
    for name, kind in FIELDS[obj] + list(extra):
        rel, ref = None, []
        if kind.startswith("reference:"):
            _, rel, target = kind.split(":")
            kind, ref = "reference", [target]
        fields.append({
            "name": name, "label": name, "type": kind, "soapType": SOAP.get(kind, "xsd:string"),
            "length": 0 if kind in SOAP else 255, "nillable": name not in ("Id", "IsDeleted", "CreatedDate"),
            "custom": name.endswith("__c"), "filterable": True, "sortable": kind != "anyType",
            "calculated": False, "createable": name not in ("Id", "IsDeleted", "CreatedDate", "SystemModstamp"),
            "updateable": False, "relationshipName": rel, "referenceTo": ref,
        })
    base = f"/services/data/v{V}/sobjects/{obj}"
    return {"name": obj, "label": obj, "labelPlural": LABELS[obj], "keyPrefix": PREFIX[obj], "custom": False,
            "queryable": True, "retrieveable": True, "replicateable": True, "searchable": True,
            "createable": True, "updateable": True, "deletable": True, "fields": fields,
            "urls": {"sobject": base, "describe": base + "/describe", "rowTemplate": base + "/{ID}"}}


def field_types(obj: str, extra=()) -> dict:
    return {f["name"]: f["type"] for f in describe(obj, extra)["fields"]}


# ---- ids, times, records -----------------------------------------------------------------------------------


def sfid(obj: str, n: int) -> str:
    return f"{PREFIX[obj]}5g{n:010d}IAA"


def ts(text: str) -> str:
    """'2024-01-05 10:00' -> REST dateTime '2024-01-05T10:00:00.000+0000'."""
    dt = datetime.strptime(text, "%Y-%m-%d %H:%M" if len(text) > 10 else "%Y-%m-%d")
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


PARENT_ID = {"Lead": "LeadId", "Contact": "ContactId", "Campaign": "CampaignId"}
PARENT_TYPE = {"Lead": "Lead", "Contact": "Contact", "Campaign": "Campaign"}


def rest_record(obj: str, fields: list[str], values: dict) -> dict:
    """A queryAll record: attributes, then the selected fields in SELECT order (parents nested)."""
    rec: dict = {"attributes": {"type": obj, "url": f"/services/data/v{V}/sobjects/{obj}/{values['Id']}"}}
    for f in fields:
        if "." in f:
            rel, leaf = f.split(".", 1)
            pid = values.get(PARENT_ID[rel])
            if pid is None:
                rec[rel] = None
            else:
                rec.setdefault(rel, {"attributes": {"type": PARENT_TYPE[rel],
                                                    "url": f"/services/data/v{V}/sobjects/{PARENT_TYPE[rel]}/{pid}"}})
                rec[rel][leaf] = values.get(f)
        else:
            rec[f] = values.get(f)
    return rec


def csv_text(fields: list[str], rows: list[dict], types: dict) -> str:
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(fields)
    for values in rows:
        cells = []
        for f in fields:
            v = values.get(f)
            kind = types.get(f)
            if v is None:
                cells.append("")
            elif isinstance(v, bool):
                cells.append("true" if v else "false")
            elif kind == "datetime":
                cells.append(v.replace("+0000", "Z"))
            else:
                cells.append(str(v))
        w.writerow(cells)
    return out.getvalue()


# ---- SOQL through the connector ----------------------------------------------------------------------------


class _Quiet:
    def __call__(self, message: str) -> None:
        pass


def plan(stream_obj: str, *, since: str, self_report: str | None = None, extra=(), until: str | None = None):
    """(fields, REST SOQL, COUNT SOQL, bulk SOQL, types) exactly as the connector builds them."""
    client = sf.SalesforceClient({"instance_url": HOST, "access_token": "x", "self_report_field": self_report})
    spec = sf.SPECS[stream_obj]
    d = describe(spec.object, extra)
    run = Run(source={}, state=None, start=datetime(2024, 1, 1).date(), log=_Quiet())
    fields, types = sf.select_fields(client, spec, d, run)
    s = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    u = datetime.strptime(until, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) if until else None
    return (fields, client.soql(spec, fields, s, u), client.soql(spec, fields, s, u, count=True),
            client.soql(spec, fields, s, u, ordered=False), types, d)


# ---- interactions ------------------------------------------------------------------------------------------

UA = "funnelsync/0.1"
usage_counter = [2000]


def limit_header(fixed: str | None = None) -> str:
    if fixed:
        return fixed
    usage_counter[0] += 1
    return f"api-usage={usage_counter[0]}/15000"


def req(method: str, uri: str, body: str | None = None, content_type: str | None = None, accept="application/json"):
    headers = {"Accept": [accept], "Authorization": ["REDACTED"], "User-Agent": [UA]}
    if content_type:
        headers["Content-Type"] = [content_type]
    return {"method": method, "uri": uri, "body": body, "headers": headers}


def resp(status: int, body: str, content_type="application/json;charset=UTF-8", headers: dict | None = None,
         usage: str | None = None, limit: bool = True):
    messages = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                404: "Not Found"}
    h = {"Content-Type": [content_type], "Date": ["Mon, 01 Apr 2024 00:00:00 GMT"],
         "Strict-Transport-Security": ["max-age=63072000; includeSubDomains"], "Vary": ["Accept-Encoding"]}
    if limit:
        h["Sforce-Limit-Info"] = [limit_header(usage)]
    for k, v in (headers or {}).items():
        h[k] = [v]
    return {"status": {"code": status, "message": messages.get(status, "OK")}, "headers": h,
            "body": {"string": body}}


def jdump(data) -> str:
    return json.dumps(data, indent=None, separators=(",", ":"))


def i_describe(obj: str, extra=(), usage=None):
    return {"request": req("GET", f"{DATA}/sobjects/{obj}/describe"),
            "response": resp(200, jdump(describe(obj, extra)), usage=usage)}


def query_uri(soql: str) -> str:
    return f"{DATA}/queryAll?{urlencode({'q': soql})}"


def i_count(soql: str, n: int, usage=None):
    return {"request": req("GET", query_uri(soql)),
            "response": resp(200, jdump({"totalSize": n, "done": True, "records": []}), usage=usage)}


def i_pages(obj: str, soql: str, fields: list[str], rows: list[dict], sizes: list[int], locator: str,
            usages: list[str | None] | None = None):
    """queryAll + nextRecordsUrl pages holding `rows` split by `sizes`."""
    cursor = "SystemModstamp" if "SystemModstamp" in fields else "CreatedDate"
    rows = sorted(rows, key=lambda r: (r[cursor], r["Id"]))  # ORDER BY cursor, Id
    out, pos = [], 0
    for k, size in enumerate(sizes):
        chunk = rows[pos:pos + size]
        pos += size
        done = pos >= len(rows)
        body = {"totalSize": len(rows), "done": done, "records": [rest_record(obj, fields, r) for r in chunk]}
        if not done:
            body = {"totalSize": len(rows), "done": False, "nextRecordsUrl": f"/services/data/v{V}/query/{locator}-{pos}",
                    "records": body["records"]}
        uri = query_uri(soql) if k == 0 else f"{HOST}/services/data/v{V}/query/{locator}-{pos - size}"
        usage = usages[k] if usages else None
        out.append({"request": req("GET", uri), "response": resp(200, jdump(body), usage=usage)})
    return out


def job_info(job_id: str, obj: str, state: str, created: str, processed: int | None = None) -> dict:
    info = {"id": job_id, "operation": "queryAll", "object": obj, "createdById": USER,
            "createdDate": created, "systemModstamp": created, "state": state, "concurrencyMode": "Parallel",
            "contentType": "CSV", "apiVersion": float(V), "jobType": "V2Query", "lineEnding": "LF",
            "columnDelimiter": "COMMA"}
    if processed is not None:
        info.update({"numberRecordsProcessed": processed, "retries": 0, "totalProcessingTime": 1840})
    return info


def i_bulk(obj: str, soql: str, fields: list[str], rows: list[dict], types: dict, job_id: str, max_records: int,
           locators: list[str]):
    body = {"operation": "queryAll", "query": soql, "contentType": "CSV", "columnDelimiter": "COMMA",
            "lineEnding": "LF"}
    created = "2024-04-01T00:00:01.000+0000"
    out = [
        {"request": req("POST", f"{DATA}/jobs/query", jdump(body), content_type="application/json"),
         "response": resp(200, jdump(job_info(job_id, obj, "UploadComplete", created)))},
        {"request": req("GET", f"{DATA}/jobs/query/{job_id}"),
         "response": resp(200, jdump(job_info(job_id, obj, "InProgress", created)))},
        {"request": req("GET", f"{DATA}/jobs/query/{job_id}"),
         "response": resp(200, jdump(job_info(job_id, obj, "JobComplete", created, len(rows))))},
    ]
    pos, locator = 0, None
    for k in range(len(locators) + 1):
        chunk = rows[pos:pos + max_records]
        pos += len(chunk)
        params = {"maxRecords": max_records}
        if locator:
            params["locator"] = locator
        nxt = locators[k] if k < len(locators) else "null"
        out.append({"request": req("GET", f"{DATA}/jobs/query/{job_id}/results?{urlencode(params)}", accept="text/csv"),
                    "response": resp(200, csv_text(fields, chunk, types), content_type="text/csv",
                                     headers={"Sforce-Locator": nxt, "Sforce-NumberOfRecords": str(len(chunk))})})
        locator = nxt
    return out


def i_token():
    body = urlencode({"grant_type": "client_credentials", "client_id": "REDACTED", "client_secret": "REDACTED"})
    token = {"access_token": "REDACTED", "signature": "REDACTED", "instance_url": HOST,
             "id": f"https://login.salesforce.com/id/00D5g0000000001EAA/{USER}", "token_type": "Bearer",
             "issued_at": "1711929600000", "scope": "api"}
    r = req("POST", f"{LOGIN}/services/oauth2/token", body, content_type="application/x-www-form-urlencoded")
    r["headers"].pop("Authorization")
    return {"request": r, "response": resp(200, jdump(token), limit=False)}


def error(status: int, code: str, message: str, usage=None):
    return resp(status, jdump([{"message": message, "errorCode": code}]), limit=status != 401, usage=usage)


def write(name: str, interactions: list[dict]) -> None:
    from vcr.serializers import yamlserializer

    OUT.mkdir(parents=True, exist_ok=True)
    text = yamlserializer.serialize({"interactions": interactions, "version": 1})
    (OUT / name).write_text(text)
    print(f"wrote cassettes/salesforce/{name} ({len(interactions)} interactions)")


# ---- test scenarios ----------------------------------------------------------------------------------------

FIRST = "2024-01-01T00:00:00Z"


def lead_row(n, email, created, status, modstamp, **kw):
    row = {"Id": sfid("Lead", n), "Email": email, "FirstName": email.split("@")[0].title() if email else None,
           "LastName": "Example", "Company": kw.pop("Company", None), "Status": status,
           "LeadSource": kw.pop("LeadSource", "Web"), "CreatedDate": ts(created), "IsConverted": False,
           "ConvertedDate": None, "ConvertedContactId": None, "ConvertedAccountId": None,
           "ConvertedOpportunityId": None, "IsDeleted": False, "SystemModstamp": ts(modstamp)}
    row.update(kw)
    return row


def scenario_incremental():
    """A saved cursor 12:00 with a 10-minute lookback: a row that committed late (11:55) is read, and a delete."""
    fields, soql, count, _, _, _ = plan("Lead", since="2024-03-10T11:50:00Z")
    rows = [
        lead_row(901, "late@initech.example", "2024-03-10 11:55", "Open - Not Contacted", "2024-03-10 11:55"),
        lead_row(902, "judy@hooli.example", "2024-03-09 08:00", "Working - Contacted", "2024-03-10 12:00"),
        lead_row(903, "spam@mailinator.example", "2024-03-10 12:10", "Open - Not Contacted", "2024-03-10 12:30",
                 IsDeleted=True),
    ]
    write("lead_incremental.yaml", [i_describe("Lead"), i_count(count, 3)]
          + i_pages("Lead", soql, fields, rows, [2, 1], "01g5g00000AbCdEIAA"))


CURRENCY = (("CurrencyIsoCode", "picklist"),)


def paths_data():
    leads = [
        lead_row(1, "alice@acme-corp.example", "2024-01-05 10:00", "Closed - Converted", "2024-01-22 15:00",
                 Company="Acme Corp", IsConverted=True, ConvertedDate="2024-01-22",
                 ConvertedContactId=sfid("Contact", 1), ConvertedAccountId=sfid("Account", 1),
                 ConvertedOpportunityId=sfid("Opportunity", 1), LeadSource="Webinar"),
        lead_row(2, "heidi@initech.example", "2024-01-09 14:30", "Working - Contacted", "2024-02-02 09:00",
                 Company="Initech, Inc.\nR&D \"Labs\""),
        lead_row(3, None, "2024-01-12 08:00", "Open - Not Contacted", "2024-01-15 08:00", IsDeleted=True,
                 LeadSource=None),
    ]
    members = [
        {"Id": sfid("CampaignMember", 1), "CampaignId": sfid("Campaign", 2), "LeadId": sfid("Lead", 1),
         "ContactId": sfid("Contact", 1), "Email": "alice@acme-corp.example", "Status": "Attended",
         "HasResponded": True, "FirstRespondedDate": "2024-02-15", "CreatedDate": ts("2024-02-01 10:00"),
         "IsDeleted": False, "SystemModstamp": ts("2024-02-16 09:00"), "Campaign.Type": "Webinar"},
        {"Id": sfid("CampaignMember", 2), "CampaignId": sfid("Campaign", 2), "LeadId": sfid("Lead", 2),
         "ContactId": None, "Email": None, "Status": "Registered", "HasResponded": False,
         "FirstRespondedDate": None, "CreatedDate": ts("2024-02-03 11:00"), "IsDeleted": False,
         "SystemModstamp": ts("2024-02-03 11:00"), "Campaign.Type": "Webinar"},
        {"Id": sfid("CampaignMember", 3), "CampaignId": sfid("Campaign", 4), "LeadId": None,
         "ContactId": sfid("Contact", 2), "Email": "bob@globex.example", "Status": "Meeting Booked",
         "HasResponded": True, "FirstRespondedDate": "2024-01-30", "CreatedDate": ts("2024-01-22 12:00"),
         "IsDeleted": False, "SystemModstamp": ts("2024-02-05 12:00"), "Campaign.Type": "Direct Mail"},
    ]
    opps = [
        {"Id": sfid("Opportunity", 1), "Name": "Acme Corp - Platform", "AccountId": sfid("Account", 1),
         "Amount": 48000.0, "CurrencyIsoCode": "USD", "StageName": "Closed Won", "IsClosed": True, "IsWon": True,
         "CloseDate": "2024-03-15", "CreatedDate": ts("2024-01-22 15:00"), "LeadSource": "Webinar",
         "CampaignId": sfid("Campaign", 2), "Type": "New Customer", "IsDeleted": False,
         "SystemModstamp": ts("2024-03-15 16:00")},
        {"Id": sfid("Opportunity", 2), "Name": "Globex - Expansion", "AccountId": sfid("Account", 2),
         "Amount": 36000.5, "CurrencyIsoCode": "EUR", "StageName": "Proposal/Price Quote", "IsClosed": False,
         "IsWon": False, "CloseDate": "2024-05-30", "CreatedDate": ts("2024-01-29 10:00"), "LeadSource": None,
         "CampaignId": None, "Type": "Existing Customer - Upgrade", "IsDeleted": False,
         "SystemModstamp": ts("2024-03-01 10:00")},
        {"Id": sfid("Opportunity", 3), "Name": "Initech - Pilot", "AccountId": None, "Amount": None,
         "CurrencyIsoCode": "USD", "StageName": "Closed Lost", "IsClosed": True, "IsWon": False,
         "CloseDate": "2024-03-08", "CreatedDate": ts("2024-02-07 09:00"), "LeadSource": "Web",
         "CampaignId": None, "Type": None, "IsDeleted": False, "SystemModstamp": ts("2024-03-08 17:00")},
    ]
    return {"Lead": (leads, ()), "CampaignMember": (members, ()), "Opportunity": (opps, CURRENCY)}


def scenario_paths():
    """The same records through REST (below bulk_threshold) and Bulk API 2.0 (above it)."""
    rest, bulk = [], []
    for k, (stream, (rows, extra)) in enumerate(paths_data().items()):
        fields, soql, count, bulk_soql, types, _ = plan(stream, since=FIRST, extra=extra)
        rest += [i_describe(stream, extra), i_count(count, len(rows))]
        rest += i_pages(stream, soql, fields, rows, [2, 1], f"01g5g00000Path{k}IAA")
        bulk += [i_describe(stream, extra), i_count(count, len(rows))]
        bulk += i_bulk(stream, bulk_soql, fields, rows, types, f"7505g00000Bulk{k}IAA", 2, [f"MjAwMDA{k}"])
    write("paths_rest.yaml", rest)
    write("paths_bulk.yaml", bulk)


def scenario_oauth_refresh():
    """Client credentials: token, a 401 INVALID_SESSION_ID, one new token, the request again."""
    fields, soql, count, _, _, _ = plan("Account", since=FIRST)
    acc = {"Id": sfid("Account", 1), "Name": "Acme Corp", "Website": "https://www.acme-corp.example",
           "Industry": "Manufacturing", "CreatedDate": ts("2024-01-22 15:00"), "IsDeleted": False,
           "SystemModstamp": ts("2024-01-22 15:00")}
    write("oauth_refresh.yaml", [
        i_token(),
        {"request": req("GET", f"{DATA}/sobjects/Account/describe"),
         "response": error(401, "INVALID_SESSION_ID", "Session expired or invalid")},
        i_token(),
        i_describe("Account"), i_count(count, 1),
    ] + i_pages("Account", soql, fields, [acc], [1], "01g5g00000Auth0IAA"))
    bad = i_token()
    bad["response"] = resp(400, jdump({"error": "invalid_client", "error_description": "invalid client credentials"}),
                           limit=False)
    write("oauth_invalid_client.yaml", [bad])
    write("static_401.yaml", [
        {"request": req("GET", f"{DATA}/sobjects/Account/describe"),
         "response": error(401, "INVALID_SESSION_ID", "Session expired or invalid")},
    ])


def contact_row(n, email, created, modstamp, account=None, **kw):
    row = {"Id": sfid("Contact", n), "Email": email, "FirstName": email.split("@")[0].title(),
           "LastName": "Example", "AccountId": account, "LeadSource": kw.pop("LeadSource", None),
           "CreatedDate": ts(created), "IsDeleted": False, "SystemModstamp": ts(modstamp)}
    row.update(kw)
    return row


def quota_contacts():
    return [
        contact_row(1, "alice@acme-corp.example", "2024-01-22 15:00", "2024-02-01 09:00", sfid("Account", 1)),
        contact_row(2, "bob@globex.example", "2024-01-29 10:00", "2024-02-02 09:00", sfid("Account", 2)),
        contact_row(3, "carol@initech.example", "2024-01-30 09:00", "2024-02-03 09:00", sfid("Account", 3)),
        contact_row(4, "dan@umbrella.example", "2024-01-31 09:00", "2024-02-03 09:05", sfid("Account", 4)),
        contact_row(5, "erin@hooli.example", "2024-02-01 09:00", "2024-02-04 09:00", sfid("Account", 5)),
    ]


def scenario_quota():
    """One uninterrupted run; run 1 stopped by the budget after page 2; run 2 resumes from run 1's state."""
    rows = quota_contacts()
    fields, soql, count, _, _, _ = plan("Contact", since=FIRST)
    write("quota_full.yaml", [i_describe("Contact"), i_count(count, 5)]
          + i_pages("Contact", soql, fields, rows, [2, 2, 1], "01g5g00000Full0IAA"))
    write("quota_run1.yaml", [i_describe("Contact", usage="api-usage=11000/15000"),
                              i_count(count, 5, usage="api-usage=11500/15000")]
          + i_pages("Contact", soql, fields, rows, [2, 2, 1], "01g5g00000Run10IAA",
                    usages=["api-usage=11800/15000", "api-usage=12100/15000", "api-usage=12101/15000"]))
    # run 2: cursor = C4 (2024-02-03T09:05) minus 10 minutes
    fields, soql, count, _, _, _ = plan("Contact", since="2024-02-03T08:55:00Z")
    write("quota_run2.yaml", [i_describe("Contact", usage="api-usage=40/15000"),
                              i_count(count, 3, usage="api-usage=41/15000")]
          + i_pages("Contact", soql, fields, rows[2:], [2, 1], "01g5g00000Run20IAA",
                    usages=["api-usage=42/15000", "api-usage=43/15000"]))
    fields, soql, count, _, _, _ = plan("Contact", since=FIRST)
    write("limit_exceeded.yaml", [
        i_describe("Contact", usage="api-usage=11000/15000"),
        {"request": req("GET", query_uri(count)),
         "response": error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.",
                           usage="api-usage=15001/15000")},
    ])


def scenario_history_fallback():
    """An org without OpportunityHistory: OpportunityFieldHistory rows with Field = 'StageName'."""
    fields, soql, count, _, _, _ = plan("OpportunityFieldHistory", since=FIRST)
    rows = [
        {"Id": sfid("OpportunityFieldHistory", 1), "OpportunityId": sfid("Opportunity", 1), "Field": "StageName",
         "OldValue": "Prospecting", "NewValue": "Qualification", "CreatedDate": ts("2024-01-26 10:00"),
         "IsDeleted": False},
        {"Id": sfid("OpportunityFieldHistory", 2), "OpportunityId": sfid("Opportunity", 1), "Field": "StageName",
         "OldValue": "Negotiation/Review", "NewValue": "Closed Won", "CreatedDate": ts("2024-03-15 16:00"),
         "IsDeleted": False},
    ]
    write("history_fallback.yaml", [
        {"request": req("GET", f"{DATA}/sobjects/OpportunityHistory/describe"),
         "response": error(404, "NOT_FOUND", "The requested resource does not exist")},
        i_describe("OpportunityFieldHistory"), i_count(count, 2),
    ] + i_pages("OpportunityFieldHistory", soql, fields, rows, [2], "01g5g00000Hist0IAA"))


# ---- the demo org (funnelsync demo: now 2024-04-01, start_date 2024-01-01) ---------------------------------

ACCOUNTS = [  # n, name, website, industry, created
    (1, "Acme Corp", "https://www.acme-corp.example", "Manufacturing", "2024-01-22 15:00"),
    (2, "Globex", "globex.example", "Technology", "2024-01-29 10:00"),
    (3, "Initech", "https://initech.example/", "Technology", "2024-02-07 09:00"),
    (4, "Umbrella Corporation", "www.umbrella.example", "Healthcare", "2024-02-14 09:30"),
    (5, "Hooli", "https://hooli.example", "Technology", "2024-01-15 11:00"),
    (6, "Vandelay Industries", "vandelay.example", "Retail", "2024-02-26 10:00"),
    (7, "Wayne Enterprises", "https://wayne-ent.example", "Financial Services", "2024-03-04 09:00"),
    (8, "Stark Industries", "stark-ind.example", "Energy", "2024-03-12 10:00"),
    (9, "Wonka Industries", "https://www.wonka.example/about", "Food & Beverage", "2024-03-20 09:00"),
    (10, "Cyberdyne Systems", "cyberdyne.example", "Technology", "2024-03-15 14:00"),
]
# n, first, last, email, company, created, LeadSource, status changes [(at, status)], conversion, self-report
# conversion = (at, contact n, account n, opportunity n or None)
LEADS = [
    (1, "Alice", "Anders", "alice@acme-corp.example", "Acme Corp", "2024-01-04 09:30", "Web",
     [("2024-01-10 10:00", "Marketing Qualified"), ("2024-01-19 11:00", "Sales Qualified")],
     ("2024-01-22 15:00", 1, 1, 1), "A colleague shared your guide in our Slack"),
    (2, "Bob", "Brown", "bob@globex.example", "Globex", "2024-01-08 13:15", "Advertisement",
     [("2024-01-18 09:00", "Marketing Qualified"), ("2024-01-26 16:00", "Sales Qualified")],
     ("2024-01-29 10:00", 2, 2, 2), "LinkedIn ad"),
    (3, "Carol", "Chen", "carol@initech.example", "Initech", "2024-01-11 16:40", "Web",
     [("2024-01-24 12:00", "Marketing Qualified"), ("2024-02-05 10:30", "Sales Qualified")],
     ("2024-02-07 09:00", 3, 3, 3), "Google search"),
    (4, "Dan", "Diaz", "dan@umbrella.example", "Umbrella Corporation", "2024-01-16 10:05", "Trade Show",
     [("2024-02-01 08:30", "Marketing Qualified"), ("2024-02-12 14:00", "Sales Qualified")],
     ("2024-02-14 09:30", 4, 4, 4), None),
    (5, "Erin", "Evans", "erin@hooli.example", "Hooli", "2024-01-19 11:20", "Partner Referral",
     [("2024-02-06 15:00", "Marketing Qualified"), ("2024-02-19 10:00", "Sales Qualified")],
     ("2024-02-21 09:00", 5, 5, 5), "Heard you on a podcast"),
    (6, "Frank", "Fischer", "frank@acme-corp.example", "Acme Corp", "2024-01-25 09:45", "Web",
     [("2024-02-16 10:00", "Marketing Qualified")], None, None),
    (7, "Heidi", "Hall", "heidi@initech.example", "Initech", "2024-02-02 14:10", "Webinar",
     [("2024-02-20 09:00", "Working - Contacted")], None, None),
    (8, "Ivan", "Ivanov", "ivan@vandelay.example", "Vandelay Industries", "2024-02-05 08:50", "Partner Referral",
     [("2024-02-13 11:00", "Marketing Qualified"), ("2024-02-22 09:00", "Sales Qualified")],
     ("2024-02-26 10:00", 6, 6, None), None),
    (9, "Ken", "Kowalski", "ken@wayne-ent.example", "Wayne Enterprises", "2024-02-08 12:30", "Advertisement",
     [("2024-02-20 09:30", "Marketing Qualified"), ("2024-03-01 11:00", "Sales Qualified")],
     ("2024-03-04 09:00", 7, 7, 6), "Saw a LinkedIn post"),
    (10, "Laura", "Lopez", "laura@stark-ind.example", "Stark Industries", "2024-02-12 15:00", "Web",
     [("2024-02-27 10:00", "Marketing Qualified"), ("2024-03-08 13:00", "Sales Qualified")],
     ("2024-03-12 10:00", 8, 8, 7), None),
    (11, "Mike", "Miller", "mike@wonka.example", "Wonka Industries", "2024-02-15 10:10", "Other",
     [("2024-03-05 09:00", "Marketing Qualified"), ("2024-03-15 10:00", "Sales Qualified")],
     ("2024-03-20 09:00", 9, 9, 8), "Got your postcard in the mail"),
    (12, "Nina", "Novak", "nina@cyberdyne.example", "Cyberdyne Systems", "2024-02-19 09:25", "Web",
     [("2024-03-04 14:00", "Marketing Qualified"), ("2024-03-13 09:00", "Sales Qualified")],
     ("2024-03-15 14:00", 10, 10, None), None),
    (13, "Olga", "Olsen", "olga@tyrell.example", "Tyrell Corp", "2024-02-06 11:00", "Webinar",
     [("2024-02-22 10:00", "Marketing Qualified")], None, "Your webinar"),
    (14, "Paul", "Perez", "paul@soylent.example", "Soylent", "2024-02-09 16:20", "Webinar", [], None, None),
    (15, "Quinn", "Quade", "quinn@wayne-ent.example", "Wayne Enterprises", "2024-03-01 09:05", "Trade Show",
     [("2024-03-14 10:00", "Marketing Qualified")], None, None),
    (16, "Rita", "Rossi", "rita@cyberdyne.example", "Cyberdyne Systems", "2024-02-28 13:40", "Trade Show",
     [("2024-03-11 09:15", "Working - Contacted")], None, None),
    (17, "Sam", "Singh", "sam@wonka.example", "Wonka Industries", "2024-03-02 10:30", "Trade Show", [], None, None),
    (18, "Tina", "Torres", "tina@tyrell.example", "Tyrell Corp", "2024-02-05 07:45", "Content Syndication", [], None,
     None),
    (19, "Uma", "Ueda", "uma@umbrella.example", "Umbrella Corporation", "2024-02-07 08:15", "Content Syndication", [],
     None, None),
    (20, "Victor", "Vance", "victor@vandelay.example", "Vandelay Industries", "2024-02-12 09:40",
     "Content Syndication", [("2024-03-12 11:00", "Marketing Qualified")], None, None),
    (21, "Wendy", "Walsh", "wendy.walsh@gmail.com", "Walsh Consulting", "2024-03-18 18:05", "Web", [], None, None),
    (22, "Xavier", "Xu", "xavier@globex.example", "Globex", "2024-02-14 12:00", "Content Syndication", [], None,
     None),
]
CONTACT_ONLY = [  # n, first, last, email, account n, created, self-report
    (11, "Grace", "Green", "grace@globex.example", 2, "2024-01-30 11:00", None),
    (12, "Judy", "Jones", "judy@hooli.example", 5, "2024-01-15 11:00", "Your webinar"),
]
PROBABILITY = {"Prospecting": 10, "Qualification": 20, "Needs Analysis": 30, "Proposal": 60, "Negotiation": 80,
               "Closed Won": 100, "Closed Lost": 0}
OPPS = [  # n, name, account n, amount, close date, lead source, campaign n, [(at, stage)]
    (1, "Acme Corp - Platform", 1, 48000.0, "2024-03-15", "Web", None,
     [("2024-01-22 15:00", "Prospecting"), ("2024-01-26 10:00", "Qualification"), ("2024-02-05 11:00", "Needs Analysis"),
      ("2024-02-20 14:00", "Proposal"), ("2024-03-05 16:00", "Negotiation"), ("2024-03-15 16:00", "Closed Won")]),
    (2, "Globex - Analytics Suite", 2, 36000.0, "2024-03-27", "Advertisement", 6,
     [("2024-01-29 10:00", "Prospecting"), ("2024-02-02 09:00", "Qualification"), ("2024-02-28 15:00", "Proposal"),
      ("2024-03-27 17:00", "Closed Won")]),
    (3, "Initech - Pilot", 3, 18000.0, "2024-03-08", "Web", None,
     [("2024-02-07 09:00", "Prospecting"), ("2024-02-12 10:00", "Qualification"), ("2024-03-08 17:00", "Closed Lost")]),
    (4, "Umbrella - Enterprise", 4, 120000.0, "2024-05-30", "Trade Show", None,
     [("2024-02-14 09:30", "Prospecting"), ("2024-02-19 13:00", "Qualification"), ("2024-03-01 10:00", "Needs Analysis"),
      ("2024-03-18 15:00", "Proposal")]),
    (5, "Hooli - Growth Plan", 5, 54000.0, "2024-03-29", "Partner Referral", 4,
     [("2024-02-21 09:00", "Prospecting"), ("2024-02-23 11:00", "Qualification"), ("2024-03-08 10:00", "Proposal"),
      ("2024-03-19 14:00", "Negotiation"), ("2024-03-29 12:00", "Closed Won")]),
    (6, "Wayne Enterprises - Platform", 7, 72000.0, "2024-06-15", "Advertisement", 2,
     [("2024-03-04 09:00", "Prospecting"), ("2024-03-08 10:00", "Qualification"), ("2024-03-28 16:00", "Negotiation")]),
    (7, "Stark Industries - Starter", 8, 24000.0, "2024-04-30", "Web", 3,
     [("2024-03-12 10:00", "Prospecting"), ("2024-03-22 11:00", "Needs Analysis")]),
    (8, "Wonka - Platform", 9, 30000.0, "2024-05-15", "Other", 4, [("2024-03-20 09:00", "Prospecting")]),
]
ROLES = [  # n, opp n, contact n, role, primary, created
    (1, 1, 1, "Decision Maker", True, "2024-01-22 15:05"), (2, 2, 2, "Economic Buyer", True, "2024-01-29 10:05"),
    (3, 2, 11, "Technical Buyer", False, "2024-02-01 09:30"), (4, 3, 3, "Decision Maker", True, "2024-02-07 09:05"),
    (5, 4, 4, "Decision Maker", True, "2024-02-14 09:35"), (6, 5, 5, "Economic Buyer", True, "2024-02-21 09:05"),
    (7, 5, 12, "Evaluator", False, "2024-02-22 14:00"), (8, 6, 7, "Decision Maker", True, "2024-03-04 09:05"),
    (9, 7, 8, "Decision Maker", True, "2024-03-12 10:05"), (10, 8, 9, "Economic Buyer", True, "2024-03-20 09:05"),
]
CAMPAIGNS = [  # n, name, type, status, parent n, start, end, budgeted, actual, created, modstamp
    (1, "FY24 Q1 Demand Gen", "Other", "In Progress", None, "2024-01-01", "2024-03-31", 30000.0, None,
     "2024-01-02 09:00", "2024-01-02 09:00"),
    (2, "Webinar: Pipeline Analytics 101", "Webinar", "Completed", 1, "2024-02-15", "2024-02-15", 2000.0, 1500.0,
     "2024-01-10 10:00", "2024-02-16 10:00"),
    (3, "SaaS Connect Summit 2024", "Trade Show", "Completed", 1, "2024-03-05", "2024-03-07", 12000.0, 9800.0,
     "2024-01-12 10:00", "2024-03-08 12:00"),
    (4, "Executive Coffee Box", "Direct Mail", "Completed", 1, "2024-01-22", "2024-02-29", 3000.0, 2400.0,
     "2024-01-15 09:00", "2024-03-01 09:00"),
    (5, "Syndication: State of RevOps 2024", "Content Syndication", "In Progress", 1, "2024-02-01", "2024-03-31",
     4000.0, 4000.0, "2024-01-25 09:00", "2024-02-01 09:00"),
    (6, "LinkedIn Sponsored Content Q1", "Advertisement", "In Progress", 1, "2024-01-08", "2024-03-31", 6000.0,
     6000.0, "2024-01-05 09:00", "2024-03-31 18:00"),
    (7, "Q1 Nurture", "Email", "In Progress", 1, "2024-01-10", "2024-03-31", None, None, "2024-01-08 09:00",
     "2024-01-08 09:00"),
]
MEMBERS = [  # n, campaign n, lead n, contact n, status, created, first responded
    (1, 2, 1, 1, "Attended", "2024-02-01 10:00", "2024-02-15"), (2, 2, 6, None, "Attended", "2024-02-03 12:00", "2024-02-15"),
    (3, 2, 7, None, "Registered", "2024-02-02 14:10", None), (4, 2, None, 12, "Attended", "2024-02-05 09:00", "2024-02-15"),
    (5, 2, 9, None, "Attended", "2024-02-10 08:30", "2024-02-15"), (6, 2, 13, None, "Attended", "2024-02-06 11:00", "2024-02-15"),
    (7, 2, 14, None, "Registered", "2024-02-09 16:20", None), (8, 2, None, 11, "No Show", "2024-02-12 13:00", None),
    (9, 3, 4, 4, "Attended", "2024-02-20 10:00", "2024-03-05"), (10, 3, 10, None, "Attended", "2024-02-20 15:00", "2024-03-05"),
    (11, 3, 15, None, "Attended", "2024-03-01 09:05", "2024-03-05"), (12, 3, 16, None, "Registered", "2024-02-28 13:40", None),
    (13, 3, 17, None, "Attended", "2024-03-02 10:30", "2024-03-06"),
    (14, 4, 2, 2, "Meeting Booked", "2024-01-22 09:00", "2024-01-25"), (15, 4, 3, 3, "Claimed", "2024-01-22 09:00", "2024-01-26"),
    (16, 4, 5, 5, "Meeting Booked", "2024-01-22 09:00", "2024-02-01"), (17, 4, None, 11, "Sent", "2024-01-31 09:00", None),
    (18, 4, 11, None, "Claimed", "2024-02-16 09:00", "2024-02-22"), (19, 4, 12, None, "Sent", "2024-02-20 09:00", None),
    (20, 5, 18, None, "Responded", "2024-02-05 07:45", "2024-02-05"), (21, 5, 19, None, "Responded", "2024-02-07 08:15", "2024-02-07"),
    (22, 5, 20, None, "Responded", "2024-02-12 09:40", "2024-02-12"), (23, 5, 22, None, "Responded", "2024-02-14 12:00", "2024-02-14"),
    (24, 6, 2, None, "Responded", "2024-01-08 13:15", "2024-01-08"),
    (25, 7, 6, None, "Sent", "2024-01-26 08:00", None), (26, 7, 7, None, "Sent", "2024-02-03 08:00", None),
]


def _later(*stamps: str | None) -> str:
    return max(s for s in stamps if s)


def demo_records() -> dict[str, list[dict]]:
    acc = {n: sfid("Account", n) for n, *_ in ACCOUNTS}
    out: dict[str, list[dict]] = {k: [] for k in sf.STREAM_NAMES}
    for n, name, web, industry, created in ACCOUNTS:
        out["Account"].append({"Id": acc[n], "Name": name, "Website": web, "Industry": industry,
                               "CreatedDate": ts(created), "IsDeleted": False, "SystemModstamp": ts(created)})
    emails, contact_leads, lead_contacts = {}, {}, {}
    h = 0
    for n, first, last, email, company, created, source, changes, conv, answer in LEADS:
        emails[("Lead", n)] = email
        row = {"Id": sfid("Lead", n), "Email": email, "FirstName": first, "LastName": last, "Company": company,
               "Status": changes[-1][1] if changes else "Open - Not Contacted", "LeadSource": source,
               "CreatedDate": ts(created), "IsConverted": False, "ConvertedDate": None, "ConvertedContactId": None,
               "ConvertedAccountId": None, "ConvertedOpportunityId": None, "IsDeleted": False,
               SELF_REPORT: answer}
        last_change = changes[-1][0] if changes else None
        old = "Open - Not Contacted"
        for at, status in changes + ([(conv[0], "Closed - Converted")] if conv else []):
            h += 1
            out["LeadHistory"].append({"Id": sfid("LeadHistory", h), "LeadId": row["Id"], "Field": "Status",
                                       "OldValue": old, "NewValue": status, "CreatedDate": ts(at), "IsDeleted": False,
                                       "Lead.Email": email})
            old = status
        if conv:
            at, cn, an, on = conv
            row.update({"Status": "Closed - Converted", "IsConverted": True, "ConvertedDate": at[:10],
                        "ConvertedContactId": sfid("Contact", cn), "ConvertedAccountId": acc[an],
                        "ConvertedOpportunityId": sfid("Opportunity", on) if on else None})
            last_change = at
            emails[("Contact", cn)] = email
            lead_contacts[n] = cn
            out["Contact"].append({"Id": sfid("Contact", cn), "Email": email, "FirstName": first, "LastName": last,
                                   "AccountId": acc[an], "LeadSource": source, "CreatedDate": ts(at),
                                   "IsDeleted": False, "SystemModstamp": ts(at), SELF_REPORT: answer})
        row["SystemModstamp"] = ts(_later(created, last_change))
        out["Lead"].append(row)
    out["Lead"].append({"Id": sfid("Lead", 99), "Email": "test@mailinator.example", "FirstName": "Test",
                        "LastName": "Test", "Company": "asdf", "Status": "Open - Not Contacted", "LeadSource": "Web",
                        "CreatedDate": ts("2024-03-02 03:14"), "IsConverted": False, "ConvertedDate": None,
                        "ConvertedContactId": None, "ConvertedAccountId": None, "ConvertedOpportunityId": None,
                        "IsDeleted": True, "SystemModstamp": ts("2024-03-03 08:00"), SELF_REPORT: None})
    for n, first, last, email, an, created, answer in CONTACT_ONLY:
        emails[("Contact", n)] = email
        out["Contact"].append({"Id": sfid("Contact", n), "Email": email, "FirstName": first, "LastName": last,
                               "AccountId": acc[an], "LeadSource": None, "CreatedDate": ts(created),
                               "IsDeleted": False, "SystemModstamp": ts(created), SELF_REPORT: answer})
    h = 0
    for n, name, an, amount, close, source, cn, stages in OPPS:
        final = stages[-1][1]
        created = stages[0][0]
        out["Opportunity"].append({
            "Id": sfid("Opportunity", n), "Name": name, "AccountId": acc[an], "Amount": amount, "StageName": final,
            "IsClosed": final.startswith("Closed"), "IsWon": final == "Closed Won", "CloseDate": close,
            "CreatedDate": ts(created), "LeadSource": source, "CampaignId": sfid("Campaign", cn) if cn else None,
            "Type": "New Customer", "IsDeleted": False, "SystemModstamp": ts(stages[-1][0])})
        for at, stage in stages:
            h += 1
            out["OpportunityHistory"].append({
                "Id": sfid("OpportunityHistory", h), "OpportunityId": sfid("Opportunity", n), "StageName": stage,
                "Amount": amount, "CloseDate": close, "CreatedDate": ts(at), "IsDeleted": False,
                "SystemModstamp": ts(at)})
    for n, on, cn, role, primary, created in ROLES:
        out["OpportunityContactRole"].append({
            "Id": sfid("OpportunityContactRole", n), "OpportunityId": sfid("Opportunity", on),
            "ContactId": sfid("Contact", cn), "Role": role, "IsPrimary": primary, "CreatedDate": ts(created),
            "IsDeleted": False, "SystemModstamp": ts(created), "Contact.Email": emails[("Contact", cn)]})
    types = {}
    for n, name, kind, status, parent, start, end, budget, actual, created, mod in CAMPAIGNS:
        types[n] = kind
        out["Campaign"].append({
            "Id": sfid("Campaign", n), "Name": name, "Type": kind, "Status": status,
            "ParentId": sfid("Campaign", parent) if parent else None, "StartDate": start, "EndDate": end,
            "BudgetedCost": budget, "ActualCost": actual, "IsActive": status == "In Progress",
            "CreatedDate": ts(created), "IsDeleted": False, "SystemModstamp": ts(mod)})
    for n, cn, ln, con, status, created, responded in MEMBERS:
        email = emails[("Contact", con)] if con else emails[("Lead", ln)]
        out["CampaignMember"].append({
            "Id": sfid("CampaignMember", n), "CampaignId": sfid("Campaign", cn),
            "LeadId": sfid("Lead", ln) if ln else None, "ContactId": sfid("Contact", con) if con else None,
            "Email": email, "Status": status, "HasResponded": responded is not None,
            "FirstRespondedDate": responded, "CreatedDate": ts(created), "IsDeleted": False,
            "SystemModstamp": ts(_later(created, responded and responded + " 18:00")), "Campaign.Type": types[cn]})
    return out


def build_demo() -> None:
    """cassettes/salesforce/demo.yaml: a first sync of every stream (Lead/Contact with and without the
    self-report field, so the demo config may or may not set [model.self_report_fields] salesforce)."""
    records = demo_records()
    interactions = []
    for k, stream in enumerate(sf.STREAM_NAMES):
        extra = ((SELF_REPORT, "string"),) if stream in ("Lead", "Contact") else ()
        rows = records[stream]
        interactions.append(i_describe(stream, extra))
        variants = [None, SELF_REPORT] if extra else [None]
        for v, self_report in enumerate(variants):
            fields, soql, count, _, _, _ = plan(stream, since=FIRST, self_report=self_report, extra=extra)
            if v == 0:
                interactions.append(i_count(count, len(rows)))
            interactions += i_pages(stream, soql, fields, rows, [len(rows)], f"01g5g00000Demo{k}{v}IAA")
    write("demo.yaml", interactions)


if __name__ == "__main__":
    scenario_incremental()
    scenario_paths()
    scenario_oauth_refresh()
    scenario_quota()
    scenario_history_fallback()
    build_demo()
