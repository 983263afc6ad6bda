"""Single-use assertion ids (`jti`), remembered in memory until they expire.

The store belongs to one hub process. JupyterHub runs as one process, so one
store sees every login; a hub restart empties it (see README, "Single use").
"""

from __future__ import annotations

import heapq
import time
from typing import Callable, Dict, List, Tuple

DEFAULT_MAX_ENTRIES = 100_000


class JtiStoreFull(Exception):
    """Every slot holds an unexpired jti: refuse rather than forget one."""


class JtiStore:
    """Remember each jti until its deadline (``exp`` + leeway) has passed.

    ``use(jti, deadline)`` returns True the first time a jti is seen and False
    for every later use before the deadline. Expired entries are dropped first;
    when the store is still full, ``use`` raises JtiStoreFull (fail closed: an
    unexpired jti is never forgotten to make room).

    ``use`` does not await, so under asyncio the check and the record are one
    step: two concurrent requests with the same jti cannot both pass.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.time):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.clock = clock
        self._deadlines: Dict[str, float] = {}
        self._heap: List[Tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, jti: str) -> bool:
        deadline = self._deadlines.get(jti)
        return deadline is not None and deadline >= self.clock()

    def purge(self) -> None:
        """Drop every entry whose deadline has passed."""
        now = self.clock()
        heap = self._heap
        while heap and heap[0][0] < now:
            deadline, jti = heapq.heappop(heap)
            if self._deadlines.get(jti) == deadline:
                del self._deadlines[jti]

    def use(self, jti: str, deadline: float) -> bool:
        self.purge()
        if jti in self._deadlines:
            return False
        if len(self._deadlines) >= self.max_entries:
            raise JtiStoreFull()
        self._deadlines[jti] = deadline
        heapq.heappush(self._heap, (deadline, jti))
        return True
