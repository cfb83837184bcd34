"""Salesforce normalizers: spec §1.4 (Salesforce rows), deletes, malformed records, date-only fields.

Golden files (tests/golden/salesforce.*.json, some with a .ctx.json) run in tests/normalize/test_golden.py."""
from __future__ import annotations

import json

import pytest

from normalize.events import Delete, Malformed, Row, account_key, event_id, opportunity_key, person_key
from normalize.model import Context, Model
from normalize.salesforce import NORMALIZERS

CTX = Context(model=Model(), settings={"currency": "USD"})
SQO = Context(model=Model(sqo_stages=("Qualification", "Proposal")), settings={"currency": "USD"})
NY = Context(model=Model(timezone="America/New_York"), settings={"currency": "USD"})


def rows(stream, record, ctx=CTX):
    return NORMALIZERS[stream](record, ctx)


def events(out):
    return [(r.values["event_type"], r.values["occurred_at"]) for r in out if r.table == "events"]


def table(out, name):
    return [r.values for r in out if isinstance(r, Row) and r.table == name]


def att(kind, id_):
    return {"type": kind, "url": f"/services/data/v60.0/sobjects/{kind}/{id_}"}


LEAD = {
    "attributes": att("Lead", "00Q1"), "Id": "00Q1", "Email": " Alice@Acme-Corp.example ", "Status": "Closed - Converted",
    "LeadSource": "Web", "CreatedDate": "2024-01-04T09:30:00.000+0000", "IsConverted": True,
    "ConvertedDate": "2024-01-22", "ConvertedContactId": "0031", "ConvertedAccountId": "0011",
    "ConvertedOpportunityId": "0061", "IsDeleted": False, "SystemModstamp": "2024-01-22T15:00:00.000+0000",
    "How_did_you_hear_about_us__c": "A colleague shared your guide in our Slack",
}


# ---- Lead --------------------------------------------------------------------------------------------------


def test_lead_converted():
    ctx = Context(model=Model(self_report_fields={"salesforce": "How_did_you_hear_about_us__c"}))
    out = rows("Lead", LEAD, ctx)
    pk = person_key("alice@acme-corp.example")
    [person] = table(out, "person_sources")
    assert person == {
        "source_system": "salesforce", "source_object": "Lead", "source_id": "00Q1", "person_key": pk,
        "email": " Alice@Acme-Corp.example ", "account_key": None, "account_ref": "salesforce:Account:0011",
        "first_seen_at": "2024-01-04T09:30:00Z", "lifecycle_stage": "sql", "original_source_raw": "Web",
        "self_reported_raw": "A colleague shared your guide in our Slack", "self_reported_at": "2024-01-04T09:30:00Z",
    }
    assert events(out) == [("lead_created", "2024-01-04T09:30:00Z"), ("became_sql", "2024-01-22T00:00:00Z")]
    sql = [r.values for r in out if r.table == "events" and r.values["event_type"] == "became_sql"][0]
    assert json.loads(sql["properties"]) == {"from": "conversion"} and sql["person_key"] == pk
    assert sql["event_id"] == event_id("salesforce", "Lead", "00Q1", "became_sql", "2024-01-22T00:00:00Z")
    [link] = table(out, "opportunity_links")
    assert link["opportunity_key"] == opportunity_key("salesforce", "0061") and link["person_key"] == pk
    assert link["person_ref"] == "salesforce:Lead:00Q1"


def test_lead_options_and_edges():
    plain = {**LEAD, "IsConverted": False, "ConvertedDate": None, "ConvertedAccountId": None,
             "ConvertedOpportunityId": None, "Status": "Marketing Qualified", "Email": "wendy@gmail.com"}
    out = rows("Lead", plain)  # self-report field not configured: not read
    [person] = table(out, "person_sources")
    assert person["account_ref"] is None and person["account_key"] is None  # freemail: no company
    assert person["self_reported_raw"] is None and person["lifecycle_stage"] == "mql"
    assert events(out) == [("lead_created", "2024-01-04T09:30:00Z")]
    work = {**plain, "Email": "heidi@initech.example"}
    assert table(rows("Lead", work), "person_sources")[0]["account_key"] == account_key(domain="initech.example")
    # no SQL at conversion when sql_on_conversion is off; no opportunity link when HubSpot owns deals
    off = Context(model=Model(sql_on_conversion=False, opportunity_system_of_record="hubspot"))
    out = rows("Lead", LEAD, off)
    assert events(out) == [("lead_created", "2024-01-04T09:30:00Z")] and not table(out, "opportunity_links")
    # converted the day it was created: the SQL is not before the lead existed
    same_day = {**LEAD, "ConvertedDate": "2024-01-04"}
    assert events(rows("Lead", same_day))[1] == ("became_sql", "2024-01-04T09:30:00Z")
    # no email: the record is the person
    anon = {**plain, "Email": None}
    assert table(rows("Lead", anon), "person_sources")[0]["person_key"] == person_key(None, "salesforce", "Lead", "00Q1")


