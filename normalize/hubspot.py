"""HubSpot raw records -> person/account identity rows, funnel events and opportunities (spec §1.4 HubSpot rows).

Pure: no I/O, no clock, no environment. Every row's (source_object, source_id) is its raw record's, so a re-read
record replaces its earlier rows (ORIGIN tables) and an archived one removes them.

- contacts (contact): a `person_sources` row (person_key from the email, else from the record; account_ref
  "hubspot:company:<associatedcompanyid>"; first_seen_at = createdate; lifecycle_stage; original_source_raw =
  hs_analytics_source; fallback_channel = the [D-09] mapping of it; self_reported_raw = the contact property named
  by `[model.self_report_fields] hubspot`, self_reported_at = createdate); one lifecycle event per stage of
  `model.hubspot_stage_ids` entered (hs_v2_date_entered_<stage>, else legacy hs_lifecyclestage_<stage>_date);
  `web_visit` kind=original at hs_analytics_first_visit_timestamp (else hs_analytics_first_timestamp) from
  hs_analytics_first_url / _referrer, and kind=latest at hs_latest_source_timestamp (when different) from
  hs_analytics_last_url / _referrer. Visit channels come from §3 (`classify.touch`, landing path included); a visit
  without URL and referrer takes the [D-09] channel of hs_analytics_source / hs_latest_source, except an OFFLINE
  source without URL and referrer (an import, API or CRM-created contact), which is no visit at all.
  Archived contact: only the web visits stay (engagement that happened, spec §0 Deletes).
- companies (company): an `account_sources` row (account_key from the domain, else website, else the record).
  Archived company: nothing (its row leaves).
- deals (deal), only when `model.opportunity_system_of_record == "hubspot"`: an `opportunities` row, an
  `opportunity_links` row per associated contact (person_ref "hubspot:contact:<id>"), and `opportunity_created`,
  `became_sqo` (earliest hs_v2_date_entered_<stage> over model.sqo_stages; at creation when sqo_stages is empty),
  `deal_won` / `deal_lost` at closedate, each with the deal amount. Archived deal: Delete of its opportunity, no events.
- email_events (email_event): SENT/DELIVERED/BOUNCE/OPEN/CLICK/SPAMREPORT -> email_sent/delivered/bounced/opened/
  clicked/spam_reported; STATUSCHANGE to unsubscribed -> email_unsubscribed; other types and filteredEvent=true
  produce nothing [D-10]. campaign_key "hubspot_email:<emailCampaignId>", channel email; a SENT event also upserts
  the `campaigns` row of its email campaign (channel email).
- form_submissions (form_submission): `demo_requested` when the form is in model.demo_form_ids, else
  `form_submitted` [D-11]; UTMs and click ids from pageUrl (no landing path: properties.page_path instead);
  plus a `person_sources` row when the submission names an email, carrying the self-report field's answer
  (self_reported_at = submittedAt; the earliest answer wins in derive [D-12]).
"""
from __future__ import annotations

from typing import Any

from normalize.classify import touch
from normalize.events import (
    Delete,
    Malformed,
    Row,
    account_key,
    event,
    local_date,
    normalize_domain,
    opportunity_key,
    person_key,
    to_utc,
)
from normalize.model import Context

SYSTEM = "hubspot"

# [D-09] HubSpot original-source buckets -> channel (HubSpot has no dark-social bucket). AI_REFERRALS is a newer
# HubSpot bucket (visits referred by AI assistants): a referral.
FALLBACK_CHANNEL = {
    "ORGANIC_SEARCH": "organic_search",
    "PAID_SEARCH": "paid_search",
    "PAID_SOCIAL": "paid_social",
    "SOCIAL_MEDIA": "organic_social",
    "EMAIL_MARKETING": "email",
    "REFERRALS": "referral",
    "AI_REFERRALS": "referral",
    "DIRECT_TRAFFIC": "direct",
    "OTHER_CAMPAIGNS": "other",
    "OFFLINE": "other",
}

EMAIL_EVENT_TYPES = {
    "SENT": "email_sent",
    "DELIVERED": "email_delivered",
    "BOUNCE": "email_bounced",
    "OPEN": "email_opened",
    "CLICK": "email_clicked",
    "SPAMREPORT": "email_spam_reported",
    "STATUSCHANGE": "email_unsubscribed",  # only when the change is an unsubscribe, see _is_unsubscribe
}

# BOUNCE categories: the hard / soft ones read like Mailchimp's sent-to statuses; the rest keep HubSpot's name
BOUNCE_TYPES = {"HARD_BOUNCE": "hard", "SOFT_BOUNCE": "soft"}


