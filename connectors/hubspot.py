"""HubSpot: CRM contacts, companies and deals, marketing email events and form submissions.

APIs (all under `base_url`, default https://api.hubapi.com; auth: a private-app access token sent as
`Authorization: Bearer ...`; private-app tokens cannot be refreshed, so HTTP 401/403 is an AuthError, exit 3):

- CRM v3 search, through the official SDK (hubspot-api-client 12, `client.crm.<type>.search_api.do_search`):
  `POST /crm/v3/objects/{contacts|companies|deals}/search`. Body: `filterGroups` (cursor property GTE window start
  AND LT window end, epoch milliseconds), `sorts` ascending by the cursor property (`lastmodifieddate` for contacts,
  `hs_lastmodifieddate` for companies and deals), an explicit `properties` list, `limit` 200, `after` paging
  (`paging.next.after`). Response: `total`, `results[{id, properties, createdAt, updatedAt, archived}]`.
  https://developers.hubspot.com/docs/guides/api/crm/search
  Limits: 5 search requests per second per account (we pace at 4/s), 200 records per page and at most 10,000
  results per query (paging past them is an HTTP 400). A window whose `total` reaches 10,000 is split and its parts
  read in order (see `search_window`: the empty prefix before its first record is dropped, a full first page at one
  timestamp isolates that millisecond, otherwise the rest is bisected); when one millisecond still holds 10,000 or
  more records, that instant is paged by object id (`hs_object_id GT last id`, sorted by `hs_object_id`, no
  `after`), so the read always terminates.
- Archived records are never returned by search: `GET /crm/v3/objects/{type}?archived=true` (SDK `basic_api.get_page`,
  paged with `after`, 100 per page) is read after the search, keeping those with `archivedAt` >= the archived cursor
  minus the lookback. HubSpot keeps archived records for 90 days, so this list stays bounded.
- Deal associations: CRM v4 `POST /crm/v4/associations/deals/{contacts|companies}/batch/read` per search page,
  attached as `_contact_ids` / `_company_ids` (the primary company first).
  https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/batch/get-associations
- Email events (legacy email analytics v1, not in the SDK): `GET /email/public/v1/events` with `startTimestamp`,
  `endTimestamp` (ms, inclusive), `limit` (<= 1000), `offset` paging (`hasMore`, `offset`). Read in 7-day chunks so a
  long first sync commits progress. https://developers.hubspot.com/docs/api-reference/legacy/email-analytics-v1/guide
- Forms: `GET /marketing/v3/forms/` (paged with `after`), then per form `GET /form-integrations/v1/submissions/forms/
  {formGuid}` (`limit` <= 50, `after` paging, newest first, `results[{conversionId, submittedAt, values[], pageUrl}]`).
  https://developers.hubspot.com/docs/api-reference/legacy/marketing/forms/v1/get-form-integrations-v1-submissions-forms-form_guid
- General rate limit: 100-190 requests per 10 s per private app depending on the tier; every request is paced at
  90 per 10 s. 429 and 5xx (Retry-After honoured) and network errors are retried by `connectors.http`.

State per stream (what `Page.state` stores):
- contacts / companies / deals: `{"cursor": "<last cursor-property value seen, ISO ms>", "archived_cursor": "<ISO>"}`.
  Search results are sorted ascending by the cursor property, so every page carries the state. The next run searches
  from `cursor - lookback_minutes` (default 10; the search index lags a few seconds); duplicates are absorbed by the
  warehouse's primary-key upserts. A record modified while a window is being paged leaves the window and shifts
  the offsets of the records behind it; every page reports the window's current `total`, and when it shrinks the
  window is re-read from the last timestamp seen, so no record slips past a page boundary.
- email_events: `{"cursor": <ms>}` = every event created before it is committed (end of the last complete chunk).
- form_submissions: `{"forms": {"<formGuid>": <newest submittedAt ms committed>}}`; submissions come newest first,
  so a form's cursor is stored only on the last page of that form.

Source settings read: access_token, base_url, lookback_minutes (default 10), email_events / forms (false turns that
stream off, see `streams`), self_report_property (the contact
property holding the "How did you hear about us?" answer; the sync passes `[model.self_report_fields] hubspot`),
sqo_stages (deal stage ids whose hs_v2_date_entered_<id> are requested; the sync passes `[model] sqo_stages`, and
values that cannot be HubSpot stage ids, such as Salesforce StageNames, are skipped), lifecycle_stage_ids (contact
lifecycle stage ids, default lead, marketingqualifiedlead, salesqualifiedlead, customer). Record dates come back
as sent (raw JSON, not SDK models), so the warehouse's raw_records hold HubSpot's documented payloads.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from connectors.core import Page, Run, Stream, body_cursor, dig, paginate
from connectors.errors import ApiError, AuthError, TemporaryError
from connectors.http import Http, Pacer, pacing, parse_retry_after, redact, with_retries

TYPE = "hubspot"
DEFAULT_BASE_URL = "https://api.hubapi.com"
SEARCH_LIMIT = 200  # records per search page (documented maximum)
SEARCH_CAP = 10_000  # results one search query can reach
LIST_LIMIT = 100  # records per page of the list (archived) endpoint
EMAIL_EVENTS_LIMIT = 1000
EMAIL_EVENTS_CHUNK = timedelta(days=7)
FORMS_LIMIT = 100
SUBMISSIONS_LIMIT = 50
TIMEOUT = (10, 120)
DEFAULT_LOOKBACK_MINUTES = 10
DEFAULT_LIFECYCLE_STAGES = ("lead", "marketingqualifiedlead", "salesqualifiedlead", "customer")
SEARCHES_PER_SECOND = 4  # documented: 5 per second per account
REQUESTS_PER_10S = 90  # documented: 100 per 10 s for the smallest tier

CONTACT_BASE_PROPERTIES = (
    "email", "createdate", "lastmodifieddate", "associatedcompanyid", "lifecyclestage",
    "hs_analytics_first_visit_timestamp", "hs_analytics_first_timestamp", "hs_analytics_first_url",
    "hs_analytics_first_referrer", "hs_latest_source_timestamp", "hs_analytics_last_url",
    "hs_analytics_last_referrer", "hs_analytics_source", "hs_analytics_source_data_1", "hs_analytics_source_data_2",
    "hs_latest_source", "hs_latest_source_data_1", "hs_latest_source_data_2",
)
COMPANY_PROPERTIES = ("name", "domain", "website", "createdate", "hs_lastmodifieddate")
DEAL_BASE_PROPERTIES = (
    "dealname", "createdate", "closedate", "amount", "deal_currency_code", "dealstage", "pipeline",
    "hs_is_closed_won", "hs_is_closed", "hs_lastmodifieddate",
)
CURSOR_PROPERTY = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate"}
OBJECT_NAME = {"contacts": "contact", "companies": "company", "deals": "deal"}
PRIMARY_DEAL_COMPANY_TYPE_ID = 5  # HUBSPOT_DEFINED "Primary" deal -> company association
STAGE_ID = re.compile(r"[a-z0-9_]+")  # internal names of HubSpot properties and pipeline stages


# ---- time helpers --------------------------------------------------------------------------------------------


def to_ms(value: Any) -> int | None:
    """Epoch milliseconds of an ISO-8601 text or an epoch-ms number (None when absent or unparseable)."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    try:
        dt = datetime.fromisoformat(str(value).strip())  # Python 3.11 reads the trailing Z
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