def test_lead_date_only_in_reporting_zone():
    assert events(rows("Lead", LEAD, NY))[1] == ("became_sql", "2024-01-22T05:00:00Z")


def test_lead_deleted_and_malformed():
    assert rows("Lead", {**LEAD, "IsDeleted": True}) == []
    with pytest.raises(Malformed):
        rows("Lead", {**LEAD, "Id": None})
    with pytest.raises(Malformed):
        rows("Lead", {**LEAD, "CreatedDate": "yesterday"})
    with pytest.raises(Malformed):
        rows("Lead", {**LEAD, "ConvertedDate": "2024-13-45"})


# ---- LeadHistory -------------------------------------------------------------------------------------------

HIST = {"attributes": att("LeadHistory", "0171"), "Id": "0171", "LeadId": "00Q1", "Field": "Status",
        "OldValue": "Open - Not Contacted", "NewValue": "Marketing Qualified",
        "CreatedDate": "2024-01-10T10:00:00.000+0000", "IsDeleted": False,
        "Lead": {"attributes": att("Lead", "00Q1"), "Email": "alice@acme-corp.example"}}


def test_lead_history():
    out = rows("LeadHistory", HIST)
    assert events(out) == [("became_mql", "2024-01-10T10:00:00Z")]
    assert out[0].values["person_key"] == person_key("alice@acme-corp.example")
    assert out[0].values["source_object"] == "LeadHistory"
    assert events(rows("LeadHistory", {**HIST, "NewValue": "Sales Qualified"})) == [("became_sql", "2024-01-10T10:00:00Z")]
    assert rows("LeadHistory", {**HIST, "NewValue": "Working - Contacted"}) == []
    assert rows("LeadHistory", {**HIST, "IsDeleted": True}) == []
    custom = Context(model=Model(mql_statuses=("MQL",), sql_statuses=("SAL", "SQL")))
    assert events(rows("LeadHistory", {**HIST, "NewValue": "SAL"}, custom))[0][0] == "became_sql"
    no_email = rows("LeadHistory", {**HIST, "Lead": None})
    assert no_email[0].values["person_key"] == person_key(None, "salesforce", "Lead", "00Q1")
    with pytest.raises(Malformed):
        rows("LeadHistory", {**HIST, "CreatedDate": None})


# ---- Contact / Account -------------------------------------------------------------------------------------


def test_contact_and_account():
    contact = {"attributes": att("Contact", "0031"), "Id": "0031", "Email": "judy@hooli.example", "AccountId": "0015",
               "LeadSource": None, "CreatedDate": "2024-01-15T11:00:00.000+0000", "IsDeleted": False}
    [person] = table(rows("Contact", contact), "person_sources")
    assert person["source_object"] == "Contact" and person["account_ref"] == "salesforce:Account:0015"
    assert person["person_key"] == person_key("judy@hooli.example") and person["first_seen_at"] == "2024-01-15T11:00:00Z"
    assert rows("Contact", {**contact, "IsDeleted": True}) == []
    account = {"attributes": att("Account", "0011"), "Id": "0011", "Name": "Acme Corp",
               "Website": "https://www.Acme-Corp.example/about", "IsDeleted": False}
    [acc] = table(rows("Account", account), "account_sources")
    assert acc == {"source_system": "salesforce", "source_object": "Account", "source_id": "0011",
                   "account_key": account_key(domain="acme-corp.example"), "name": "Acme Corp",
                   "domain": "acme-corp.example"}
    no_site = table(rows("Account", {**account, "Website": None}), "account_sources")[0]
    assert no_site["account_key"] == account_key(source_ref="salesforce:Account:0011") and no_site["domain"] is None
    assert rows("Account", {**account, "IsDeleted": True}) == []
    with pytest.raises(Malformed):
        rows("Account", {**account, "Id": ""})


# ---- Opportunity -------------------------------------------------------------------------------------------

