"""HubSpot as the connector meets it (base_url = https://127.0.0.1:PORT/hubspot).

- POST /crm/v3/objects/{contacts|companies|deals}/search: one filterGroup of filters on the cursor property
  (lastmodifieddate / hs_lastmodifieddate: GTE, GT, LT, LTE, EQ; epoch-ms or ISO values) and hs_object_id (GT, GTE),
  `sorts` ascending by the cursor property or hs_object_id, `properties` (only those come back, plus createdate,
  lastmodifieddate/hs_lastmodifieddate and hs_object_id), `limit` <= 200, `after`; answer {total, results[{id,
  properties, createdAt, updatedAt, archived}], paging.next.after}. At most 10,000 results per query: `after` >= 10,000
  is HTTP 400 VALIDATION_ERROR, as documented (https://developers.hubspot.com/docs/api-reference/search/guide).
  Results come in (cursor time, id) order.
- GET /crm/v3/objects/{type}?archived=true&limit<=100&properties=..&after=..: archived records (archivedAt spread
  over the period).
- POST /crm/v4/associations/deals/{contacts|companies}/batch/read {"inputs": [{"id"}]}: deal -> contact (typeId 3)
  and deal -> company (typeId 5 "Primary").
- GET /email/public/v1/events?startTimestamp&endTimestamp (ms, inclusive)&limit<=1000&offset: {hasMore, offset,
  events[{id, created, type, recipient, emailCampaignId, portalId, appId, sentBy, ...}]}.
- GET /marketing/v3/forms/?limit&after: {results[{id, name, createdAt, updatedAt, archived, formType}], paging};
  GET /form-integrations/v1/submissions/forms/{guid}?limit<=50&after: newest first {results[{conversionId,
  submittedAt (ms), values[{name, value}], pageUrl}], paging.next.after}.
Auth: `Authorization: Bearer <private-app token>`; 401 {"status": "error", "category": "INVALID_AUTHENTICATION"}.
Throttle: 429 + Retry-After + X-HubSpot-RateLimit-* headers, body errorType RATE_LIMIT / policyName.
Responses of non-search endpoints carry X-HubSpot-RateLimit-Daily / -Daily-Remaining / -Interval-Milliseconds /
-Max / -Remaining / -Secondly / -Secondly-Remaining (the search endpoints do not, as documented).
Malformed records: contacts whose index is in `malformed` come without createdate and createdAt.
"""
from __future__ import annotations

import uuid
from typing import Any

from .base import Api
from .common import (
    DAY_MS, END_MS, START_MS, company_domain, company_name, h, iso_ms, landing_url, parse_time, pick, token, untoken,
)
from .server import Request, Response, correlation_id, json_response, retry_after_header
from .timeline import Timeline

CONTACT_ID0, COMPANY_ID0, DEAL_ID0, ARCHIVED_ID0 = 1_000_000, 5_000_000, 9_000_000, 20_000_000
CURSOR = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate"}
ID0 = {"contacts": CONTACT_ID0, "companies": COMPANY_ID0, "deals": DEAL_ID0}
STAGES = ("lead", "marketingqualifiedlead", "salesqualifiedlead", "customer")
BUCKETS = ("ORGANIC_SEARCH", "PAID_SEARCH", "PAID_SOCIAL", "EMAIL_MARKETING", "DIRECT_TRAFFIC", "PAID_SEARCH",
           "DIRECT_TRAFFIC", "REFERRALS")
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "closedwon", "closedlost")
EMAIL_TYPES = ("SENT", "DELIVERED", "OPEN", "SENT", "DELIVERED", "CLICK", "SENT", "BOUNCE", "SENT", "DELIVERED",
               "OPEN", "STATUSCHANGE")
ANSWERS = ("LinkedIn", "A podcast", "Google", "A friend told me", "ChatGPT")
SEARCH_CAP = 10_000
PORTAL_ID = 62515


