"""HubSpot normalizers: one focused test per mapping rule of spec §1.4 (the golden files in tests/golden/hubspot.*
cover whole records from the demo data)."""
from __future__ import annotations

import json
import time

import pytest

from normalize import Delete, Malformed
from normalize import hubspot as hs
from normalize.events import account_key, event_id, h, opportunity_key, person_key
from normalize.model import Context, Model

SELF = "how_did_you_hear_about_us"
DEMO_FORM = "7b9e4c2d-5a6f-4b1c-8d2e-3f4a5b6c7d80"


def ctx(**model) -> Context:
    settings = model.pop("settings", {})
    base = {"self_report_fields": {"hubspot": SELF}, "own_domains": ("funnelsync.example",)}
    return Context(model=Model(**{**base, **model}), source_name="hubspot", settings=settings)


def contact(cid="1", archived=False, **props) -> dict:
    base = {"email": "alice@acme-corp.example", "createdate": "2024-01-06T09:00:00.000Z",
            "lastmodifieddate": "2024-02-01T00:00:00.000Z", "hs_object_id": cid}
    base.update(props)
    return {"id": cid, "properties": base, "createdAt": "2024-01-06T09:00:00.000Z",
            "updatedAt": "2024-02-01T00:00:00.000Z", "archived": archived}


def rows_of(rows, table):
    return [r.values for r in rows if not isinstance(r, Delete) and r.table == table]


def events_of(rows, event_type=None):
    return [v for v in rows_of(rows, "events") if event_type is None or v["event_type"] == event_type]


def props(row) -> dict:
    return json.loads(row["properties"]) if row["properties"] else {}


# ---- contacts: person_sources --------------------------------------------------------------------------------------


def test_contact_person_row_maps_identity_and_source_fields():
    rec = contact(associatedcompanyid="9001", lifecyclestage="salesqualifiedlead", hs_analytics_source="PAID_SOCIAL",
                  email=" Alice@Acme-Corp.example ", **{SELF: "A colleague shared it in Slack"})
    (person,) = rows_of(hs.contact_rows(rec, ctx()), "person_sources")
    assert person == {
        "source_system": "hubspot", "source_object": "contact", "source_id": "1",
        "person_key": "p_" + h("alice@acme-corp.example")[:16], "email": "alice@acme-corp.example",
        "account_key": None, "account_ref": "hubspot:company:9001", "first_seen_at": "2024-01-06T09:00:00Z",
        "lifecycle_stage": "salesqualifiedlead", "original_source_raw": "PAID_SOCIAL",
        "self_reported_raw": "A colleague shared it in Slack", "self_reported_at": "2024-01-06T09:00:00Z",
        "fallback_channel": "paid_social",
    }


def test_contact_without_email_is_keyed_by_its_record():
    (person,) = rows_of(hs.contact_rows(contact(email=None), ctx()), "person_sources")
    assert person["person_key"] == "p_" + h("hubspot:contact:1")[:16] and person["email"] is None


def test_contact_without_company_gets_its_email_domain_account_unless_freemail():
    (p1,) = rows_of(hs.contact_rows(contact(email="bob@globex.example"), ctx()), "person_sources")
    assert p1["account_key"] == account_key(domain="globex.example") and p1["account_ref"] is None
    (p2,) = rows_of(hs.contact_rows(contact(email="bob@gmail.com"), ctx()), "person_sources")
    assert p2["account_key"] is None


def test_self_report_is_read_only_from_the_configured_property():
    rec = contact(**{SELF: "Google search", "other_question": "LinkedIn"})
    (p,) = rows_of(hs.contact_rows(rec, ctx(self_report_fields={})), "person_sources")
    assert p["self_reported_raw"] is None and p["self_reported_at"] is None
    (p,) = rows_of(hs.contact_rows(contact(**{SELF: "   "}), ctx()), "person_sources")
    assert p["self_reported_raw"] is None