OPP = {"attributes": att("Opportunity", "0061"), "Id": "0061", "Name": "Acme Corp - Platform", "AccountId": "0011",
       "Amount": 48000.0, "StageName": "Closed Won", "IsClosed": True, "IsWon": True, "CloseDate": "2024-03-15",
       "CreatedDate": "2024-01-22T15:00:00.000+0000", "LeadSource": "Web", "CampaignId": "7012",
       "IsDeleted": False}


def test_opportunity_won():
    out = rows("Opportunity", OPP)
    okey = opportunity_key("salesforce", "0061")
    [opp] = table(out, "opportunities")
    assert opp == {
        "opportunity_key": okey, "source_system": "salesforce", "source_object": "Opportunity", "source_id": "0061",
        "account_ref": "salesforce:Account:0011", "name": "Acme Corp - Platform", "pipeline": None,
        "stage": "Closed Won", "created_at": "2024-01-22T15:00:00Z", "closed_at": "2024-03-15T00:00:00Z",
        "close_date": "2024-03-15", "is_closed": 1, "is_won": 1, "amount": 48000.0, "currency": "USD",
        "amount_monthly": 4000.0, "primary_campaign_key": "salesforce:7012", "lead_source_raw": "Web",
    }
    # empty sqo_stages (default): every opportunity is an SQO at creation
    assert events(out) == [("opportunity_created", "2024-01-22T15:00:00Z"), ("became_sqo", "2024-01-22T15:00:00Z"),
                           ("deal_won", "2024-03-15T00:00:00Z")]
    assert all(r.values["amount"] == 48000.0 and r.values["opportunity_key"] == okey for r in out if r.table == "events")
    assert events(rows("Opportunity", OPP, SQO)) == [("opportunity_created", "2024-01-22T15:00:00Z"),
                                                     ("deal_won", "2024-03-15T00:00:00Z")]
    assert events(rows("Opportunity", OPP, NY))[-1] == ("deal_won", "2024-03-15T04:00:00Z")  # EDT midnight


def test_opportunity_lost_open_currency():
    lost = {**OPP, "IsWon": False, "StageName": "Closed Lost", "CurrencyIsoCode": "EUR", "Amount": None}
    out = rows("Opportunity", lost, SQO)
    assert events(out)[-1] == ("deal_lost", "2024-03-15T00:00:00Z")
    opp = table(out, "opportunities")[0]
    assert opp["currency"] == "EUR" and opp["amount"] is None and opp["amount_monthly"] is None
    eur = rows("Opportunity", {**OPP, "CurrencyIsoCode": "EUR"}, SQO)
    assert {r.values["currency"] for r in eur if r.table == "events"} == {"EUR"}
    gbp = Context(model=Model(), settings={"currency": "GBP"})
    assert table(rows("Opportunity", OPP, gbp), "opportunities")[0]["currency"] == "GBP"
    open_ = {**OPP, "IsClosed": False, "IsWon": False, "StageName": "Proposal", "CloseDate": "2024-05-30"}
    out = rows("Opportunity", open_, SQO)
    assert events(out) == [("opportunity_created", "2024-01-22T15:00:00Z")]
    assert table(out, "opportunities")[0]["closed_at"] is None
    assert table(out, "opportunities")[0]["close_date"] == "2024-05-30"
    monthly = Context(model=Model(amount_basis="total_contract", contract_months=24))
    assert table(rows("Opportunity", OPP, monthly), "opportunities")[0]["amount_monthly"] == 2000.0


def test_opportunity_deleted_malformed_and_system_of_record():
    assert rows("Opportunity", {**OPP, "IsDeleted": True}) == [
        Delete("opportunities", {"opportunity_key": opportunity_key("salesforce", "0061")})]
    with pytest.raises(Malformed):
        rows("Opportunity", {**OPP, "CreatedDate": None})
    with pytest.raises(Malformed):
        rows("Opportunity", {**OPP, "CloseDate": None})  # closed without a close date
    with pytest.raises(Malformed):
        rows("Opportunity", {**OPP, "CloseDate": "15/03/2024"})
    with pytest.raises(Malformed):
        rows("Opportunity", {**OPP, "Amount": "lots"})
    hubspot = Context(model=Model(opportunity_system_of_record="hubspot"))
    for stream in ("Opportunity", "OpportunityHistory", "OpportunityContactRole"):
        assert rows(stream, {**OPP, "OpportunityId": "0061", "ContactId": "0031"}, hubspot) == []


