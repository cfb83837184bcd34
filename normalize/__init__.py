"""Raw API records -> rows of the common event schema. Pure functions: no I/O, no clock, no environment.

`normalize/<type>.py` defines `NORMALIZERS = {stream_name: fn}` with `fn(record, ctx) -> list[Row | Delete]`.
"""
from __future__ import annotations

import importlib
from typing import Callable

from normalize.events import Delete, Malformed, Row
from normalize.model import Context, Model

__all__ = ["Context", "Delete", "Malformed", "Model", "Row", "normalizer"]

Normalizer = Callable[[dict, Context], list]


def normalizer(source_type: str, stream: str) -> Normalizer | None:
    """The normalizer of `source_type.stream`, or None when the stream is raw-only."""
    try:
        module = importlib.import_module(f"normalize.{source_type}")
    except ModuleNotFoundError as exc:
        if exc.name == f"normalize.{source_type}":
            return None
        raise
    return getattr(module, "NORMALIZERS", {}).get(stream)