class HubSpot(Api):
    name = "hubspot"
    token = "test-token-hubspot"
    self_report_property = "how_did_you_hear_about_us"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        span = END_MS - START_MS
        self.n = {k: self.size(k, d) for k, d in (("contacts", 2000), ("companies", 300), ("deals", 200))}
        self.timelines = {k: Timeline(n, START_MS, max(1, span // n)) for k, n in self.n.items()}
        self.archived = {k: max(1, n // 500) for k, n in self.n.items()}
        self.n_events = self.size("email_events", 4000)
        self.events = Timeline(self.n_events, START_MS, max(1, span // self.n_events))
        self.n_forms = self.size("forms", 3) if "hubspot.forms" in sandbox.sizes else 3
        self.n_submissions = self.size("submissions", 300)
        self.sub_step = max(1, span // self.n_submissions)
        self.forms = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-form-{k}")) for k in range(self.n_forms)]
        self.daily_limit = 500_000
        self.search_cap = SEARCH_CAP  # results one search query can page through (HubSpot: 10,000)
        sandbox.tokens.static[self.name].add(self.token)

    def source(self, **overrides: Any) -> dict:
        return {"name": "hubspot", "type": "hubspot", "access_token": self.token, "base_url": self.base_url,
                "start_date": "2024-01-01", "self_report_property": self.self_report_property, **overrides}

    def change(self, kind: str, fraction: float = 0.01, at: int | None = None, step: int = 1000) -> list[str]:
        """Modify `fraction` of the records of `kind` (evenly spread), with new cursor times from `at`; returns
        their ids."""
        tl = self.timelines[kind]
        every = max(1, round(1 / fraction))
        picked = list(range(len(tl._rounds) % every, tl.n, every))
        tl.change(picked, at if at is not None else tl.end, step)
        return [str(ID0[kind] + i) for i in picked]

    # ---- routing ----------------------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if req.method == "POST" and len(parts) == 5 and parts[:3] == ["crm", "v3", "objects"] and parts[4] == "search":
            if parts[3] in self.timelines:
                return self.search(req, parts[3])
        if req.method == "GET" and len(parts) == 4 and parts[:3] == ["crm", "v3", "objects"] and parts[3] in self.timelines:
            return self.list_objects(req, parts[3])
        if req.method == "POST" and parts[:3] == ["crm", "v4", "associations"] and parts[-2:] == ["batch", "read"]:
            return self.associations(req, parts[3], parts[4])
        if req.method == "GET" and parts == ["email", "public", "v1", "events"]:
            return self.email_events(req)
        if req.method == "GET" and parts == ["marketing", "v3", "forms"]:
            return self.list_forms(req)
        if req.method == "GET" and parts[:4] == ["form-integrations", "v1", "submissions", "forms"] and len(parts) == 5:
            return self.submissions(req, parts[4])
        return self.not_found(req)

    # ---- CRM ----------------------------------------------------------------------------------------------------

    def search(self, req: Request, kind: str) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            return self.validation(req, "Invalid input JSON on line 1")
        limit = int(body.get("limit") or 10)
        if limit > 200:
            return self.validation(req, f"limit must be less than or equal to 200 (got {limit})")
        after = int(body.get("after") or 0)
        if after >= self.search_cap:
            return self.validation(req, f"Search results are limited to {self.search_cap:,} total results. Use a "
                                        "narrower filter to page through more records.")
        groups = body.get("filterGroups") or []
        if len(groups) > 1:
            return self.validation(req, "sandbox: only one filterGroup is supported")
        prop = CURSOR[kind]
        lo, hi, min_index = -(1 << 62), 1 << 62, 0
        for f in (groups[0].get("filters") if groups else None) or []:
            name, op = f.get("propertyName"), f.get("operator")
            value = parse_time(f.get("value")) if name == prop else int(f.get("value"))
            if name == prop:
                if op == "GTE":
                    lo = max(lo, value)
                elif op == "GT":
                    lo = max(lo, value + 1)
                elif op == "LT":
                    hi = min(hi, value)
                elif op == "LTE":
                    hi = min(hi, value + 1)
                elif op == "EQ":
                    lo, hi = max(lo, value), min(hi, value + 1)
                else:
                    return self.validation(req, f"sandbox: operator {op} on {name} is not supported")
            elif name == "hs_object_id" and op in ("GT", "GTE"):
                min_index = max(min_index, value - ID0[kind] + (1 if op == "GT" else 0))
            else:
                return self.validation(req, f"sandbox: filter on {name} is not supported")
        for s in body.get("sorts") or []:
            name = s.get("propertyName") if isinstance(s, dict) else str(s).lstrip("-")
            direction = s.get("direction", "ASCENDING") if isinstance(s, dict) else "ASCENDING"
            if name not in (prop, "hs_object_id", "createdate") or direction != "ASCENDING":
                return self.validation(req, f"sandbox: sort by {name} {direction} is not supported")
        wanted = list(body.get("properties") or [])
        tl = self.timelines[kind]
        total = tl.count(lo, hi, max(0, min_index))
        results = [self.record(kind, i, v, t, wanted) for i, t, v in tl.items(lo, hi, after, limit, max(0, min_index))]
        out: dict[str, Any] = {"total": total, "results": results}
        if after + len(results) < total:
            nxt = str(after + limit)
            out["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return json_response(200, out)

    def validation(self, req: Request, message: str) -> Response:
        return json_response(400, {"status": "error", "message": message, "correlationId": correlation_id(),
                                   "category": "VALIDATION_ERROR"})

    def record(self, kind: str, i: int, version: int, t: int, wanted: list[str], archived_at: int | None = None) -> dict:
        props = getattr(self, f"{kind[:-1] if kind != 'companies' else 'company'}_props")(i, version, t)
        cursor = CURSOR[kind]
        keep = set(wanted) | {"createdate", cursor, "hs_object_id"}
        out = {k: props.get(k) for k in keep}
        rid = str((ARCHIVED_ID0 if archived_at is not None else ID0[kind]) + i)
        out["hs_object_id"] = rid
        rec: dict[str, Any] = {"id": rid, "properties": out, "createdAt": props.get("createdate"),
                               "updatedAt": iso_ms(t), "archived": archived_at is not None}
        if archived_at is not None:
            rec["archivedAt"] = iso_ms(archived_at)
        if kind == "contacts" and i in self.malformed and archived_at is None:
            out["createdate"] = None
            del rec["createdAt"]
        return rec

    def contact_props(self, i: int, version: int, t: int) -> dict:
        base = self.timelines["contacts"].base_time(i)
        created = base - (i % 5) * DAY_MS - 3_600_000
        company = i % self.n["companies"]
        stage = min(len(STAGES) - 1, (i % 3) + version)
        first_visit = created - DAY_MS // 2
        url, ref = landing_url(i)
        bucket = BUCKETS[i % len(BUCKETS)]
        p: dict[str, Any] = {
            "email": f"contact{i}@{company_domain(company)}",
            "firstname": pick(("Alice", "Bob", "Carol", "Dan", "Erin"), i), "lastname": f"Sandbox{i}",
            "createdate": iso_ms(created), "lastmodifieddate": iso_ms(t),
            "associatedcompanyid": str(COMPANY_ID0 + company) if i % 7 else None,
            "lifecyclestage": STAGES[stage],
            "hs_analytics_first_visit_timestamp": iso_ms(first_visit),
            "hs_analytics_first_timestamp": iso_ms(first_visit),
            "hs_analytics_first_url": url, "hs_analytics_first_referrer": ref,
            "hs_analytics_source": bucket, "hs_analytics_source_data_1": pick(("google", "linkedin", "bing"), i),
            "hs_analytics_source_data_2": None,
            "hs_latest_source": BUCKETS[(i + version) % len(BUCKETS)],
            "hs_latest_source_timestamp": iso_ms(t - 3_600_000) if version else iso_ms(first_visit),
            "hs_analytics_last_url": landing_url(i + version)[0], "hs_analytics_last_referrer": landing_url(i + version)[1],
            "hs_latest_source_data_1": None, "hs_latest_source_data_2": None,
            self.self_report_property: ANSWERS[i % len(ANSWERS)] if i % 4 == 0 else None,
        }
        for k, s in enumerate(STAGES):
            entered = iso_ms(created + k * 2 * DAY_MS) if k <= stage else None
            if k == stage and version:
                entered = iso_ms(t - 60_000)
            p[f"hs_v2_date_entered_{s}"] = entered
            p[f"hs_lifecyclestage_{s}_date"] = entered
        return p

    def company_props(self, i: int, version: int, t: int) -> dict:
        base = self.timelines["companies"].base_time(i)
        return {"name": company_name(i) + (f" (v{version})" if version else ""), "domain": company_domain(i),
                "website": f"https://www.{company_domain(i)}", "createdate": iso_ms(base - 30 * DAY_MS),
                "hs_lastmodifieddate": iso_ms(t)}

    def deal_props(self, i: int, version: int, t: int) -> dict:
        base = self.timelines["deals"].base_time(i)
        created = base - 3 * DAY_MS
        stage = DEAL_STAGES[min(len(DEAL_STAGES) - 1, (i % 4) + version)]
        closed = stage in ("closedwon", "closedlost")
        p = {"dealname": f"Sandbox deal {i}", "createdate": iso_ms(created),
             "closedate": iso_ms(created + 20 * DAY_MS), "amount": str(1000 + (i * 37) % 9000),
             "deal_currency_code": "USD", "dealstage": stage, "pipeline": "default",
             "hs_is_closed_won": "true" if stage == "closedwon" else "false",
             "hs_is_closed": "true" if closed else "false", "hs_lastmodifieddate": iso_ms(t)}
        for k, s in enumerate(DEAL_STAGES[:3]):
            p[f"hs_v2_date_entered_{s}"] = iso_ms(created + k * DAY_MS)
        return p

    def list_objects(self, req: Request, kind: str) -> Response:
        limit = min(100, int(req.q("limit") or 10))
        after = untoken(req.q("after"))
        wanted = req.q_list("properties")
        if req.q("archived") == "true":
            n = self.archived[kind]
            step = (END_MS - START_MS) // n
            results = [self.record(kind, j, 0, START_MS + j * step, wanted, archived_at=START_MS + j * step + DAY_MS)
                       for j in range(after, min(n, after + limit))]
        else:
            tl = self.timelines[kind]
            n = tl.n
            results = [self.record(kind, i, tl.version_of(i), tl.time_of(i), wanted)
                       for i in range(after, min(n, after + limit))]
        out: dict[str, Any] = {"results": results}
        if after + limit < n:
            out["paging"] = {"next": {"after": token(after + limit), "link": f"?after={token(after + limit)}"}}
        return json_response(200, out)

    def associations(self, req: Request, from_type: str, to_type: str) -> Response:
        if from_type != "deals" or to_type not in ("contacts", "companies"):
            return self.not_found(req)
        body = req.json() or {}
        results = []
        for item in body.get("inputs") or []:
            deal = int(item["id"]) - DEAL_ID0
            if to_type == "contacts":
                ids = [(deal * 7) % self.n["contacts"], (deal * 7 + 3) % self.n["contacts"]][: 1 + deal % 2]
                to = [{"toObjectId": CONTACT_ID0 + c, "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}]} for c in ids]
            else:
                to = [{"toObjectId": COMPANY_ID0 + deal % self.n["companies"], "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"},
                    {"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None}]}]
            results.append({"from": {"id": str(item["id"])}, "to": to})
        return json_response(200, {"status": "COMPLETE", "results": results, "startedAt": iso_ms(START_MS),
                                   "completedAt": iso_ms(START_MS + 41)})

    # ---- email events and forms ---------------------------------------------------------------------------------

    def email_event(self, k: int, t: int) -> dict:
        kind = EMAIL_TYPES[k % len(EMAIL_TYPES)]
        recipient = f"contact{(k * 13) % self.n['contacts']}@{company_domain((k * 13) % self.n['companies'])}"
        ev: dict[str, Any] = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"hubspot-email-event-{k}")), "created": t, "type": kind,
            "recipient": recipient, "portalId": PORTAL_ID, "appId": 113, "appName": "Batch",
            "emailCampaignId": 1000 + k // 500, "emailCampaignGroupId": 500 + k // 2000,
            "sentBy": {"id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"hubspot-sent-{k // 4}")), "created": t},
            "filteredEvent": False,
        }
        if kind == "OPEN":
            ev.update({"browser": {"name": "Chrome", "family": "Chrome"}, "deviceType": "COMPUTER", "duration": 4200})
        elif kind == "CLICK":
            ev["url"] = landing_url(k)[0]
        elif kind == "BOUNCE":
            ev.update({"category": "HARD_BOUNCE" if k % 2 else "SOFT_BOUNCE", "status": "550"})
        elif kind == "STATUSCHANGE":
            ev.update({"source": "SOURCE_RECIPIENT", "portalSubscriptionStatus": "UNSUBSCRIBED",
                       "subscriptions": [{"id": 7, "status": "UNSUBSCRIBED"}]})
        return ev

    def email_events(self, req: Request) -> Response:
        lo = int(req.q("startTimestamp") or START_MS)
        hi = int(req.q("endTimestamp") or END_MS) + 1  # inclusive
        limit = min(1000, int(req.q("limit") or 100))
        offset = untoken(req.q("offset"))
        total = self.events.count(lo, hi)
        events = [self.email_event(k, t) for k, t, _ in self.events.items(lo, hi, offset, limit)]
        more = offset + len(events) < total
        return json_response(200, {"hasMore": more, "offset": token(offset + len(events)), "events": events})

    def list_forms(self, req: Request) -> Response:
        limit = int(req.q("limit") or 20)
        after = untoken(req.q("after"))
        forms = [{"id": g, "name": f"Sandbox form {k}", "createdAt": iso_ms(START_MS), "updatedAt": iso_ms(START_MS),
                  "archived": False, "formType": "hubspot", "fieldGroups": []}
                 for k, g in enumerate(self.forms)][after:after + limit]
        out: dict[str, Any] = {"results": forms}
        if after + limit < len(self.forms):
            out["paging"] = {"next": {"after": token(after + limit), "link": "?after=" + token(after + limit)}}
        return json_response(200, out)

    def submission(self, form: int, j: int) -> dict:
        """The j-th (oldest first) submission of form number `form`."""
        t = START_MS + j * self.sub_step + form * 1000
        email = f"contact{(j * 3 + form) % self.n['contacts']}@{company_domain(j % self.n['companies'])}"
        values = [{"name": "email", "value": email}, {"name": "firstname", "value": pick(("Ann", "Ben", "Cy"), j)}]
        if j % 3 == 0:
            values.append({"name": self.self_report_property, "value": ANSWERS[j % len(ANSWERS)]})
        return {"conversionId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"sub-{form}-{j}")), "submittedAt": t,
                "values": values, "pageUrl": landing_url(j + form)[0]}

    def submissions(self, req: Request, guid: str) -> Response:
        if guid not in self.forms:
            return json_response(404, {"status": "error", "message": "Form not found", "category": "OBJECT_NOT_FOUND",
                                       "correlationId": correlation_id()})
        form = self.forms.index(guid)
        limit = min(50, int(req.q("limit") or 20))
        after = untoken(req.q("after"))
        n = self.n_submissions
        out_rows = [self.submission(form, n - 1 - pos) for pos in range(after, min(n, after + limit))]  # newest first
        body: dict[str, Any] = {"results": out_rows}
        if after + limit < n:
            body["paging"] = {"next": {"after": token(after + limit), "link": "?after=" + token(after + limit)}}
        return json_response(200, body)

    # ---- answers ------------------------------------------------------------------------------------------------

    def decorate(self, req: Request, resp: Response) -> None:
        if "/search" in req.path:
            return  # the search endpoints do not send the standard rate-limit headers
        used = self.sandbox.stats.total("requests", self.name)
        used_share = self.sandbox.window_used(self.name)
        remaining = max(0, 190 - int(190 * used_share)) if used_share is not None else 189
        resp.headers.update({
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": "190",
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Secondly": "19",
            "X-HubSpot-RateLimit-Secondly-Remaining": str(min(19, remaining)),
        })

    def throttle(self, req: Request, retry_after: float) -> Response:
        body = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT", "correlationId": correlation_id(), "policyName": "TEN_SECONDLY_ROLLING",
                "groupName": "publicapi:private-app:sandbox"}
        return json_response(429, body, {"Retry-After": retry_after_header(retry_after),
                                         "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                                         "X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "0",
                                         "X-HubSpot-RateLimit-Secondly": "19",
                                         "X-HubSpot-RateLimit-Secondly-Remaining": "0"})

    def error(self, req: Request, status: int) -> Response:
        return json_response(status, {"status": "error", "message": "internal error", "correlationId": correlation_id(),
                                      "category": "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE"})

    def unauthorized(self, req: Request) -> Response:
        return json_response(401, {"status": "error", "message": "Authentication credentials not found. This API "
                                   "supports OAuth 2.0 authentication and you can find more details at "
                                   "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                                   "correlationId": correlation_id(), "category": "INVALID_AUTHENTICATION"})

    def expired(self, req: Request) -> Response:
        return json_response(401, {"status": "error", "message": "The OAuth token used to make this call expired "
                                   f"{h(req.number) % 60 + 1} second(s) ago.", "correlationId": correlation_id(),
                                   "category": "EXPIRED_AUTHENTICATION", "context": {"expire time": []}})
