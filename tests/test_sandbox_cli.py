"""The `funnelsync` command, as a user runs it, against the sandbox of all seven APIs: a funnelsync.toml whose
sources point at the sandbox (`base_url`, `instance_url`, `login_url`, `token_uri`), secrets from `${ENV}`, the test CA
named by one standard variable only. Records generated without a required field are quarantined and the run exits 1
while every other record of every source is loaded."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEYS = {"access_token", "api_key", "client_secret", "refresh_token", "developer_token", "client_id"}
MALFORMED = {  # api: (stream, record numbers generated without a required field)
    "hubspot": ("contacts", {3, 17}),
    "salesforce": ("Lead", {5}),
    "mailchimp": ("list_members", {2}),
    "ga4": ("run_report", {(374 + 9) * 2 + 1}),  # 2024-01-10, second row of the day (2 rows/day at scale 0.1)
    "linkedin_ads": ("ad_analytics", {(365 + 20) * 1}),  # 2024-01-21, first campaign
    "meta_ads": ("insights", {(365 + 40) * 1}),
    "google_ads": ("campaign_day", {(365 + 60) * 1}),
}


def write_config(sb: Sandbox, directory: Path) -> tuple[Path, dict[str, str]]:
    """A funnelsync.toml for every API of the sandbox; secrets go to environment variables."""
    env: dict[str, str] = {}
    lines = ['[warehouse]', 'url = "sqlite:///wh.db"', '']
    for api in MALFORMED:
        src = sb.source(api, **({"oauth": True} if api == "salesforce" else {}))
        src.pop("name")
        lines.append(f"[sources.{api}]")
        for key, value in src.items():
            if key in SECRET_KEYS:
                var = f"SANDBOX_{api.upper()}_{key.upper()}"
                env[var] = value
                value = "${" + var + "}"
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    cfg = directory / "funnelsync.toml"
    cfg.write_text("\n".join(lines))
    return cfg, env


@pytest.fixture(scope="module")
def sb():
    with Sandbox(scale=0.1, sizes={"mailchimp.campaigns": 2, "hubspot.submissions": 40}) as sandbox:
        for api, (_, numbers) in MALFORMED.items():
            sandbox.apis[api].malformed = set(numbers)
        yield sandbox


@pytest.mark.parametrize("ca_variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_cli_sync_of_all_seven_sources_quarantines_malformed_records(sb, tmp_path, ca_variable):
    cfg, secrets = write_config(sb, tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env.update(secrets, FUNNELSYNC_NOW="2024-04-01T00:00:00Z", PYTHONPATH=str(ROOT))
    env[ca_variable] = sb.ca_file  # only one of the standard variables: every HTTP stack must still trust it
    done = subprocess.run([sys.executable, "-m", "funnelsync", "--config", str(cfg), "sync", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == 1
    streams = {(s["source"], s["stream"]): s for s in doc["streams"]}
    assert {s for s, _ in streams} == set(MALFORMED)
    bad = {(api, stream): len(numbers) for api, (stream, numbers) in MALFORMED.items()}
    for key, s in streams.items():
        assert s["status"] == "success", (key, s["error"])
        assert s["quarantined"] == bad.get(key, 0), (key, s)
        assert s["exit_code"] == (1 if key in bad else 0), (key, s)
        assert s["records"] > 0 or key[1] in ("email_activity", "unsubscribes", "reports"), key
    assert "Traceback" not in done.stderr
    for value in secrets.values():
        assert value not in done.stdout + done.stderr
    conn = sqlite3.connect(tmp_path / "wh.db")
    quarantined = conn.execute("SELECT source_name, stream, source_id, reason FROM quarantine").fetchall()
    assert len(quarantined) == sum(bad.values())
    by_source = {(q[0], q[1]) for q in quarantined}
    assert by_source == set(bad)
    hubspot_ids = sorted(q[2] for q in quarantined if q[0] == "hubspot")
    assert hubspot_ids == [str(1_000_000 + n) for n in sorted(MALFORMED["hubspot"][1])]
    assert all("createdate" in q[3] for q in quarantined if q[0] == "hubspot")
    # what was well-formed is all there (HubSpot: every contact but the two, plus the archived ones)
    n_contacts = sb.hubspot.n["contacts"] + sb.hubspot.archived["contacts"]
    loaded = conn.execute("SELECT count(*) FROM person_sources WHERE source_system = 'hubspot' AND "
                          "source_object = 'contact'").fetchone()[0]
    assert loaded == n_contacts - len(MALFORMED["hubspot"][1]) - sb.hubspot.archived["contacts"]
    assert conn.execute("SELECT count(*) FROM raw_records WHERE source_system = 'hubspot' AND "
                        "source_object = 'contact'").fetchone()[0] == n_contacts
