"""Mailchimp normalizers (spec §1.4 Mailchimp): golden files plus the rules one by one."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from normalize import Malformed
from normalize import mailchimp as mc
from normalize.events import event_id, person_key
from normalize.model import Context, Model

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CID = "5d9c0a3e6f"
SEND = "2024-02-01T14:00:00+00:00"
CTX = Context()


def rows_of(stream: str, record: dict, ctx: Context = CTX) -> list[list]:
    return [[r.table, r.values, "row"] for r in mc.NORMALIZERS[stream](record, ctx)]


@pytest.mark.parametrize("stream", sorted(mc.NORMALIZERS))
def test_golden(stream):
    raw = json.loads((GOLDEN / f"mailchimp.{stream}.raw.json").read_text())
    expected = json.loads((GOLDEN / f"mailchimp.{stream}.rows.json").read_text())
    assert len(raw) >= 2
    assert [row for record in raw for row in rows_of(stream, record)] == expected


def test_raw_only_streams_have_no_normalizer():
    assert set(mc.NORMALIZERS) == {"campaigns", "sent_to", "email_activity", "unsubscribes", "list_members"}


# ---- campaigns -----------------------------------------------------------------------------------------------


def campaign(**kw) -> dict:
    base = {"id": CID, "type": "regular", "status": "sent", "send_time": SEND, "emails_sent": 23,
            "recipients": {"list_id": "4f8a2c9e1b"},
            "settings": {"subject_line": "The dark funnel", "title": "February newsletter"},
            "tracking": {"google_analytics": "Feb%20Newsletter"}}
    base.update(kw)
    return base


def test_campaign_row():
    [row] = mc.campaign_rows(campaign(), CTX)
    assert row.table == "campaigns"
    assert row.values == {"campaign_key": "mailchimp:5d9c0a3e6f", "source_system": "mailchimp",
                          "source_campaign_id": CID, "name": "The dark funnel", "channel": "email",
                          "platform_type": "regular", "utm_campaign": "feb newsletter", "start_date": "2024-02-01"}


def test_campaign_name_falls_back_to_title_and_dates_follow_the_reporting_zone():
    ctx = Context(Model(timezone="America/Los_Angeles"))
    [row] = mc.campaign_rows(campaign(settings={"subject_line": "", "title": "Feb"}, tracking={},
                                      send_time="2024-02-01T05:00:00+00:00"), ctx)
    assert (row.values["name"], row.values["utm_campaign"], row.values["start_date"]) == ("Feb", None, "2024-01-31")


def test_campaign_without_id_or_with_a_bad_send_time_is_malformed():
    with pytest.raises(Malformed, match="id"):
        mc.campaign_rows(campaign(id=""), CTX)
    with pytest.raises(Malformed, match="send_time"):
        mc.campaign_rows(campaign(send_time="yesterday"), CTX)


# ---- sent-to -------------------------------------------------------------------------------------------------


def sent_to(status: str = "sent", email: str = "Alice@Acme-Corp.example", **kw) -> dict:
    base = {"email_id": "17362f5a2efe950de3faacffe3976076", "email_address": email, "status": status,
            "open_count": 1, "last_open": "2024-02-01T15:00:00+00:00", "campaign_id": CID,
            "list_id": "4f8a2c9e1b", "_id": f"{CID}:17362f5a2efe950de3faacffe3976076", "_send_time": SEND}
    base.update(kw)
    return base


@pytest.mark.parametrize("status, types, bounce", [
    ("sent", ["email_sent", "email_delivered"], None),
    ("hard", ["email_sent", "email_bounced"], '{"bounce_type":"hard"}'),
    ("soft", ["email_sent", "email_bounced"], '{"bounce_type":"soft"}'),
    ("", ["email_sent"], None),
])
def test_sent_to_status(status, types, bounce):
    rows = [r.values for r in mc.sent_to_events(sent_to(status), CTX)]
    assert [r["event_type"] for r in rows] == types
    assert {r["occurred_at"] for r in rows} == {"2024-02-01T14:00:00Z"}  # the campaign's send time
    assert {r["source_object"] for r in rows} == {"sent_to"}
    assert {r["source_id"] for r in rows} == {f"{CID}:17362f5a2efe950de3faacffe3976076"}
    assert {r["campaign_key"] for r in rows} == {"mailchimp:5d9c0a3e6f"}
    assert {r["channel"] for r in rows} == {"email"}
    assert {r["person_key"] for r in rows} == {person_key("alice@acme-corp.example")}
    assert rows[-1]["properties"] == (bounce if len(rows) > 1 else None)
    assert rows[0]["event_id"] == event_id("mailchimp", "sent_to", f"{CID}:17362f5a2efe950de3faacffe3976076",
                                           "email_sent", "2024-02-01T14:00:00Z")


def test_archived_member_leaves_person_sources_and_keeps_its_enrolment():
    assert mc.list_member_rows(member(status="archived"), CTX) == []
    rows = mc.list_member_rows(member(NURTURE, status="archived"), Context(Model(nurture_list_ids=(NURTURE,))))
    assert [(r.table, r.values["event_type"]) for r in rows] == [("events", "nurture_enrolled")]


@pytest.mark.parametrize("change, reason", [
    ({"email_address": ""}, "email_address"),
    ({"_send_time": None}, "_send_time"),
    ({"_send_time": "not a time"}, "_send_time"),
    ({"_id": None}, "_id"),
])
def test_sent_to_malformed(change, reason):
    with pytest.raises(Malformed, match=reason):
        mc.sent_to_events(sent_to(**change), CTX)


# ---- email activity ------------------------------------------------------------------------------------------


def activity(*items: dict, **kw) -> dict:
    base = {"campaign_id": CID, "list_id": "4f8a2c9e1b", "email_id": "d74109bc2ec8c6372cda0254a1623f41",
            "email_address": "dan@umbrella.example", "activity": list(items),
            "_id": f"{CID}:d74109bc2ec8c6372cda0254a1623f41", "_send_time": SEND}
    base.update(kw)
    return base


def test_activity_actions_map_to_events_at_their_own_time():
    url = "https://funnelsync-demo.example/demo?utm_source=mailchimp&utm_medium=email&utm_campaign=feb_newsletter"
    record = activity({"action": "open", "timestamp": "2024-02-01T15:10:00+00:00", "ip": "203.0.113.9"},
                      {"action": "click", "timestamp": "2024-02-01T15:11:30+00:00", "url": url, "ip": "203.0.113.9"},
                      {"action": "bounce", "type": "soft", "timestamp": "2024-02-03T09:00:00+00:00", "ip": ""},
                      {"action": "forward", "timestamp": "2024-02-01T16:00:00+00:00"})  # not in the spec: skipped
    rows = [r.values for r in mc.email_activity_events(record, CTX)]
    assert [(r["event_type"], r["occurred_at"], r["properties"]) for r in rows] == [
        ("email_opened", "2024-02-01T15:10:00Z", None),
        ("email_clicked", "2024-02-01T15:11:30Z", json.dumps({"url": url}, separators=(",", ":"))),
        ("email_bounced", "2024-02-03T09:00:00Z", '{"bounce_type":"soft"}'),
    ]
    assert {(r["source_object"], r["source_id"], r["campaign_key"], r["channel"]) for r in rows} == {
        ("email_activity", f"{CID}:d74109bc2ec8c6372cda0254a1623f41", "mailchimp:5d9c0a3e6f", "email")}
    assert {r["person_key"] for r in rows} == {person_key("dan@umbrella.example")}


def test_activity_same_action_in_the_same_second_counts_twice_under_one_id():
    opens = [{"action": "open", "timestamp": "2024-02-01T15:10:00+00:00"}] * 2
    [row] = mc.email_activity_events(activity(*opens), CTX)
    assert row.values["quantity"] == 2.0


def test_activity_without_actions_yields_nothing_so_a_reread_clears_old_rows():
    assert mc.email_activity_events(activity(), CTX) == []


def test_activity_malformed():
    with pytest.raises(Malformed, match="activity.timestamp"):
        mc.email_activity_events(activity({"action": "open", "timestamp": "2024-13-45"}), CTX)
    with pytest.raises(Malformed, match="email_address"):
        mc.email_activity_events(activity(email_address=None), CTX)


# ---- unsubscribes --------------------------------------------------------------------------------------------


def unsubscribe(**kw) -> dict:
    base = {"email_id": "e545376d08c12c1c0b0c223882e47867", "email_address": "rupert@tyrell.example",
            "timestamp": "2024-02-02T05:02:00+00:00", "reason": "Other", "campaign_id": CID,
            "list_id": "4f8a2c9e1b", "_id": f"{CID}:e545376d08c12c1c0b0c223882e47867", "_send_time": SEND}
    base.update(kw)
    return base


def test_unsubscribe_event():
    [row] = mc.unsubscribe_events(unsubscribe(), CTX)
    v = row.values
    assert (v["event_type"], v["occurred_at"], v["event_date"], v["source_object"], v["campaign_key"],
            v["properties"]) == ("email_unsubscribed", "2024-02-02T05:02:00Z", "2024-02-02", "unsubscribe",
                                 "mailchimp:5d9c0a3e6f", '{"reason":"Other"}')
    assert mc.unsubscribe_events(unsubscribe(reason=""), CTX)[0].values["properties"] is None
    with pytest.raises(Malformed, match="timestamp"):
        mc.unsubscribe_events(unsubscribe(timestamp=""), CTX)


# ---- list members --------------------------------------------------------------------------------------------

NURTURE = "9c3d7e2a5f"


def member(list_id: str = "4f8a2c9e1b", status: str = "subscribed", tags=(), **kw) -> dict:
    base = {"id": "17362f5a2efe950de3faacffe3976076", "email_address": "Alice@Acme-Corp.example", "status": status,
            "timestamp_signup": "2024-02-19T09:29:00+00:00", "timestamp_opt": "2024-02-19T09:30:00+00:00",
            "last_changed": "2024-03-01T10:00:00+00:00", "tags": [{"id": i, "name": n} for i, n in enumerate(tags)],
            "list_id": list_id, "_id": f"{list_id}:17362f5a2efe950de3faacffe3976076"}
    base.update(kw)
    return base


def test_member_is_a_person_source():
    [row] = mc.list_member_rows(member(), CTX)
    assert row.table == "person_sources"
    assert row.values == {
        "source_system": "mailchimp", "source_object": "list_member",
        "source_id": "4f8a2c9e1b:17362f5a2efe950de3faacffe3976076", "person_key": person_key("alice@acme-corp.example"),
        "email": "alice@acme-corp.example", "account_key": row.values["account_key"],
        "first_seen_at": "2024-02-19T09:30:00Z",
        "ext_ids": '{"mailchimp_email_id":"17362f5a2efe950de3faacffe3976076"}'}
    assert row.values["account_key"].startswith("a_")


def test_first_seen_falls_back_to_signup_then_last_changed():
    [row] = mc.list_member_rows(member(timestamp_opt=""), CTX)
    assert row.values["first_seen_at"] == "2024-02-19T09:29:00Z"
    [row] = mc.list_member_rows(member(timestamp_opt="", timestamp_signup=""), CTX)
    assert row.values["first_seen_at"] == "2024-03-01T10:00:00Z"


@pytest.mark.parametrize("model, record, enrolled", [
    (Model(nurture_list_ids=(NURTURE,)), member(NURTURE), True),
    (Model(nurture_list_ids=(NURTURE,)), member(), False),
    (Model(nurture_tags=("nurture",)), member(tags=["VIP", "Nurture "]), True),
    (Model(nurture_tags=("nurture",)), member(tags=["trial"]), False),
    (Model(nurture_list_ids=(NURTURE,)), member(NURTURE, status="pending", timestamp_opt=""), False),
    (Model(nurture_list_ids=(NURTURE,)), member(NURTURE, status="unsubscribed"), True),
    (Model(), member(NURTURE, tags=["nurture"]), False),
])
def test_nurture_enrolled(model, record, enrolled):
    rows = mc.list_member_rows(record, Context(model))
    events = [r.values for r in rows if r.table == "events"]
    assert len(events) == int(enrolled)
    if enrolled:
        e = events[0]
        assert (e["event_type"], e["occurred_at"], e["source_object"], e["source_id"], e["person_key"]) == (
            "nurture_enrolled", "2024-02-19T09:30:00Z", "list_member", record["_id"], rows[0].values["person_key"])
        assert json.loads(e["properties"])["list_id"] == record["list_id"]


def test_archived_member_leaves_person_sources_and_keeps_its_enrolment():
    assert mc.list_member_rows(member(status="archived"), CTX) == []
    rows = mc.list_member_rows(member(NURTURE, status="archived"), Context(Model(nurture_list_ids=(NURTURE,))))
    assert [(r.table, r.values["event_type"]) for r in rows] == [("events", "nurture_enrolled")]


@pytest.mark.parametrize("change, reason", [
    ({"email_address": ""}, "email_address"),
    ({"email_address": None}, "email_address"),
    ({"timestamp_opt": "19/02/2024"}, "timestamp_opt"),
    ({"last_changed": "later"}, "last_changed"),
])
def test_member_malformed(change, reason):
    with pytest.raises(Malformed, match=reason):
        mc.list_member_rows(member(**change), CTX)


def test_normalizers_are_fast():
    record = sent_to()
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        mc.sent_to_events(record, CTX)
    per_record = (time.perf_counter() - started) / n
    assert per_record < 100e-6  # ~10 µs here (three events, each hashed); generous for slow CI
