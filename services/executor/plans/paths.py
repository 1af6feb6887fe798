"""Where a backup goes: the plan's output template, rendered for one task, and reserved.

Placeholders: ``{destination}`` ``{target}`` ``{action}`` ``{item}`` ``{plan}`` ``{activity}``
(its number, from 1), ``{timestamp}`` (``2026-11-30-22-48-00-000``, milliseconds), ``{date}``
(``2026-11-30``), ``{year}`` and ``{julian}`` (day of the year, ``001``-``366``). Times are the
task's start in the plan's time zone (retention, space pruning and rsync's previous backup read
folder names back in that zone). A rendered path is never an existing one: :func:`reserve`
creates the folder itself, and when a folder of that name exists (a template of
``{julian}`` run twice in a day) the next free ``-2``, ``-3``… is taken. An earlier backup is
never overwritten.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from services.executor.plans.models import DEFAULT_OUTPUT

_PLACEHOLDER = re.compile(r"\{([a-z]+)\}")
_UNSAFE = re.compile(r"[/\\\x00-\x1f]")


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d-%H-%M-%S-") + f"{moment.microsecond // 1000:03d}"


def segment(value: str) -> str:
    """A value as one path segment: no separators, no control characters, not '.' or '..'."""
    text = _UNSAFE.sub("_", value).strip() or "_"
    return "_" + text[1:] if text.startswith(".") else text


def render(template: str, *, destination: str, target: str, action: str, item: str,
           plan: str, activity: int, moment: datetime) -> Path:
    """The output path of one task (``moment`` already in the plan's time zone)."""
    values = {
        "target": segment(target), "action": segment(action), "item": segment(item),
        "plan": segment(plan), "activity": str(activity), "timestamp": timestamp(moment),
        "date": moment.strftime("%Y-%m-%d"), "year": f"{moment.year:04d}",
        "julian": f"{moment.timetuple().tm_yday:03d}",
    }
    head, marker, tail = (template or DEFAULT_OUTPUT).partition("{destination}")
    if not marker:  # a relative template lives under the destination
        head, tail = "", "/" + template
    rendered = _PLACEHOLDER.sub(lambda m: values[m.group(1)], head + "\0" + tail)
    before, _, after = rendered.partition("\0")
    return Path(before + destination + after)


def series_pattern(template: str) -> str | None:
    """The glob (relative to the destination) matching the folders that hold a series of
    backups (the output path's parents): ``*/*/*`` for the default template; None when the
    template does not start at the destination."""
    head, marker, tail = template.partition("{destination}")
    if not marker or head:
        return None
    parts = [p for p in tail.split("/") if p][:-1]
    return "/".join("*" if "{" in p else p for p in parts) or None


def reserve(path: Path) -> Path:
    """Create the backup's folder (and its parents); a folder of that name already there is
    left alone and ``path-2``, ``path-3``… is taken instead. Returns the folder made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, number = path, 1
    while True:
        try:
            os.mkdir(candidate, 0o750)
            return candidate
        except FileExistsError:
            number += 1
            candidate = path.with_name(f"{path.name}-{number}")