def ms_to_iso(ms: int) -> str:
    """`2024-03-01T10:00:00.123Z`."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def day_ms(d: date) -> int:
    return int(datetime.combine(d, time(0), UTC).timestamp() * 1000)


def now_ms(run: Run) -> int:
    return int(run.now.timestamp() * 1000)


def lookback_ms(run: Run) -> int:
    return int(run.setting("lookback_minutes", DEFAULT_LOOKBACK_MINUTES) or 0) * 60_000


def run_bounds(run: Run, cursor: Any) -> tuple[int, int]:
    """[lo, hi) in ms: a backfill's closed date range, else from the saved cursor minus the lookback (or the
    start date on a first sync) up to now."""
    end = now_ms(run)
    if run.backfill:
        return day_ms(run.start), min(end, day_ms(run.end + timedelta(days=1)))
    saved = to_ms(cursor)
    if saved is None:
        return day_ms(run.start), end
    return saved - lookback_ms(run), end


# ---- the client ----------------------------------------------------------------------------------------------


class HubSpotClient:
    """The SDK API objects (built once: each attribute access of the SDK builds a new ApiClient and pool), a
    requests-based `Http` for the endpoints the SDK lacks, pacing and the retry/classification policy."""

    def __init__(self, source: dict):
        from hubspot import HubSpot  # imported only when a HubSpot source runs

        token = source.get("access_token")
        if not token:
            raise AuthError(f"source {source.get('name', 'hubspot')!r}: no access_token (a HubSpot private-app token)")
        self.source = source
        self.token = str(token)
        self.base_url = str(source.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        sdk = HubSpot(access_token=self.token, host=self.base_url, ssl_ca_cert=os.environ.get("SSL_CERT_FILE"))
        crm = sdk.crm
        discovery = {"contacts": crm.contacts, "companies": crm.companies, "deals": crm.deals}
        self.search_api = {kind: d.search_api for kind, d in discovery.items()}
        self.basic_api = {kind: d.basic_api for kind, d in discovery.items()}
        self.associations_api = crm.associations.v4.batch_api
        pace = pacing(source.get("requests_per_second"), None) or {"max_requests": REQUESTS_PER_10S,
                                                                   "per_seconds": 10.0}
        self.http = Http(self.base_url, headers={"Authorization": f"Bearer {self.token}"}, secrets=[self.token],
                         **pace)
        self.search_pacer = Pacer(SEARCHES_PER_SECOND, 1.0)
        self.sdk_requests = 0
        # page sizes and the search cap: HubSpot's documented values; tests shrink them to keep cassettes small
        self.page_size = SEARCH_LIMIT
        self.search_cap = SEARCH_CAP
        self.list_limit = LIST_LIMIT
        self.email_events_limit = EMAIL_EVENTS_LIMIT
        self.forms_limit = FORMS_LIMIT
        self.submissions_limit = SUBMISSIONS_LIMIT

    @property
    def requests(self) -> int:
        return self.sdk_requests + self.http.requests

    # -- SDK calls --

    def sdk_call(self, what: str, fn: Callable[..., Any], *args: Any, search: bool = False, **kwargs: Any) -> dict:
        """Call an SDK operation with the retry policy; return the parsed JSON body (raw, as documented)."""

        def attempt() -> dict:
            if search:
                self.search_pacer.wait()
            self.http.pacer.wait()
            self.sdk_requests += 1
            # _preload_content=False: keep HubSpot's JSON as sent (the SDK models would turn timestamps into
            # datetimes and silently accept records missing required fields).
            response = fn(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs)
            try:
                data = response.data
            finally:
                response.release_conn()
            try:
                return json.loads(data or b"{}")
            except ValueError:
                raise ApiError(f"{what}: HubSpot answered with a body that is not JSON") from None

        return with_retries(attempt, classify=lambda exc: self.classify(what, exc))

    def classify(self, what: str, exc: BaseException) -> Exception | None:
        """Map an SDK/urllib3 exception to a connector error (None: let it propagate)."""
        import urllib3

        status = getattr(exc, "status", None)
        if type(exc).__module__.startswith("hubspot.") and status is not None:  # an SDK ApiException
            headers = getattr(exc, "headers", None) or {}
            body = getattr(exc, "body", None) or ""
            if isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            detail = self.redact(" ".join(str(body).split())[:300])
            if status == 0:  # the SDK's wrapping of an SSL error
                return ApiError(self.redact(f"{what}: TLS error: {getattr(exc, 'reason', '')}"))
            if status == 429 or 500 <= status <= 599:
                return TemporaryError(f"{what}: HTTP {status} {detail}", parse_retry_after(header(headers, "Retry-After")))
            if status in (401, 403):
                verb = "rejected" if status == 401 else "refused"
                return AuthError(f"{what} was {verb}: HTTP {status} {detail}. Private-app tokens cannot be refreshed: "
                                 "create or rotate the token (scopes crm.objects.contacts.read, crm.objects.companies."
                                 "read, crm.objects.deals.read, content, forms) and update access_token.")
            return ApiError(f"{what}: HTTP {status} {detail}", status)
        if isinstance(exc, urllib3.exceptions.HTTPError):
            reason = getattr(exc, "reason", None)
            if isinstance(exc, urllib3.exceptions.SSLError) or isinstance(reason, urllib3.exceptions.SSLError):
                return ApiError(self.redact(f"{what}: TLS error: {type(reason or exc).__name__}"))
            return TemporaryError(self.redact(f"{what}: network error: {type(exc).__name__}"))
        return None

    def redact(self, text: Any) -> str:
        return redact(text, [self.token])

    # -- CRM --

    def search(self, kind: str, body: dict) -> dict:
        return self.sdk_call(f"POST /crm/v3/objects/{kind}/search", self.search_api[kind].do_search, body, search=True)

    def list_archived(self, kind: str, properties: list[str], after: str | None) -> dict:
        kwargs: dict[str, Any] = {"limit": self.list_limit, "properties": properties, "archived": "true"}
        if after:
            kwargs["after"] = after
        return self.sdk_call(f"GET /crm/v3/objects/{kind}", self.basic_api[kind].get_page, **kwargs)

    def associations(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        """Associated object ids per `from` id (primary associations first), following per-object paging."""
        found: dict[str, list[str]] = {i: [] for i in ids}
        primary: dict[str, list[str]] = {i: [] for i in ids}
        inputs: list[dict] = [{"id": i} for i in ids]
        while inputs:
            body = self.sdk_call(f"POST /crm/v4/associations/{from_type}/{to_type}/batch/read",
                                 self.associations_api.get_page, from_type, to_type, {"inputs": inputs})
            inputs = []
            for result in body.get("results") or []:
                from_id = str(dig(result, "from.id"))
                bucket_all = found.setdefault(from_id, [])
                bucket_primary = primary.setdefault(from_id, [])
                for to in result.get("to") or []:
                    to_id = str(to.get("toObjectId"))
                    kinds = to.get("associationTypes") or []
                    is_primary = any(t.get("typeId") == PRIMARY_DEAL_COMPANY_TYPE_ID or t.get("label") == "Primary"
                                     for t in kinds)
                    target = bucket_primary if is_primary else bucket_all
                    if to_id not in bucket_all and to_id not in bucket_primary:
                        target.append(to_id)
                after = dig(result, "paging.next.after")
                if after:
                    inputs.append({"id": from_id, "after": after})
        return {i: primary.get(i, []) + found.get(i, []) for i in found}


def header(headers: Any, name: str) -> str | None:
    """A header from the SDK exception's headers (a mapping, or a list of pairs under some transports)."""
    pairs = headers.items() if hasattr(headers, "items") else (headers or ())
    wanted = name.lower()
    for key, value in pairs:
        if str(key).lower() == wanted:
            return str(value)
    return None


