"""Mailchimp Marketing API 3.0 through the official `mailchimp-marketing` SDK (3.0.80).

Auth: an API key "<key>-<dc>" sent as HTTP basic auth; the data-center suffix picks the default base URL
`https://<dc>.api.mailchimp.com/3.0`. `base_url` overrides it (proxies, test servers). The SDK rewrites the
text "server" anywhere in its URL into the data center (`url.replace("server", dc)`), which would mangle a
base URL such as `https://mc-server.internal/3.0`; we give the SDK the final URL and clear its `server` field,
so the rewrite never runs.
CA bundle: the SDK calls bare `requests.get`, so only `REQUESTS_CA_BUNDLE` applies; `connect()` runs
`connectors.http.setup_ca_bundle()` so `SSL_CERT_FILE` works too.
Errors: every SDK call goes through `connectors.http.with_retries`: 429, 5xx and network errors are retried
(the SDK exposes no Retry-After, so backoff is exponential), 401/403 raise AuthError, other 4xx ApiError. Error
bodies are RFC 7807 problem documents {type, title, status, detail, instance}; messages keep title and detail
and are redacted (the key never appears).
Rate limits: at most 10 simultaneous connections per user
(https://mailchimp.com/developer/marketing/docs/fundamentals/#api-limits). This connector is sequential: one
request at a time, so it always respects the limit (`max_connections` is not needed and not read).
Paging: `count` (<= 1000, setting `page_size`) and `offset`; a collection ends at `total_items`. Every
collection request sends `exclude_fields=_links,<items>._links` (hypermedia links are large and unused).
Settings read ([sources.NAME]): api_key, base_url, page_size (default 1000), list_ids (default: every list),
reread_days (default 14), lookback_minutes (default 60); start_date arrives as `run.start`.

Streams (raw object, record key):
- lists (list, id): GET /lists, the whole collection on every sync; no state.
- list_members (list_member, _id = "<list_id>:<member id>"): GET /lists/{id}/members sorted by last_changed ASC,
  `since_last_changed` = the list's cursor minus `lookback_minutes` (default 60); the first sync reads every
  member (identity data, not bounded by start_date). State {"lists": {list_id: "<max last_changed>"}} on every
  page. Offset paging over a moving sort can skip a member that changes during the read; the lookback and the
  member's next change bring it back.
- campaigns (campaign, id): GET /campaigns status=sent, since_send_time = cursor, sorted by send_time ASC.
  State {"cursor": "<max send_time>"} on the last page.
- sent_to (sent_to, _id = "<campaign_id>:<email_id>"), email_activity (email_activity, _id = same; one record per
  recipient with its whole activity array), unsubscribes (unsubscribe, _id = same), reports (report, id; totals,
  raw only, for reconciliation): GET /reports/{campaign_id}/sent-to | /email-activity | /unsubscribed | (itself)
  for each sent campaign. Records get `_id` and `_send_time` (the campaign's send_time) so normalizers are pure.

Re-read window (report streams): opens, clicks, bounces and unsubscribes keep arriving for days after a send.
Every sync re-reads the reports of campaigns sent in the last `reread_days` (default 14) before `run.now`; a
campaign that has left the window gets one final read, then is finished and never read again. Record ids are
stable, so the warehouse's per-record replacement swaps old rows for the new ones (no duplicates).
State {"finished_before": T} = every campaign sent before T is finished (T = run.now - reread_days at the end
of a sync). Campaigns are read in send_time order; after each campaign read for the last time the state is
{"finished_before": its send_time, "finished": [ids of the finished campaigns sent in that second]}, so an
interrupted sync resumes without re-reading them. Nothing before start_date is read. A backfill
reads the campaigns sent in [start, end] and keeps no state.

Docs: https://mailchimp.com/developer/marketing/api/ (lists/members, campaigns, reports: sent-to,
email-activity, unsubscribed); stitchdata Mailchimp schemas (list_members, campaigns, reports_email_activity,
unsubscribes); SDK sources: mailchimp_marketing/api_client.py, api/{lists,campaigns,reports}_api.py.
"""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, TypeVar

