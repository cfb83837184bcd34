"""Imports point one way: funnelsync -> config, connectors, normalize, warehouse; warehouse -> normalize;
config, connectors and normalize import nothing internal. Checked on the source with `ast`."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("funnelsync", "config", "connectors", "normalize", "warehouse")
ALLOWED = {
    "funnelsync": {"funnelsync", "config", "connectors", "normalize", "warehouse"},
    "warehouse": {"warehouse", "normalize"},
    "config": {"config"},
    "connectors": {"connectors"},
    "normalize": {"normalize"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imports_of(path) - ALLOWED[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_are_this_repository(package):
    """`config`, `connectors` and `normalize` are also PyPI names: make sure ours are imported."""
    module = __import__(package)
    assert Path(module.__file__).resolve().is_relative_to(ROOT)


def test_normalize_is_pure():
    """No I/O, clock, environment or HTTP libraries inside normalize/."""
    banned = {"os", "requests", "sqlite3", "sqlite_utils", "psycopg", "socket", "urllib3", "time", "subprocess"}
    for path in (ROOT / "normalize").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        assert not names & banned, f"{path.name} imports {sorted(names & banned)}"
        assert "datetime.now" not in path.read_text() and "date.today" not in path.read_text(), path.name