def test_opportunity_history():
    hist = {"attributes": att("OpportunityHistory", "0081"), "Id": "0081", "OpportunityId": "0061",
            "StageName": "Qualification", "Amount": 48000.0, "CreatedDate": "2024-01-26T10:00:00.000+0000",
            "IsDeleted": False}
    out = rows("OpportunityHistory", hist, SQO)
    assert events(out) == [("became_sqo", "2024-01-26T10:00:00Z")]
    assert out[0].values["opportunity_key"] == opportunity_key("salesforce", "0061")
    assert out[0].values["source_object"] == "OpportunityHistory" and out[0].values["amount"] == 48000.0
    assert rows("OpportunityHistory", {**hist, "StageName": "Prospecting"}, SQO) == []
    assert rows("OpportunityHistory", hist) == []  # no sqo_stages: the Opportunity record gives became_sqo
    assert rows("OpportunityHistory", {**hist, "IsDeleted": True}, SQO) == []
    field = {"attributes": att("OpportunityFieldHistory", "0171"), "Id": "0171", "OpportunityId": "0061",
             "Field": "StageName", "OldValue": "Qualification", "NewValue": "Proposal",
             "CreatedDate": "2024-02-20T14:00:00.000+0000", "IsDeleted": False}
    assert events(rows("OpportunityHistory", field, SQO)) == [("became_sqo", "2024-02-20T14:00:00Z")]
    assert rows("OpportunityHistory", {**field, "Field": "Amount"}, SQO) == []
    with pytest.raises(Malformed):
        rows("OpportunityHistory", {**hist, "OpportunityId": None}, SQO)


def test_opportunity_contact_role():
    role = {"attributes": att("OpportunityContactRole", "00K1"), "Id": "00K1", "OpportunityId": "0061",
            "ContactId": "0031", "Role": "Decision Maker", "IsPrimary": True, "IsDeleted": False,
            "Contact": {"attributes": att("Contact", "0031"), "Email": "alice@acme-corp.example"}}
    [link] = table(rows("OpportunityContactRole", role), "opportunity_links")
    assert link == {"source_system": "salesforce", "source_object": "OpportunityContactRole", "source_id": "00K1",
                    "opportunity_key": opportunity_key("salesforce", "0061"),
                    "person_key": person_key("alice@acme-corp.example"), "person_ref": "salesforce:Contact:0031",
                    "role": "Decision Maker", "is_primary": 1}
    no_email = table(rows("OpportunityContactRole", {**role, "Contact": None, "IsPrimary": False}), "opportunity_links")
    assert no_email[0]["person_key"] is None and no_email[0]["is_primary"] == 0  # resolved through person_ref
    assert rows("OpportunityContactRole", {**role, "IsDeleted": True}) == []
    with pytest.raises(Malformed):
        rows("OpportunityContactRole", {**role, "ContactId": None})


# ---- Campaign / CampaignMember -----------------------------------------------------------------------------

CAMPAIGN = {"attributes": att("Campaign", "W1"), "Id": "W1", "Name": "Q1 Webinar", "Type": "Webinar",
            "ParentId": "7011", "StartDate": "2024-02-15", "EndDate": "2024-02-15", "BudgetedCost": 2000.0,
            "ActualCost": 1000.0, "IsDeleted": False}


def test_campaign_and_program_spend():
    out = rows("Campaign", CAMPAIGN)
    [camp] = table(out, "campaigns")
    assert camp == {"campaign_key": "salesforce:W1", "source_system": "salesforce", "source_campaign_id": "W1",
                    "name": "Q1 Webinar", "channel": "webinar", "platform_type": "Webinar",
                    "parent_campaign_key": "salesforce:7011", "utm_campaign": None, "start_date": "2024-02-15",
                    "end_date": "2024-02-15", "budgeted_cost": 2000.0, "actual_cost": 1000.0, "currency": "USD"}
    [spend] = [r.values for r in out if r.table == "events"]
    # spec §7: salesforce:W1 Webinar, program_spend 1,000 on 02-15
    assert (spend["event_type"], spend["event_date"], spend["amount"], spend["campaign_key"], spend["is_aggregate"]) == (
        "program_spend", "2024-02-15", 1000.0, "salesforce:W1", 1)
    assert spend["person_key"] is None and spend["channel"] == "webinar"
    ny = [r.values for r in rows("Campaign", CAMPAIGN, NY) if r.table == "events"][0]
    assert (ny["occurred_at"], ny["event_date"]) == ("2024-02-15T05:00:00Z", "2024-02-15")
    ads = rows("Campaign", {**CAMPAIGN, "Type": "Advertisement"})  # the ad connectors bring this cost
    assert table(ads, "campaigns")[0]["channel"] == "other" and not events(ads)
    assert not events(rows("Campaign", {**CAMPAIGN, "ActualCost": None}))
    mapped = Context(model=Model.from_dict({"campaign_type_map": {"Partners": "referral"}}))
    assert table(rows("Campaign", {**CAMPAIGN, "Type": "Partners"}, mapped), "campaigns")[0]["channel"] == "referral"
    assert rows("Campaign", {**CAMPAIGN, "IsDeleted": True}) == [Delete("campaigns", {"campaign_key": "salesforce:W1"})]
    with pytest.raises(Malformed):
        rows("Campaign", {**CAMPAIGN, "StartDate": "soon"})


