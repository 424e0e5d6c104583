"""Load ``crmbench/1`` JSONL files into a :class:`Dataset`, or fail with every problem.

A dataset author fixing a generated file wants all mistakes at once, each located
precisely, so problems are collected (up to :data:`MAX_PROBLEMS_PER_FILE` per file)
and raised together as one :class:`DatasetError`::

    cases/x.jsonl:17 (CONV-0012): turns[2].expected_calls[0].tool: unknown tool 'create_deal'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from pytest_crmbench.dataset import answer_key
from pytest_crmbench.dataset.arc import import_arc_file
from pytest_crmbench.dataset.defects import Defect
from pytest_crmbench.dataset.model import FORMAT, Conversation, Problems, format_loc
from pytest_crmbench.dataset.problems import Problem
from pytest_crmbench.dataset.refs import Loc

MAX_PROBLEMS_PER_FILE = 50

StrPath = str | PathLike[str]


class DatasetError(Exception):
    """The dataset cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = str(self.problems[0])
        else:
            text = f"{len(self.problems)} problems in the dataset:\n" + "\n".join(
                f"  {p}" for p in self.problems
            )
        super().__init__(text)


@dataclass(frozen=True)
class Dataset:
    """Conversations in file order; ``sha256`` identifies the exact bytes that were run."""

    conversations: tuple[Conversation, ...]
    files: tuple[Path, ...]
    sha256: str
    by_id: Mapping[str, Conversation]
    locations: Mapping[str, tuple[Path, int]]  # id -> (file, 1-based line)
    # id -> defects of conversations imported from the upstream (Arc) format
    defects: Mapping[str, tuple[Defect, ...]] = field(default_factory=dict)
    # ``load_dataset(keep=f)``: f(conversation, its JSONL line) for every conversation, in
    # order, instead of ``conversations`` and ``by_id`` (which stay empty)
    kept: tuple[Any, ...] = ()


#: ``keep(conversation, line)``: what to hold of a validated conversation (line is None
#: for one imported from another format).
Keep = Callable[[Conversation, bytes | None], Any]


def detect_format(first_obj: Mapping[str, Any]) -> Literal["crmbench/1", "arc"] | None:
    """Which known format a parsed line is in (the hook for importing other formats)."""
    if first_obj.get("format") == FORMAT:
        return FORMAT
    turns = first_obj.get("turns")
    if (
        "conversation_id" in first_obj
        and isinstance(turns, list)
        and turns
        and all(isinstance(t, dict) and "user_utterance" in t for t in turns)
    ):
        return "arc"
    return None


def file_format(data: bytes) -> Literal["crmbench/1", "arc"] | None:
    """The format of a file's bytes, decided by its first non-blank line."""
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return detect_format(obj) if isinstance(obj, dict) else None
    return None


def dump_conversation(conv: Conversation) -> str:
    """One canonical JSONL line (no newline): model field order, defaults left out."""
    data = conv.model_dump(mode="json", exclude_defaults=True)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _error_items(exc: ValidationError) -> Iterator[tuple[Loc, str]]:
    for err in exc.errors():
        loc: Loc = tuple(err["loc"])
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, Problems):
            for sub, msg in cause.problems:
                yield (*loc, *sub), msg
        elif isinstance(cause, Exception):
            yield loc, str(cause)
        elif err["type"] == "missing":
            yield loc, "missing (required)"
        elif err["type"] == "extra_forbidden":
            yield loc, "unknown key"
        else:
            yield loc, f"{err['msg']} (got {_short(err['input'])})"


def expand_paths(paths: StrPath | Sequence[StrPath], problems: list[Problem]) -> list[Path]:
    items = [paths] if isinstance(paths, str | PathLike) else list(paths)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted((p for p in path.glob("*.jsonl") if p.is_file()), key=lambda p: p.name)
            if not found:
                problems.append(Problem(str(path), None, "no *.jsonl files in this directory"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), None, "no such file or directory"))
    return files