# ---- helpers ---------------------------------------------------------------------------------------------------


def fallback_channel(source_bucket: Any) -> str | None:
    """[D-09] channel of a HubSpot source bucket (`hs_analytics_source`), None when absent or unknown."""
    if not source_bucket:
        return None
    return FALLBACK_CHANNEL.get(str(source_bucket).strip().upper())


def _id(record: dict, field: str = "id") -> str:
    value = record.get(field)
    if value in (None, ""):
        raise Malformed(f"missing {field}")
    return str(value)


def _props(record: dict) -> dict:
    props = record.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise Malformed("properties is not an object")
    return props


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _when(value: Any, field: str) -> str:
    try:
        return to_utc(value)
    except Malformed as exc:
        raise Malformed(f"{field}: {exc}") from None


def _when_opt(value: Any, field: str) -> str | None:
    return None if _text(value) is None else _when(value, field)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def _amount(value: Any) -> float | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise Malformed(f"unparseable amount {value!r}") from None


# ---- contacts --------------------------------------------------------------------------------------------------


def _visit(kind: str, at: str, url: Any, referrer: Any, bucket: Any, data_1: Any, data_2: Any, cid: str, pk: str,
           ctx: Context) -> Row | None:
    url, referrer = _text(url), _text(referrer)
    if url is None and referrer is None and str(bucket or "").upper() == "OFFLINE":
        return None  # created by import / API / CRM: HubSpot never saw a page view, so there is no visit
    props: dict[str, Any] = {"kind": kind}
    if bucket:
        props["hs_source_raw"] = bucket
    if _text(data_1):
        props["hs_source_data_1"] = data_1
    if _text(data_2):
        props["hs_source_data_2"] = data_2
    if url is None and referrer is None:
        t = touch(ctx.model)
        channel = fallback_channel(bucket) or t.channel
        return event("web_visit", at, SYSTEM, "contact", cid, tz=ctx.tz, person_key=pk, channel=channel,
                     properties=props)
    t = touch(ctx.model, url=url, referrer=referrer, with_path=True)
    if t.click_ids:
        props["click_ids"] = sorted(t.click_ids)
    return event("web_visit", at, SYSTEM, "contact", cid, tz=ctx.tz, person_key=pk, channel=t.channel, utm=t.utm,
                 referrer_domain=t.referrer_domain, landing_path=t.landing_path, properties=props)


def contact_rows(record: dict, ctx: Context) -> list:
    """A contact -> person_sources, lifecycle events and web visits (only the visits when archived)."""
    cid = _id(record)
    p = _props(record)
    archived = _bool(record.get("archived"))
    email = _text(p.get("email"))
    pk = person_key(email, SYSTEM, "contact", cid)
    rows: list = []
    created = _when_opt(p.get("createdate") or record.get("createdAt"), "createdate")
    if not archived:
        if created is None:
            raise Malformed("missing createdate")
        bucket = _text(p.get("hs_analytics_source"))
        company = _text(p.get("associatedcompanyid"))
        field = ctx.model.self_report_fields.get(SYSTEM)
        answer = _text(p.get(field)) if field else None
        rows.append(Row("person_sources", {
            "source_system": SYSTEM,
            "source_object": "contact",
            "source_id": cid,
            "person_key": pk,
            "email": email.lower() if email else None,
            "account_key": None if company else account_key(email=email),
            "account_ref": f"{SYSTEM}:company:{company}" if company else None,
            "first_seen_at": created,
            "lifecycle_stage": _text(p.get("lifecyclestage")),
            "original_source_raw": bucket,
            "self_reported_raw": answer,
            "self_reported_at": created if answer else None,
            "fallback_channel": fallback_channel(bucket),
        }))
        for stage, event_type in ctx.model.hubspot_stage_ids.items():
            entered = p.get(f"hs_v2_date_entered_{stage}") or p.get(f"hs_lifecyclestage_{stage}_date")
            at = _when_opt(entered, f"hs_v2_date_entered_{stage}")
            if at:
                rows.append(event(event_type, at, SYSTEM, "contact", cid, tz=ctx.tz, person_key=pk,
                                  properties={"stage": stage}))
    first = _when_opt(p.get("hs_analytics_first_visit_timestamp") or p.get("hs_analytics_first_timestamp"),
                      "hs_analytics_first_visit_timestamp")
    visits = []
    if first:
        visits.append(_visit("original", first, p.get("hs_analytics_first_url"), p.get("hs_analytics_first_referrer"),
                             _text(p.get("hs_analytics_source")), p.get("hs_analytics_source_data_1"),
                             p.get("hs_analytics_source_data_2"), cid, pk, ctx))
    latest = _when_opt(p.get("hs_latest_source_timestamp"), "hs_latest_source_timestamp")
    if latest and latest != first:
        visits.append(_visit("latest", latest, p.get("hs_analytics_last_url"), p.get("hs_analytics_last_referrer"),
                             _text(p.get("hs_latest_source")), p.get("hs_latest_source_data_1"),
                             p.get("hs_latest_source_data_2"), cid, pk, ctx))
    rows.extend(v for v in visits if v is not None)
    return rows