MEMBER = {"attributes": att("CampaignMember", "00v1"), "Id": "00v1", "CampaignId": "W1", "LeadId": "00Q2",
          "ContactId": None, "Email": "p2@acme.com", "Status": "Attended", "HasResponded": True,
          "FirstRespondedDate": "2024-02-15", "CreatedDate": "2024-02-10T10:00:00.000+0000", "IsDeleted": False,
          "Campaign": {"attributes": att("Campaign", "W1"), "Type": "Webinar"}}


def member(kind, **kw):
    return {**MEMBER, "Campaign": {"Type": kind}, **kw}


def test_campaign_member_webinar_matches_the_worked_example():
    out = rows("CampaignMember", MEMBER)
    # spec §7: T6 P2 02-10 10:00 webinar_registered W1 · T7 P2 02-15 00:00 webinar_attended W1
    assert events(out) == [("webinar_registered", "2024-02-10T10:00:00Z"), ("webinar_attended", "2024-02-15T00:00:00Z")]
    assert {r.values["campaign_key"] for r in out} == {"salesforce:W1"}
    assert {r.values["person_key"] for r in out} == {person_key("p2@acme.com")}
    assert events(rows("CampaignMember", {**MEMBER, "Status": "Registered", "FirstRespondedDate": None})) == [
        ("webinar_registered", "2024-02-10T10:00:00Z")]


def test_campaign_member_channels():
    assert events(rows("CampaignMember", member("Trade Show", FirstRespondedDate="2024-03-05"))) == [
        ("event_registered", "2024-02-10T10:00:00Z"), ("event_attended", "2024-03-05T00:00:00Z")]
    assert events(rows("CampaignMember", member("Direct Mail", Status="Sent", FirstRespondedDate=None))) == [
        ("direct_mail_sent", "2024-02-10T10:00:00Z")]
    assert events(rows("CampaignMember", member("Direct Mail", Status="Claimed"))) == [
        ("direct_mail_sent", "2024-02-10T10:00:00Z"), ("direct_mail_claimed", "2024-02-15T00:00:00Z")]
    assert events(rows("CampaignMember", member("Direct Mail", Status="Meeting Booked"))) == [
        ("direct_mail_sent", "2024-02-10T10:00:00Z"), ("direct_mail_claimed", "2024-02-15T00:00:00Z"),
        ("meeting_booked", "2024-02-15T00:00:00Z")]
    assert events(rows("CampaignMember", member("Content Syndication", Status="Responded"))) == [
        ("content_syndicated", "2024-02-10T10:00:00Z")]
    assert rows("CampaignMember", member("Email")) == [] and rows("CampaignMember", member(None)) == []
    assert events(rows("CampaignMember", member("Webinar"), NY))[1] == ("webinar_attended", "2024-02-15T05:00:00Z")


def test_campaign_member_identity_deletes_and_malformed():
    by_contact = rows("CampaignMember", {**MEMBER, "Email": None, "ContactId": "0039"})
    assert by_contact[0].values["person_key"] == person_key(None, "salesforce", "Contact", "0039")
    by_lead = rows("CampaignMember", {**MEMBER, "Email": None})
    assert by_lead[0].values["person_key"] == person_key(None, "salesforce", "Lead", "00Q2")
    # a deleted member (e.g. its lead was deleted): the engagement that happened stays
    assert events(rows("CampaignMember", {**MEMBER, "IsDeleted": True})) == events(rows("CampaignMember", MEMBER))
    with pytest.raises(Malformed):
        rows("CampaignMember", {**MEMBER, "Email": None, "LeadId": None})
    with pytest.raises(Malformed):
        rows("CampaignMember", {**MEMBER, "CreatedDate": "2024-02-30T10:00:00Z"})
    with pytest.raises(Malformed):
        rows("CampaignMember", {**MEMBER, "Id": None})
