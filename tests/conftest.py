"""Shared fixtures. No test touches the internet: connector tests replay cassettes/ with vcrpy."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from funnelsync.replay import make_vcr  # noqa: E402


@pytest.fixture
def vcr():
    """`with vcr.use_cassette("hubspot/contacts_two_pages.yaml"):` replays cassettes/hubspot/... (never records)."""
    return make_vcr("none")


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch):
    """Retries and pacing never sleep in tests."""
    import connectors.http

    monkeypatch.setattr(connectors.http, "SLEEP", lambda seconds: None)


@pytest.fixture(autouse=True)
def _fake_env(monkeypatch):
    monkeypatch.setenv("FUNNELSYNC_TEST", "1")
    for var in ("FUNNELSYNC_CONFIG",):
        monkeypatch.delenv(var, raising=False)


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/*.rows.json from the current normalizers")


from tests.pg import pg_url  # noqa: E402,F401  (a throwaway PostgreSQL 15 server per test session)
