"""Connectors: HTTP only. Built-in ones are modules named after their type; third-party ones register in the
`funnelsync.connectors` entry-point group (the entry point names a module or object with the same attributes).

A connector has `TYPE`, `connect(source) -> client` and `STREAMS` (or `streams(source)`): see connectors/core.py.
Modules are imported only when their source runs, so `--help`, `status` and `kpis` never import an SDK.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

BUILTIN = ("hubspot", "salesforce", "mailchimp", "ga4", "linkedin_ads", "meta_ads", "google_ads")


def plugin_types() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="funnelsync.connectors")}


def known_types() -> set[str]:
    return set(BUILTIN) | set(plugin_types())


def load(source_type: str) -> Any:
    """The connector module (or plugin object) for a source type."""
    if source_type in BUILTIN:
        return importlib.import_module(f"connectors.{source_type}")
    plugins = plugin_types()
    if source_type in plugins:
        return plugins[source_type].load()
    raise KeyError(source_type)


def streams(connector: Any, source: dict) -> dict:
    """The connector's streams for this source, by name."""
    if hasattr(connector, "streams"):
        return dict(connector.streams(source))
    return dict(connector.STREAMS)
