"""The shared HTTP layer's own pieces: pacing, the sliding-window pacer, Retry-After, redaction, CA bundles."""
from __future__ import annotations

import connectors.http as http
from connectors.http import Pacer, pacing, parse_retry_after, redact, setup_ca_bundle


def test_pacing_from_requests_per_second():
    assert pacing(None, None) == {}
    assert pacing(None, 5.0) == {"max_requests": 5, "per_seconds": 1.0}
    assert pacing(9.5, 5.0) == {"max_requests": 95, "per_seconds": 10.0}  # not truncated to 9
    assert pacing(0.5, None) == {"max_requests": 1, "per_seconds": 2.0}


def test_pacer_is_a_sliding_window(monkeypatch):
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(round(seconds, 3))
        now[0] += seconds

    monkeypatch.setattr(http, "SLEEP", sleep)
    pacer = Pacer(3, 10.0, clock=lambda: now[0])
    for _ in range(3):
        pacer.wait()
    assert slept == []  # three fit in the window
    now[0] = 4.0
    pacer.wait()  # the fourth waits until the first leaves the window (t = 10)
    assert slept == [6.001]
    pacer.pause(30)
    pacer.wait()
    assert slept[-1] == 30.0


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: retry now


def test_redact_removes_tokens_keys_and_known_secrets():
    text = ("GET https://graph.facebook.com/v21.0/act_1/insights?access_token=EAAB123secret&after=x "
            "Authorization: Bearer fake-bearer-abcdef123456 client_secret=shh api_key: k-123456 my-own-secret-value")
    out = redact(text, ["my-own-secret-value"])
    for secret in ("EAAB123secret", "fake-bearer-abcdef123456", "shh", "k-123456", "my-own-secret-value"):
        assert secret not in out
    assert "after=x" in out and "graph.facebook.com" in out


def test_ca_bundle_variables_are_merged_into_one_for_every_library(tmp_path):
    a, b = tmp_path / "a.pem", tmp_path / "b.pem"
    a.write_text("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n")
    b.write_text("-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n")
    env = {"SSL_CERT_FILE": str(a), "REQUESTS_CA_BUNDLE": str(b)}
    bundle = setup_ca_bundle(env)
    merged = open(bundle).read()
    assert "AAA" in merged and "BBB" in merged
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == env["CURL_CA_BUNDLE"] == bundle
    single = {"REQUESTS_CA_BUNDLE": str(b)}
    assert setup_ca_bundle(single) == str(b) and single["SSL_CERT_FILE"] == str(b)
    assert setup_ca_bundle({}) is None