from connectors.core import Page, Run, Stream
from connectors.errors import ApiError, AuthError, ConnectorError, TemporaryError
from connectors.http import TIMEOUT, redact, setup_ca_bundle, with_retries

TYPE = "mailchimp"
DEFAULT_PAGE_SIZE = 1000  # the API's maximum `count`
DEFAULT_REREAD_DAYS = 14
DEFAULT_LOOKBACK_MINUTES = 60
UTC = timezone.utc
T = TypeVar("T")


# ---- the client --------------------------------------------------------------------------------------------


class Client:
    """The SDK client of one source plus what the streams need: page size, request counting, redaction."""

    def __init__(self, sdk: Any, *, api_key: str, base_url: str, page_size: int, source_name: str):
        self.sdk = sdk
        self.base_url = base_url
        self.page_size = page_size
        self.source_name = source_name
        self.secrets = [api_key, api_key.rsplit("-", 1)[0]]
        self.requests = 0  # every request sent, retries included
        self._reported = 0

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict:
        """Run one SDK call with the retry policy; return its JSON object."""

        def attempt() -> dict:
            self.requests += 1
            result = fn(*args, **kwargs)
            if isinstance(result, dict):
                return result
            raise self._unexpected(what, result)

        return with_retries(attempt, classify=lambda exc: self._classify(what, exc))

    def take_requests(self) -> int:
        """Requests sent since the last call (for Page.requests)."""
        n, self._reported = self.requests - self._reported, self.requests
        return n

    # -- errors --

    def _classify(self, what: str, exc: BaseException) -> Exception | None:
        from mailchimp_marketing.api_client import ApiClientError
        import requests

        if not isinstance(exc, ApiClientError):
            return None  # a bug (bad SDK argument...): let it propagate
        if exc.status_code is None:  # the SDK wraps transport errors: ApiClientError(original_exception)
            inner = exc.text
            transient = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
            if isinstance(inner, transient):
                return TemporaryError(self.redact(f"Mailchimp {what}: network error: {type(inner).__name__}"))
            return ApiError(self.redact(f"Mailchimp {what}: request failed: {type(inner).__name__}: {inner}"))
        return self._status_error(what, int(exc.status_code), _problem(exc.text))

    def _status_error(self, what: str, status: int, problem: dict) -> ConnectorError:
        title = str(problem.get("title") or "").strip()
        detail = str(problem.get("detail") or "").strip()
        text = f"HTTP {status}" + (f" {title}" if title else "") + (f": {detail}" if detail else "")
        if status == 429 or status >= 500:
            return TemporaryError(self.redact(f"Mailchimp {what}: {text}"))
        if status in (401, 403):
            return AuthError(self.redact(
                f"Mailchimp rejected the API key of source {self.source_name!r} ({what}: {text}). Set "
                f"[sources.{self.source_name}] api_key to a valid key ending in -<dc> (e.g. -us6)."))
        return ApiError(self.redact(f"Mailchimp {what}: {text}"), status)

    def _unexpected(self, what: str, result: Any) -> ConnectorError:
        """The SDK returns the raw `requests.Response` when a body is empty, and text when it is not JSON."""
        status = getattr(result, "status_code", None)
        if isinstance(status, int) and status >= 400:
            return self._status_error(what, status, {})
        kind = "an empty body" if status is not None else f"a non-JSON body: {str(result)[:200]!r}"
        return ApiError(self.redact(f"Mailchimp {what}: expected a JSON object, got {kind}"), status)

    def redact(self, text: Any) -> str:
        return redact(text, self.secrets)


def _problem(text: Any) -> dict:
    """The RFC 7807 body of an error (the SDK passes it as text: `application/problem+json` is not JSON to it)."""
    if isinstance(text, dict):
        return text
    if isinstance(text, (str, bytes)):
        try:
            data = json.loads(text)
        except ValueError:
            return {"detail": str(text)[:300]}
        return data if isinstance(data, dict) else {}
    return {}


