"""Storage and KPIs. `open(url)` gives a warehouse: SQLite (default) or PostgreSQL.

Both backends offer: lock(sources), get_state, reset_state, write_batch(Batch), start_run, finish_run, status,
query, close, and `conn` for the derive / KPI code (warehouse/derive.py, kpis.py, attribution.py, goals.py).
"""
from __future__ import annotations

from pathlib import Path

from warehouse.base import Batch, LockedError, ReplaceScope, WarehouseError

__all__ = ["Batch", "LockedError", "ReplaceScope", "WarehouseError", "open_warehouse"]


def open_warehouse(url: str, base_dir: Path | None = None):
    """`sqlite:///path.db` (relative to base_dir) or `postgresql://user@host:port/db`."""
    if url.startswith("sqlite:///"):
        from warehouse.sqlite import SqliteWarehouse

        path = Path(url[len("sqlite:///"):])
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return SqliteWarehouse(path)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from warehouse.postgres import PostgresWarehouse
        except ImportError as exc:  # pragma: no cover - the PG backend lands with its own issue
            raise WarehouseError(f"PostgreSQL support is not available: {exc}") from None
        return PostgresWarehouse(url)
    raise WarehouseError(f"unsupported warehouse url {url.split('://')[0]}://...; use sqlite:/// or postgresql://")