@pytest.mark.parametrize("bucket, channel", [
    ("ORGANIC_SEARCH", "organic_search"), ("PAID_SEARCH", "paid_search"), ("PAID_SOCIAL", "paid_social"),
    ("SOCIAL_MEDIA", "organic_social"), ("EMAIL_MARKETING", "email"), ("REFERRALS", "referral"),
    ("DIRECT_TRAFFIC", "direct"), ("OTHER_CAMPAIGNS", "other"), ("OFFLINE", "other"), ("organic_search", "organic_search"),
    (None, None), ("SOMETHING_NEW", None),
])
def test_d09_fallback_channel(bucket, channel):
    assert hs.fallback_channel(bucket) == channel


# ---- contacts: lifecycle events --------------------------------------------------------------------------------------


def test_lifecycle_events_from_v2_dates_with_legacy_fallback():
    rec = contact(hs_v2_date_entered_lead="2024-01-06T09:00:00.000Z",
                  hs_lifecyclestage_marketingqualifiedlead_date="2024-01-10T09:00:00.000Z",
                  hs_v2_date_entered_salesqualifiedlead="2024-02-19T12:00:00.000Z",
                  hs_lifecyclestage_salesqualifiedlead_date="2024-02-01T00:00:00.000Z",  # v2 wins
                  hs_v2_date_entered_customer=None)
    got = [(e["event_type"], e["occurred_at"], e["channel"]) for e in events_of(hs.contact_rows(rec, ctx()))
           if e["event_type"] != "web_visit"]
    assert got == [("lead_created", "2024-01-06T09:00:00Z", "unattributed"),
                   ("became_mql", "2024-01-10T09:00:00Z", "unattributed"),
                   ("became_sql", "2024-02-19T12:00:00Z", "unattributed")]
    lead = events_of(hs.contact_rows(rec, ctx()), "lead_created")[0]
    assert lead["person_key"] == person_key("alice@acme-corp.example")
    assert lead["event_id"] == event_id("hubspot", "contact", "1", "lead_created", "2024-01-06T09:00:00Z")


def test_custom_lifecycle_stage_ids_are_configurable():
    model = {"hubspot_stage_ids": {"lead": "lead_created", "1234567": "became_mql"}}
    rec = contact(hs_v2_date_entered_1234567="2024-01-12T10:00:00.000Z",
                  hs_v2_date_entered_marketingqualifiedlead="2024-01-11T10:00:00.000Z")
    assert [e["event_type"] for e in events_of(hs.contact_rows(rec, ctx(**model)))] == ["became_mql"]
    assert events_of(hs.contact_rows(rec, ctx(**model)))[0]["occurred_at"] == "2024-01-12T10:00:00Z"


def test_lifecycle_dates_in_reporting_zone():
    rec = contact(hs_v2_date_entered_lead="2024-01-06T02:00:00.000Z")
    (lead,) = events_of(hs.contact_rows(rec, ctx(timezone="America/New_York")), "lead_created")
    assert lead["occurred_at"] == "2024-01-06T02:00:00Z" and lead["event_date"] == "2024-01-05"


# ---- contacts: web visits --------------------------------------------------------------------------------------------


def test_original_visit_takes_utms_click_ids_landing_path_and_referrer_from_the_first_url():
    rec = contact(hs_analytics_first_visit_timestamp="2024-01-05T10:00:00.000Z",
                  hs_analytics_first_timestamp="2024-01-01T00:00:00.000Z",
                  hs_analytics_first_url="https://www.funnelsync.example/Ebook/?utm_source=LinkedIn&utm_medium=Paid%20Social"
                                         "&utm_campaign=li1&li_fat_id=abc",
                  hs_analytics_first_referrer="https://www.linkedin.com/feed/", hs_analytics_source="PAID_SOCIAL",
                  hs_analytics_source_data_1="linkedin")
    (visit,) = events_of(hs.contact_rows(rec, ctx()), "web_visit")
    assert visit["occurred_at"] == "2024-01-05T10:00:00Z"  # first *visit* timestamp wins over first_timestamp
    assert (visit["channel"], visit["utm_source"], visit["utm_medium"], visit["utm_campaign"]) == \
        ("paid_social", "linkedin", "paid_social", "li1")
    assert (visit["referrer_domain"], visit["landing_path"]) == ("linkedin.com", "/ebook")
    assert props(visit) == {"kind": "original", "hs_source_raw": "PAID_SOCIAL", "hs_source_data_1": "linkedin",
                            "click_ids": ["li_fat_id"]}


