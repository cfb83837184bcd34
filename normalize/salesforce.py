"""Salesforce raw records -> rows of the common schema (spec §1.4, Salesforce rows). Pure: no I/O, no clock.

One function per stream (the stream name is the Salesforce object). Conventions:
- Deleted records (`IsDeleted`, read through queryAll): Lead/Contact/Account/LeadHistory/OpportunityContactRole
  give no rows (the writer then removes what the record gave before); Opportunity and Campaign also `Delete`
  their upserted row. CampaignMember keeps its events: engagement that happened stays (spec §0 Deletes).
- Date-only fields (ConvertedDate, CloseDate, StartDate, FirstRespondedDate) are local midnight of that date in
  the reporting time zone (`date_only`).
- `became_sql` at a lead's ConvertedDate (model.sql_on_conversion) is emitted for every converted lead with
  properties {"from": "conversion"}: "no SQL status seen" needs other records (LeadHistory), and the KPIs take
  FIRST(became_sql) per person, so an earlier status-based SQL wins anyway.
- Opportunity streams map only when Salesforce is the opportunity system of record (spec [D-06]).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from normalize.events import (
    Delete, Malformed, Row, account_key, date_only, event, get_path, normalize_domain, number, opportunity_key,
    person_key,
    to_utc,
)
from normalize.model import Context

SYSTEM = "salesforce"


# ---- helpers -----------------------------------------------------------------------------------------------


def _id(record: dict, field: str = "Id") -> str:
    value = record.get(field)
    if not value:
        raise Malformed(f"record has no {field}")
    return str(value)


def _ts(record: dict, field: str) -> str:
    """A Salesforce dateTime as UTC `YYYY-MM-DDTHH:MM:SSZ` (fast path for the usual `...000+0000`)."""
    value = record.get(field)
    if not value:
        raise Malformed(f"{field} is missing")
    if isinstance(value, str) and len(value) == 28 and value[19] == "." and value.endswith("+0000"):
        try:
            datetime.fromisoformat(value[:19])
        except ValueError:
            raise Malformed(f"unparseable {field} {value!r}") from None
        return value[:19] + "Z"
    return to_utc(value)


def _day(value: Any, field: str) -> str:
    """A date-only value as YYYY-MM-DD (validated)."""
    text = str(value)[:10]
    try:
        date.fromisoformat(text)
    except ValueError:
        raise Malformed(f"unparseable {field} {value!r}") from None
    return text


def _midnight(day: str, tz: str) -> str:
    """`occurred_at` of a validated date-only value: local midnight in the reporting zone, as UTC."""
    return f"{day}T00:00:00Z" if tz == "UTC" else date_only(day, tz)


def _self_report(record: dict, ctx: Context) -> str | None:
    field = ctx.model.self_report_fields.get(SYSTEM) or ctx.settings.get("self_report_field")
    if not field:
        return None
    answer = record.get(field)
    if answer is None:
        return None
    return str(answer).strip() or None


def _is_sor(ctx: Context) -> bool:
    return ctx.model.opportunity_system_of_record == SYSTEM


def _monthly(amount: float | None, ctx: Context) -> float | None:
    if amount is None:
        return None
    basis = ctx.model.amount_basis
    if basis == "monthly":
        return amount
    if basis == "total_contract":
        return amount / (ctx.model.contract_months or 12)
    return amount / 12.0


# ---- people and accounts -----------------------------------------------------------------------------------


def lead(record: dict, ctx: Context) -> list:
    """Lead -> person_sources, lead_created, became_sql at conversion, opportunity_links of the converted opp."""
    lid = _id(record)
    if record.get("IsDeleted"):
        return []
    created = _ts(record, "CreatedDate")
    email = record.get("Email") or None
    pk = person_key(email, SYSTEM, "Lead", lid)
    model = ctx.model
    converted = bool(record.get("IsConverted"))
    account_id = record.get("ConvertedAccountId") if converted else None
    status = record.get("Status")
    answer = _self_report(record, ctx)
    if status in model.sql_statuses or (converted and model.sql_on_conversion):
        stage = "sql"
    elif status in model.mql_statuses:
        stage = "mql"
    else:
        stage = "lead"
    rows: list = [
        Row("person_sources", {
            "source_system": SYSTEM, "source_object": "Lead", "source_id": lid, "person_key": pk, "email": email,
            "account_key": None if account_id else account_key(email=email),
            "account_ref": f"{SYSTEM}:Account:{account_id}" if account_id else None,
            "first_seen_at": created, "lifecycle_stage": stage, "original_source_raw": record.get("LeadSource"),
            "self_reported_raw": answer, "self_reported_at": created if answer else None,
        }),
        event("lead_created", created, SYSTEM, "Lead", lid, tz=ctx.tz, person_key=pk),
    ]
    if converted:
        converted_date = record.get("ConvertedDate")
        if model.sql_on_conversion and converted_date:
            # a conversion is never before the lead existed (ConvertedDate is a date: local midnight)
            at = max(_midnight(_day(converted_date, "ConvertedDate"), ctx.tz), created)
            rows.append(event("became_sql", at, SYSTEM, "Lead", lid, tz=ctx.tz, person_key=pk,
                              properties={"from": "conversion"}))
        opp = record.get("ConvertedOpportunityId")
        if opp and _is_sor(ctx):
            rows.append(Row("opportunity_links", {
                "source_system": SYSTEM, "source_object": "Lead", "source_id": lid,
                "opportunity_key": opportunity_key(SYSTEM, opp), "person_key": pk,
                "person_ref": f"{SYSTEM}:Lead:{lid}", "role": "Converted Lead", "is_primary": None,
            }))
    return rows


def lead_history(record: dict, ctx: Context) -> list:
    """LeadHistory (Field = 'Status') -> became_mql / became_sql when NewValue is a configured status."""
    hid = _id(record)
    if record.get("IsDeleted") or record.get("Field", "Status") != "Status":
        return []
    value = record.get("NewValue")
    model = ctx.model
    if value in model.sql_statuses:
        kind = "became_sql"
    elif value in model.mql_statuses:
        kind = "became_mql"
    else:
        return []
    at = _ts(record, "CreatedDate")
    email = get_path(record, "Lead.Email")
    pk = person_key(email) if email else person_key(None, SYSTEM, "Lead", _id(record, "LeadId"))
    return [event(kind, at, SYSTEM, "LeadHistory", hid, tz=ctx.tz, person_key=pk, properties={"status": value})]


def contact(record: dict, ctx: Context) -> list:
    """Contact -> person_sources (account_ref = its Account)."""
    cid = _id(record)
    if record.get("IsDeleted"):
        return []
    created = _ts(record, "CreatedDate")
    email = record.get("Email") or None
    account_id = record.get("AccountId")
    answer = _self_report(record, ctx)
    return [Row("person_sources", {
        "source_system": SYSTEM, "source_object": "Contact", "source_id": cid,
        "person_key": person_key(email, SYSTEM, "Contact", cid), "email": email,
        "account_key": None if account_id else account_key(email=email),
        "account_ref": f"{SYSTEM}:Account:{account_id}" if account_id else None,
        "first_seen_at": created, "original_source_raw": record.get("LeadSource"),
        "self_reported_raw": answer, "self_reported_at": created if answer else None,
    })]


def account(record: dict, ctx: Context) -> list:
    """Account -> account_sources (account_key from the Website host, else the record)."""
    aid = _id(record)
    if record.get("IsDeleted"):
        return []
    website = record.get("Website")
    return [Row("account_sources", {
        "source_system": SYSTEM, "source_object": "Account", "source_id": aid,
        "account_key": account_key(domain=website, source_ref=f"{SYSTEM}:Account:{aid}"),
        "name": record.get("Name"), "domain": normalize_domain(website),
    })]


# ---- opportunities -----------------------------------------------------------------------------------------


def opportunity(record: dict, ctx: Context) -> list:
    """Opportunity -> opportunities row, opportunity_created, became_sqo (no sqo_stages), deal_won/deal_lost."""
    if not _is_sor(ctx):
        return []
    oid = _id(record)
    okey = opportunity_key(SYSTEM, oid)
    if record.get("IsDeleted"):
        return [Delete("opportunities", {"opportunity_key": okey})]
    created = _ts(record, "CreatedDate")
    is_closed, is_won = bool(record.get("IsClosed")), bool(record.get("IsWon"))
    close_raw = record.get("CloseDate")
    close_date = _day(close_raw, "CloseDate") if close_raw else None
    if is_closed and not close_date:
        raise Malformed("closed Opportunity without CloseDate")
    closed_at = _midnight(close_date, ctx.tz) if is_closed else None
    amount = number(record.get("Amount"), "Amount", empty=None)
    currency = record.get("CurrencyIsoCode") or ctx.currency
    account_id = record.get("AccountId")
    campaign_id = record.get("CampaignId")
    money = {"amount": amount, "currency": currency if amount is not None else None}
    rows: list = [
        Row("opportunities", {
            "opportunity_key": okey, "source_system": SYSTEM, "source_object": "Opportunity", "source_id": oid,
            "account_ref": f"{SYSTEM}:Account:{account_id}" if account_id else None,
            "name": record.get("Name"), "pipeline": None, "stage": record.get("StageName"),
            "created_at": created, "closed_at": closed_at, "close_date": close_date,
            "is_closed": int(is_closed), "is_won": int(is_won), "amount": amount, "currency": currency,
            "amount_monthly": _monthly(amount, ctx),
            "primary_campaign_key": f"{SYSTEM}:{campaign_id}" if campaign_id else None,
            "lead_source_raw": record.get("LeadSource"),
        }),
        event("opportunity_created", created, SYSTEM, "Opportunity", oid, tz=ctx.tz, opportunity_key=okey, **money),
    ]
    if not ctx.model.sqo_stages:  # spec [D-17]: every opportunity is an SQO at creation
        rows.append(event("became_sqo", created, SYSTEM, "Opportunity", oid, tz=ctx.tz, opportunity_key=okey,
                          **money))
    if is_closed:
        rows.append(event("deal_won" if is_won else "deal_lost", closed_at, SYSTEM, "Opportunity", oid, tz=ctx.tz,
                          opportunity_key=okey, properties={"stage": record.get("StageName")}, **money))
    return rows


def opportunity_history(record: dict, ctx: Context) -> list:
    """OpportunityHistory (or OpportunityFieldHistory, Field = 'StageName') -> became_sqo per SQO-stage row.

    Every row whose stage is in sqo_stages gives an event; the KPIs take the first per opportunity."""
    if not _is_sor(ctx):
        return []
    hid = _id(record)
    if record.get("IsDeleted"):
        return []
    field_history = "Field" in record or get_path(record, "attributes.type") == "OpportunityFieldHistory"
    if field_history:
        if record.get("Field") != "StageName":
            return []
        stage = record.get("NewValue")
    else:
        stage = record.get("StageName")
    if not ctx.model.sqo_stages or stage not in ctx.model.sqo_stages:
        return []
    okey = opportunity_key(SYSTEM, _id(record, "OpportunityId"))
    at = _ts(record, "CreatedDate")
    amount = number(record.get("Amount"), "Amount", empty=None)
    currency = (record.get("CurrencyIsoCode") or ctx.currency) if amount is not None else None
    return [event("became_sqo", at, SYSTEM, "OpportunityHistory", hid, tz=ctx.tz, opportunity_key=okey,
                  amount=amount, currency=currency, properties={"stage": stage})]


def opportunity_contact_role(record: dict, ctx: Context) -> list:
    """OpportunityContactRole -> opportunity_links (person by Contact.Email, else through the Contact ref)."""
    if not _is_sor(ctx):
        return []
    rid = _id(record)
    if record.get("IsDeleted"):
        return []
    opp, contact_id = _id(record, "OpportunityId"), _id(record, "ContactId")
    email = get_path(record, "Contact.Email")
    return [Row("opportunity_links", {
        "source_system": SYSTEM, "source_object": "OpportunityContactRole", "source_id": rid,
        "opportunity_key": opportunity_key(SYSTEM, opp), "person_key": person_key(email) if email else None,
        "person_ref": f"{SYSTEM}:Contact:{contact_id}", "role": record.get("Role"),
        "is_primary": int(bool(record.get("IsPrimary"))),
    })]


# ---- campaigns ---------------------------------------------------------------------------------------------


def campaign(record: dict, ctx: Context) -> list:
    """Campaign -> campaigns row + program_spend (ActualCost at StartDate) unless an ad-platform mirror."""
    cid = _id(record)
    key = f"{SYSTEM}:{cid}"
    if record.get("IsDeleted"):
        return [Delete("campaigns", {"campaign_key": key})]
    model = ctx.model
    kind = record.get("Type")
    channel = model.campaign_type_map.get(kind, "other") if kind else "other"
    start = _day(record["StartDate"], "StartDate") if record.get("StartDate") else None
    end = _day(record["EndDate"], "EndDate") if record.get("EndDate") else None
    actual = number(record.get("ActualCost"), "ActualCost", empty=None)
    currency = record.get("CurrencyIsoCode") or ctx.currency
    parent = record.get("ParentId")
    rows: list = [Row("campaigns", {
        "campaign_key": key, "source_system": SYSTEM, "source_campaign_id": cid, "name": record.get("Name"),
        "channel": channel, "platform_type": kind, "parent_campaign_key": f"{SYSTEM}:{parent}" if parent else None,
        "utm_campaign": None, "start_date": start, "end_date": end,
        "budgeted_cost": number(record.get("BudgetedCost"), "BudgetedCost", empty=None), "actual_cost": actual,
        "currency": currency,
    })]
    if actual and start and kind not in model.ad_mirror_campaign_types:
        rows.append(event("program_spend", _midnight(start, ctx.tz), SYSTEM, "Campaign", cid, event_date=start,
                          campaign_key=key, channel=channel, amount=actual, currency=currency, is_aggregate=True))
    return rows


def campaign_member(record: dict, ctx: Context) -> list:
    """CampaignMember -> the channel's engagement events (webinar / events / direct mail / syndication)."""
    mid = _id(record)
    created = _ts(record, "CreatedDate")
    campaign_id = _id(record, "CampaignId")
    model = ctx.model
    kind = get_path(record, "Campaign.Type")
    channel = model.campaign_type_map.get(kind, "other") if kind else "other"
    if channel not in ("webinar", "events", "direct_mail", "content_syndication"):
        return []
    email = record.get("Email") or None
    if email:
        pk = person_key(email)
    elif record.get("ContactId"):
        pk = person_key(None, SYSTEM, "Contact", record["ContactId"])
    elif record.get("LeadId"):
        pk = person_key(None, SYSTEM, "Lead", record["LeadId"])
    else:
        raise Malformed("CampaignMember without Email, ContactId or LeadId")
    status = record.get("Status")
    responded_raw = record.get("FirstRespondedDate")
    responded = _midnight(_day(responded_raw, "FirstRespondedDate"), ctx.tz) if responded_raw else created
    common = {"tz": ctx.tz, "person_key": pk, "campaign_key": f"{SYSTEM}:{campaign_id}", "channel": channel,
              "properties": {"status": status} if status else None}
    out: list = []

    def add(kind_: str, at: str) -> None:
        out.append(event(kind_, at, SYSTEM, "CampaignMember", mid, **common))

    if channel == "webinar":
        add("webinar_registered", created)
        if status in model.attended_statuses:
            add("webinar_attended", responded)
    elif channel == "events":
        add("event_registered", created)
        if status in model.attended_statuses:
            add("event_attended", responded)
    elif channel == "direct_mail":
        add("direct_mail_sent", created)
        booked = status in model.meeting_statuses
        if booked or status in model.claimed_statuses:  # a booked meeting implies the piece was claimed
            add("direct_mail_claimed", responded)
        if booked:
            add("meeting_booked", responded)
    else:
        add("content_syndicated", created)
    return out


NORMALIZERS = {
    "Lead": lead,
    "LeadHistory": lead_history,
    "Contact": contact,
    "Account": account,
    "Opportunity": opportunity,
    "OpportunityHistory": opportunity_history,
    "OpportunityContactRole": opportunity_contact_role,
    "Campaign": campaign,
    "CampaignMember": campaign_member,
}
