"""Salesforce: REST API v60.0 SOQL `queryAll` for incremental pages, Bulk API 2.0 query jobs for large pulls.

Auth: an access token + `instance_url`, or the OAuth 2.0 client-credentials flow (POST
`{login_url}/services/oauth2/token`, grant_type=client_credentials; the answer holds `access_token` and
`instance_url`). A 401 `INVALID_SESSION_ID` triggers exactly one new token (client credentials only); with a
static token, or when the new token is rejected too, it is an AuthError (exit 3).
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest.htm

Requests: `{instance_url}/services/data/v{api_version}/...` (the instance URL is used as given, path prefix
included, so proxies and test servers work; `nextRecordsUrl` is joined to it). Everything goes through
`connectors.http.Http` (one requests Session: CA bundle from REQUESTS_CA_BUNDLE/SSL_CERT_FILE, retries on
429/5xx/network errors, redaction). simple-salesforce 1.12 (the chosen SDK) is used for what it does without
owning the HTTP: SOQL literal quoting (`format_soql`) and the `Sforce-Limit-Info` parser
(`Salesforce.parse_api_usage`). Its own query/bulk calls are not used: they have no retries, rebuild the URL
from host[:port] only (dropping an instance_url path), refresh only with its own *.salesforce.com logins, and
`bulk2` reads each result set into memory.

Streams (raw object = stream name): Lead, Contact, Account, Opportunity, OpportunityHistory (or, when the org
has no OpportunityHistory or `history_object = "OpportunityFieldHistory"`, OpportunityFieldHistory rows with
Field = 'StageName'), LeadHistory (Field = 'Status'), OpportunityContactRole, Campaign, CampaignMember.
Fields come from a list per object intersected with the object's describe (so `CurrencyIsoCode` is read only in
multi-currency orgs and a configured self-report field only where it exists); child-to-parent fields bring
emails and the campaign type: LeadHistory `Lead.Email`, OpportunityContactRole `Contact.Email`, CampaignMember
`Campaign.Type`.

Cursor: `SystemModstamp` (LeadHistory / OpportunityFieldHistory have none: `CreatedDate`). Each run queries
`cursor >= saved cursor - lookback_minutes` (default 10) `ORDER BY cursor, Id` through queryAll, so deleted
rows (IsDeleted = true) and rows that committed late with an older SystemModstamp are picked up; re-read rows
are idempotent downstream. REST pages are sorted, so every page carries the state
`{"cursor_field", "cursor" (max seen, never moving back), "last_id", "object"}`.

Bulk API 2.0: when `SELECT COUNT()` over the same filter exceeds `bulk_threshold` (default 10,000), a
`queryAll` job is created, polled until JobComplete and its CSV results read `maxRecords` at a time, following
`Sforce-Locator`, streamed line by line into the csv module. Bulk queries cannot be ordered (ORDER BY disables
PK chunking), so only the last page carries the state. CSV cells are converted by the describe field types
(booleans, numbers, `...Z` datetimes as REST's `+0000`, empty = null) and `Lead.Email` columns nested as
`{"Lead": {"Email": ...}}`, so both paths yield the same records.
https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/queries.htm

Daily API limit as a budget: every response's `Sforce-Limit-Info: api-usage=N/M` is tracked; once
N/M >= `api_budget_share` (default 0.8) the stream stops between pages with QuotaError (exit 75), the sync loop
commits what it has and the next run resumes from the saved state. HTTP 403 `REQUEST_LIMIT_EXCEEDED` is a
QuotaError too (not retried).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import partial
from typing import Any, Iterator

import connectors.http as http
from connectors.core import Page, Run, Stream
from connectors.errors import ApiError, AuthError, QuotaError, TemporaryError
from connectors.http import Http, pacing

TYPE = "salesforce"
DEFAULT_API_VERSION = "60.0"
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
BULK_MAX_RECORDS = 50_000  # results per Bulk API 2.0 result set (maxRecords)
PAGE_RECORDS = 2_000  # records per Page on the bulk path (REST pages are Salesforce's own, <= 2,000)
BULK_POLL_MAX_SECONDS = 30.0
BULK_TIMEOUT_SECONDS = 3 * 3600
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass(frozen=True)
class ObjectSpec:
    """What one stream reads: the fields wanted (kept when describe has them), the cursor, a fixed filter."""

    object: str
    fields: tuple[str, ...]
    cursor: str = "SystemModstamp"
    where: tuple[tuple[str, str], ...] = ()  # (field, value) equality filters
    parents: tuple[str, ...] = ()  # child-to-parent fields, "Lead.Email"
    self_report: bool = False


SPECS: dict[str, ObjectSpec] = {
    "Lead": ObjectSpec("Lead", ("Id", "Email", "FirstName", "LastName", "Company", "Status", "LeadSource",
                                "CreatedDate", "IsConverted", "ConvertedDate", "ConvertedContactId",
                                "ConvertedAccountId", "ConvertedOpportunityId", "IsDeleted", "SystemModstamp"),
                       self_report=True),
    "LeadHistory": ObjectSpec("LeadHistory", ("Id", "LeadId", "Field", "OldValue", "NewValue", "CreatedDate",
                                              "IsDeleted"),
                              cursor="CreatedDate", where=(("Field", "Status"),), parents=("Lead.Email",)),
    "Contact": ObjectSpec("Contact", ("Id", "Email", "FirstName", "LastName", "AccountId", "LeadSource",
                                      "CreatedDate", "IsDeleted", "SystemModstamp"), self_report=True),
    "Account": ObjectSpec("Account", ("Id", "Name", "Website", "Industry", "CreatedDate", "IsDeleted",
                                      "SystemModstamp")),
    "Opportunity": ObjectSpec("Opportunity", ("Id", "Name", "AccountId", "Amount", "CurrencyIsoCode", "StageName",
                                              "IsClosed", "IsWon", "CloseDate", "CreatedDate", "LeadSource",
                                              "CampaignId", "Type", "IsDeleted", "SystemModstamp")),
    "OpportunityHistory": ObjectSpec("OpportunityHistory", ("Id", "OpportunityId", "StageName", "Amount",
                                                            "CurrencyIsoCode", "CloseDate", "CreatedDate",
                                                            "IsDeleted", "SystemModstamp")),
    "OpportunityFieldHistory": ObjectSpec("OpportunityFieldHistory", ("Id", "OpportunityId", "Field", "OldValue",
                                                                      "NewValue", "CreatedDate", "IsDeleted"),
                                          cursor="CreatedDate", where=(("Field", "StageName"),)),
    "OpportunityContactRole": ObjectSpec("OpportunityContactRole", ("Id", "OpportunityId", "ContactId", "Role",
                                                                    "IsPrimary", "CreatedDate", "IsDeleted",
                                                                    "SystemModstamp"),
                                         parents=("Contact.Email",)),
    "Campaign": ObjectSpec("Campaign", ("Id", "Name", "Type", "Status", "ParentId", "StartDate", "EndDate",
                                        "BudgetedCost", "ActualCost", "CurrencyIsoCode", "IsActive", "CreatedDate",
                                        "IsDeleted", "SystemModstamp")),
    "CampaignMember": ObjectSpec("CampaignMember", ("Id", "CampaignId", "LeadId", "ContactId", "Email", "Status",
                                                    "HasResponded", "FirstRespondedDate", "CreatedDate", "IsDeleted",
                                                    "SystemModstamp"),
                                 parents=("Campaign.Type",)),
}
STREAM_NAMES = ("Lead", "LeadHistory", "Contact", "Account", "Opportunity", "OpportunityHistory",
                "OpportunityContactRole", "Campaign", "CampaignMember")


# ---- errors ------------------------------------------------------------------------------------------------


class _LimitExceeded(ApiError):
    """Internal: a REQUEST_LIMIT_EXCEEDED answer. An ApiError so Http does not retry it; fetch raises QuotaError."""


def _error_code(response) -> tuple[str | None, str]:
    """(errorCode, message) of a Salesforce error body: REST/Bulk `[{"message", "errorCode"}]`."""
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("errorCode"), str(body[0].get("message") or "")
    if isinstance(body, dict):
        message = body.get("message") or body.get("error_description") or ""
        return body.get("errorCode") or body.get("error"), str(message)
    return None, ""


def _classify(response) -> Exception | None:
    code, message = _error_code(response)
    if code == "REQUEST_LIMIT_EXCEEDED":
        return _LimitExceeded(f"Salesforce daily API request limit exceeded (REQUEST_LIMIT_EXCEEDED: {message})",
                              response.status_code)
    if code == "INVALID_SESSION_ID" and response.status_code != 401:
        return http.REFRESH_TOKEN
    return None


def _classify_token(response) -> Exception | None:
    if response.status_code in (400, 401, 403):
        code, message = _error_code(response)
        return AuthError(f"Salesforce refused the client credentials (HTTP {response.status_code} {code}: "
                         f"{message}); check client_id, client_secret and login_url (your My Domain URL)")
    return None


# ---- auth --------------------------------------------------------------------------------------------------


class StaticToken:
    """A given access token. No `refresh`: Http turns a 401 into AuthError."""

    def __init__(self, token: str):
        self.token = token
        self.instance_url: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def secrets(self) -> list[str]:
        return [self.token]


class ClientCredentials:
    """OAuth 2.0 client-credentials flow; the token is fetched on first use and once more after a 401."""

    def __init__(self, login_url: str, client_id: str, client_secret: str):
        self.token_url = f"{login_url.rstrip('/')}/services/oauth2/token"
        self.client_id = client_id
        self.client_secret = client_secret
        self.token: str | None = None
        self.instance_url: str | None = None
        self.http = Http(self.token_url, classify=_classify_token, secrets=[client_secret])

    def headers(self) -> dict[str, str]:
        if self.token is None:
            self.refresh()
        return {"Authorization": f"Bearer {self.token}"}

    def refresh(self) -> None:
        body = self.http.request("POST", self.token_url, data={
            "grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret,
        }).json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthError("Salesforce token endpoint answered without an access_token")
        self.token = token
        self.instance_url = body.get("instance_url") or self.instance_url

    def secrets(self) -> list[str]:
        return [self.client_secret, self.token or ""]


# ---- the client --------------------------------------------------------------------------------------------


class SalesforceClient:
    """Settings, auth, the Http session, the last API usage seen and cached describes of one source."""

    def __init__(self, source: dict):
        from simple_salesforce import Salesforce  # the SDK: SOQL quoting and Sforce-Limit-Info parsing
        from simple_salesforce.format import format_soql

        self._parse_usage = Salesforce.parse_api_usage
        self.format_soql = format_soql
        self.api_version = str(source.get("api_version") or DEFAULT_API_VERSION).lstrip("vV")
        instance = source.get("instance_url") or source.get("base_url")
        if instance and "://" not in instance:
            instance = "https://" + instance
        self.instance = instance.rstrip("/") if instance else None
        if source.get("access_token"):
            self.auth: Any = StaticToken(source["access_token"])
        elif source.get("client_id") and source.get("client_secret"):
            login = source.get("login_url") or self.instance or DEFAULT_LOGIN_URL
            self.auth = ClientCredentials(login, source["client_id"], source["client_secret"])
        else:
            raise AuthError("Salesforce needs access_token, or client_id and client_secret")
        if not self.instance and isinstance(self.auth, StaticToken):
            raise AuthError("Salesforce needs instance_url with an access_token")
        self.budget_share = float(source.get("api_budget_share") or 0.8)
        self.bulk_threshold = int(source.get("bulk_threshold") or 10_000)
        self.bulk_max_records = int(source.get("bulk_max_records") or BULK_MAX_RECORDS)
        self.lookback = timedelta(minutes=int(source.get("lookback_minutes", 10) or 0))
        self.history_object = source.get("history_object") or "OpportunityHistory"
        self.self_report_field = source.get("self_report_field")
        self.usage: tuple[int, int] | None = None
        self._describes: dict[str, dict | None] = {}
        # Salesforce limits API calls per day (the budget above), not per second: pace only when asked to
        self.http = Http(self.instance or "", auth=self.auth, classify=_classify, on_response=self._on_response,
                         headers={"Accept": "application/json"}, **pacing(source.get("requests_per_second"), None))

    @property
    def requests(self) -> int:
        extra = self.auth.http.requests if isinstance(self.auth, ClientCredentials) else 0
        return self.http.requests + extra

    # -- urls and requests --

    @property
    def base(self) -> str:
        if self.instance:
            return self.instance
        if not self.auth.instance_url:
            self.auth.refresh()
        return self.auth.instance_url.rstrip("/")

    def data_url(self, path: str) -> str:
        return f"{self.base}/services/data/v{self.api_version}/{path.lstrip('/')}"

    def request(self, method: str, url: str, **kw: Any):
        try:
            return self.http.request(method, url, **kw)
        except _LimitExceeded as exc:
            raise QuotaError(str(exc)) from None

    def get_json(self, url: str, **kw: Any) -> Any:
        return self.request("GET", url, **kw).json()

    def _on_response(self, response) -> None:
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            usage = self._parse_usage(info).get("api-usage")
            if usage is None:  # a format the SDK does not know; read it ourselves
                m = _USAGE.search(info)
                usage = (int(m.group(1)), int(m.group(2))) if m else None
            if usage is not None and usage[1]:
                self.usage = (int(usage[0]), int(usage[1]))

    def check_budget(self) -> None:
        """Raise QuotaError when the org's daily API usage reached `api_budget_share` of its limit."""
        if self.usage and self.usage[0] / self.usage[1] >= self.budget_share:
            used, limit = self.usage
            raise QuotaError(f"Salesforce API usage {used}/{limit} reached the budget share {self.budget_share:g} "
                             f"(api_budget_share); stopped between pages, the next run resumes from the saved state")

    # -- metadata --

    def describe(self, obj: str) -> dict | None:
        """The object's describe (cached), or None when the org has no such object (404)."""
        if obj not in self._describes:
            try:
                self._describes[obj] = self.get_json(self.data_url(f"sobjects/{obj}/describe"))
            except ApiError as exc:
                if exc.status != 404:
                    raise
                self._describes[obj] = None
        return self._describes[obj]

    # -- SOQL --

    def soql(self, spec: ObjectSpec, fields: list[str], since: datetime, until: datetime | None,
             ordered: bool = True, count: bool = False) -> str:
        where = [f"{spec.cursor} >= {soql_datetime(since)}"]
        if until is not None:
            where.append(f"{spec.cursor} < {soql_datetime(until)}")
        where += [self.format_soql(f"{name} = {{}}", value) for name, value in spec.where]
        select = "COUNT()" if count else ", ".join(fields)
        text = f"SELECT {select} FROM {spec.object} WHERE {' AND '.join(where)}"
        if ordered and not count:
            text += f" ORDER BY {spec.cursor}, Id"
        return text