@pytest.mark.parametrize("url, referrer, channel", [
    ("https://www.funnelsync.example/blog/dark-funnel-guide", None, "dark_social"),  # spec §7 T5 (R21)
    ("https://www.funnelsync.example/", None, "direct"),  # R22
    ("https://www.funnelsync.example/pricing", "https://www.google.com/", "organic_search"),  # T8 (R18)
    ("https://www.funnelsync.example/blog/x", "https://lnkd.in/abc", "organic_social"),  # T15 (R19)
    ("https://www.funnelsync.example/blog/x", "https://app.slack.com/", "dark_social"),  # R17
    ("https://www.funnelsync.example/blog/x", "https://www.funnelsync.example/pricing", "dark_social"),  # own domain
    (None, "https://www.g2.com/products/x", "referral"),
    ("https://www.funnelsync.example/?gclid=Cj0", None, "paid_search"),  # R10
])
def test_visit_channel_follows_the_section_3_rules(url, referrer, channel):
    rec = contact(hs_analytics_first_visit_timestamp="2024-01-05T10:00:00.000Z", hs_analytics_first_url=url,
                  hs_analytics_first_referrer=referrer, hs_analytics_source="DIRECT_TRAFFIC")
    (visit,) = events_of(hs.contact_rows(rec, ctx()), "web_visit")
    assert visit["channel"] == channel


def test_visit_without_url_and_referrer_uses_the_d09_fallback():
    rec = contact(hs_analytics_first_timestamp="2024-01-05T10:00:00.000Z", hs_analytics_source="ORGANIC_SEARCH")
    (visit,) = events_of(hs.contact_rows(rec, ctx()), "web_visit")
    assert visit["occurred_at"] == "2024-01-05T10:00:00Z"  # first_timestamp is the fallback
    assert (visit["channel"], visit["landing_path"], visit["utm_source"]) == ("organic_search", None, None)
    rec = contact(hs_analytics_first_timestamp="2024-01-05T10:00:00.000Z")  # no bucket either: §3 on nothing
    assert events_of(hs.contact_rows(rec, ctx()), "web_visit")[0]["channel"] == "direct"


def test_offline_contact_without_url_has_no_visit():
    rec = contact(hs_analytics_first_timestamp="2024-01-05T10:00:00.000Z", hs_analytics_source="OFFLINE",
                  hs_latest_source="OFFLINE", hs_latest_source_timestamp="2024-01-07T10:00:00.000Z")
    rows = hs.contact_rows(rec, ctx())
    assert events_of(rows, "web_visit") == []
    assert rows_of(rows, "person_sources")[0]["fallback_channel"] == "other"


def test_latest_visit_only_when_its_timestamp_differs():
    base = dict(hs_analytics_first_visit_timestamp="2024-01-05T10:00:00.000Z",
                hs_analytics_first_url="https://www.funnelsync.example/", hs_analytics_source="DIRECT_TRAFFIC",
                hs_latest_source="EMAIL_MARKETING",
                hs_analytics_last_url="https://www.funnelsync.example/pricing?utm_source=newsletter&utm_medium=email")
    same = contact(hs_latest_source_timestamp="2024-01-05T10:00:00.000Z", **base)
    assert [props(v)["kind"] for v in events_of(hs.contact_rows(same, ctx()), "web_visit")] == ["original"]
    later = contact(hs_latest_source_timestamp="2024-02-19T11:00:00.000Z", **base)
    visits = events_of(hs.contact_rows(later, ctx()), "web_visit")
    assert [(props(v)["kind"], v["channel"], v["landing_path"]) for v in visits] == [
        ("original", "direct", "/"), ("latest", "email", "/pricing")]
    assert props(visits[1])["hs_source_raw"] == "EMAIL_MARKETING"
    assert visits[0]["event_id"] != visits[1]["event_id"]


