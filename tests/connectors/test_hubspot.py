"""HubSpot connector: fetch() over recorded HTTP (cassettes/hubspot/*.yaml, written by
tests/cassette_builders/hubspot.py, which runs this connector against a small fake of the API) and the error
mapping of SDK / urllib3 exceptions."""
from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime

import pytest
import urllib3

import connectors.http
from connectors import hubspot as hs
from connectors.core import Run
from connectors.errors import ApiError, AuthError, TemporaryError
from normalize import Malformed
from normalize import hubspot as norm
from normalize.model import Context

TOKEN = "test-token-hubspot"
SOURCE = {"name": "hubspot", "type": "hubspot", "access_token": TOKEN}
# what funnelsync/sync.py hands the connector in `funnelsync demo` (the demo model's Salesforce StageNames included)
DEMO_SOURCE = {**SOURCE, "start_date": "2024-01-01", "self_report_property": "how_did_you_hear_about_us",
               "sqo_stages": ["Qualification", "Needs Analysis", "Proposal", "Negotiation", "Closed Won"]}
CONTACT_FORM = "3f1c2b7a-1d2e-4f50-9a61-0c7d8e9f0a11"
DEMO_FORM = "7b9e4c2d-5a6f-4b1c-8d2e-3f4a5b6c7d80"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ms(*args: int) -> int:
    return int(utc(*args).timestamp() * 1000)


NOW = datetime(2024, 4, 1, tzinfo=UTC)


def run(state=None, start=date(2024, 1, 1), now=NOW, end=None, source=SOURCE) -> Run:
    return Run(source=source, state=state, start=start, end=end, now=now)


def client(small=True, cap=None, source=SOURCE):
    c = hs.connect(source)
    if small:  # the sizes the cassette builder used
        c.page_size, c.list_limit, c.email_events_limit, c.forms_limit, c.submissions_limit = 3, 2, 3, 2, 2
    if cap:
        c.search_cap = cap
    return c


def bodies(cassette) -> list[dict]:
    return [json.loads(r.body) for r in cassette.requests if r.method == "POST"]


def window(body: dict) -> tuple[int, int]:
    filters = {(f["propertyName"], f["operator"]): int(f["value"]) for f in body["filterGroups"][0]["filters"]}
    prop = body["sorts"][0]["propertyName"]
    prop = "lastmodifieddate" if ("lastmodifieddate", "GTE") in filters else "hs_lastmodifieddate"
    return filters[(prop, "GTE")], filters[(prop, "LT")]


# ---- connect -----------------------------------------------------------------------------------------------------


def test_connect_keeps_one_api_object_per_endpoint_and_honours_base_url():
    c = hs.connect({**SOURCE, "base_url": "https://proxy.internal.example/hubspot/"})
    assert c.base_url == "https://proxy.internal.example/hubspot"
    assert c.search_api["contacts"].api_client.configuration.host == "https://proxy.internal.example/hubspot"
    assert c.search_api["contacts"] is c.search_api["contacts"]  # built once, not per attribute access
    assert c.http.base_url == "https://proxy.internal.example/hubspot"
    assert (c.page_size, c.search_cap, c.list_limit) == (200, 10_000, 100)


def test_connect_passes_the_ca_bundle_to_the_sdk(monkeypatch, tmp_path):
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    c = hs.connect(SOURCE)
    assert c.search_api["deals"].api_client.configuration.ssl_ca_cert == str(pem)
    assert c.associations_api.api_client.configuration.ssl_ca_cert == str(pem)


def test_connect_without_token_is_an_auth_error():
    with pytest.raises(AuthError, match="access_token"):
        hs.connect({"name": "hubspot", "type": "hubspot"})


def test_marketing_streams_can_be_turned_off():
    assert list(hs.streams(SOURCE)) == ["contacts", "companies", "deals", "email_events", "form_submissions"]
    assert list(hs.streams({**SOURCE, "email_events": False, "forms": False})) == ["contacts", "companies", "deals"]
    assert list(hs.streams({**SOURCE, "email_events": True, "forms": False}))[-1] == "email_events"


