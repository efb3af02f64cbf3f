"""A bounded map whose entries expire: the shape of every cache errorkit keeps in a process."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

Value = TypeVar("Value")


class Expiring(Generic[Value]):
    """A bounded map whose entries expire (monotonic time); the oldest go first when full."""

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int) -> None:
        self._entries: OrderedDict[object, tuple[float, Value]] = OrderedDict()
        self._size = size

    def get(self, key: object) -> Value | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: object, value: Value, expires_at: float) -> None:
        self._entries[key] = (expires_at, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