def test_archived_contact_keeps_only_its_visits():
    rec = contact(archived=True, hs_v2_date_entered_lead="2024-01-06T09:00:00.000Z",
                  hs_analytics_first_visit_timestamp="2024-01-05T10:00:00.000Z",
                  hs_analytics_first_url="https://www.funnelsync.example/pricing")
    rec["archivedAt"] = "2024-03-01T00:00:00.000Z"
    rows = hs.contact_rows(rec, ctx())
    assert [(r.table, r.values.get("event_type")) for r in rows] == [("events", "web_visit")]
    rec["properties"]["createdate"] = None  # archived records need no createdate
    rec.pop("createdAt")
    assert len(hs.contact_rows(rec, ctx())) == 1


@pytest.mark.parametrize("record, reason", [
    ({"properties": {"email": "a@b.example", "createdate": "2024-01-01T00:00:00Z"}}, "missing id"),
    ({"id": "1", "properties": {"email": "a@b.example"}}, "missing createdate"),
    ({"id": "1", "properties": {"createdate": "yesterday"}}, "createdate"),
    ({"id": "1", "properties": {"createdate": "2024-01-01T00:00:00Z", "hs_v2_date_entered_lead": "soon"}},
     "hs_v2_date_entered_lead"),
    ({"id": "1", "properties": {"createdate": "2024-01-01T00:00:00Z", "hs_analytics_first_visit_timestamp": "x"}},
     "hs_analytics_first_visit_timestamp"),
    ({"id": "1", "properties": "nope"}, "properties"),
])
def test_malformed_contacts(record, reason):
    with pytest.raises(Malformed, match=reason):
        hs.contact_rows(record, ctx())


# ---- companies -----------------------------------------------------------------------------------------------------


def test_company_account_row_from_domain_else_website_else_record():
    rec = {"id": "9001", "properties": {"name": "Acme", "domain": "WWW.Acme-Corp.example"}, "archived": False}
    (row,) = rows_of(hs.company_rows(rec, ctx()), "account_sources")
    assert row == {"source_system": "hubspot", "source_object": "company", "source_id": "9001", "name": "Acme",
                   "domain": "acme-corp.example", "account_key": account_key(domain="acme-corp.example")}
    rec = {"id": "9002", "properties": {"name": "Web", "domain": None, "website": "https://www.web.example/about"}}
    assert rows_of(hs.company_rows(rec, ctx()), "account_sources")[0]["domain"] == "web.example"
    rec = {"id": "9003", "properties": {"name": "Stealth"}}
    assert rows_of(hs.company_rows(rec, ctx()), "account_sources")[0]["account_key"] == "a_" + h("hubspot:company:9003")[:16]


def test_archived_company_yields_nothing():
    assert hs.company_rows({"id": "9", "properties": {"domain": "x.example"}, "archived": True}, ctx()) == []
    with pytest.raises(Malformed):
        hs.company_rows({"properties": {}}, ctx())


# ---- deals ---------------------------------------------------------------------------------------------------------

HUBSPOT_SOR = {"opportunity_system_of_record": "hubspot"}


def deal(did="5001", archived=False, contacts=("101", "102"), companies=("9001", "9003"), **props) -> dict:
    base = {"dealname": "Acme platform", "createdate": "2024-02-20T12:00:00.000Z", "amount": "12000",
            "deal_currency_code": "USD", "dealstage": "closedwon", "pipeline": "default",
            "closedate": "2024-03-15T17:00:00.000Z", "hs_is_closed": "true", "hs_is_closed_won": "true"}
    base.update(props)
    return {"id": did, "properties": base, "archived": archived, "_contact_ids": list(contacts),
            "_company_ids": list(companies)}


def test_deals_are_ignored_unless_hubspot_is_the_system_of_record():
    assert hs.deal_rows(deal(), ctx()) == []  # default: salesforce
    assert hs.deal_rows(deal(archived=True), ctx()) == []


