"""Third-party connectors load from the `funnelsync.connectors` entry-point group and are configurable."""
from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import connectors
import config


def test_entry_point_connector_is_loaded_and_validated(monkeypatch):
    plugin = types.ModuleType("funnelsync_zendesk")
    plugin.TYPE = "zendesk"
    plugin.CONFIG_KEYS = {"subdomain": (str, True, None)}
    plugin.STREAMS = {}
    plugin.connect = lambda source: object()
    monkeypatch.setitem(sys.modules, "funnelsync_zendesk", plugin)
    ep = EntryPoint(name="zendesk", value="funnelsync_zendesk", group="funnelsync.connectors")
    monkeypatch.setattr(connectors, "entry_points", lambda group: [ep] if group == "funnelsync.connectors" else [])

    assert "zendesk" in connectors.known_types()
    assert connectors.load("zendesk") is plugin
    settings = config.parse('[sources.help]\ntype = "zendesk"\nsubdomain = "acme"\n',
                            extra_types={"zendesk": plugin.CONFIG_KEYS})
    assert settings.sources["help"]["subdomain"] == "acme"


def test_builtin_connectors_are_imported_lazily():
    assert set(connectors.BUILTIN) == {"hubspot", "salesforce", "mailchimp", "ga4", "linkedin_ads", "meta_ads",
                                       "google_ads"}