class FileLoader:
    """Parses one file's lines, collecting conversations and problems."""

    def __init__(
        self, path: Path, locations: dict[str, tuple[Path, int]], keep: Keep | None = None
    ) -> None:
        self.path = path
        self.name = str(path)
        self.locations = locations
        self.keep = keep
        self.conversations: list[Conversation] = []
        self.kept: list[Any] = []
        self.problems: list[Problem] = []

    def problem(self, line: int, message: str, conv_id: str | None = None, loc: Loc = ()) -> None:
        self.problems.append(Problem(self.name, line, message, conv_id, format_loc(loc) or None))

    def load(self, data: bytes) -> None:
        for number, raw in enumerate(data.split(b"\n"), 1):
            if len(self.problems) >= MAX_PROBLEMS_PER_FILE:
                self.problems.append(
                    Problem(self.name, None, f"stopped after {MAX_PROBLEMS_PER_FILE} problems")
                )
                return
            if not self.line(number, raw):
                return
        if not self.conversations and not self.kept and not self.problems:
            # A failed export or a wrong file, not a dataset of nothing: a run over it
            # would pass with 0 items and look fine.
            why = "it is empty" if not data else "only blank lines"
            self.problems.append(
                Problem(self.name, None, f"the file holds no conversation ({why})")
            )

    def line(self, number: int, raw: bytes) -> bool:
        """Handle one line; False stops reading the file."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.problem(number, f"not valid UTF-8 ({e.reason} at byte {e.start})")
            return True
        if not text.strip():
            return True
        try:
            obj = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            self.problem(number, f"invalid JSON: {e.msg} (column {e.colno})")
            return True
        except ValueError as e:
            self.problem(number, f"invalid JSON: {e}")
            return True
        if not isinstance(obj, dict):
            got = _JSON_TYPES.get(type(obj), "null")
            self.problem(number, f"expected a JSON object (one conversation per line), got {got}")
            return True
        conv_id = obj.get("id") if isinstance(obj.get("id"), str) and obj.get("id") else None
        kind = detect_format(obj)
        if kind == "arc":
            self.problem(
                number,
                "this is the upstream Arc format (conversation_id, turns[].user_utterance); "
                "it is read by the Arc importer, not as crmbench/1",
            )
            return False
        if kind is None:
            if "format" not in obj:
                message = f"missing (required); expected {FORMAT!r}"
            else:
                message = f"unsupported format {_short(obj['format'])}; expected {FORMAT!r}"
            self.problem(number, message, conv_id, ("format",))
            return True
        duplicate = False
        if conv_id is not None:
            first = self.locations.setdefault(conv_id, (self.path, number))
            if first != (self.path, number):
                duplicate = True
                where = f"{first[0]}:{first[1]}"
                self.problem(number, f"duplicate id, first defined at {where}", conv_id, ("id",))
        try:
            conv = Conversation.model_validate(obj)
        except ValidationError as exc:
            for loc, message in _error_items(exc):
                self.problem(number, message, conv_id, loc)
            return True
        if duplicate:
            return True
        if self.keep is not None:
            self.kept.append(self.keep(conv, raw))
        else:
            self.conversations.append(conv)
        return True


def load_dataset(paths: StrPath | Sequence[StrPath], *, keep: Keep | None = None) -> Dataset:
    """Load files (a directory means its ``*.jsonl`` files, by name); raise DatasetError.

    A file whose first non-blank line is an upstream (Arc) conversation is imported by
    :mod:`pytest_crmbench.dataset.arc`; its conversations' defects are in ``defects``.
    ``keep``: every conversation is validated as always, then handed with its line to
    ``keep`` and dropped (``kept`` holds what ``keep`` returned): a long dataset need not
    stay in memory as objects (the pytest plugin keeps lines and rebuilds one when it runs).
    """
    problems: list[Problem] = []
    files = expand_paths(paths, problems)
    digest = hashlib.sha256()
    conversations: list[Conversation] = []
    locations: dict[str, tuple[Path, int]] = {}
    defects: dict[str, tuple[Defect, ...]] = {}
    arc_sources: dict[str, str] = {}
    kept: list[Any] = []
    for path in files:
        try:
            data = path.read_bytes()
            answer_key.protect(path)
        except OSError as e:
            problems.append(Problem(str(path), None, f"cannot read: {e.strerror}"))
            continue
        digest.update(data)
        if file_format(data) == "arc":
            imported = import_arc_file(path, data, locations, arc_sources)
            if keep is not None:
                kept.extend(keep(conv, None) for conv in imported.conversations)
            else:
                conversations.extend(imported.conversations)
            problems.extend(imported.problems)
            defects.update(imported.defects)
            continue
        loader = FileLoader(path, locations, keep)
        loader.load(data)
        conversations.extend(loader.conversations)
        kept.extend(loader.kept)
        problems.extend(loader.problems)
    if problems:
        raise DatasetError(problems)
    return Dataset(
        conversations=tuple(conversations),
        files=tuple(files),
        sha256=digest.hexdigest(),
        by_id={c.id: c for c in conversations},
        locations=locations,
        defects=defects,
        kept=tuple(kept),
    )