def connect(source: dict) -> Client:
    """Build the SDK client for one [sources.NAME] table (keys: api_key, base_url, page_size)."""
    name = source.get("name", "mailchimp")
    api_key = source.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        raise ApiError(f"[sources.{name}] api_key is missing")
    api_key = api_key.strip()
    dc = api_key.rsplit("-", 1)[1] if "-" in api_key else ""
    base_url = (source.get("base_url") or "").strip().rstrip("/")
    if not base_url:
        if not dc or not dc.isalnum():
            raise ApiError(f"[sources.{name}] api_key must end with its data center, e.g. '-us6' "
                           "(or set base_url)")
        base_url = f"https://{dc}.api.mailchimp.com/3.0"
    if not base_url.startswith(("https://", "http://")):
        raise ApiError(f"[sources.{name}] base_url must start with https:// (got {redact(base_url, [api_key])!r})")
    page_size = int(source.get("page_size") or DEFAULT_PAGE_SIZE)
    if not 1 <= page_size <= 1000:
        raise ApiError(f"[sources.{name}] page_size must be between 1 and 1000")

    setup_ca_bundle()
    import mailchimp_marketing  # imported here: only when a Mailchimp source runs

    sdk = mailchimp_marketing.Client()
    sdk.set_config({"api_key": api_key, "server": dc or "invalid-server", "timeout": TIMEOUT})
    sdk.api_client.host = base_url
    # The SDK does `url.replace("server", dc)` on the whole URL when `server` is set; the host is already
    # final, so clearing it keeps a base_url containing "server" intact.
    sdk.api_client.server = ""
    return Client(sdk, api_key=api_key, base_url=base_url, page_size=page_size, source_name=name)


# ---- helpers -----------------------------------------------------------------------------------------------