# ---- companies -------------------------------------------------------------------------------------------------


def company_rows(record: dict, ctx: Context) -> list:
    """A company -> its account_sources row (nothing when archived)."""
    cid = _id(record)
    if _bool(record.get("archived")):
        return []
    p = _props(record)
    domain = normalize_domain(_text(p.get("domain")) or _text(p.get("website")))
    return [Row("account_sources", {
        "source_system": SYSTEM,
        "source_object": "company",
        "source_id": cid,
        "account_key": account_key(domain=domain, source_ref=f"{SYSTEM}:company:{cid}"),
        "name": _text(p.get("name")),
        "domain": domain,
    })]


# ---- deals -----------------------------------------------------------------------------------------------------


def deal_rows(record: dict, ctx: Context) -> list:
    """A deal -> opportunity, its contact links and opportunity events (HubSpot as system of record only)."""
    did = _id(record)
    if ctx.model.opportunity_system_of_record != SYSTEM:
        return []
    okey = opportunity_key(SYSTEM, did)
    if _bool(record.get("archived")):
        return [Delete("opportunities", {"opportunity_key": okey})]
    p = _props(record)
    created = _when_opt(p.get("createdate") or record.get("createdAt"), "createdate")
    if created is None:
        raise Malformed("missing createdate")
    closed_raw = p.get("closedate")
    close_at = _when_opt(closed_raw, "closedate")
    is_won = _bool(p.get("hs_is_closed_won"))
    is_closed = _bool(p.get("hs_is_closed")) or is_won
    amount = _amount(p.get("amount"))
    currency = _text(p.get("deal_currency_code")) or ctx.currency
    companies = [str(c) for c in record.get("_company_ids") or () if c not in (None, "")]
    contacts = [str(c) for c in record.get("_contact_ids") or () if c not in (None, "")]
    rows: list = [Row("opportunities", {
        "opportunity_key": okey,
        "source_system": SYSTEM,
        "source_object": "deal",
        "source_id": did,
        "account_ref": f"{SYSTEM}:company:{companies[0]}" if companies else None,
        "name": _text(p.get("dealname")),
        "pipeline": _text(p.get("pipeline")),
        "stage": _text(p.get("dealstage")),
        "created_at": created,
        "closed_at": close_at if is_closed else None,
        "close_date": local_date(close_at, ctx.tz) if close_at else None,
        "is_closed": 1 if is_closed else 0,
        "is_won": 1 if is_won else 0,
        "amount": amount,
        "currency": currency,
    })]
    for contact in dict.fromkeys(contacts):  # HubSpot has no primary deal contact: is_primary stays NULL
        rows.append(Row("opportunity_links", {
            "source_system": SYSTEM,
            "source_object": "deal",
            "source_id": did,
            "opportunity_key": okey,
            "person_ref": f"{SYSTEM}:contact:{contact}",
        }))
    money = {"tz": ctx.tz, "opportunity_key": okey, "amount": amount, "currency": currency}
    rows.append(event("opportunity_created", created, SYSTEM, "deal", did, **money))
    sqo_at = None
    if ctx.model.sqo_stages:
        entered = [_when(v, f"hs_v2_date_entered_{s}") for s in ctx.model.sqo_stages
                   if _text(v := p.get(f"hs_v2_date_entered_{s}"))]
        sqo_at = min(entered) if entered else None
    else:
        sqo_at = created  # [D-17] no SQO stages configured: every opportunity is an SQO at creation
    if sqo_at:
        rows.append(event("became_sqo", sqo_at, SYSTEM, "deal", did, **money))
    if is_closed:
        if close_at is None:
            raise Malformed("closed deal without closedate")
        rows.append(event("deal_won" if is_won else "deal_lost", close_at, SYSTEM, "deal", did, **money))
    return rows