def connect(source: dict) -> HubSpotClient:
    """A client for one [sources.NAME] table of type hubspot."""
    return HubSpotClient(source)


# ---- CRM streams -----------------------------------------------------------------------------------------------


def stage_ids(values: Any) -> list[str]:
    """HubSpot stage ids usable in a property name (`appointmentscheduled`, `1234567`). The sync passes the model's
    `sqo_stages` to every connector; Salesforce StageNames ("Needs Analysis") name no HubSpot property and are
    skipped rather than requested."""
    return [str(v) for v in values or () if STAGE_ID.fullmatch(str(v))]


def properties_for(kind: str, source: dict) -> list[str]:
    """The explicit property list a stream requests (search and archived list alike)."""
    if kind == "contacts":
        stages = stage_ids(source.get("lifecycle_stage_ids")) or list(DEFAULT_LIFECYCLE_STAGES)
        props = list(CONTACT_BASE_PROPERTIES)
        props += [f"hs_v2_date_entered_{s}" for s in stages]
        props += [f"hs_lifecyclestage_{s}_date" for s in stages]
        extra = source.get("self_report_property")
        if extra and extra not in props:
            props.append(str(extra))
        return props
    if kind == "companies":
        return list(COMPANY_PROPERTIES)
    props = list(DEAL_BASE_PROPERTIES)
    for stage in stage_ids(source.get("sqo_stages")):
        name = f"hs_v2_date_entered_{stage}"
        if name not in props:
            props.append(name)
    return props