def test_won_deal_maps_to_opportunity_links_and_events():
    rows = hs.deal_rows(deal(), ctx(**HUBSPOT_SOR))
    okey = opportunity_key("hubspot", "5001")
    (opp,) = rows_of(rows, "opportunities")
    assert opp == {"opportunity_key": okey, "source_system": "hubspot", "source_object": "deal", "source_id": "5001",
                   "account_ref": "hubspot:company:9001", "name": "Acme platform", "pipeline": "default",
                   "stage": "closedwon", "created_at": "2024-02-20T12:00:00Z", "closed_at": "2024-03-15T17:00:00Z",
                   "close_date": "2024-03-15", "is_closed": 1, "is_won": 1, "amount": 12000.0, "currency": "USD"}
    links = rows_of(rows, "opportunity_links")
    assert [(l["person_ref"], l["opportunity_key"], l["source_id"]) for l in links] == [
        ("hubspot:contact:101", okey, "5001"), ("hubspot:contact:102", okey, "5001")]
    got = [(e["event_type"], e["occurred_at"], e["amount"], e["currency"], e["opportunity_key"], e["channel"])
           for e in events_of(rows)]
    assert got == [("opportunity_created", "2024-02-20T12:00:00Z", 12000.0, "USD", okey, "unattributed"),
                   ("became_sqo", "2024-02-20T12:00:00Z", 12000.0, "USD", okey, "unattributed"),  # [D-17]
                   ("deal_won", "2024-03-15T17:00:00Z", 12000.0, "USD", okey, "unattributed")]


def test_lost_and_open_deals():
    lost = hs.deal_rows(deal(hs_is_closed_won="false", dealstage="closedlost"), ctx(**HUBSPOT_SOR))
    assert [e["event_type"] for e in events_of(lost)] == ["opportunity_created", "became_sqo", "deal_lost"]
    assert rows_of(lost, "opportunities")[0]["is_won"] == 0
    open_ = hs.deal_rows(deal(hs_is_closed="false", hs_is_closed_won="false", closedate="2024-05-01T00:00:00.000Z"),
                         ctx(**HUBSPOT_SOR))
    (opp,) = rows_of(open_, "opportunities")
    assert (opp["is_closed"], opp["closed_at"], opp["close_date"]) == (0, None, "2024-05-01")
    assert [e["event_type"] for e in events_of(open_)] == ["opportunity_created", "became_sqo"]


def test_sqo_is_the_earliest_configured_stage_entered():
    model = {**HUBSPOT_SOR, "sqo_stages": ("qualifiedtobuy", "presentationscheduled")}
    rec = deal(hs_v2_date_entered_presentationscheduled="2024-03-01T10:00:00.000Z",
               hs_v2_date_entered_qualifiedtobuy="2024-03-05T10:00:00.000Z",
               hs_v2_date_entered_appointmentscheduled="2024-02-21T10:00:00.000Z")
    (sqo,) = events_of(hs.deal_rows(rec, ctx(**model)), "became_sqo")
    assert sqo["occurred_at"] == "2024-03-01T10:00:00Z"
    assert events_of(hs.deal_rows(deal(), ctx(**model)), "became_sqo") == []  # never entered one


def test_deal_currency_falls_back_to_the_source_then_reporting_currency():
    rec = deal(deal_currency_code=None)
    assert rows_of(hs.deal_rows(rec, ctx(**HUBSPOT_SOR, settings={"currency": "EUR"})), "opportunities")[0][
        "currency"] == "EUR"
    assert rows_of(hs.deal_rows(rec, ctx(**HUBSPOT_SOR)), "opportunities")[0]["currency"] == "USD"


def test_deal_without_associations_or_amount():
    rows = hs.deal_rows(deal(contacts=(), companies=(), amount=""), ctx(**HUBSPOT_SOR))
    (opp,) = rows_of(rows, "opportunities")
    assert opp["account_ref"] is None and opp["amount"] is None
    assert rows_of(rows, "opportunity_links") == []


def test_archived_deal_deletes_its_opportunity_and_has_no_events():
    rows = hs.deal_rows(deal(archived=True), ctx(**HUBSPOT_SOR))
    assert rows == [Delete("opportunities", {"opportunity_key": opportunity_key("hubspot", "5001")})]


@pytest.mark.parametrize("change, reason", [
    ({"createdate": None}, "createdate"),
    ({"amount": "twelve"}, "amount"),
    ({"closedate": None}, "closedate"),
    ({"closedate": "next week"}, "closedate"),
])
def test_malformed_deals(change, reason):
    rec = deal(**change)
    with pytest.raises(Malformed, match=reason):
        hs.deal_rows(rec, ctx(**HUBSPOT_SOR))


# ---- email events --------------------------------------------------------------------------------------------------


