"""The sandbox itself: TLS from the test CA, the documented shapes and refusals the connectors must cope with, the
fault schedule, the sliding-window rate limiter and the lazy timeline (checked against brute force)."""
from __future__ import annotations

import csv
import io
import json
import random
import time

import pytest
import requests

from tests.sandbox import Fault, RateLimit, Sandbox
from tests.sandbox.timeline import Timeline


@pytest.fixture(scope="module")
def sb():
    with Sandbox(scale=0.2) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _clean(sb):
    sb.reset()
    yield
    sb.reset()


def get(sb, url, **kw):
    return requests.get(url, verify=sb.ca_file, timeout=10, **kw)


def test_tls_is_verified_against_the_generated_ca_only(sb):
    import certifi

    ok = get(sb, f"{sb.linkedin_ads.base_url}/adAccounts/508000000",
             headers={"Authorization": f"Bearer {sb.linkedin_ads.token}", "LinkedIn-Version": "202409"})
    assert ok.status_code == 200 and ok.json()["currency"] == "USD"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(sb.url + "/hubspot/marketing/v3/forms/", verify=certifi.where(), timeout=10)


def test_fault_schedule_after_count_every():
    f = Fault("error", after=2, count=2, every=5)
    assert [n for n in range(1, 16) if f.hit()] == [3, 4, 8, 9, 13, 14]
    once = Fault("drop", after=1)
    assert [n for n in range(1, 6) if once.hit()] == [2]