# ---- email events ----------------------------------------------------------------------------------------------


def _is_unsubscribe(record: dict) -> bool:
    """A STATUSCHANGE that unsubscribed the recipient (from the portal or from a subscription type); bounce-driven
    status changes are bounces, not unsubscribes."""
    if _bool(record.get("bounced")) or str(record.get("source") or "").upper() == "SOURCE_NON_DELIVERY_REPORT":
        return False
    if str(record.get("portalSubscriptionStatus") or "").upper() == "UNSUBSCRIBED":
        return True
    return any(isinstance(s, dict) and str(s.get("status") or "").upper() == "UNSUBSCRIBED"
               for s in record.get("subscriptions") or ())


def email_event_rows(record: dict, ctx: Context) -> list:
    """One email event -> one email_* event (or nothing for ignored types and filtered events)."""
    eid = _id(record)
    kind = str(record.get("type") or "").upper()
    event_type = EMAIL_EVENT_TYPES.get(kind)
    if event_type is None or _bool(record.get("filteredEvent")):
        return []
    if kind == "STATUSCHANGE" and not _is_unsubscribe(record):
        return []
    recipient = _text(record.get("recipient"))
    if not recipient or "@" not in recipient:
        raise Malformed("email event without recipient")
    if record.get("created") in (None, ""):
        raise Malformed("missing created")
    at = _when(record.get("created"), "created")
    campaign_id = record.get("emailCampaignId")
    ckey = f"hubspot_email:{campaign_id}" if campaign_id not in (None, "") else None
    props: dict[str, Any] = {}
    if kind == "BOUNCE" and record.get("category"):
        category = str(record["category"]).upper()
        props["bounce_type"] = BOUNCE_TYPES.get(category, category.lower())
    elif kind == "CLICK" and record.get("url"):
        props["url"] = record["url"]
    elif kind == "STATUSCHANGE" and record.get("source"):
        props["source"] = record["source"]
    rows: list = [event(event_type, at, SYSTEM, "email_event", eid, tz=ctx.tz, person_key=person_key(recipient),
                        campaign_key=ckey, channel="email", properties=props or None)]
    if kind == "SENT" and ckey:
        rows.append(Row("campaigns", {
            "campaign_key": ckey,
            "source_system": SYSTEM,
            "source_campaign_id": str(campaign_id),
            "channel": "email",
            "platform_type": "email",
        }))
    return rows


# ---- form submissions ------------------------------------------------------------------------------------------


def _field(values: Any, name: str) -> str | None:
    wanted = name.lower()
    for item in values or ():
        if isinstance(item, dict) and str(item.get("name", "")).lower() == wanted:
            value = _text(item.get("value"))
            if value:
                return value
    return None


def form_submission_rows(record: dict, ctx: Context) -> list:
    """One form submission -> form_submitted / demo_requested (+ person_sources when it names an email)."""
    sid = _id(record, "_id")
    form_id = _id(record, "_form_id")
    if record.get("submittedAt") in (None, ""):
        raise Malformed("missing submittedAt")
    at = _when(record.get("submittedAt"), "submittedAt")
    values = record.get("values") or ()
    if not isinstance(values, (list, tuple)):
        raise Malformed("values is not a list")
    email = _field(values, "email")
    pk = person_key(email, SYSTEM, "form_submission", sid)
    t = touch(ctx.model, url=_text(record.get("pageUrl")), with_path=False)
    props: dict[str, Any] = {"form_id": form_id}
    if t.landing_path:
        props["page_path"] = t.landing_path
    if t.click_ids:
        props["click_ids"] = sorted(t.click_ids)
    event_type = "demo_requested" if form_id in ctx.model.demo_form_ids else "form_submitted"
    rows: list = [event(event_type, at, SYSTEM, "form_submission", sid, tz=ctx.tz, person_key=pk, channel=t.channel,
                        utm=t.utm, properties=props)]
    if email:
        field = ctx.model.self_report_fields.get(SYSTEM)
        answer = _field(values, field) if field else None
        rows.append(Row("person_sources", {
            "source_system": SYSTEM,
            "source_object": "form_submission",
            "source_id": sid,
            "person_key": pk,
            "email": email.lower(),
            "account_key": account_key(email=email),
            "first_seen_at": at,
            "self_reported_raw": answer,
            "self_reported_at": at if answer else None,
        }))
    return rows


NORMALIZERS = {
    "contacts": contact_rows,
    "companies": company_rows,
    "deals": deal_rows,
    "email_events": email_event_rows,
    "form_submissions": form_submission_rows,
}