def email_event(etype, **extra) -> dict:
    e = {"id": "e-1", "created": 1705500000000, "type": etype, "recipient": "Alice@Acme-Corp.example",
         "emailCampaignId": 11001, "portalId": 1, "appId": 113}
    e.update(extra)
    return e


@pytest.mark.parametrize("etype, event_type", [
    ("SENT", "email_sent"), ("DELIVERED", "email_delivered"), ("BOUNCE", "email_bounced"), ("OPEN", "email_opened"),
    ("CLICK", "email_clicked"), ("SPAMREPORT", "email_spam_reported"),
])
def test_email_event_types(etype, event_type):
    (ev,) = events_of(hs.email_event_rows(email_event(etype), ctx()))
    assert ev["event_type"] == event_type
    assert (ev["occurred_at"], ev["person_key"], ev["campaign_key"], ev["channel"]) == \
        ("2024-01-17T14:00:00Z", person_key("alice@acme-corp.example"), "hubspot_email:11001", "email")
    assert (ev["source_object"], ev["source_id"]) == ("email_event", "e-1")


@pytest.mark.parametrize("etype", ["PROCESSED", "DROPPED", "DEFERRED", "PRINT", "FORWARD", "SUGGESTION", "UNBOUNCE"])
def test_ignored_email_event_types(etype):
    assert hs.email_event_rows(email_event(etype, recipient=None), ctx()) == []


def test_filtered_events_are_dropped():
    assert hs.email_event_rows(email_event("OPEN", filteredEvent=True), ctx()) == []
    assert len(hs.email_event_rows(email_event("OPEN", filteredEvent=False), ctx())) == 1


@pytest.mark.parametrize("extra, unsubscribed", [
    ({"portalSubscriptionStatus": "UNSUBSCRIBED", "source": "SOURCE_RECIPIENT"}, True),
    ({"portalSubscriptionStatus": "SUBSCRIBED", "subscriptions": [{"id": 7, "status": "UNSUBSCRIBED"}]}, True),
    ({"portalSubscriptionStatus": "SUBSCRIBED", "subscriptions": [{"id": 7, "status": "SUBSCRIBED"}]}, False),
    ({"portalSubscriptionStatus": "UNSUBSCRIBED", "source": "SOURCE_NON_DELIVERY_REPORT", "bounced": True}, False),
    ({}, False),
])
def test_statuschange_counts_only_unsubscribes(extra, unsubscribed):
    rows = hs.email_event_rows(email_event("STATUSCHANGE", **extra), ctx())
    assert [e["event_type"] for e in events_of(rows)] == (["email_unsubscribed"] if unsubscribed else [])


def test_email_event_properties_and_campaign_row():
    (bounce,) = events_of(hs.email_event_rows(email_event("BOUNCE", category="SOFT_BOUNCE"), ctx()))
    assert props(bounce) == {"bounce_type": "soft"}
    (click,) = events_of(hs.email_event_rows(email_event("CLICK", url="https://x.example/?utm_source=hs"), ctx()))
    assert props(click) == {"url": "https://x.example/?utm_source=hs"}
    sent = hs.email_event_rows(email_event("SENT"), ctx())
    assert rows_of(sent, "campaigns") == [{"campaign_key": "hubspot_email:11001", "source_system": "hubspot",
                                           "source_campaign_id": "11001", "channel": "email", "platform_type": "email"}]
    (ev,) = events_of(hs.email_event_rows(email_event("OPEN", emailCampaignId=None), ctx()))
    assert ev["campaign_key"] is None


@pytest.mark.parametrize("change, reason", [
    ({"recipient": None}, "recipient"), ({"recipient": "not-an-address"}, "recipient"), ({"id": None}, "id"),
    ({"created": None}, "created"), ({"created": "noon"}, "created"),
])
def test_malformed_email_events(change, reason):
    with pytest.raises(Malformed, match=reason):
        hs.email_event_rows(email_event("DELIVERED", **change), ctx())


# ---- form submissions ----------------------------------------------------------------------------------------------


def submission(form_id="3f1c", page="https://www.funnelsync.example/contact", **values) -> dict:
    vals = {"email": "Carol@Initech.example", **values}
    return {"_id": f"{form_id}:1708340400000:c1", "_form_id": form_id, "conversionId": "c1",
            "submittedAt": 1708340400000, "values": [{"name": k, "value": v} for k, v in vals.items()],
            "pageUrl": page}


