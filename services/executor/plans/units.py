"""Durations and sizes as operators write them in plan files: ``90``, ``30s``, ``5m``, ``2h``;
``512MiB``, ``20GB``, ``10%``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B|B)?\s*", re.IGNORECASE)
_BYTES = {"b": 1, **{f"{p}b": 1000 ** (i + 1) for i, p in enumerate("kmgtp")},
          **{f"{p}ib": 1024 ** (i + 1) for i, p in enumerate("kmgtp")}}


def seconds(value: object) -> float:
    """A duration in seconds from a number or a text such as ``5m``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text such as 30s, 5m, 2h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return float(value)
    match = _DURATION.fullmatch(str(value))
    if match is None:
        raise ValueError(f"not a duration: {value!r} (e.g. 90, 30s, 5m, 2h)")
    return float(match.group(1)) * _SECONDS[match.group(2) or "s"]


def size(value: object) -> int:
    """Bytes from a number or a text such as ``20GiB`` (binary) or ``20GB`` (decimal)."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or a text such as 500MiB, 20GB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size must not be negative")
        return value
    match = _SIZE.fullmatch(str(value))
    if match is None:
        raise ValueError(f"not a size: {value!r} (e.g. 500MiB, 20GB, 1073741824)")
    return int(float(match.group(1)) * _BYTES[(match.group(2) or "b").lower()])


@dataclass(frozen=True)
class FreeSpace:
    """The least free space a destination must have: a share of the filesystem or bytes."""

    percent: float | None = None
    bytes: int | None = None

    @classmethod
    def parse(cls, value: object) -> FreeSpace:
        text = str(value).strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError as exc:
                raise ValueError(f"not a percentage: {value!r}") from exc
            if not 0 <= percent <= 100:
                raise ValueError(f"a percentage is between 0% and 100%, not {value!r}")
            return cls(percent=percent)
        return cls(bytes=size(value))

    def needed(self, total: int) -> int:
        """Bytes that must be free on a filesystem of ``total`` bytes."""
        if self.percent is not None:
            return int(total * self.percent / 100)
        return self.bytes or 0

    def text(self) -> str:
        """As written in a plan file (``10%``, ``1073741824``): parses back to the same."""
        return f"{self.percent:g}%" if self.percent is not None else str(self.bytes)

    def describe(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else f"{self.bytes} bytes"
