"""kill -9 at any instant, then resume == one uninterrupted sync, with the REAL connectors against the sandbox.

The CLI runs in a subprocess (tests/harness.py) that SIGKILLs itself at its Nth checkpoint: just before and after
each batch's transaction and inside it (after the events insert, before COMMIT). Batches are kept small so a sync
has many commits. After the kill the same command runs again; the whole warehouse (raw, normalized, derived tables,
attribution, KPI values, sync state; only wall-clock columns excluded) must equal the uninterrupted run's."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox import Sandbox
from tests.test_sandbox_cli import write_config
from tests.test_sync_engine import snapshot

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("hubspot", "salesforce", "ga4", "meta_ads")
KILL_POINTS = [1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 19, 23, 27, 31, 36, 41, 47, 53, 60, 66, 72, 77]


@pytest.fixture(scope="module")
def sb():
    with Sandbox(scale=0.05, sizes={"mailchimp.campaigns": 1, "hubspot.submissions": 10}) as sandbox:
        yield sandbox


def run(sb: Sandbox, directory: Path, kill_at: int) -> subprocess.CompletedProcess:
    cfg, secrets = write_config(sb, directory)
    text = cfg.read_text()
    # keep the sources of this test only
    blocks = text.split("[sources.")
    cfg.write_text(blocks[0] + "".join("[sources." + b for b in blocks[1:] if b.split("]")[0] in SOURCES))
    env = {**os.environ, **secrets, "FUNNELSYNC_NOW": "2024-04-01T00:00:00Z", "HARNESS_BATCH_ROWS": "150",
           "REQUESTS_CA_BUNDLE": sb.ca_file, "SSL_CERT_FILE": sb.ca_file, "CURL_CA_BUNDLE": sb.ca_file}
    return subprocess.run([sys.executable, str(ROOT / "tests" / "harness.py"), str(kill_at), "--config", str(cfg),
                           "sync"], capture_output=True, text=True, env=env, timeout=300, cwd=directory)


@pytest.fixture(scope="module")
def reference(sb, tmp_path_factory):
    directory = tmp_path_factory.mktemp("clean")
    done = run(sb, directory, 0)
    assert done.returncode == 0, done.stderr[-3000:]
    snap = snapshot(directory / "wh.db")
    assert len(snap["raw_records"]) > 500 and len(snap["events"]) > 1000
    return snap


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_real_connectors_killed_then_resumed_equal_one_uninterrupted_sync(sb, reference, tmp_path, kill_at):
    killed = run(sb, tmp_path, kill_at)
    assert killed.returncode == -9, f"checkpoint {kill_at} was never reached: {killed.stderr[-2000:]}"
    resumed = run(sb, tmp_path, 0)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got = snapshot(tmp_path / "wh.db")
    for table in reference:
        assert got[table] == reference[table], f"{table} differs after a kill at checkpoint {kill_at}"