def test_sliding_window_rate_limit_answers_429_with_retry_after(sb):
    sb.rate_limits.append(RateLimit(5, 0.6, api="hubspot"))
    headers = {"Authorization": f"Bearer {sb.hubspot.token}"}
    answers = [get(sb, f"{sb.hubspot.base_url}/marketing/v3/forms/", headers=headers) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    assert answers[-1].headers["Retry-After"] == "1"
    assert answers[-1].json()["errorType"] == "RATE_LIMIT"
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "190"
    assert sb.stats.total("served", "hubspot") == 5 and sb.stats.total("rate_limited", "hubspot") == 2
    time.sleep(0.65)
    assert get(sb, f"{sb.hubspot.base_url}/marketing/v3/forms/", headers=headers).status_code == 200


def test_throttle_answers_are_each_platforms_own(sb):
    sb.faults.append(Fault("throttle", retry_after=3, count=10))
    r = get(sb, f"{sb.meta_ads.base_url}/act_1234567890/insights", params={"access_token": sb.meta_ads.token})
    assert r.status_code == 400 and r.json()["error"]["code"] == 17
    usage = json.loads(r.headers["x-business-use-case-usage"])
    assert next(iter(usage.values()))[0]["estimated_time_to_regain_access"] == 1
    r = get(sb, f"{sb.salesforce.base_url}/services/data/v60.0/sobjects/Lead/describe",
            headers={"Authorization": f"Bearer {sb.salesforce.token}"})
    assert r.status_code == 403 and r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert r.headers["Sforce-Limit-Info"].startswith("api-usage=")
    r = requests.post(f"{sb.google_ads.base_url}/customers/1234567890/googleAds:searchStream", json={"query": ""},
                      verify=sb.ca_file, timeout=10)
    details = r.json()[0]["error"]["details"][0]["errors"][0]
    assert r.status_code == 429 and details["details"]["quotaErrorDetails"]["retryDelay"] == "3s"


def test_linkedin_refuses_encoded_restli_syntax_and_missing_versions(sb):
    headers = {"Authorization": f"Bearer {sb.linkedin_ads.token}", "LinkedIn-Version": "202409"}
    good = ("q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY&dateRange=(start:(year:2024,month:1,day:1),"
            "end:(year:2024,month:1,day:2))&accounts=List(urn%3Ali%3AsponsoredAccount%3A508000000)"
            "&fields=dateRange,pivotValues,impressions,costInUsd")
    r = get(sb, f"{sb.linkedin_ads.base_url}/adAnalytics?{good}", headers=headers)
    assert r.status_code == 200
    rows = r.json()["elements"]
    assert len(rows) == 2 * sb.linkedin_ads.n_campaigns
    assert isinstance(rows[0]["impressions"], int) and isinstance(rows[0]["costInUsd"], str)
    encoded = good.replace("(", "%28").replace(")", "%29")
    assert get(sb, f"{sb.linkedin_ads.base_url}/adAnalytics?{encoded}", headers=headers).status_code == 400
    raw_urn = good.replace("urn%3Ali%3AsponsoredAccount%3A", "urn:li:sponsoredAccount:")
    assert get(sb, f"{sb.linkedin_ads.base_url}/adAnalytics?{raw_urn}", headers=headers).status_code == 400
    assert get(sb, f"{sb.linkedin_ads.base_url}/adAnalytics?{good}",
               headers={"Authorization": headers["Authorization"]}).status_code == 400
    old = get(sb, f"{sb.linkedin_ads.base_url}/adAnalytics?{good}", headers={**headers, "LinkedIn-Version": "202301"})
    assert old.status_code == 426 and old.json()["code"] == "NONEXISTENT_VERSION"


def test_salesforce_soql_paging_and_bulk_csv(sb):
    auth = {"Authorization": f"Bearer {sb.salesforce.token}"}
    base = f"{sb.salesforce.base_url}/services/data/v60.0"
    n = sb.salesforce.n("Lead")
    count = get(sb, f"{base}/queryAll", headers=auth, params={"q": "SELECT COUNT() FROM Lead WHERE "
                                                                  "SystemModstamp >= 2024-01-01T00:00:00Z"})
    assert count.json() == {"totalSize": n, "done": True, "records": []}
    bad = get(sb, f"{base}/queryAll", headers=auth, params={"q": "SELECT Id, Nope FROM Lead"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
    sb.salesforce.page_size = 70
    try:
        q = "SELECT Id, SystemModstamp FROM Lead WHERE SystemModstamp >= 2024-01-01T00:00:00Z ORDER BY SystemModstamp, Id"
        body = get(sb, f"{base}/queryAll", headers=auth, params={"q": q}).json()
        ids = [r["Id"] for r in body["records"]]
        while not body["done"]:
            body = get(sb, sb.salesforce.base_url + body["nextRecordsUrl"], headers=auth).json()
            ids += [r["Id"] for r in body["records"]]
    finally:
        sb.salesforce.page_size = 2000
    assert len(ids) == n == len(set(ids)) and ids == sorted(ids)
    job = requests.post(f"{base}/jobs/query", headers=auth, verify=sb.ca_file, timeout=10, json={
        "operation": "queryAll", "query": "SELECT Id, Email, IsConverted FROM Lead WHERE SystemModstamp >= "
                                          "2024-01-01T00:00:00Z", "contentType": "CSV"}).json()
    assert job["state"] == "UploadComplete"
    assert get(sb, f"{base}/jobs/query/{job['id']}", headers=auth).json()["state"] == "InProgress"
    assert get(sb, f"{base}/jobs/query/{job['id']}", headers=auth).json()["state"] == "JobComplete"
    rows, locator = [], None
    while locator != "null":
        params = {"maxRecords": 100, **({"locator": locator} if locator else {})}
        r = get(sb, f"{base}/jobs/query/{job['id']}/results", headers=auth, params=params)
        got = list(csv.DictReader(io.StringIO(r.text)))
        assert int(r.headers["Sforce-NumberOfRecords"]) == len(got) <= 100
        rows += got
        locator = r.headers["Sforce-Locator"]
    assert [r["Id"] for r in rows] == ids and rows[0]["IsConverted"] in ("true", "false")


def test_salesforce_token_endpoint_checks_the_client(sb):
    url = f"{sb.salesforce.base_url}/services/oauth2/token"
    bad = requests.post(url, data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
                        verify=sb.ca_file, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    good = requests.post(url, data={"grant_type": "client_credentials", "client_id": sb.salesforce.client_id,
                                    "client_secret": sb.salesforce.client_secret}, verify=sb.ca_file, timeout=10)
    assert good.json()["instance_url"] == sb.salesforce.base_url
    sb.tokens.ttl["salesforce"] = 1
    auth = {"Authorization": f"Bearer {good.json()['access_token']}"}
    describe = f"{sb.salesforce.base_url}/services/data/v60.0/sobjects/Account/describe"
    assert get(sb, describe, headers=auth).status_code == 200
    expired = get(sb, describe, headers=auth)
    assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_dropped_connection_is_cut_mid_body(sb):
    sb.faults.append(Fault("drop", api="hubspot", match="/marketing/v3/forms"))
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        get(sb, f"{sb.hubspot.base_url}/marketing/v3/forms/", headers={"Authorization": f"Bearer {sb.hubspot.token}"})
    assert sb.stats.total("drop", "hubspot") == 1


def test_timeline_matches_brute_force():
    rnd = random.Random(7)
    tl = Timeline(500, 1_000, 7, group=3)
    tl.change(list(range(3, 500, 50)), at=10_000, step=5)
    tl.change([3, 4, 5, 6], at=20_000, step=1)
    order = sorted((tl.time_of(i), i) for i in range(500))
    assert [i for i, _, _ in tl.items(-10**9, 10**9)] == [i for _, i in order]
    for _ in range(300):
        lo = rnd.randint(0, 21_000)
        hi = lo + rnd.randint(0, 21_000)
        floor = rnd.choice([0, rnd.randint(0, 500)])
        want = [i for t, i in order if lo <= t < hi and i >= floor]
        offset, limit = rnd.randint(0, len(want)), rnd.randint(0, 40)
        assert tl.count(lo, hi, floor) == len(want)
        assert [i for i, _, _ in tl.items(lo, hi, offset, limit, floor)] == want[offset:offset + limit]
    assert tl.version_of(3) == 2 and tl.version_of(53) == 1 and tl.version_of(0) == 0
