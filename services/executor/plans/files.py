"""Plan and inventory files: multi-document YAML of ``kind: Plan``, ``kind: Target`` and
``kind: Account`` objects.

Every problem is reported with the file, the line and column, the object and the field, e.g.
``plans.yaml:14:7: Plan nightly: spec.activities[0].action: 'rsync' is not an action…``, and
all problems of a file are reported at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from services.executor.plans.models import Account, Plan, Target

Object = Account | Plan | Target
KINDS: dict[str, type[Account] | type[Plan] | type[Target]] = {
    "Account": Account, "Target": Target, "Plan": Plan}
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    where: str  # "Plan nightly", "document 2"
    field: str  # "spec.activities[0].action", "" for the whole object
    message: str

    def __str__(self) -> str:
        field = f"{self.field}: " if self.field else ""
        return f"{self.file}:{self.line}:{self.column}: {self.where}: {field}{self.message}"


class PlanFileError(ValueError):
    """A plan or inventory file does not validate; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Declared:
    """An object read from a file, with where it was declared (``marks``: where each field's
    value starts, by location)."""

    obj: Object
    file: str
    line: int
    marks: dict[Loc, tuple[int, int]] = field(default_factory=dict, compare=False)

    def problem(self, loc: Loc, message: str) -> Problem:
        """A problem found later (when applied) about the field at ``loc``."""
        line, column = _nearest(self.marks, loc) if self.marks else (self.line, 1)
        return Problem(self.file, line, column, f"{self.kind} {self.name}", _field(loc),
                       message)

    @property
    def kind(self) -> str:
        return self.obj.kind

    @property
    def name(self) -> str:
        return self.obj.name


def load_files(paths: Iterable[Path | str]) -> list[Declared]:
    """Every object of every file, in order; :class:`PlanFileError` lists all the problems
    (also an object declared twice)."""
    out: list[Declared] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            out += load_text(Path(path).read_text(encoding="utf-8"), str(path))
        except PlanFileError as exc:
            problems += exc.problems
        except OSError as exc:
            problems.append(Problem(str(path), 1, 1, "file", "", exc.strerror or str(exc)))
    seen: dict[tuple[str, str], Declared] = {}
    for declared in out:
        key = (declared.kind, declared.name)
        if key in seen:
            first = seen[key]
            problems.append(Problem(declared.file, declared.line, 1,
                                    f"{declared.kind} {declared.name}", "metadata.name",
                                    f"declared twice (first at {first.file}:{first.line})"))
        seen[key] = declared
    if problems:
        raise PlanFileError(problems)
    return out


def load_text(text: str, file: str = "<text>") -> list[Declared]:
    problems: list[Problem] = []
    out: list[Declared] = []
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PlanFileError([Problem(file, line, column, "file", "",
                                     f"not valid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise PlanFileError([Problem(file, 1, 1, "file", "", f"not valid YAML: {exc}")]) \
            from None
    for number, node in enumerate(documents, 1):
        if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")
                            and node.value == ""):
            continue  # an empty document, e.g. after a trailing ---
        marks: dict[Loc, tuple[int, int]] = {}
        try:
            data = _plain(node, (), marks, SafeConstructor())
        except ConstructorError as exc:
            mark = exc.problem_mark
            problems.append(Problem(file, mark.line + 1 if mark else 1,
                                    mark.column + 1 if mark else 1, f"document {number}", "",
                                    str(exc.problem)))
            continue
        found = _declared(data, marks, file, number, problems)
        if found is not None:
            out.append(found)
    if problems:
        raise PlanFileError(problems)
    return out


def _declared(data: Any, marks: dict[Loc, tuple[int, int]], file: str, number: int,
              problems: list[Problem]) -> Declared | None:
    line, column = marks[()]
    if not isinstance(data, dict):
        problems.append(Problem(file, line, column, f"document {number}", "",
                                "expected an object with kind, metadata and spec"))
        return None
    kind = data.get("kind")
    name = data.get("metadata", {}).get("name") if isinstance(data.get("metadata"), dict) \
        else None
    where = f"{kind} {name}" if isinstance(kind, str) and name else f"document {number}"
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        at = marks.get(("kind",), (line, column))
        problems.append(Problem(file, *at, where, "kind",
                                f"kind must be one of {', '.join(KINDS)}, not {kind!r}"))
        return None
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = _as_written(data, tuple(error["loc"]))
            problems.append(Problem(file, *_nearest(marks, loc), where, _field(loc),
                                    _message(error)))
        return None
    return Declared(obj, file, line, marks)


def _as_written(data: dict[str, Any], loc: Loc) -> Loc:
    """A location as the file wrote it: a single ``window`` is validated as ``windows[0]``."""
    spec = data.get("spec")
    if loc[:3] == ("spec", "windows", 0) and isinstance(spec, dict) and "window" in spec:
        return ("spec", "window", *loc[3:])
    return loc


def _plain(node: Node, loc: Loc, marks: dict[Loc, tuple[int, int]],
           constructor: SafeConstructor) -> Any:
    """The node as plain data, recording where each value starts."""
    marks[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, MappingNode):
        constructor.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                raise ConstructorError(None, None, "keys must be text",
                                       key_node.start_mark)
            if key in out:
                raise ConstructorError(None, None, f"key {key!r} appears twice",
                                       key_node.start_mark)
            out[key] = _plain(value_node, (*loc, key), marks, constructor)
        return out
    if isinstance(node, SequenceNode):
        return [_plain(child, (*loc, i), marks, constructor) for i, child in enumerate(node.value)]
    assert isinstance(node, ScalarNode)
    return constructor.construct_object(node, deep=True)


def _nearest(marks: dict[Loc, tuple[int, int]], loc: Loc) -> tuple[int, int]:
    """Where the field is, or its nearest enclosing value that is in the file (a missing
    field is reported at its parent)."""
    # pydantic adds the member of a union or the validator's name to a location: drop parts
    # that are not in the document until one is.
    for end in range(len(loc), -1, -1):
        found = marks.get(loc[:end])
        if found is not None:
            return found
    return marks[()]


def _field(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(error: Any) -> str:
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field missing"
    return message