def _parse(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as aware UTC, or None when empty/unparseable."""
    if not value or not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def _api_time(dt: datetime) -> str:
    """The documented parameter format: 2015-10-21T15:41:36+00:00."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _state_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """(item, is_last) pairs, looking one item ahead."""
    it = iter(items)
    try:
        prev = next(it)
    except StopIteration:
        return
    for item in it:
        yield prev, False
        prev = item
    yield prev, True


def _offset_pages(client: Client, what: str, fn: Callable[..., Any], items_key: str, *args: Any,
                  **params: Any) -> Iterator[list[dict]]:
    """Follow count/offset paging of a collection; yields each page's items (at least one page)."""
    offset = 0
    while True:
        body = client.call(what, fn, *args, count=client.page_size, offset=offset,
                           exclude_fields=["_links", f"{items_key}._links"], **params)
        items = body.get(items_key)
        if not isinstance(items, list):
            raise ApiError(f"Mailchimp {what}: the response has no {items_key!r} list")
        yield items
        offset += len(items)
        total = body.get("total_items")
        if not items or (offset >= total if isinstance(total, int) else len(items) < client.page_size):
            return


def _sent_campaigns(client: Client, since: datetime, before: datetime | None = None) -> list[dict]:
    """Campaigns with status "sent" and since <= send_time < before, in send_time order."""
    # since_send_time reads "sent after the set time": ask one second earlier and filter here (inclusive bound).
    params: dict[str, Any] = {"status": "sent", "sort_field": "send_time", "sort_dir": "ASC",
                              "since_send_time": _api_time(since - timedelta(seconds=1))}
    if before is not None:
        params["before_send_time"] = _api_time(before)
    found: list[tuple[datetime, dict]] = []
    for items in _offset_pages(client, "GET /campaigns", client.sdk.campaigns.list, "campaigns", **params):
        for campaign in items:
            sent = _parse(campaign.get("send_time"))
            if sent is None or not campaign.get("id"):
                continue  # a "sent" campaign always has both; nothing can be placed in the window without them
            if sent >= since and (before is None or sent < before):
                found.append((sent, campaign))
    found.sort(key=lambda pair: pair[0])  # the state logic relies on send_time order
    return [campaign for _, campaign in found]


def _all_lists(client: Client) -> Iterator[list[dict]]:
    return _offset_pages(client, "GET /lists", client.sdk.lists.get_all_lists, "lists")


# ---- streams -----------------------------------------------------------------------------------------------


def fetch_lists(client: Client, run: Run) -> Iterator[Page]:
    """Every audience (list); small, read whole on each sync."""
    for items in _all_lists(client):
        yield Page(items, requests=client.take_requests())


def fetch_list_members(client: Client, run: Run) -> Iterator[Page]:
    """Members of every list (or of `list_ids`), changed since each list's cursor minus the lookback."""
    state = run.state or {}
    cursors: dict[str, str] = dict(state.get("lists") or {}) if not run.backfill else {}
    lookback = timedelta(minutes=int(run.setting("lookback_minutes", DEFAULT_LOOKBACK_MINUTES)))
    list_ids = list(run.setting("list_ids") or [])
    if not list_ids:
        list_ids = [lst["id"] for items in _all_lists(client) for lst in items if lst.get("id")]
    for list_id in list_ids:
        params: dict[str, Any] = {"sort_field": "last_changed", "sort_dir": "ASC"}
        if run.backfill:
            params["since_last_changed"] = _api_time(_midnight(run.start) - timedelta(seconds=1))
            params["before_last_changed"] = _api_time(_midnight(run.end + timedelta(days=1)))
        elif (cursor := _parse(cursors.get(list_id))) is not None:
            params["since_last_changed"] = _api_time(cursor - lookback)
        top = _parse(cursors.get(list_id))
        what = f"GET /lists/{list_id}/members"
        for items in _offset_pages(client, what, client.sdk.lists.get_list_members_info, "members", list_id,
                                   **params):
            for member in items:
                member.setdefault("list_id", list_id)
                member["_id"] = f"{list_id}:{member.get('id')}"
                changed = _parse(member.get("last_changed"))
                if changed is not None and (top is None or changed > top):
                    top = changed
            page_state = None
            if not run.backfill:  # sorted by last_changed: every page may carry the cursor
                if top is not None:
                    cursors[list_id] = _state_time(top)
                page_state = {"lists": dict(cursors)}
            yield Page(items, state=page_state, requests=client.take_requests())


def fetch_campaigns(client: Client, run: Run) -> Iterator[Page]:
    """Sent campaigns since the cursor (the last send_time seen), oldest first."""
    cursor = None if run.backfill else _parse((run.state or {}).get("cursor"))
    since = max(_midnight(run.start), cursor) if cursor else _midnight(run.start)
    before = _midnight(run.end + timedelta(days=1)) if run.backfill else None
    campaigns = _sent_campaigns(client, since, before)
    top = cursor
    for campaign in campaigns:
        sent = _parse(campaign["send_time"])
        if top is None or sent > top:
            top = sent
    state = None if run.backfill else {"cursor": _state_time(top or since)}
    size = client.page_size
    chunks = [campaigns[i:i + size] for i in range(0, len(campaigns), size)] or [[]]
    for chunk, last in _with_last(chunks):
        yield Page(chunk, state=state if last else None, requests=client.take_requests())


def _report_stream(read: Callable[[Client, dict], Iterator[list[dict]]]) -> Callable[[Client, Run], Iterator[Page]]:
    """A stream over the reports of sent campaigns with the re-read window (see the module docstring)."""

    def fetch(client: Client, run: Run) -> Iterator[Page]:
        floor = _midnight(run.start)
        if run.backfill:
            for campaign in _sent_campaigns(client, floor, _midnight(run.end + timedelta(days=1))):
                for records in read(client, campaign):
                    yield Page(records, requests=client.take_requests())
            return
        window = run.now.astimezone(UTC) - timedelta(days=int(run.setting("reread_days", DEFAULT_REREAD_DAYS)))
        state = run.state or {}
        finished_before = max(floor, _parse(state.get("finished_before")) or floor)
        finished = set(state.get("finished") or ())
        since = max(floor, min(finished_before, window))
        final = {"finished_before": _state_time(max(finished_before, window))}
        todo = [c for c in _sent_campaigns(client, since)
                if _parse(c["send_time"]) >= window
                or (_parse(c["send_time"]) >= finished_before and c["id"] not in finished)]
        if not todo:
            yield Page([], state=final, requests=client.take_requests())
            return
        same_second: list[str] = []  # finished campaigns sent in the same second as the current one
        for i, campaign in enumerate(todo):
            sent = _parse(campaign["send_time"])
            nxt = todo[i + 1] if i + 1 < len(todo) else None
            if sent >= window or nxt is None or _parse(nxt["send_time"]) >= window:
                after = final  # todo is in send_time order: every campaign sent before the window is done
            else:
                # This read is the campaign's last; everything sent before it is finished too.
                if same_second and _parse(todo[i - 1]["send_time"]) != sent:
                    same_second = []
                same_second.append(campaign["id"])
                after = {"finished_before": _state_time(sent), "finished": sorted(same_second)}
            for records, last in _with_last(read(client, campaign)):
                yield Page(records, state=after if last else None, requests=client.take_requests())

    return fetch


def _annotate(records: list[dict], campaign: dict, id_field: str = "email_id") -> list[dict]:
    cid = campaign["id"]
    for record in records:
        record.setdefault("campaign_id", cid)
        record["_id"] = f"{cid}:{record.get(id_field)}"
        record["_send_time"] = campaign["send_time"]
    return records


def _read_sent_to(client: Client, campaign: dict) -> Iterator[list[dict]]:
    cid = campaign["id"]
    for items in _offset_pages(client, f"GET /reports/{cid}/sent-to", client.sdk.reports.get_campaign_recipients,
                               "sent_to", cid):
        yield _annotate(items, campaign)


def _read_email_activity(client: Client, campaign: dict) -> Iterator[list[dict]]:
    cid = campaign["id"]
    # No `since`: each record must carry the recipient's whole activity, because it replaces the previous one.
    for items in _offset_pages(client, f"GET /reports/{cid}/email-activity",
                               client.sdk.reports.get_email_activity_for_campaign, "emails", cid):
        yield _annotate(items, campaign)


def _read_unsubscribes(client: Client, campaign: dict) -> Iterator[list[dict]]:
    cid = campaign["id"]
    for items in _offset_pages(client, f"GET /reports/{cid}/unsubscribed",
                               client.sdk.reports.get_unsubscribed_list_for_campaign, "unsubscribes", cid):
        yield _annotate(items, campaign)


def _read_report(client: Client, campaign: dict) -> Iterator[list[dict]]:
    cid = campaign["id"]
    report = client.call(f"GET /reports/{cid}", client.sdk.reports.get_campaign_report, cid,
                         exclude_fields=["_links"])
    report.setdefault("id", cid)
    report["_send_time"] = campaign["send_time"]
    yield [report]


STREAMS: dict[str, Stream] = {
    s.name: s
    for s in (
        Stream("lists", "list", "id", fetch_lists),
        Stream("list_members", "list_member", "_id", fetch_list_members, cursor_field="last_changed"),
        Stream("campaigns", "campaign", "id", fetch_campaigns, cursor_field="send_time"),
        Stream("sent_to", "sent_to", "_id", _report_stream(_read_sent_to), cursor_field="send_time"),
        Stream("email_activity", "email_activity", "_id", _report_stream(_read_email_activity),
               cursor_field="send_time"),
        Stream("unsubscribes", "unsubscribe", "_id", _report_stream(_read_unsubscribes), cursor_field="send_time"),
        Stream("reports", "report", "id", _report_stream(_read_report), cursor_field="send_time"),
    )
}
