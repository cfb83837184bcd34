"""The CLI as users and cron meet it: documented commands, help, exit codes, one-line errors, no secrets."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from funnelsync.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SECRET = "s3cr3t-value-9f8e7d6c5b4a"


def funnelsync(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, **(env or {})}
    e.pop("FUNNELSYNC_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "funnelsync", *args], capture_output=True, text=True, cwd=cwd,
                          env=e, timeout=120)


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_documented_in_readme(command):
    assert f"funnelsync {command}" in README


@pytest.mark.parametrize("command", sorted(cli.commands.values(), key=lambda c: c.name))
def test_every_command_has_help(command):
    assert command.help


def test_readme_shows_the_two_newcomer_commands():
    assert "pip install -e '.[test]' && funnelsync demo" in README
    assert "python -m pytest" in README


def test_python_dash_m_is_the_same_command():
    done = funnelsync("--help")
    assert done.returncode == 0 and "sync" in done.stdout and "kpis" in done.stdout


def test_missing_config_is_exit_2_with_one_line(tmp_path):
    done = funnelsync("sync", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "funnelsync.toml" in lines[0], done.stderr


@pytest.mark.parametrize("body, expect", [
    ('[sources.hubspot]\naccess_token = "${NOPE_TOKEN}"\n', "NOPE_TOKEN"),
    ('[sources.hubspot]\naccess_token = "x"\nstart_date = "2024-13-01"\n', "start_date"),
    ('[sources.zendesk]\naccess_token = "x"\n', "zendesk"),
    ('[sources.hubspot\n', "funnelsync.toml"),
    ('[sources.hubspot]\naccess_tokn = "x"\n', "access_tokn"),
])
def test_bad_config_is_one_line_exit_2_without_secret(tmp_path, body, expect):
    (tmp_path / "funnelsync.toml").write_text(body)
    done = funnelsync("sync", cwd=tmp_path, env={"HUBSPOT_ACCESS_TOKEN": SECRET})
    assert done.returncode == 2, done.stderr
    assert expect in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert SECRET not in done.stderr + done.stdout


def test_usage_error_is_exit_2(tmp_path):
    done = funnelsync("backfill", "x", cwd=tmp_path)  # --start/--end missing
    assert done.returncode == 2


def test_status_json_is_machine_clean(tmp_path):
    (tmp_path / "funnelsync.toml").write_text('[warehouse]\nurl = "sqlite:///wh.db"\n')
    done = funnelsync("status", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["streams"] == []


def test_help_does_not_import_the_sdks():
    """`--help`, `status` and `kpis` stay fast: SDKs load only when their source runs."""
    code = ("import sys; from funnelsync.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('hubspot', 'simple_salesforce', 'mailchimp_marketing', 'google.analytics', 'grpc')"
            " if m in sys.modules]\nprint('HEAVY=' + ','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY=\n" in done.stdout + "\n" and done.stdout.rstrip().endswith("HEAVY="), done.stdout[-300:]