def search_body(prop: str, lo: int, hi: int, properties: list[str], after: str | None = None,
                after_id: int | None = None, limit: int = SEARCH_LIMIT) -> dict:
    """A search request for `lo <= prop < hi`, sorted by `prop` (or, when paging one instant by id, by
    hs_object_id with `hs_object_id > after_id`)."""
    filters = [
        {"propertyName": prop, "operator": "GTE", "value": str(lo)},
        {"propertyName": prop, "operator": "LT", "value": str(hi)},
    ]
    if after_id is not None:
        filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(after_id)})
        sorts = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    else:
        sorts = [{"propertyName": prop, "direction": "ASCENDING"}]
    body: dict[str, Any] = {"filterGroups": [{"filters": filters}], "sorts": sorts, "properties": properties,
                            "limit": limit}
    if after:
        body["after"] = after
    return body


def search_window(client: HubSpotClient, kind: str, lo: int, hi: int, properties: list[str],
                  log: Callable[[str], None] = lambda m: None) -> Iterator[tuple[list[dict], int | None]]:
    """Every record with `lo <= cursor property < hi`, in ascending cursor order: one (records, done_through) per
    search page, where `done_through` is the cursor value up to which everything has been read (None: no progress).

    A window whose first page reports `total >= 10,000` (the most one query can page through) is split and its
    parts read in order: the part before its first record is empty and skipped; when that first page is full and
    holds a single timestamp, that millisecond is isolated; otherwise the rest is bisected. A 1 ms window that still
    holds 10,000 or more records is paged by object id instead, so the read always terminates.

    Every page reports the window's current `total`. When it shrinks, a record was modified while we paged: it left
    the window (its new timestamp is >= hi) and the records behind it moved up one offset, so one may have slipped
    between the previous page and this one. The window is then re-read from the last timestamp of the previous page
    (and this page does not advance `done_through`); the shrinking total bounds the restarts.
    """
    prop = CURSOR_PROPERTY[kind]
    size = client.page_size
    windows = [(lo, hi)]
    while windows:
        a, b = windows.pop()
        if a >= b:
            continue
        first = client.search(kind, search_body(prop, a, b, properties, limit=size))
        results = list(first.get("results") or [])
        total = int(first.get("total") or 0)
        if total < client.search_cap:
            last = _last_cursor(kind, results)
            yield results, last
            after = dig(first, "paging.next.after")
            while after:
                page = client.search(kind, search_body(prop, a, b, properties, after=after, limit=size))
                results = list(page.get("results") or [])
                now_total = int(page.get("total") or 0)
                if now_total < total:
                    restart = last if last is not None else a
                    log(f"hubspot.{kind}: {total - now_total} record(s) left the window while paging: re-reading "
                        f"from {ms_to_iso(restart)}")
                    yield results, None
                    windows.append((restart, b))
                    break
                last = _last_cursor(kind, results) or last
                total = now_total
                yield results, last
                after = dig(page, "paging.next.after")
            continue
        if b - a <= 1:
            log(f"hubspot.{kind}: {total} records share {ms_to_iso(a)}: paging that instant by object id")
            for records in _search_instant(client, kind, a, properties):
                yield records, a
            continue
        stamps = [record_cursor(kind, r) for r in results]
        t0 = stamps[0] if stamps and stamps[0] is not None and a <= stamps[0] < b else a
        if len(results) >= size and stamps[-1] == t0:
            parts = [(t0, t0 + 1), (t0 + 1, b)]  # a full page at one instant: look at that millisecond alone
        else:
            mid = t0 + max(1, (b - t0) // 2)
            parts = [(t0, mid), (mid, b)]
        log(f"hubspot.{kind}: {total} records in [{ms_to_iso(a)}, {ms_to_iso(b)}): reading "
            + ", ".join(f"[{ms_to_iso(x)}, {ms_to_iso(y)})" for x, y in parts))
        windows.extend(reversed(parts))


def _last_cursor(kind: str, results: list[dict]) -> int | None:
    stamps = [c for c in (record_cursor(kind, r) for r in results) if c is not None]
    return max(stamps) if stamps else None


def _search_instant(client: HubSpotClient, kind: str, at: int, properties: list[str]) -> Iterator[list[dict]]:
    """All records whose cursor property equals the millisecond `at`, by ascending object id (keyset paging)."""
    prop = CURSOR_PROPERTY[kind]
    last_id = 0
    while True:
        page = client.search(kind, search_body(prop, at, at + 1, properties, after_id=last_id, limit=client.page_size))
        results = list(page.get("results") or [])
        if results:
            yield results
            last_id = max(int(r["id"]) for r in results)
        if not results or not dig(page, "paging.next.after"):
            return


def record_cursor(kind: str, record: dict) -> int | None:
    prop = CURSOR_PROPERTY[kind]
    return to_ms(dig(record, f"properties.{prop}")) or to_ms(record.get("updatedAt"))


def crm_stream(kind: str) -> Callable[[HubSpotClient, Run], Iterator[Page]]:
    def fetch(client: HubSpotClient, run: Run) -> Iterator[Page]:
        state = dict(run.state or {}) if not run.backfill else {}
        properties = properties_for(kind, run.source)
        lo, hi = run_bounds(run, state.get("cursor"))
        cursor = to_ms(state.get("cursor"))
        archived_cursor = state.get("archived_cursor")
        before = client.requests
        for records, done in search_window(client, kind, lo, hi, properties, run.log):
            if done is not None and (cursor is None or done > cursor):
                cursor = done
            if kind == "deals" and records:
                attach_deal_associations(client, records)
            page_state = _crm_state(cursor, archived_cursor)
            yield Page(records, state=page_state, requests=client.requests - before)
            before = client.requests
        # archived records: not searchable; read the list endpoint, keep the recently archived ones
        since, until = run_bounds(run, archived_cursor)
        last: list[dict] | None = None
        after = None
        while True:
            body = client.list_archived(kind, properties, after)
            kept = []
            for record in body.get("results") or []:
                when = to_ms(record.get("archivedAt"))
                if when is None or since <= when < until:
                    record["archived"] = True
                    kept.append(record)
            after = dig(body, "paging.next.after")
            if not after:
                last = kept
                break
            yield Page(kept, requests=client.requests - before)
            before = client.requests
        yield Page(last or [], state=_crm_state(cursor, ms_to_iso(until)), requests=client.requests - before)

    return fetch


def _crm_state(cursor: int | None, archived_cursor: str | None) -> dict:
    state: dict[str, Any] = {"cursor": ms_to_iso(cursor) if cursor is not None else None}
    if archived_cursor:
        state["archived_cursor"] = archived_cursor
    return state


def attach_deal_associations(client: HubSpotClient, deals: list[dict]) -> None:
    """Add `_contact_ids` and `_company_ids` (primary company first) to each deal of a page."""
    ids = [str(d["id"]) for d in deals if d.get("id") is not None]
    if not ids:
        return
    contacts = client.associations("deals", "contacts", ids)
    companies = client.associations("deals", "companies", ids)
    for deal in deals:
        key = str(deal.get("id"))
        deal["_contact_ids"] = contacts.get(key, [])
        deal["_company_ids"] = companies.get(key, [])


# ---- email events ----------------------------------------------------------------------------------------------


def fetch_email_events(client: HubSpotClient, run: Run) -> Iterator[Page]:
    """Email events in 7-day chunks [a, b); the last page of each chunk stores `{"cursor": b}`."""
    state = dict(run.state or {}) if not run.backfill else {}
    saved = state.get("cursor")
    lo, hi = run_bounds(run, int(saved) if isinstance(saved, (int, float)) else saved)
    chunk = int(EMAIL_EVENTS_CHUNK.total_seconds() * 1000)
    a = lo
    while a < hi:
        b = min(hi, a + chunk)
        request = {"method": "GET", "url": "/email/public/v1/events",
                   "params": {"startTimestamp": a, "endTimestamp": b - 1, "limit": client.email_events_limit}}
        before = client.requests
        for events, body in paginate(client.http, request, "events", _next_offset):
            more = bool(body.get("hasMore")) and bool(body.get("offset"))
            yield Page(events, state=None if more else {"cursor": b}, requests=client.requests - before)
            before = client.requests
        a = b


def _next_offset(body: dict, request: dict) -> dict | None:
    if not body.get("hasMore") or not body.get("offset"):
        return None
    return {**request, "params": {**request["params"], "offset": body["offset"]}}


# ---- form submissions ------------------------------------------------------------------------------------------


NEXT_AFTER = body_cursor("paging.next.after", into="params.after")


def list_forms(client: HubSpotClient) -> Iterator[dict]:
    request = {"method": "GET", "url": "/marketing/v3/forms/", "params": {"limit": client.forms_limit}}
    for forms, _ in paginate(client.http, request, "results", NEXT_AFTER):
        yield from forms


def submission_id(form_id: str, submission: dict) -> str:
    """A stable key: form, submission time and conversionId (else the email, else a hash of the values)."""
    tail = submission.get("conversionId")
    if not tail:
        for value in submission.get("values") or []:
            if str(value.get("name", "")).lower() == "email" and value.get("value"):
                tail = str(value["value"]).strip().lower()
                break
    if not tail:
        tail = hashlib.sha1(json.dumps(submission.get("values") or [], sort_keys=True).encode()).hexdigest()[:16]
    return f"{form_id}:{submission.get('submittedAt')}:{tail}"


def fetch_form_submissions(client: HubSpotClient, run: Run) -> Iterator[Page]:
    """Submissions of every form, newest first; each form's newest committed submittedAt is stored at its end."""
    cursors: dict[str, int] = dict(((run.state or {}).get("forms") or {}) if not run.backfill else {})
    forms = list(list_forms(client))
    before = client.requests
    for form in forms:
        form_id = str(form.get("id") or form.get("guid") or "")
        if not form_id:
            continue
        since, until = run_bounds(run, cursors.get(form_id))
        newest = cursors.get(form_id)
        request = {"method": "GET", "url": f"/form-integrations/v1/submissions/forms/{form_id}",
                   "params": {"limit": client.submissions_limit}}
        for submissions, body in paginate(client.http, request, "results", NEXT_AFTER):
            kept = []
            older = False
            for sub in submissions:
                at = to_ms(sub.get("submittedAt"))
                if at is not None and at < since:
                    older = True  # newest first: everything after this one is older still
                    continue
                if at is not None and at >= until:
                    continue
                sub["_form_id"] = form_id
                sub["_form_name"] = form.get("name")
                sub["_id"] = submission_id(form_id, sub)
                kept.append(sub)
                if at is not None and (newest is None or at > newest):
                    newest = at
            if kept:
                yield Page(kept, requests=client.requests - before)
                before = client.requests
            if older:
                break
        if newest is not None:
            cursors[form_id] = newest
        yield Page([], state={"forms": dict(cursors)}, requests=client.requests - before)
        before = client.requests


STREAMS: dict[str, Stream] = {
    "contacts": Stream("contacts", "contact", "id", crm_stream("contacts"), "lastmodifieddate"),
    "companies": Stream("companies", "company", "id", crm_stream("companies"), "hs_lastmodifieddate"),
    "deals": Stream("deals", "deal", "id", crm_stream("deals"), "hs_lastmodifieddate"),
    "email_events": Stream("email_events", "email_event", "id", fetch_email_events, "created"),
    "form_submissions": Stream("form_submissions", "form_submission", "_id", fetch_form_submissions, "submittedAt"),
}
OPTIONAL_STREAMS = {"email_events": "email_events", "form_submissions": "forms"}  # stream -> its on/off setting


def streams(source: dict) -> dict[str, Stream]:
    """The streams this source syncs: all of them, minus email_events / form_submissions when the source sets
    `email_events = false` / `forms = false` (portals without Marketing Hub, or tokens without those scopes)."""
    return {name: stream for name, stream in STREAMS.items()
            if source.get(OPTIONAL_STREAMS.get(name, ""), True) is not False}
