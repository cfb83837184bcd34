"""Golden examples for every normalizer: tests/golden/<type>.<stream>.raw.json (raw API records) against
<type>.<stream>.rows.json (expected output, [[table, values-or-key, "row"|"delete"], ...]). An optional
<type>.<stream>.ctx.json holds the Context ({"model": {...}, "source_name": ..., "settings": {...}}).

Also checked for every golden record: rows of the ORIGIN tables carry their raw record's origin
(source_system, source_object, source_id), so the warehouse can replace a record's rows when it changes; and
every normalizer in the registry has a golden file.

    pytest tests/normalize/test_golden.py --update-golden      rewrites the .rows.json files (read the diff!)
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from connectors.core import dig
from normalize import Context, Delete, Model, normalizer
from warehouse import schema

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CASES = sorted(p.name[: -len(".raw.json")] for p in GOLDEN.glob("*.raw.json"))
SOURCE_TYPES = ("hubspot", "salesforce", "mailchimp", "ga4", "linkedin_ads", "meta_ads", "google_ads")


def context(case: str) -> Context:
    path = GOLDEN / f"{case}.ctx.json"
    if not path.exists():
        return Context(model=Model(), source_name=case.split(".")[0])
    data = json.loads(path.read_text())
    return Context(model=Model.from_dict(data.get("model")), source_name=data.get("source_name", ""),
                   settings=data.get("settings", {}))


def run_case(case: str) -> list[list]:
    kind, stream = case.split(".", 1)
    fn = normalizer(kind, stream)
    assert fn is not None, f"no normalizer registered for {case}"
    ctx = context(case)
    out = []
    for record in json.loads((GOLDEN / f"{case}.raw.json").read_text()):
        for item in fn(record, ctx):
            if isinstance(item, Delete):
                out.append([item.table, item.key, "delete"])
            else:
                out.append([item.table, item.values, "row"])
    return json.loads(json.dumps(out, default=str))


@pytest.mark.parametrize("case", CASES)
def test_golden(case, request):
    rows = run_case(case)
    path = GOLDEN / f"{case}.rows.json"
    if request.config.getoption("--update-golden"):
        path.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    assert rows == json.loads(path.read_text())


def _connector_streams(kind: str) -> dict:
    module = importlib.import_module(f"connectors.{kind}")
    if hasattr(module, "STREAMS"):
        return module.STREAMS
    return module.streams({"name": kind, "type": kind})


@pytest.mark.parametrize("case", CASES)
def test_rows_keep_their_records_origin(case):
    kind, stream = case.split(".", 1)
    fn = normalizer(kind, stream)
    decl = _connector_streams(kind).get(stream)
    if decl is None:
        pytest.fail(f"{case}: no stream {stream!r} in connectors/{kind}.py")
    ctx = context(case)
    for record in json.loads((GOLDEN / f"{case}.raw.json").read_text()):
        origin = (kind, decl.object, str(dig(record, decl.key)))
        for item in fn(record, ctx):
            if item.table in schema.ORIGIN_TABLES and not isinstance(item, Delete):
                v = item.values
                got = (v.get("source_system"), v.get("source_object"), str(v.get("source_id")))
                assert got == origin, f"{case}: a {item.table} row names origin {got}, its record is {origin}"


@pytest.mark.parametrize("kind", SOURCE_TYPES)
def test_every_normalizer_has_a_golden_file(kind):
    try:
        module = importlib.import_module(f"normalize.{kind}")
    except ModuleNotFoundError:
        pytest.fail(f"normalize/{kind}.py is missing")
    missing = [s for s in getattr(module, "NORMALIZERS", {}) if f"{kind}.{s}" not in CASES]
    assert not missing, f"no golden file for {', '.join(f'{kind}.{s}' for s in missing)}"
