"""No secret from the configuration appears in any log line, error message, warehouse row or cassette.

Real connectors run through the real CLI (tests/harness.py) against recorded HTTP, with distinctive secrets
passed the way users pass them (environment variables interpolated into funnelsync.toml)."""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from funnelsync.demo import demo_config_text

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "harness.py"
SECRET = "pat-na1-s3cr3t0000-aaaa-bbbb-cccc-1234567890ab"


def run_cli(tmp: Path, cassette: str, toml: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    (tmp / "funnelsync.toml").write_text(toml)
    e = {**os.environ, "FUNNELSYNC_NOW": "2024-04-01T00:00:00Z", "HARNESS_CASSETTE": cassette, **env}
    return subprocess.run([sys.executable, str(HARNESS), "0", "--config", str(tmp / "funnelsync.toml"), "sync", *args],
                          capture_output=True, text=True, env=e, timeout=300)


def warehouse_text(db: Path) -> str:
    conn = sqlite3.connect(db)
    out = []
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in conn.execute(f"SELECT * FROM {table}"):
            out.append(repr(row))
    return "\n".join(out)


# the demo's configuration (the demo cassette was recorded with its [model]), the token from the environment
HUBSPOT_TOML = demo_config_text(["hubspot"]).replace('"test-token-hubspot"', '"${HUBSPOT_ACCESS_TOKEN}"')


def test_a_successful_sync_keeps_the_token_out_of_logs_and_warehouse(tmp_path):
    done = run_cli(tmp_path, "hubspot/demo.yaml", HUBSPOT_TOML, {"HUBSPOT_ACCESS_TOKEN": SECRET})
    assert done.returncode == 0, done.stderr[-2000:]
    assert SECRET not in done.stdout + done.stderr
    text = warehouse_text(tmp_path / "warehouse.db")  # the demo config's file name
    assert "hubspot" in text and SECRET not in text


def test_a_rejected_api_key_is_exit_3_and_never_printed(tmp_path):
    toml = ('[warehouse]\nurl = "sqlite:///wh.db"\n\n[sources.mailchimp]\napi_key = "${MAILCHIMP_API_KEY}"\n'
            'start_date = "2024-01-01"\n')
    done = run_cli(tmp_path, "mailchimp/lists_401.yaml", toml, {"MAILCHIMP_API_KEY": SECRET + "-us6"},
                   "--stream", "lists")
    assert done.returncode == 3, done.stderr[-2000:]
    assert SECRET not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert SECRET not in warehouse_text(tmp_path / "wh.db")


def test_a_rejected_salesforce_client_secret_is_exit_3_and_never_printed(tmp_path):
    toml = ('[warehouse]\nurl = "sqlite:///wh.db"\n\n[sources.salesforce]\n'
            'instance_url = "https://acme.my.salesforce.com"\nlogin_url = "https://login.salesforce.com"\n'
            'client_id = "${SF_ID}"\nclient_secret = "${SF_SECRET}"\nstart_date = "2024-01-01"\n')
    done = run_cli(tmp_path, "salesforce/oauth_invalid_client.yaml", toml, {"SF_ID": "client-id-x", "SF_SECRET": SECRET})
    assert done.returncode == 3, done.stderr[-2000:]
    assert SECRET not in done.stdout + done.stderr
    assert SECRET not in warehouse_text(tmp_path / "wh.db")


CASSETTES = sorted((ROOT / "cassettes").rglob("*.yaml"))
CREDENTIAL_HEADERS = {"authorization", "developer-token", "x-api-key", "cookie", "set-cookie"}
CREDENTIAL_PARAMS = re.compile(r"[?&](access_token|api_key|apikey|hapikey|key|client_secret|refresh_token)=([^&\"'\s]*)")
CREDENTIAL_FORM = re.compile(r"(?:^|&)(client_secret|assertion|refresh_token|password)=([^&]*)")
TOKEN_BODY = re.compile(r'"(access_token|refresh_token|id_token)"\s*:\s*"([^"]*)"')


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: str(p.relative_to(ROOT / "cassettes")))
def test_cassettes_hold_no_credentials(path):
    data = yaml.safe_load(path.read_text())
    for i, interaction in enumerate(data.get("interactions", [])):
        req, resp = interaction["request"], interaction["response"]
        for name, values in (req.get("headers") or {}).items():
            if name.lower() in CREDENTIAL_HEADERS:
                assert all(v == "REDACTED" for v in values), f"{path.name}#{i}: request header {name}"
        for name in resp.get("headers") or {}:
            assert name.lower() not in ("set-cookie",), f"{path.name}#{i}: response sets a cookie"
        for param, value in CREDENTIAL_PARAMS.findall(req["uri"]):
            assert value == "REDACTED", f"{path.name}#{i}: query parameter {param}"
        body = req.get("body") or ""
        body = body.decode() if isinstance(body, bytes) else str(body)
        for field, value in CREDENTIAL_FORM.findall(body):
            assert value == "REDACTED", f"{path.name}#{i}: form field {field}"
        rbody = resp.get("body", {}).get("string") or ""
        rbody = rbody.decode() if isinstance(rbody, bytes) else str(rbody)
        for field, value in TOKEN_BODY.findall(rbody):
            assert value == "REDACTED", f"{path.name}#{i}: response {field}"
        for param, value in CREDENTIAL_PARAMS.findall(rbody):
            assert value == "REDACTED", f"{path.name}#{i}: URL in response body carries {param}"
