"""Progress on stderr: a live rich display on a terminal, plain timestamped lines under cron, nothing with -q."""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any

from funnelsync.sync import Progress, StreamResult


def make_progress(quiet: bool = False, stream=None) -> Progress:
    stream = stream or sys.stderr
    if quiet:
        return Progress()
    if stream.isatty():
        return RichProgress(stream)
    return PlainProgress(stream)


def _cursor_text(cursor: Any) -> str:
    if isinstance(cursor, dict):
        for key in ("cursor", "last_day", "last_modified"):
            if key in cursor:
                return str(cursor[key])
        return ""
    return "" if cursor is None else str(cursor)


class PlainProgress(Progress):
    """One line per stream start and end (and every 50th page), easy to grep in cron logs."""

    def __init__(self, stream):
        self.out = stream
        self.pages: dict[tuple[str, str], int] = {}

    def _line(self, text: str) -> None:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{now} {text}", file=self.out, flush=True)

    def stream_started(self, source: str, stream: str) -> None:
        self._line(f"{source}.{stream} started")

    def page(self, source: str, stream: str, records: int, rows: int, cursor: Any) -> None:
        key = (source, stream)
        self.pages[key] = self.pages.get(key, 0) + 1
        if self.pages[key] % 50 == 0:
            self._line(f"{source}.{stream} page {self.pages[key]} rows {rows} cursor {_cursor_text(cursor)}")

    def stream_finished(self, r: StreamResult) -> None:
        tail = f" error: {r.error}" if r.error else ""
        self._line(f"{r.source}.{r.stream} {r.status} records {r.records} rows {r.rows} quarantined {r.quarantined} "
                   f"requests {r.requests} in {r.seconds:.1f}s{tail}")

    def note(self, message: str) -> None:
        self._line(message)


class RichProgress(Progress):
    """A spinner per stream with records, rows and cursor; a summary line when it ends."""

    def __init__(self, stream):
        from rich.console import Console
        from rich.progress import Progress as Bar, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(file=stream)
        self.bar = Bar(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[info]}"),
                       TimeElapsedColumn(), console=self.console, transient=True)
        self.tasks: dict[tuple[str, str], Any] = {}
        self.records: dict[tuple[str, str], int] = {}

    def stream_started(self, source: str, stream: str) -> None:
        if not self.tasks:
            self.bar.start()
        self.tasks[(source, stream)] = self.bar.add_task(f"{source}.{stream}", info="")
        self.records[(source, stream)] = 0

    def page(self, source: str, stream: str, records: int, rows: int, cursor: Any) -> None:
        key = (source, stream)
        self.records[key] = self.records.get(key, 0) + records
        if key in self.tasks:
            self.bar.update(self.tasks[key], info=f"{self.records[key]} records, {rows} rows  {_cursor_text(cursor)}")

    def stream_finished(self, r: StreamResult) -> None:
        key = (r.source, r.stream)
        if key in self.tasks:
            self.bar.remove_task(self.tasks.pop(key))
        mark = {"success": "[green]✓[/]", "stopped": "[yellow]…[/]"}.get(r.status, "[red]✗[/]")
        if r.status == "success" and r.quarantined:
            mark = "[yellow]![/]"
        tail = f"  [dim]{r.error}[/]" if r.error else ""
        self.console.print(f"{mark} {r.source}.{r.stream}: {r.records} records, {r.rows} rows, "
                           f"{r.quarantined} quarantined, {r.requests} requests, {r.seconds:.1f}s{tail}",
                           markup=True, highlight=False)
        if not self.tasks:
            self.bar.stop()

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)
