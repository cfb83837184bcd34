"""Salesforce connector: replayed REST / Bulk API 2.0 / OAuth HTTP (cassettes/salesforce, built by
tests/cassette_builders/salesforce.py)."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

import connectors.salesforce as sf
from connectors.core import Run
from connectors.errors import ApiError, AuthError, QuotaError
from normalize.model import Context, Model
from normalize.salesforce import NORMALIZERS

NOW = datetime(2024, 4, 1, tzinfo=timezone.utc)
HOST = "https://acme.my.salesforce.com"
TOKEN = "test-token-salesforce"


def sfid(prefix: str, n: int) -> str:
    """The ids tests/cassette_builders/salesforce.py gives its records (18 characters)."""
    return f"{prefix}5g{n:010d}IAA"


def source(**kw):
    return {"name": "salesforce", "type": "salesforce", "instance_url": HOST, "access_token": TOKEN,
            "api_version": "60.0", **kw}


def run(src, state=None, start=date(2024, 1, 1), end=None):
    notes = []
    return Run(source=src, state=state, start=start, end=end, now=NOW, log=notes.append)


def pages(client, stream, r):
    return list(sf.STREAMS[stream].fetch(client, r))


def ids(pgs):
    return [rec["Id"] for p in pgs for rec in p.records]


def strip_attributes(value):
    if isinstance(value, dict):
        return {k: strip_attributes(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [strip_attributes(v) for v in value]
    return value


def normalized(stream, records, model=None):
    ctx = Context(model=model or Model(sqo_stages=("Qualification",)), settings={"currency": "USD"})
    out = []
    for rec in records:
        for row in NORMALIZERS[stream](rec, ctx):
            out.append(json.dumps([type(row).__name__, row[0], row[1]], sort_keys=True, default=str))
    return sorted(out)


# ---- incremental cursor ------------------------------------------------------------------------------------


def test_lookback_picks_up_a_late_commit_and_the_cursor_never_moves_back(vcr):
    state = {"cursor_field": "SystemModstamp", "cursor": "2024-03-10T12:00:00.000Z", "last_id": sfid("00Q", 902),
             "object": "Lead"}
    client = sf.connect(source())  # lookback_minutes defaults to 10: the query starts at 11:50
    with vcr.use_cassette("salesforce/lead_incremental.yaml") as cass:
        pgs = pages(client, "Lead", run(source(), state=state))
    assert cass.all_played
    assert ids(pgs) == [sfid("00Q", 901), sfid("00Q", 902), sfid("00Q", 903)]
    first = pgs[0].records[0]
    assert first["SystemModstamp"] == "2024-03-10T11:55:00.000+0000"  # older than the saved cursor: still read
    # page 1 only saw rows up to the saved cursor: the state stays there, it never goes back to 11:55
    assert pgs[0].state == {"cursor_field": "SystemModstamp", "cursor": "2024-03-10T12:00:00.000Z",
                            "last_id": sfid("00Q", 902), "object": "Lead"}
    assert pgs[1].state["cursor"] == "2024-03-10T12:30:00.000Z"
    assert pgs[1].records[0]["IsDeleted"] is True  # queryAll brings deleted rows


def test_soql_shape():
    client = sf.connect(source(self_report_field="How_did_you_hear_about_us__c"))
    spec = sf.SPECS["LeadHistory"]
    since = datetime(2024, 3, 10, 11, 50, tzinfo=timezone.utc)
    fields = ["Id", "LeadId", "NewValue", "CreatedDate", "Lead.Email"]
    assert client.soql(spec, fields, since, None) == (
        "SELECT Id, LeadId, NewValue, CreatedDate, Lead.Email FROM LeadHistory WHERE CreatedDate >= "
        "2024-03-10T11:50:00Z AND Field = 'Status' ORDER BY CreatedDate, Id")
    assert client.soql(spec, fields, since, None, count=True) == (
        "SELECT COUNT() FROM LeadHistory WHERE CreatedDate >= 2024-03-10T11:50:00Z AND Field = 'Status'")
    bulk = client.soql(sf.SPECS["Lead"], ["Id"], since, datetime(2024, 4, 1, tzinfo=timezone.utc), ordered=False)
    assert bulk == ("SELECT Id FROM Lead WHERE SystemModstamp >= 2024-03-10T11:50:00Z AND "
                    "SystemModstamp < 2024-04-01T00:00:00Z")


def test_fields_follow_describe():
    client = sf.connect(source(self_report_field="How_did_you_hear_about_us__c"))
    notes = []
    r = Run(source={}, state=None, start=date(2024, 1, 1), log=notes.append)
    single = {"fields": [{"name": n, "type": "string"} for n in ("Id", "Name", "Amount", "SystemModstamp")]}
    fields, _ = sf.select_fields(client, sf.SPECS["Opportunity"], single, r)
    assert "CurrencyIsoCode" not in fields
    multi = {"fields": single["fields"] + [{"name": "CurrencyIsoCode", "type": "picklist"}]}
    assert "CurrencyIsoCode" in sf.select_fields(client, sf.SPECS["Opportunity"], multi, r)[0]
    lead = {"fields": [{"name": n, "type": "string"} for n in ("Id", "Email", "SystemModstamp")]}
    assert sf.select_fields(client, sf.SPECS["Lead"], lead, r)[0] == ["Id", "Email", "SystemModstamp"]
    assert any("How_did_you_hear_about_us__c" in n for n in notes)
    with pytest.raises(ApiError):
        sf.select_fields(client, sf.SPECS["Lead"], {"fields": [{"name": "Id", "type": "id"}]}, r)


def test_streams_follow_history_object():
    assert sf.streams({})["OpportunityHistory"].cursor_field == "SystemModstamp"
    assert sf.streams({"history_object": "OpportunityFieldHistory"})["OpportunityHistory"].cursor_field == "CreatedDate"
    assert sf.STREAMS["LeadHistory"].cursor_field == "CreatedDate"
    assert set(sf.STREAMS) == set(NORMALIZERS)


# ---- REST and Bulk API 2.0 give the same records -----------------------------------------------------------


def test_rest_and_bulk_paths_yield_identical_rows(vcr):
    streams = ("Lead", "CampaignMember", "Opportunity")
    rest_client = sf.connect(source())
    bulk_client = sf.connect(source(bulk_threshold=2, bulk_max_records=2))
    with vcr.use_cassette("salesforce/paths_rest.yaml") as cass:
        rest = {s: pages(rest_client, s, run(source())) for s in streams}
    assert cass.all_played
    with vcr.use_cassette("salesforce/paths_bulk.yaml") as cass:
        bulk = {s: pages(bulk_client, s, run(source())) for s in streams}
    assert cass.all_played
    for s in streams:
        rest_records = [r for p in rest[s] for r in p.records]
        bulk_records = [r for p in bulk[s] for r in p.records]
        assert len(rest_records) == 3
        by_id = {r["Id"]: strip_attributes(r) for r in rest_records}
        assert {r["Id"]: strip_attributes(r) for r in bulk_records} == by_id
        assert normalized(s, rest_records) == normalized(s, bulk_records)
        assert normalized(s, rest_records)  # not vacuous
        # REST pages are sorted: each carries the state; the unsorted bulk result only on its last page
        assert all(p.state for p in rest[s])
        assert [p.state is not None for p in bulk[s]] == [False] * (len(bulk[s]) - 1) + [True]
        assert bulk[s][-1].state == rest[s][-1].state
    lead = next(r for p in bulk["Lead"] for r in p.records if r["Id"] == sfid("00Q", 2))
    assert lead["Company"] == 'Initech, Inc.\nR&D "Labs"'  # quoted newline survives line-by-line CSV
    assert lead["IsConverted"] is False and lead["ConvertedDate"] is None
    member = next(r for p in bulk["CampaignMember"] for r in p.records if r["Id"] == sfid("00v", 1))
    assert member["Campaign"] == {"Type": "Webinar"} and member["HasResponded"] is True
    opp = next(r for p in bulk["Opportunity"] for r in p.records if r["Id"] == sfid("006", 2))
    assert opp["Amount"] == 36000.5 and opp["CurrencyIsoCode"] == "EUR" and opp["IsClosed"] is False


def test_csv_record_conversion():
    conv = sf._CsvRecord("LeadHistory", {"IsDeleted": "boolean", "CreatedDate": "datetime", "Amount": "currency",
                                         "NumberOfEmployees": "int"}, "60.0")
    rec = conv({"Id": "017x", "IsDeleted": "false", "CreatedDate": "2024-01-05T10:00:00.000Z", "Amount": "12.5",
                "NumberOfEmployees": "40", "Lead.Email": "", "Owner.Name": "Ann"})
    assert rec == {"attributes": {"type": "LeadHistory", "url": "/services/data/v60.0/sobjects/LeadHistory/017x"},
                   "Id": "017x", "IsDeleted": False, "CreatedDate": "2024-01-05T10:00:00.000+0000", "Amount": 12.5,
                   "NumberOfEmployees": 40, "Lead": None, "Owner": {"Name": "Ann"}}


# ---- auth --------------------------------------------------------------------------------------------------


def test_client_credentials_refresh_once_on_invalid_session(vcr):
    src = source(access_token=None, client_id="test-client-id", client_secret="test-client-secret",
                 login_url="https://login.salesforce.com")
    client = sf.connect(src)
    with vcr.use_cassette("salesforce/oauth_refresh.yaml") as cass:
        pgs = pages(client, "Account", run(src))
    assert cass.all_played and cass.play_count == 6  # token, 401, token again, describe, count, query
    assert ids(pgs) == [sfid("001", 1)]
    assert client.requests == 6


def test_rejected_client_credentials_are_an_auth_error(vcr):
    src = source(access_token=None, client_id="test-client-id", client_secret="test-client-secret",
                 login_url="https://login.salesforce.com")
    with vcr.use_cassette("salesforce/oauth_invalid_client.yaml") as cass, pytest.raises(AuthError) as err:
        pages(sf.connect(src), "Account", run(src))
    assert cass.play_count == 1 and err.value.exit_code == 3  # a 400 from the token endpoint is not retried
    assert "invalid_client" in str(err.value) and "test-client-secret" not in str(err.value)


def test_static_token_401_is_auth_error_without_the_token(vcr):
    client = sf.connect(source())
    with vcr.use_cassette("salesforce/static_401.yaml"), pytest.raises(AuthError) as err:
        pages(client, "Account", run(source()))
    assert err.value.exit_code == 3
    assert TOKEN not in str(err.value) and "401" in str(err.value)


def test_missing_credentials():
    with pytest.raises(AuthError):
        sf.connect({"instance_url": HOST})


# ---- the daily API budget ----------------------------------------------------------------------------------


def test_quota_stop_then_resume_loses_and_doubles_nothing(vcr):
    with vcr.use_cassette("salesforce/quota_full.yaml"):
        full = pages(sf.connect(source()), "Contact", run(source()))
    expected = {r["Id"]: r for p in full for r in p.records}
    assert len(expected) == 5

    run1_pages = []
    with vcr.use_cassette("salesforce/quota_run1.yaml") as cass, pytest.raises(QuotaError) as err:
        for page in sf.STREAMS["Contact"].fetch(sf.connect(source()), run(source())):
            run1_pages.append(page)  # the sync loop commits each page and its state
    assert err.value.exit_code == 75 and "12100/15000" in str(err.value)
    assert len(run1_pages) == 2 and cass.play_count == 4  # page 3 was never requested
    state = run1_pages[-1].state
    assert state["cursor"] == "2024-02-03T09:05:00.000Z"

    with vcr.use_cassette("salesforce/quota_run2.yaml") as cass:
        run2_pages = pages(sf.connect(source()), "Contact", run(source(), state=state))
    assert cass.all_played
    collected = [r for p in run1_pages + run2_pages for r in p.records]
    assert {r["Id"]: r for r in collected} == expected  # nothing lost; rows upsert by Id
    assert len(collected) - len(expected) == 2  # only the lookback re-read (C3, C4) repeats
    assert run2_pages[-1].state["cursor"] == full[-1].state["cursor"]


def test_request_limit_exceeded_is_a_quota_stop_not_retried(vcr):
    with vcr.use_cassette("salesforce/limit_exceeded.yaml") as cass, pytest.raises(QuotaError) as err:
        pages(sf.connect(source()), "Contact", run(source()))
    assert cass.play_count == 2 and "REQUEST_LIMIT_EXCEEDED" in str(err.value)


def test_budget_already_spent_stops_before_any_request():
    client = sf.connect(source(api_budget_share=0.5))
    client.usage = (7600, 15000)
    with pytest.raises(QuotaError):
        pages(client, "Lead", run(source()))
    assert client.requests == 0


# ---- history fallback --------------------------------------------------------------------------------------


def test_opportunity_field_history_fallback(vcr):
    with vcr.use_cassette("salesforce/history_fallback.yaml") as cass:
        pgs = pages(sf.connect(source()), "OpportunityHistory", run(source()))
    assert cass.all_played
    records = [r for p in pgs for r in p.records]
    assert [r["NewValue"] for r in records] == ["Qualification", "Closed Won"]
    assert pgs[-1].state["cursor_field"] == "CreatedDate" and pgs[-1].state["object"] == "OpportunityFieldHistory"
    rows = [row for r in records for row in NORMALIZERS["OpportunityHistory"](r, Context(model=Model(
        sqo_stages=("Qualification",))))]
    assert [(r.values["event_type"], r.values["occurred_at"]) for r in rows] == [("became_sqo", "2024-01-26T10:00:00Z")]


# ---- the demo cassette -------------------------------------------------------------------------------------


@pytest.mark.parametrize("self_report", [None, "How_did_you_hear_about_us__c"])
def test_demo_cassette_covers_every_stream(vcr, self_report):
    src = source(access_token="test-token-salesforce", self_report_field=self_report)
    client = sf.connect(src)
    model = Model(sqo_stages=("Qualification", "Needs Analysis", "Proposal", "Negotiation", "Closed Won"),
                  self_report_fields={"salesforce": self_report} if self_report else {})
    ctx = Context(model=model)
    got: dict[str, list] = {}
    with vcr.use_cassette("salesforce/demo.yaml"):
        for name, stream in sf.streams(src).items():
            records = [r for p in stream.fetch(client, run(src)) for r in p.records]
            got[name] = [row for r in records for row in NORMALIZERS[name](r, ctx)]
            assert records, name
    events = [r.values for rows in got.values() for r in rows if r.table == "events"]
    kinds = {}
    for e in events:
        kinds[e["event_type"]] = kinds.get(e["event_type"], 0) + 1
    assert kinds["lead_created"] == 22
    assert kinds["deal_won"] == 3 and kinds["deal_lost"] == 1 and kinds["opportunity_created"] == 8
    assert kinds["webinar_registered"] == 8 and kinds["webinar_attended"] == 5
    assert kinds["event_registered"] == 5 and kinds["event_attended"] == 4
    assert kinds["direct_mail_sent"] == 6 and kinds["direct_mail_claimed"] == 4 and kinds["meeting_booked"] == 2
    assert kinds["content_syndicated"] == 4 and kinds["became_mql"] == 14 and kinds["program_spend"] == 4
    won = sorted(e["amount"] for e in events if e["event_type"] == "deal_won")
    assert won == [36000.0, 48000.0, 54000.0]
    assert all("2024-01-01" <= e["event_date"] <= "2024-03-31" for e in events)
    people = [r.values for r in got["Lead"] + got["Contact"] if r.table == "person_sources"]
    assert len(people) == 22 + 12
    answers = [p["self_reported_raw"] for p in people if p["self_reported_raw"]]
    assert len(answers) == (14 if self_report else 0)  # 7 leads, 6 converted contacts, judy