def connect(source: dict) -> SalesforceClient:
    """A client for one [sources.NAME] table; no request is sent until a stream runs."""
    return SalesforceClient(source)


# ---- helpers -----------------------------------------------------------------------------------------------


def soql_datetime(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_sf_datetime(value: Any) -> datetime | None:
    """A Salesforce dateTime (`2024-03-10T12:00:00.000+0000` or `...Z`) as aware UTC, None when unusable."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def format_cursor(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def select_fields(client: SalesforceClient, spec: ObjectSpec, describe: dict, run: Run) -> tuple[list[str], dict]:
    """The spec's fields present in the describe (plus the self-report field), and field name -> type."""
    types = {f["name"]: f.get("type") for f in describe.get("fields") or [] if f.get("name")}
    relations = {f.get("relationshipName") for f in describe.get("fields") or [] if f.get("relationshipName")}
    for required in ("Id", spec.cursor):
        if required not in types:
            raise ApiError(f"Salesforce {spec.object} has no {required} field (describe); cannot sync it")
    wanted = list(spec.fields)
    if spec.self_report and client.self_report_field and client.self_report_field not in wanted:
        wanted.append(client.self_report_field)
    fields = []
    for name in wanted:
        if name in types:
            fields.append(name)
        elif name == client.self_report_field:
            run.log(f"salesforce: {spec.object} has no field {name} (self_report_field); not read")
    for dotted in spec.parents:
        if dotted.split(".", 1)[0] in relations:
            fields.append(dotted)
        else:
            run.log(f"salesforce: {spec.object} has no relationship {dotted.split('.', 1)[0]}; {dotted} not read")
    return fields, types


def _window(client: SalesforceClient, spec: ObjectSpec, run: Run) -> tuple[datetime, datetime | None, datetime | None]:
    """(since, until, saved cursor) of this run."""
    start = datetime.combine(run.start, time(0), tzinfo=timezone.utc)
    if run.backfill:
        until = datetime.combine(run.end, time(0), tzinfo=timezone.utc) + timedelta(days=1)
        return start, until, None
    state = run.state or {}
    saved = None
    if state.get("cursor_field", spec.cursor) == spec.cursor and state.get("object", spec.object) == spec.object:
        saved = parse_sf_datetime(state.get("cursor"))
    if saved is None:
        return start, None, None
    return max(start, saved - client.lookback), None, saved


class _Cursor:
    """The high-water mark over what was yielded (never below the saved cursor) and the last Id."""

    def __init__(self, spec: ObjectSpec, saved: datetime | None):
        self.spec = spec
        self.high = saved
        self.last_id: str | None = None

    def see(self, records: list[dict]) -> None:
        field = self.spec.cursor
        for r in records:
            dt = parse_sf_datetime(r.get(field))
            if dt is not None and (self.high is None or dt >= self.high):
                self.high = dt
                self.last_id = r.get("Id")

    def state(self) -> dict | None:
        if self.high is None:
            return None
        return {"cursor_field": self.spec.cursor, "cursor": format_cursor(self.high), "last_id": self.last_id,
                "object": self.spec.object}


# ---- fetch -------------------------------------------------------------------------------------------------


def fetch(client: SalesforceClient, run: Run, stream: str) -> Iterator[Page]:
    """Pages of one stream: REST queryAll (sorted, state per page) or a Bulk API 2.0 job (state at the end)."""
    client.check_budget()
    spec = SPECS[stream]
    describe = None
    if stream == "OpportunityHistory":
        if client.history_object != "OpportunityFieldHistory":
            describe = client.describe("OpportunityHistory")
            if describe is None:
                run.log("salesforce: the org has no OpportunityHistory; reading OpportunityFieldHistory (StageName)")
        if describe is None:
            spec = SPECS["OpportunityFieldHistory"]
    if describe is None:
        describe = client.describe(spec.object)
    if describe is None:
        raise ApiError(f"Salesforce object {spec.object} does not exist in this org (describe answered 404)")
    fields, types = select_fields(client, spec, describe, run)
    since, until, saved = _window(client, spec, run)
    client.check_budget()
    counted = client.get_json(client.data_url("queryAll"), params={"q": client.soql(spec, fields, since, until, count=True)})
    count = int(counted.get("totalSize") or 0)
    cursor = _Cursor(spec, saved)
    if count > client.bulk_threshold:
        run.log(f"salesforce: {spec.object}: {count} records > bulk_threshold {client.bulk_threshold}: Bulk API 2.0")
        yield from _bulk(client, spec, fields, types, since, until, cursor)
    else:
        yield from _rest(client, spec, fields, since, until, cursor)


def _rest(client: SalesforceClient, spec: ObjectSpec, fields: list[str], since: datetime, until: datetime | None,
          cursor: _Cursor) -> Iterator[Page]:
    url: str = client.data_url("queryAll")
    params: dict | None = {"q": client.soql(spec, fields, since, until)}
    seen: set[str] = set()
    while True:
        client.check_budget()
        before = client.requests
        body = client.get_json(url, params=params)
        records = list(body.get("records") or [])
        cursor.see(records)
        nxt = None if body.get("done", True) else body.get("nextRecordsUrl")
        yield Page(records, state=cursor.state(), requests=client.requests - before)
        if not nxt:
            return
        if nxt in seen:
            raise ApiError("pagination loop: Salesforce returned the same nextRecordsUrl twice")
        seen.add(nxt)
        url, params = client.base + nxt, None


# ---- Bulk API 2.0 ------------------------------------------------------------------------------------------


def _bulk(client: SalesforceClient, spec: ObjectSpec, fields: list[str], types: dict, since: datetime,
          until: datetime | None, cursor: _Cursor) -> Iterator[Page]:
    jobs = client.data_url("jobs/query")
    client.check_budget()
    job = client.request("POST", jobs, json={
        "operation": "queryAll", "query": client.soql(spec, fields, since, until, ordered=False),
        "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF",
    }).json()
    job_id = job["id"]
    info = job
    delay, waited = 1.0, 0.0
    while info.get("state") != "JobComplete":
        if info.get("state") in ("Failed", "Aborted"):
            raise ApiError(f"Salesforce Bulk query job {job_id} {info.get('state')}: {info.get('errorMessage') or ''}")
        if waited >= BULK_TIMEOUT_SECONDS:
            raise TemporaryError(f"Salesforce Bulk query job {job_id} still {info.get('state')} after {waited:.0f} s")
        http.SLEEP(delay)
        waited += delay
        delay = min(delay * 2, BULK_POLL_MAX_SECONDS)
        info = client.get_json(f"{jobs}/{job_id}")
    results = f"{jobs}/{job_id}/results"
    converter = _CsvRecord(spec.object, types, client.api_version)
    batch: list[dict] = []
    locator: str | None = None
    while True:
        client.check_budget()
        params = {"maxRecords": client.bulk_max_records}
        if locator:
            params["locator"] = locator
        done_rows, attempts = 0, 0
        while True:
            response = client.request("GET", results, params=params, headers={"Accept": "text/csv"}, stream=True)
            try:
                for i, row in enumerate(csv.DictReader(_lines(response))):
                    if i < done_rows:  # already yielded before a broken download was retried
                        continue
                    batch.append(converter(row))
                    done_rows += 1
                    if len(batch) >= PAGE_RECORDS:
                        cursor.see(batch)
                        yield Page(batch)
                        batch = []
                break
            except (http.requests.ConnectionError, http.requests.exceptions.ChunkedEncodingError) as exc:
                attempts += 1
                if attempts >= 3:
                    raise TemporaryError(f"Salesforce Bulk results download kept failing: "
                                         f"{type(exc).__name__}") from None
            finally:
                response.close()
        locator = response.headers.get("Sforce-Locator")
        if not locator or locator == "null":
            break
    cursor.see(batch)
    yield Page(batch, state=cursor.state())


def _lines(response) -> Iterator[str]:
    """Text lines of a streamed CSV body with their line ends (quoted newlines stay inside their field)."""
    rest = b""
    for chunk in response.iter_content(chunk_size=1 << 16):
        if not chunk:
            continue
        rest += chunk
        parts = rest.split(b"\n")
        rest = parts.pop()
        for part in parts:
            yield (part + b"\n").decode("utf-8").replace("\x00", "")
    if rest:
        yield rest.decode("utf-8").replace("\x00", "")


_BOOL = frozenset({"boolean"})
_INT = frozenset({"int", "long"})
_FLOAT = frozenset({"double", "currency", "percent"})


class _CsvRecord:
    """One Bulk CSV row -> the record REST returns: typed values, nested parent fields, `attributes`."""

    def __init__(self, obj: str, types: dict, api_version: str):
        self.obj = obj
        self.types = types
        self.url = f"/services/data/v{api_version}/sobjects/{obj}/"

    def __call__(self, row: dict) -> dict:
        record: dict[str, Any] = {"attributes": {"type": self.obj, "url": self.url + (row.get("Id") or "")}}
        for column, text in row.items():
            if column is None:  # more cells than header columns
                continue
            value = None if text in ("", None) else self.convert(self.types.get(column), text)
            if "." in column:
                parts = column.split(".")
                parent = record
                for name in parts[:-1]:
                    nxt = parent.get(name)
                    if not isinstance(nxt, dict):
                        nxt = {}
                        parent[name] = nxt
                    parent = nxt
                parent[parts[-1]] = value
            else:
                record[column] = value
        for column in row:
            if column and "." in column:  # a parent with every field empty is a null lookup, as in REST
                name = column.split(".", 1)[0]
                if isinstance(record.get(name), dict) and all(v is None for v in record[name].values()):
                    record[name] = None
        return record

    @staticmethod
    def convert(kind: str | None, text: str) -> Any:
        if kind in _BOOL:
            return text.strip().lower() == "true"
        if kind in _INT:
            try:
                return int(text)
            except ValueError:
                return int(float(text))
        if kind in _FLOAT:
            return float(text)
        if kind == "datetime" and text.endswith("Z"):
            return text[:-1] + "+0000"
        return text


# ---- streams -----------------------------------------------------------------------------------------------


def streams(source: dict) -> dict[str, Stream]:
    fallback = (source or {}).get("history_object") == "OpportunityFieldHistory"
    out = {}
    for name in STREAM_NAMES:
        cursor = SPECS["OpportunityFieldHistory" if (name == "OpportunityHistory" and fallback) else name].cursor
        out[name] = Stream(name=name, object=name, key="Id", fetch=partial(fetch, stream=name), cursor_field=cursor)
    return out


STREAMS = streams({})
