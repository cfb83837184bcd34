"""Run `funnelsync` in this process with the fake connector registered, optionally killing itself (SIGKILL) at
the Nth checkpoint: after a page is read, inside a batch's transaction, or just after a commit.

    python tests/harness.py KILL_AT funnelsync-args...      (KILL_AT 0 = never)
    HARNESS_CASSETTE=hubspot/demo.yaml python tests/harness.py ...   replays cassettes/ for the real connectors
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))

import connectors  # noqa: E402
import fake_connector  # noqa: E402
import funnelsync.cli as cli  # noqa: E402
import funnelsync.sync as sync  # noqa: E402
import normalize  # noqa: E402
from warehouse import sqlite as wsqlite  # noqa: E402

KILL_AT = int(sys.argv[1])
count = 0


def checkpoint() -> None:
    global count
    count += 1
    if KILL_AT and count == KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)


_real_load = connectors.load
connectors.load = lambda t: fake_connector if t == "fake" else _real_load(t)
cli._plugin_key_schemas = lambda: {"fake": fake_connector.CONFIG_KEYS}
_real_normalizer = sync.normalizer
sync.normalizer = lambda t, s: fake_connector.NORMALIZERS.get(s) if t == "fake" else _real_normalizer(t, s)
sync.BATCH_ROWS = int(os.environ.get("HARNESS_BATCH_ROWS", "1"))


def wrap(cls, name):
    real = getattr(cls, name)

    def wrapped(self, *a, **kw):
        checkpoint()  # before
        out = real(self, *a, **kw)
        checkpoint()  # after
        return out

    setattr(cls, name, wrapped)


wrap(wsqlite.SqliteWarehouse, "_insert_events")   # inside the transaction
wrap(wsqlite.SqliteWarehouse, "write_batch")      # before / after a page joins the open transaction
wrap(wsqlite.SqliteWarehouse, "commit")           # before / after COMMIT
_real_fetch = fake_connector.fetch_items


def fetch_items(client, run):
    for page in _real_fetch(client, run):
        checkpoint()
        yield page


fake_connector.STREAMS["items"] = fake_connector.Stream("items", "item", "id", fetch_items, cursor_field="updated")

# HARNESS_CASSETTE=hubspot/demo.yaml: replay recorded HTTP for the real connectors (never records).
cassette = os.environ.get("HARNESS_CASSETTE")
if cassette:
    import connectors.http
    from funnelsync.replay import make_vcr

    connectors.http.SLEEP = lambda seconds: None
    with make_vcr("none").use_cassette(cassette, allow_playback_repeats=True):
        cli.main(sys.argv[2:])
else:
    cli.main(sys.argv[2:])