def test_properties_lists_are_explicit_and_configurable():
    props = hs.properties_for("contacts", {**SOURCE, "self_report_property": "how_did_you_hear_about_us",
                                           "lifecycle_stage_ids": ["lead", "1234567"]})
    assert {"email", "createdate", "associatedcompanyid", "hs_analytics_first_url", "hs_latest_source"} <= set(props)
    assert "hs_v2_date_entered_1234567" in props and "hs_lifecyclestage_lead_date" in props
    assert props[-1] == "how_did_you_hear_about_us"
    deal_props = hs.properties_for("deals", {**SOURCE, "sqo_stages": ["qualifiedtobuy", "123"]})
    assert deal_props[-2:] == ["hs_v2_date_entered_qualifiedtobuy", "hs_v2_date_entered_123"]
    assert "hs_is_closed_won" in deal_props


# ---- CRM search ---------------------------------------------------------------------------------------------------


def test_contacts_two_pages_first_sync(vcr):
    with vcr.use_cassette("hubspot/contacts_two_pages.yaml") as cass:
        pages = list(hs.STREAMS["contacts"].fetch(client(), run()))
        assert cass.all_played
        first = bodies(cass)[0]
    assert [len(p.records) for p in pages] == [3, 2, 0]
    assert [r["id"] for p in pages for r in p.records] == ["101", "102", "103", "104", "105"]
    # sorted ascending by the cursor: each page carries the state
    assert pages[0].state == {"cursor": "2024-02-20T10:00:00.250Z"}
    assert pages[1].state == {"cursor": "2024-03-12T12:05:00.000Z"}
    assert pages[2].state == {"cursor": "2024-03-12T12:05:00.000Z", "archived_cursor": "2024-04-01T00:00:00.000Z"}
    assert window(first) == (ms(2024, 1, 1), ms(2024, 4, 1))
    assert first["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert first["limit"] == 3 and "after" not in first
    assert bodies(cass)[1]["after"] == "3"
    assert [p.requests for p in pages] == [1, 1, 1]
    assert pages[0].records[0]["properties"]["email"] == "alice@acme-corp.example"


def test_a_record_modified_while_paging_cannot_make_another_one_slip(vcr):
    # page 1 is 401-403; then 402 is edited (it leaves the window), so offset 3 now starts at 405 and 404 would be
    # skipped: the shrinking total gives it away and the window is re-read from 403's timestamp
    with vcr.use_cassette("hubspot/contacts_modified_while_paging.yaml") as cass:
        pages = list(hs.STREAMS["contacts"].fetch(client(), run()))
        assert cass.all_played
        sent = bodies(cass)
    assert [[r["id"] for r in p.records] for p in pages] == [
        ["401", "402", "403"], ["405", "406", "407"], ["403", "404", "405"], ["406", "407"], []]
    assert window(sent[2]) == (ms(2024, 2, 14, 12), ms(2024, 4, 1)) and "after" not in sent[2]
    # the state never passes a record not yet read: page 2 (read while offsets shifted) does not advance it
    assert [p.state["cursor"] for p in pages] == ["2024-02-14T12:00:00.000Z", "2024-02-14T12:00:00.000Z",
                                                  "2024-03-01T09:00:00.000Z", "2024-03-20T08:00:00.000Z",
                                                  "2024-03-20T08:00:00.000Z"]


def test_contacts_since_cursor_rereads_the_lookback(vcr):
    state = {"cursor": "2024-03-20T12:00:00.000Z", "archived_cursor": "2024-03-20T12:00:00.000Z"}
    with vcr.use_cassette("hubspot/contacts_since_cursor.yaml") as cass:
        pages = list(hs.STREAMS["contacts"].fetch(client(), run(state)))
        assert cass.all_played
        assert window(bodies(cass)[0]) == (ms(2024, 3, 20, 11, 50), ms(2024, 4, 1))
    assert [r["id"] for p in pages for r in p.records] == ["102", "106"]  # 101 changed before the lookback
    assert pages[0].state == {"cursor": "2024-03-25T16:30:00.000Z", "archived_cursor": "2024-03-20T12:00:00.000Z"}
    assert pages[-1].state["archived_cursor"] == "2024-04-01T00:00:00.000Z"


def test_contacts_lookback_is_a_setting(vcr):
    state = {"cursor": "2024-03-20T12:05:00.000Z", "archived_cursor": "2024-03-20T12:00:00.000Z"}
    with vcr.use_cassette("hubspot/contacts_since_cursor.yaml") as cass:
        pages = list(hs.STREAMS["contacts"].fetch(client(), run(state, source={**SOURCE, "lookback_minutes": 15})))
        assert cass.all_played  # same request: 12:05 - 15 min == 12:00 - 10 min
    assert len(pages[0].records) == 2


def test_archived_contacts_come_from_the_list_endpoint(vcr):
    state = {"cursor": "2024-03-20T12:00:00.000Z", "archived_cursor": "2024-03-20T12:00:00.000Z"}
    with vcr.use_cassette("hubspot/contacts_archived.yaml") as cass:
        pages = list(hs.STREAMS["contacts"].fetch(client(), run(state)))
        assert cass.all_played
        lists = [r for r in cass.requests if r.method == "GET"]
    assert [[r["id"] for r in p.records] for p in pages] == [["107"], ["151"], ["152"]]
    assert pages[1].state is None  # the archived list is not sorted by time: state only at its end
    assert pages[2].state == {"cursor": "2024-03-22T10:00:00.000Z", "archived_cursor": "2024-04-01T00:00:00.000Z"}
    assert all(r["archived"] is True for p in pages[1:] for r in p.records)
    assert pages[1].records[0]["archivedAt"] == "2024-03-21T09:00:00.000Z"
    assert "archived=true" in lists[0].uri and "properties=hs_analytics_first_url" in lists[0].uri
    assert "after=152" in lists[1].uri
    # the archived contact keeps its web visit, loses its person row
    rows = norm.contact_rows(pages[1].records[0], Context())
    assert [(r.table, r.values["event_type"]) for r in rows] == [("events", "web_visit")]


def test_window_reaching_the_cap_is_split_and_read_in_order(vcr):
    with vcr.use_cassette("hubspot/contacts_window_split.yaml") as cass:
        pages = list(hs.STREAMS["contacts"].fetch(client(cap=5), run()))
        assert cass.all_played
        windows = [window(b) for b in bodies(cass)]
    ids = [r["id"] for p in pages for r in p.records]
    assert ids == [str(i) for i in range(201, 209)]  # every record once, ascending
    jan3, mar30 = ms(2024, 1, 3, 9), ms(2024, 3, 30, 23, 59)
    assert windows[0] == (ms(2024, 1, 1), ms(2024, 4, 1))  # total 8 >= 5: split
    assert windows[1][0] == jan3  # the empty prefix before the first record is skipped
    for (a, _), (c, _) in itertools.pairwise(windows[1:]):
        assert c >= a  # parts are read in time order
    assert all(b - a < ms(2024, 4, 1) - ms(2024, 1, 1) for a, b in windows[1:])
    assert windows[-1][1] == ms(2024, 4, 1) and windows[-1][0] <= mar30
    cursors = [p.state["cursor"] for p in pages if p.state and p.state.get("cursor")]
    assert cursors == sorted(cursors) and cursors[-1] == "2024-03-30T23:59:00.000Z"


def test_more_than_the_cap_at_one_instant_is_paged_by_object_id(vcr):
    with vcr.use_cassette("hubspot/companies_same_instant.yaml") as cass:
        pages = list(hs.STREAMS["companies"].fetch(client(cap=5), run()))
        assert cass.all_played
        sent = bodies(cass)
    ids = [r["id"] for p in pages for r in p.records]
    assert ids == ["9101"] + [str(i) for i in range(9110, 9117)] + ["9120"]
    by_id = [b for b in sent if b["sorts"][0]["propertyName"] == "hs_object_id"]
    assert [next(int(f["value"]) for f in b["filterGroups"][0]["filters"] if f["propertyName"] == "hs_object_id")
            for b in by_id] == [0, 9112, 9115]
    bulk = ms(2024, 2, 1, 3) + 123
    assert all(window(b) == (bulk, bulk + 1) for b in by_id)
    assert all("after" not in b for b in by_id)  # keyset paging: never near the 10,000 offset limit
    assert [len(p.records) for p in pages if any(r["id"].startswith("911") for r in p.records)] == [3, 3, 1]
    assert pages[-1].state["cursor"] == "2024-03-05T10:00:00.000Z"


def test_deals_get_their_contacts_and_companies_primary_first(vcr):
    with vcr.use_cassette("hubspot/deals_associations.yaml") as cass:
        pages = list(hs.STREAMS["deals"].fetch(client(), run()))
        assert cass.all_played
        assoc = [json.loads(r.body) for r in cass.requests if "/crm/v4/associations/" in r.uri]
    deals = {r["id"]: r for p in pages for r in p.records}
    assert deals["5001"]["_contact_ids"] == ["101", "102"]
    assert deals["5001"]["_company_ids"] == ["9001", "9003"]  # the Primary association first
    assert deals["5002"]["_company_ids"] == ["9002"]
    assert deals["5003"]["_contact_ids"] == [] and deals["5003"]["_company_ids"] == []  # 207: none associated
    assert deals["5004"]["archived"] is True and "_contact_ids" not in deals["5004"]
    assert assoc == [{"inputs": [{"id": "5001"}, {"id": "5002"}, {"id": "5003"}]}] * 2
    assert "hs_is_closed_won" in bodies(cass)[0]["properties"]


# ---- retries and errors --------------------------------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when the code sleeps: pacing and retries are exact and instant."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def fake_time(monkeypatch):
    t = FakeTime()
    monkeypatch.setattr(connectors.http, "SLEEP", t.sleep)
    init = connectors.http.Pacer.__init__

    def pacer_init(self, max_requests, per_seconds=1.0, clock=None):
        init(self, max_requests, per_seconds, lambda: t.now)

    monkeypatch.setattr(connectors.http.Pacer, "__init__", pacer_init)
    return t


@pytest.fixture
def sleeps(fake_time):
    return fake_time.sleeps


def test_429_waits_for_retry_after_then_succeeds(vcr, sleeps):
    with vcr.use_cassette("hubspot/contacts_429_then_ok.yaml") as cass:
        pages = list(hs.STREAMS["contacts"].fetch(client(), run()))
        assert cass.all_played
    assert sleeps == [2.0]
    assert [r["id"] for p in pages for r in p.records] == ["101"]
    assert pages[0].requests == 2  # the page reports the retried request too


def test_5xx_burst_is_retried(vcr, sleeps):
    with vcr.use_cassette("hubspot/companies_5xx_burst.yaml") as cass:
        pages = list(hs.STREAMS["companies"].fetch(client(), run()))
        assert cass.all_played
    assert len(sleeps) == 3 and all(0 <= s <= 60 for s in sleeps)
    assert [r["properties"]["name"] for p in pages for r in p.records] == ["Acme Corp"]


def test_5xx_that_outlasts_the_retries_is_temporary(vcr, sleeps):
    with vcr.use_cassette("hubspot/companies_5xx_exhausted.yaml") as cass, pytest.raises(TemporaryError) as err:
        list(hs.STREAMS["companies"].fetch(client(), run()))
    assert cass.all_played and cass.play_count == 8
    assert err.value.exit_code == 75 and "503" in str(err.value)
    assert len(sleeps) >= 7  # 7 back-offs between 8 attempts (plus any pacing)


def test_searches_are_paced_below_five_per_second(vcr, fake_time):
    c = client(cap=5)
    api = c.search_api["companies"]
    sent: list[float] = []
    real = api.do_search

    def spy(*args, **kwargs):
        sent.append(fake_time.now)
        return real(*args, **kwargs)

    api.do_search = spy
    with vcr.use_cassette("hubspot/companies_same_instant.yaml"):
        list(hs.STREAMS["companies"].fetch(c, run()))
    assert len(sent) == 10
    assert all(later - earlier >= 1.0 for earlier, later in zip(sent, sent[4:]))  # at most 4 in any second
    assert sent[3] == 0.0 and sent[4] > 1.0


@pytest.mark.parametrize("stream", ["contacts", "email_events"])
def test_401_is_an_auth_error_without_the_token(vcr, stream, sleeps):
    with vcr.use_cassette("hubspot/unauthorized.yaml"):
        with pytest.raises(AuthError) as err:
            list(hs.STREAMS[stream].fetch(client(), run()))
    assert err.value.exit_code == 3 and "401" in str(err.value)
    assert TOKEN not in str(err.value) and sleeps == []  # private-app tokens cannot be refreshed: no retry


def test_malformed_records_pass_through_to_the_normalizer(vcr):
    with vcr.use_cassette("hubspot/contacts_malformed.yaml"):
        records = [r for p in hs.STREAMS["contacts"].fetch(client(), run()) for r in p.records]
    assert [r["id"] for r in records] == ["301", "302", "303"]
    assert norm.contact_rows(records[0], Context())
    with pytest.raises(Malformed, match="hs_v2_date_entered_lead"):
        norm.contact_rows(records[1], Context())
    assert "createdAt" not in records[2]
    with pytest.raises(Malformed, match="createdate"):
        norm.contact_rows(records[2], Context())


def sdk_error(status: int, headers: dict | None = None, body: bytes = b"{}"):
    from hubspot.crm.contacts.exceptions import ApiException

    class Resp:
        reason = "x"
        data = body

        def __init__(self):
            self.status = status

        def getheaders(self):
            return urllib3.HTTPHeaderDict(headers or {})

    return ApiException(http_resp=Resp())


@pytest.mark.parametrize("exc, kind, code", [
    (sdk_error(429, {"Retry-After": "7"}), TemporaryError, 75),
    (sdk_error(502), TemporaryError, 75),
    (sdk_error(401, body=b'{"message":"bad token test-token-hubspot"}'), AuthError, 3),
    (sdk_error(403), AuthError, 3),
    (sdk_error(400, body=b'{"status":"error","message":"There was a problem with the request."}'), ApiError, 1),
    (sdk_error(404), ApiError, 1),
    (urllib3.exceptions.ProtocolError("Connection aborted."), TemporaryError, 75),
    (urllib3.exceptions.MaxRetryError(None, "/x", urllib3.exceptions.NewConnectionError(None, "refused")),
     TemporaryError, 75),
    (urllib3.exceptions.MaxRetryError(None, "/x", urllib3.exceptions.SSLError("certificate verify failed")),
     ApiError, 1),
])
def test_sdk_exceptions_are_classified(exc, kind, code):
    mapped = client(small=False).classify("POST /crm/v3/objects/contacts/search", exc)
    assert type(mapped) is kind and mapped.exit_code == code
    assert TOKEN not in str(mapped)
    if isinstance(exc, Exception) and getattr(exc, "status", None) == 429:
        assert mapped.retry_after == 7.0


def test_unknown_exceptions_propagate_unclassified():
    assert client(small=False).classify("x", KeyError("boom")) is None


# ---- email events and forms ----------------------------------------------------------------------------------------


def test_email_events_in_chunks_with_offset_paging(vcr):
    state = {"cursor": ms(2024, 3, 18, 0, 10)}
    with vcr.use_cassette("hubspot/email_events.yaml") as cass:
        pages = list(hs.STREAMS["email_events"].fetch(client(), run(state)))
        assert cass.all_played
        uris = [r.uri for r in cass.requests]
    assert [len(p.records) for p in pages] == [3, 3, 1, 3]
    # a chunk's state only on its last page: its events come newest first
    assert [p.state for p in pages] == [None, None, {"cursor": ms(2024, 3, 25)}, {"cursor": ms(2024, 4, 1)}]
    assert f"startTimestamp={ms(2024, 3, 18)}" in uris[0] and f"endTimestamp={ms(2024, 3, 25) - 1}" in uris[0]
    assert "offset=" in uris[1] and "offset=" not in uris[0]
    assert sorted(r["id"] for p in pages for r in p.records) == [f"e-{i:03d}" for i in range(1, 11)]


def test_email_events_first_sync_starts_at_start_date(vcr):
    # the demo cassette: 13 weekly chunks from 2024-01-01 to 2024-04-01
    demo = DEMO_SOURCE
    with vcr.use_cassette("hubspot/demo.yaml"):
        pages = list(hs.STREAMS["email_events"].fetch(hs.connect(demo), run(source=demo)))
    assert [p.state for p in pages][-1] == {"cursor": ms(2024, 4, 1)}
    assert len(pages) == 13 and pages[0].state == {"cursor": ms(2024, 1, 8)}


def test_form_submissions_keep_a_cursor_per_form(vcr):
    state = {"forms": {CONTACT_FORM: ms(2024, 3, 20, 12)}}
    with vcr.use_cassette("hubspot/forms.yaml") as cass:
        pages = list(hs.STREAMS["form_submissions"].fetch(client(), run(state)))
        assert cass.all_played
    records = [r for p in pages for r in p.records]
    # contact form: newest first, paging stops at the first submission older than cursor - lookback
    assert [(r["_form_id"], r["submittedAt"]) for r in records] == [
        (CONTACT_FORM, ms(2024, 3, 28, 10)), (CONTACT_FORM, ms(2024, 3, 25, 16)), (CONTACT_FORM, ms(2024, 3, 21, 9)),
        (DEMO_FORM, ms(2024, 2, 19, 11))]
    assert records[0]["_id"] == f"{CONTACT_FORM}:{ms(2024, 3, 28, 10)}:9a8b7c6d-0001-4000-8000-000000000001"
    assert records[1]["_id"] == f"{CONTACT_FORM}:{ms(2024, 3, 25, 16)}:frank@acme-corp.example"  # no conversionId
    assert records[0]["_form_name"] == "Contact us"
    states = [p.state for p in pages if p.state]
    assert states == [{"forms": {CONTACT_FORM: ms(2024, 3, 28, 10)}},
                      {"forms": {CONTACT_FORM: ms(2024, 3, 28, 10), DEMO_FORM: ms(2024, 2, 19, 11)}}]
    assert all(p.state is None for p in pages if p.records)  # never mid-form


def test_submission_id_is_stable_without_conversion_id_or_email():
    sub = {"submittedAt": 1, "values": [{"name": "firstname", "value": "x"}]}
    assert hs.submission_id("f", sub) == hs.submission_id("f", dict(sub))
    assert hs.submission_id("f", sub).startswith("f:1:")


# ---- the demo ---------------------------------------------------------------------------------------------------


def test_demo_cassette_replays_every_stream(vcr):
    demo = DEMO_SOURCE
    counts = {}
    with vcr.use_cassette("hubspot/demo.yaml") as cass:
        c = hs.connect(demo)
        for name, stream in hs.STREAMS.items():
            counts[name] = sum(len(p.records) for p in stream.fetch(c, run(source=demo)))
        assert cass.all_played
    assert counts["contacts"] == 51 and counts["companies"] == 15 and counts["deals"] == 11
    assert counts["email_events"] > 250 and counts["form_submissions"] > 50
    assert c.requests == 26


def test_backfill_reads_a_closed_range_and_ignores_state(vcr):
    with vcr.use_cassette("hubspot/demo.yaml", allow_playback_repeats=True):
        demo = DEMO_SOURCE
        backfill = run(state={"cursor": "2024-03-01T00:00:00.000Z"}, start=date(2024, 1, 1), end=date(2024, 1, 7),
                       source=demo)
        pages = list(hs.STREAMS["email_events"].fetch(hs.connect(demo), backfill))
    assert len(pages) == 1 and pages[0].state == {"cursor": ms(2024, 1, 8)}
    assert all(ms(2024, 1, 1) <= r["created"] < ms(2024, 1, 8) for r in pages[0].records)