def test_form_submission_event_with_utms_and_page_path():
    rec = submission(page="https://www.funnelsync.example/Ebook/?utm_source=linkedin&utm_medium=paid_social&gclid=x")
    (ev,) = events_of(hs.form_submission_rows(rec, ctx()))
    assert (ev["event_type"], ev["occurred_at"], ev["channel"]) == ("form_submitted", "2024-02-19T11:00:00Z",
                                                                    "paid_social")  # spec §7 T2; R06 beats R10
    assert (ev["utm_source"], ev["utm_medium"], ev["landing_path"], ev["referrer_domain"]) == \
        ("linkedin", "paid_social", None, None)  # no landing path outside web_visit: page_path instead
    assert props(ev) == {"form_id": "3f1c", "page_path": "/ebook", "click_ids": ["gclid"]}
    assert ev["person_key"] == person_key("carol@initech.example")
    assert (ev["source_object"], ev["source_id"]) == ("form_submission", "3f1c:1708340400000:c1")


def test_demo_form_is_demo_requested_never_both():
    model = {"demo_form_ids": (DEMO_FORM,)}
    rec = submission(DEMO_FORM, page="https://www.funnelsync.example/demo?utm_source=google&utm_medium=cpc")
    assert [(e["event_type"], e["channel"]) for e in events_of(hs.form_submission_rows(rec, ctx(**model)))] == [
        ("demo_requested", "paid_search")]  # spec §7 T4


def test_form_without_utms_is_direct_even_on_a_deep_page():
    rec = submission(page="https://www.funnelsync.example/blog/dark-funnel-guide")
    assert events_of(hs.form_submission_rows(rec, ctx()))[0]["channel"] == "direct"  # spec §3.3 note: R21 needs a visit


def test_form_person_row_carries_the_self_report_answer():
    rows = hs.form_submission_rows(submission(**{SELF: "Heard you on a podcast"}), ctx())
    (person,) = rows_of(rows, "person_sources")
    assert person == {"source_system": "hubspot", "source_object": "form_submission",
                      "source_id": "3f1c:1708340400000:c1", "person_key": person_key("carol@initech.example"),
                      "email": "carol@initech.example", "account_key": account_key(domain="initech.example"),
                      "first_seen_at": "2024-02-19T11:00:00Z", "self_reported_raw": "Heard you on a podcast",
                      "self_reported_at": "2024-02-19T11:00:00Z"}
    (plain,) = rows_of(hs.form_submission_rows(submission(), ctx()), "person_sources")
    assert plain["self_reported_raw"] is None and plain["self_reported_at"] is None


def test_form_without_email_has_an_anonymous_event_and_no_person_row():
    rec = submission()
    rec["values"] = [{"name": "firstname", "value": "asdf"}]
    rows = hs.form_submission_rows(rec, ctx())
    assert rows_of(rows, "person_sources") == []
    assert events_of(rows)[0]["person_key"] == person_key(None, "hubspot", "form_submission", rec["_id"])


@pytest.mark.parametrize("change, reason", [
    ({"_id": None}, "_id"), ({"_form_id": None}, "_form_id"), ({"submittedAt": None}, "submittedAt"),
    ({"submittedAt": "later"}, "submittedAt"), ({"values": "email=x"}, "values"),
])
def test_malformed_form_submissions(change, reason):
    rec = {**submission(), **change}
    with pytest.raises(Malformed, match=reason):
        hs.form_submission_rows(rec, ctx())


# ---- registry and speed --------------------------------------------------------------------------------------------


def test_registry_covers_every_stream():
    from connectors import hubspot as connector

    assert set(hs.NORMALIZERS) == set(connector.STREAMS)


def test_normalizers_are_fast():
    rec = email_event("DELIVERED")
    c = ctx()
    start = time.perf_counter()
    for _ in range(2000):
        hs.email_event_rows(rec, c)
    per_record = (time.perf_counter() - start) / 2000
    assert per_record < 150e-6  # ~25 µs on this machine (sha256 event ids, timestamp text); catches regressions
