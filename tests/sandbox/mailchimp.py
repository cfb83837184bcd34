"""Mailchimp Marketing API 3.0 as the SDK meets it (base_url = https://127.0.0.1:PORT/mailchimp/3.0).

Auth: HTTP basic, any user name, the API key as password ("<key>-us6"); 401 problem "API Key Invalid".
Collections page with `count` (<= 1000) and `offset` and report `total_items`; `fields` / `exclude_fields` are
accepted (the sandbox sends every field):
- GET /lists -> {lists[{id, web_id, name, stats{member_count, ...}, date_created, ...}], total_items}
- GET /lists/{list_id}/members?sort_field=last_changed&sort_dir=ASC&since_last_changed=&before_last_changed=
  -> {members[{id (md5 of the lowercased address), email_address, unique_email_id, status, merge_fields,
  timestamp_signup, timestamp_opt, last_changed, tags, list_id, ...}], list_id, total_items}; since_ is exclusive
  ("changed after"), before_ exclusive.
- GET /campaigns?status=sent&sort_field=send_time&sort_dir=ASC&since_send_time=&before_send_time=
  -> {campaigns[{id, type, status, send_time, emails_sent, recipients{list_id}, settings{subject_line, title},
  tracking{google_analytics}, ...}], total_items}
- GET /reports/{campaign_id}/sent-to -> {sent_to[{email_id, email_address, status sent|hard|soft, ...}]},
  /email-activity -> {emails[{email_id, email_address, activity[{action open|click|bounce, timestamp, url, ip}]}]},
  /unsubscribed -> {unsubscribes[{email_id, email_address, timestamp, reason}]}, /reports/{id} -> the report.
Errors are RFC 7807 `application/problem+json` {type, title, status, detail, instance}. Throttle: 429 "Too Many
Requests" (Mailchimp's limit is 10 simultaneous connections) with Retry-After.
Malformed records: members of the first list whose index is in `malformed` come without email_address.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any

from .base import Api
from .common import DAY_MS, END_MS, START_MS, company_domain, h, mc_time, parse_time, pick
from .server import Request, Response, correlation_id, json_response, retry_after_header
from .timeline import Timeline

PROBLEM = "application/problem+json; charset=utf-8"


def md5(text: str) -> str:
    return hashlib.md5(text.lower().encode()).hexdigest()


class Mailchimp(Api):
    name = "mailchimp"
    api_key = "0123456789abcdef0123456789abcdef-us6"  # a fake key in Mailchimp's shape

    def __init__(self, sandbox):
        super().__init__(sandbox)
        span = END_MS - START_MS
        self.n_lists = self.size("lists", 2) if "mailchimp.lists" in sandbox.sizes else 2
        self.n_members = self.size("members", 1000)
        self.lists = [f"{h('list', k):016x}"[:10] for k in range(self.n_lists)]
        step = max(1000, span // self.n_members // 1000 * 1000)  # whole seconds: the API's time precision
        self.members = [Timeline(self.n_members, START_MS + k * 1000, step) for k in range(self.n_lists)]
        self.n_campaigns = self.size("campaigns", 12) if "mailchimp.campaigns" in sandbox.sizes else 12
        self.n_recipients = self.size("recipients", 200)
        self._totals: dict[int, dict[str, int]] = {}
        self.campaign_step = span // self.n_campaigns
        self.campaigns = [f"{h('campaign', k):016x}"[:10] for k in range(self.n_campaigns)]
        sandbox.tokens.static[self.name].add(self.api_key)

    @property
    def base_url(self) -> str:
        return f"{self.sandbox.url}/{self.name}/3.0"

    def source(self, **overrides: Any) -> dict:
        return {"name": "mailchimp", "type": "mailchimp", "api_key": self.api_key, "base_url": self.base_url,
                "start_date": "2024-01-01", **overrides}

    def credential(self, req: Request) -> str | None:
        value = req.headers.get("Authorization") or ""
        if not value.lower().startswith("basic "):
            return None
        try:
            return base64.b64decode(value[6:]).decode().split(":", 1)[1]
        except (ValueError, IndexError):
            return None

    def change(self, list_index: int = 0, fraction: float = 0.01, at: int | None = None, step: int = 1000) -> list[str]:
        tl = self.members[list_index]
        every = max(1, round(1 / fraction))
        picked = list(range(len(tl._rounds) % every, tl.n, every))
        tl.change(picked, at if at is not None else -(-tl.end // 1000) * 1000, step)
        return [f"{self.lists[list_index]}:{md5(self.email(list_index, i))}" for i in picked]

    # ---- records ----------------------------------------------------------------------------------------------

    def email(self, list_index: int, i: int) -> str:
        return f"contact{i * self.n_lists + list_index}@{company_domain((i * self.n_lists + list_index) % 300)}"

    def member(self, list_index: int, i: int, v: int, t: int) -> dict:
        email = self.email(list_index, i)
        created = self.members[list_index].base_time(i) - (i % 4) * DAY_MS
        status = "unsubscribed" if i % 20 == 7 else ("pending" if i % 33 == 5 else "subscribed")
        tags = [{"id": 101, "name": "Nurture"}] if i % 10 == 3 else []
        m = {
            "id": md5(email), "email_address": email, "unique_email_id": md5("u" + email)[:10],
            "contact_id": md5("c" + email), "full_name": f"Member {i}", "web_id": 100000 + i,
            "email_type": "html", "status": status, "consents_to_one_to_one_messaging": True,
            "merge_fields": {"FNAME": pick(("Ann", "Bo", "Cy"), i), "LNAME": f"Member{i}" + (f"v{v}" if v else "")},
            "stats": {"avg_open_rate": round((i % 10) / 10, 2), "avg_click_rate": round((i % 5) / 20, 2)},
            "ip_signup": "", "timestamp_signup": mc_time(created), "ip_opt": "198.51.100.7",
            "timestamp_opt": "" if status == "pending" else mc_time(created + 60_000), "member_rating": 2,
            "last_changed": mc_time(t), "language": "", "vip": False, "email_client": "",
            "location": {"latitude": 0, "longitude": 0, "gmtoff": 0, "dstoff": 0, "country_code": "", "timezone": ""},
            "source": "API - Generic", "tags_count": len(tags), "tags": tags, "list_id": self.lists[list_index],
        }
        if list_index == 0 and i in self.malformed:
            del m["email_address"]
        return m

    def campaign_time(self, k: int) -> int:
        return START_MS + k * self.campaign_step + 15 * 3_600_000

    def campaign(self, k: int) -> dict:
        cid = self.campaigns[k]
        list_index = k % self.n_lists
        sent = self.campaign_time(k)
        return {
            "id": cid, "web_id": 2000 + k, "type": "regular", "create_time": mc_time(sent - DAY_MS),
            "archive_url": f"http://eepurl.com/sb{k}", "status": "sent", "emails_sent": self.n_recipients,
            "send_time": mc_time(sent), "content_type": "template", "needs_block_refresh": False, "resendable": True,
            "recipients": {"list_id": self.lists[list_index], "list_is_active": True, "list_name": f"List {list_index}",
                           "segment_text": "", "recipient_count": self.n_recipients},
            "settings": {"subject_line": f"Sandbox newsletter #{k}", "preview_text": "", "title": f"Newsletter {k}",
                         "from_name": "Funnelsync Demo", "reply_to": "news@funnelsync-demo.example",
                         "use_conversation": False, "to_name": "*|FNAME|*", "folder_id": "", "authenticate": True,
                         "auto_footer": False, "inline_css": False, "auto_tweet": False, "fb_comments": True,
                         "timewarp": False, "template_id": 10, "drag_and_drop": True},
            "tracking": {"opens": True, "html_clicks": True, "text_clicks": False, "goal_tracking": False,
                         "ecomm360": False, "google_analytics": f"newsletter_{k}", "clicktale": ""},
            "report_summary": {"opens": self.totals(k)["opens"], "unique_opens": self.totals(k)["opens"],
                               "open_rate": self.totals(k)["opens"] / self.n_recipients,
                               "clicks": self.totals(k)["clicks"], "subscriber_clicks": self.totals(k)["clicks"],
                               "click_rate": self.totals(k)["clicks"] / self.n_recipients},
            "delivery_status": {"enabled": False},
        }

    def recipient(self, k: int, r: int) -> tuple[str, str, int]:
        list_index = k % self.n_lists
        i = (r * 7 + k) % self.n_members
        email = self.email(list_index, i)
        return md5(email), email, list_index

    # ---- routing ----------------------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if not parts or parts[0] != "3.0":
            return self.problem(404, "Resource Not Found", "The requested resource could not be found.")
        parts = parts[1:]
        count = min(1000, int(req.q("count") or 10))
        offset = int(req.q("offset") or 0)
        if parts == ["lists"]:
            items = [{"id": lid, "web_id": 300 + k, "name": f"List {k}", "contact": {"company": "Funnelsync Demo"},
                      "date_created": mc_time(START_MS - 30 * DAY_MS), "list_rating": 3, "visibility": "prv",
                      "double_optin": True, "stats": {"member_count": self.n_members, "unsubscribe_count": 0,
                                                      "cleaned_count": 0, "campaign_count": self.n_campaigns}}
                     for k, lid in enumerate(self.lists)]
            return json_response(200, {"lists": items[offset:offset + count], "total_items": len(items),
                                       "constraints": {"may_create": True, "max_instances": 5, "current_total_instances": len(items)}})
        if len(parts) == 3 and parts[0] == "lists" and parts[2] == "members":
            if parts[1] not in self.lists:
                return self.problem(404, "Resource Not Found", "The requested resource could not be found.")
            li = self.lists.index(parts[1])
            since = parse_time(req.q("since_last_changed"))
            before = parse_time(req.q("before_last_changed"))
            lo = since + 1000 if since is not None else -(1 << 62)  # "changed after": whole seconds
            hi = before if before is not None else 1 << 62
            tl = self.members[li]
            members = [self.member(li, i, v, t) for i, t, v in tl.items(lo, hi, offset, count)]
            return json_response(200, {"members": members, "list_id": parts[1], "total_items": tl.count(lo, hi)})
        if parts == ["campaigns"]:
            since = parse_time(req.q("since_send_time"))
            before = parse_time(req.q("before_send_time"))
            ks = [k for k in range(self.n_campaigns)
                  if (since is None or self.campaign_time(k) > since) and (before is None or self.campaign_time(k) < before)]
            if req.q("status") not in (None, "sent"):
                ks = []
            return json_response(200, {"campaigns": [self.campaign(k) for k in ks[offset:offset + count]],
                                       "total_items": len(ks)})
        if parts[0] == "reports" and len(parts) >= 2:
            if parts[1] not in self.campaigns:
                return self.problem(404, "Resource Not Found", "The requested resource could not be found.")
            k = self.campaigns.index(parts[1])
            if len(parts) == 2:
                return json_response(200, self.report(k))
            if parts[2] == "sent-to":
                return self.report_page(k, "sent_to", offset, count, self.sent_to)
            if parts[2] == "email-activity":
                return self.report_page(k, "emails", offset, count, self.activity)
            if parts[2] == "unsubscribed":
                return self.report_page(k, "unsubscribes", offset, count, self.unsubscribe, every=25)
        return self.problem(404, "Resource Not Found", "The requested resource could not be found.")

    def report_page(self, k: int, key: str, offset: int, count: int, make, every: int = 1) -> Response:
        rs = list(range(0, self.n_recipients, every))
        items = [make(k, r) for r in rs[offset:offset + count]]
        return json_response(200, {key: items, "campaign_id": self.campaigns[k], "total_items": len(rs)})

    def sent_to(self, k: int, r: int) -> dict:
        eid, email, li = self.recipient(k, r)
        status = "hard" if r % 50 == 11 else ("soft" if r % 50 == 23 else "sent")
        return {"email_id": eid, "email_address": email, "merge_fields": {"FNAME": "", "LNAME": ""}, "vip": False,
                "status": status, "open_count": r % 3, "last_open": mc_time(self.campaign_time(k) + 3_600_000) if r % 3 else "",
                "absplit_group": "", "gmt_offset": 0, "campaign_id": self.campaigns[k],
                "list_id": self.lists[li], "list_is_active": True}

    def activity(self, k: int, r: int) -> dict:
        eid, email, li = self.recipient(k, r)
        sent = self.campaign_time(k)
        acts = []
        if r % 3:
            acts.append({"action": "open", "timestamp": mc_time(sent + (r % 48) * 3_600_000), "ip": "198.51.100.9"})
        if r % 6 == 1:
            acts.append({"action": "click", "timestamp": mc_time(sent + (r % 48) * 3_600_000 + 60_000),
                         "url": f"https://www.funnelsync-demo.example/blog?utm_campaign=newsletter_{k}",
                         "ip": "198.51.100.9"})
        if r % 50 == 11:
            acts = [{"action": "bounce", "type": "hard", "timestamp": mc_time(sent + 60_000)}]
        return {"campaign_id": self.campaigns[k], "list_id": self.lists[li], "list_is_active": True,
                "email_id": eid, "email_address": email, "activity": acts}

    def unsubscribe(self, k: int, r: int) -> dict:
        eid, email, li = self.recipient(k, r)
        return {"email_id": eid, "email_address": email, "merge_fields": {"FNAME": "", "LNAME": ""}, "vip": False,
                "timestamp": mc_time(self.campaign_time(k) + DAY_MS), "reason": "N/A (Unsubscribed from the link)",
                "campaign_id": self.campaigns[k], "list_id": self.lists[li], "list_is_active": True}

    def report(self, k: int) -> dict:
        c, t = self.campaign(k), self.totals(k)
        return {"id": c["id"], "campaign_title": c["settings"]["title"], "type": "regular",
                "list_id": c["recipients"]["list_id"], "list_is_active": True, "list_name": c["recipients"]["list_name"],
                "subject_line": c["settings"]["subject_line"], "preview_text": "", "emails_sent": self.n_recipients,
                "abuse_reports": 0, "unsubscribed": t["unsubscribed"], "send_time": c["send_time"],
                "bounces": {"hard_bounces": t["hard"], "soft_bounces": t["soft"], "syntax_errors": 0},
                "forwards": {"forwards_count": 0, "forwards_opens": 0},
                "opens": {"opens_total": t["opens"], "unique_opens": t["opens"],
                          "open_rate": t["opens"] / self.n_recipients, "last_open": c["send_time"]},
                "clicks": {"clicks_total": t["clicks"], "unique_clicks": t["clicks"], "unique_subscriber_clicks":
                           t["clicks"], "click_rate": t["clicks"] / self.n_recipients, "last_click": c["send_time"]}}

    def totals(self, k: int) -> dict[str, int]:
        """A report's totals, counted from the very sent-to, activity and unsubscribe records the sandbox serves (as
        Mailchimp's own are): unique = distinct recipients."""
        if k not in self._totals:
            who: dict[str, set] = {"opens": set(), "clicks": set(), "hard": set(), "soft": set(),
                                   "unsubscribed": set()}
            for r in range(self.n_recipients):
                email = self.recipient(k, r)[1]
                status = self.sent_to(k, r)["status"]
                if status in ("hard", "soft"):
                    who[status].add(email)
                for act in self.activity(k, r)["activity"]:
                    if act["action"] in ("open", "click"):
                        who[act["action"] + "s"].add(email)
            who["unsubscribed"] = {self.recipient(k, r)[1] for r in range(0, self.n_recipients, 25)}
            self._totals[k] = {key: len(v) for key, v in who.items()}
        return self._totals[k]

    # ---- answers ----------------------------------------------------------------------------------------------

    def problem(self, status: int, title: str, detail: str, headers: dict | None = None) -> Response:
        return json_response(status, {"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": title,
                                      "status": status, "detail": detail, "instance": correlation_id()},
                             headers, content_type=PROBLEM)

    def throttle(self, req: Request, retry_after: float) -> Response:
        return self.problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.",
                            {"Retry-After": retry_after_header(retry_after)})

    def error(self, req: Request, status: int) -> Response:
        return self.problem(status, "Internal Server Error" if status == 500 else "Service Unavailable",
                            "An unexpected internal error has occurred. Please contact Support for more information.")

    def unauthorized(self, req: Request) -> Response:
        return self.problem(401, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the "
                            "wrong datacenter.")
