"""A lazily generated, cursor-sorted set of N records: what the sandbox's incremental APIs page through.

Record `i` (0 <= i < n) starts at cursor time `t0 + (i // group) * step` (milliseconds; `group` > 1 makes ties).
`change(indices, at, step)` moves records to new, later cursor times (a "round": their version goes up), which is how
the sandbox models records being modified after a sync. Nothing is materialized per record: ranges, counts and
offsets are computed from the arithmetic, and only the moved indices (e.g. 1 %) are kept in lists.

Order is (time, index) everywhere: the base records (never moved), then each round's records.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class _Round:
    version: int
    indices: list[int] = field(default_factory=list)  # sorted by time (then index)
    times: list[int] = field(default_factory=list)  # non-decreasing


class Timeline:
    def __init__(self, n: int, t0: int, step: int, group: int = 1):
        self.n = int(n)
        self.t0 = int(t0)
        self.step = max(1, int(step))
        self.group = max(1, int(group))
        self._moved: list[int] = []  # sorted: indices no longer at their base time
        self._moved_set: set[int] = set()
        self._rounds: list[_Round] = []
        self._where: dict[int, tuple[int, int]] = {}  # moved index -> (version, time)

    # ---- times ------------------------------------------------------------------------------------------------

    def base_time(self, i: int) -> int:
        return self.t0 + (i // self.group) * self.step

    @property
    def end(self) -> int:
        """One past the latest cursor time."""
        last = self.base_time(self.n - 1) if self.n else self.t0
        for r in self._rounds:
            if r.times:
                last = max(last, r.times[-1])
        return last + 1

    def _first_base_index(self, t: int) -> int:
        """Smallest i with base_time(i) >= t (n when none)."""
        if t <= self.t0:
            return 0
        q = -(-(t - self.t0) // self.step)  # ceil
        return min(self.n, q * self.group)

    # ---- changes ----------------------------------------------------------------------------------------------

    def change(self, indices: list[int], at: int, step: int = 1000) -> int:
        """Move `indices` to times at, at+step, ... (in index order); returns the new version number."""
        indices = sorted(set(i for i in indices if 0 <= i < self.n))
        if at < self.end - 1:
            raise ValueError("a change round must come after every existing cursor time")
        version = len(self._rounds) + 1
        moving = set(indices)
        for r in self._rounds:  # a record lives in its latest round only
            if moving & set(r.indices):
                kept = [(i, t) for i, t in zip(r.indices, r.times) if i not in moving]
                r.indices = [i for i, _ in kept]
                r.times = [t for _, t in kept]
        new = _Round(version, indices, [at + k * step for k in range(len(indices))])
        self._rounds.append(new)
        for i, t in zip(new.indices, new.times):
            self._moved_set.add(i)
            self._where[i] = (version, t)
        self._moved = sorted(self._moved_set)
        return version

    def version_of(self, i: int) -> int:
        return self._where.get(i, (0, 0))[0]

    def time_of(self, i: int) -> int:
        return self._where[i][1] if i in self._where else self.base_time(i)

    # ---- queries ----------------------------------------------------------------------------------------------

    def _moved_between(self, a: int, b: int) -> int:
        """Moved indices in [a, b)."""
        return bisect_left(self._moved, b) - bisect_left(self._moved, a)

    def _base_range(self, lo: int, hi: int, min_index: int) -> tuple[int, int]:
        a = max(self._first_base_index(lo), min_index)
        b = self._first_base_index(hi)
        return a, max(a, b)

    def count(self, lo: int, hi: int, min_index: int = 0) -> int:
        """Records with lo <= time < hi (and index >= min_index)."""
        a, b = self._base_range(lo, hi, min_index)
        total = (b - a) - self._moved_between(a, b)
        for r in self._rounds:
            x, y = bisect_left(r.times, lo), bisect_left(r.times, hi)
            total += sum(1 for i in r.indices[x:y] if i >= min_index) if min_index else (y - x)
        return total

    def _nth_free(self, a: int, k: int) -> int:
        """The k-th (0-based) index >= a that was never moved."""
        i = a + k
        while True:
            got = (i - a + 1) - (bisect_right(self._moved, i) - bisect_left(self._moved, a))
            if got == k + 1:
                return i
            i += k + 1 - got

    def items(self, lo: int, hi: int, offset: int = 0, limit: int | None = None,
              min_index: int = 0) -> Iterator[tuple[int, int, int]]:
        """(index, time, version) of the records with lo <= time < hi, in order, from `offset`, at most `limit`."""
        left = limit if limit is not None else float("inf")
        a, b = self._base_range(lo, hi, min_index)
        base_count = (b - a) - self._moved_between(a, b)
        if offset < base_count:
            i = self._nth_free(a, offset)
            while i < b and left > 0:
                if i not in self._moved_set:
                    yield i, self.base_time(i), 0
                    left -= 1
                i += 1
            offset = 0
        else:
            offset -= base_count
        for r in self._rounds:
            if left <= 0:
                return
            x, y = bisect_left(r.times, lo), bisect_left(r.times, hi)
            for i, t in zip(r.indices[x:y], r.times[x:y]):
                if i < min_index:
                    continue
                if offset:
                    offset -= 1
                    continue
                if left <= 0:
                    return
                yield i, t, r.version
                left -= 1
