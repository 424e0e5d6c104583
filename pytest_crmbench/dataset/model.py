"""The dataset format ``crmbench/1``: one conversation per JSONL line.

Everything that can be checked without running the CRM is checked here (tools and
argument names against the catalog, references, turn counts, seed records), so a
broken dataset fails when it is loaded rather than in the middle of a benchmark.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pytest_crmbench.crm.catalog import BY_TOOL
from pytest_crmbench.crm.entities import BY_TABLE
from pytest_crmbench.crm.seed import record_from_json
from pytest_crmbench.dataset.refs import Loc, RefError, parse_refs, ref_strings
from pytest_crmbench.dataset.workflows import WORKFLOWS

FORMAT: Literal["crmbench/1"] = "crmbench/1"

Complexity = Literal["simple", "medium", "complex"]

#: ``Conversation.model_validate_json(line, context=CHECKED)``: the line passed every check
#: when its dataset was loaded; rebuilding it converts fields but skips the cross-checks
#: (catalog, references, seed records: most of the time a validation takes).
CHECKED: dict[str, Any] = {"crmbench_checked": True}


def _checked(info: ValidationInfo) -> bool:
    return bool(info.context) and info.context is CHECKED


def _check_workflow(value: str) -> str:
    if value not in WORKFLOWS:
        expected = ", ".join(repr(w) for w in WORKFLOWS)
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": expected}
        )
    return value


Workflow = Annotated[str, AfterValidator(_check_workflow)]

TURNS_BY_COMPLEXITY: dict[str, tuple[int, int]] = {
    "simple": (1, 3),
    "medium": (4, 6),
    "complex": (7, 10),
}

_ID = re.compile(r"[A-Za-z0-9._-]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}|\{[A-Za-z_]\w*\}")
_IDENT = re.compile(r"[A-Za-z_]\w*")


def format_loc(loc: Loc) -> str:
    """A JSON path as people write it: ``turns[2].expected_calls[0].tool``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


class Problems(ValueError):
    """Several problems found by one validator, each at a path below the validated value.

    Pydantic keeps one error per raising validator; this lets the loader still report
    every problem with its exact field path.
    """

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{format_loc(loc)}: {msg}" if loc else msg for loc, msg in problems)
        )


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _check_user(value: str) -> str:
    _non_blank(value)
    m = _PLACEHOLDER.search(value)
    if m:
        raise ValueError(f"unrendered placeholder {m.group(0)!r} (write the actual words)")
    return value


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"{value!r}: use only letters, digits, '.', '_' and '-' (at least one)")
    return value


def _strict_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError(f"{value!r} is not a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a valid date ({e})") from None


NonBlank = Annotated[str, AfterValidator(_non_blank)]


class _Model(BaseModel):
    # (Mutable defaults are factories: a default value is deep-copied on every use.)
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedCall(_Model):
    """One reference tool call; its arguments may hold references to earlier results."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Self:
        if _checked(info):
            return self
        problems: list[tuple[Loc, str]] = []
        spec = BY_TOOL.get(self.tool)
        if spec is None:
            problems.append((("tool",), f"unknown tool {self.tool!r}"))
        elif not spec.agent:
            problems.append((("tool",), f"{self.tool!r} is a helper, not a tool offered to agents"))
        elif spec.extra is None:
            allowed = ", ".join(spec.param_names) or "none"
            for name in self.args:
                if name not in spec.param_names:
                    problems.append(
                        (
                            ("args", name),
                            f"unknown argument for {self.tool} (its arguments: {allowed})",
                        )
                    )
        for loc, text in ref_strings(self.args, ("args",)):
            try:
                parse_refs(text)
            except RefError as e:
                problems.append((loc, str(e)))
        if problems:
            raise Problems(problems)
        return self


class Reply(_Model):
    """What the assistant's answer must convey, and what it must leave out.

    ``must_not_mention`` names records that do not match the request (other stages,
    owners, clients …): a reply that lists them over-reports, so dumping every search
    result cannot pass a read turn. ``rubric`` is for the optional LLM judge.
    """

    must_mention: list[NonBlank] = Field(default_factory=list)
    must_not_mention: list[NonBlank] = Field(default_factory=list)
    rubric: NonBlank | None = None


class Turn(_Model):
    """One user message, the reference calls it needs, and what the outcome must be."""

    user: Annotated[str, AfterValidator(_check_user)]
    expected_calls: list[ExpectedCall]
    expect: Literal["success", "failure"] = "success"
    error_contains: str | None = None
    reply: Reply = Field(default_factory=Reply)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.expect == "failure" and not (self.error_contains or "").strip():
            raise Problems([(("error_contains",), "required (non-empty) when expect is 'failure'")])
        if self.expect == "success" and self.error_contains is not None:
            raise Problems([(("error_contains",), "only allowed when expect is 'failure'")])
        return self


class Conversation(_Model):
    """One benchmark item: a multi-turn conversation starting from the seed world."""

    format: Literal["crmbench/1"]
    id: Annotated[str, AfterValidator(_check_id)]
    workflow: Workflow
    complexity: Complexity
    reference_date: Annotated[date, BeforeValidator(_strict_date)]
    seed: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    turns: list[Turn] = Field(min_length=1, max_length=10)
    tags: list[str] = Field(default_factory=list)
    title: NonBlank | None = None

    @field_validator("seed")
    @classmethod
    def _check_seed(
        cls, seed: dict[str, list[dict[str, Any]]], info: ValidationInfo
    ) -> dict[str, list[dict[str, Any]]]:
        if _checked(info):
            return seed
        problems: list[tuple[Loc, str]] = []
        for table, records in seed.items():
            entity = BY_TABLE.get(table)
            if entity is None:
                problems.append(((table,), f"unknown table (tables: {', '.join(BY_TABLE)})"))
                continue
            for i, raw in enumerate(records):
                unknown = [k for k in raw if k not in entity.field_names]
                for key in unknown:
                    problems.append(((table, i, key), f"unknown field of {entity.name}"))
                if not unknown:
                    try:
                        record_from_json(entity, raw)
                    except (ValueError, TypeError) as e:
                        problems.append(((table, i), f"invalid {entity.name} record: {e}"))
        if problems:
            raise Problems(problems)
        return seed

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Self:
        if _checked(info):
            return self
        problems: list[tuple[Loc, str]] = []
        low, high = TURNS_BY_COMPLEXITY[self.complexity]
        if not low <= len(self.turns) <= high:
            problems.append(
                (
                    ("complexity",),
                    f"{self.complexity!r} means {low}–{high} turns "
                    f"but the conversation has {len(self.turns)}",
                )
            )
        for number, turn in enumerate(self.turns, 1):
            for c, call in enumerate(turn.expected_calls):
                base: Loc = ("turns", number - 1, "expected_calls", c, "args")
                for loc, text in ref_strings(call.args, base):
                    for ref in parse_refs(text):
                        problem = self._ref_problem(ref.turn, ref.call, number)
                        if problem:
                            problems.append((loc, f"{ref.text}: {problem}"))
        if problems:
            raise Problems(problems)
        return self

    def _ref_problem(self, turn: int, call: int | None, current: int) -> str | None:
        if turn >= current:
            return (
                f"forward reference: turn {current} refers to turn {turn}; "
                "only earlier turns' results exist"
            )
        n_calls = len(self.turns[turn - 1].expected_calls)
        if call is not None and call >= n_calls:
            return f"turn {turn} has {n_calls} expected call(s), so calls[{call}] does not exist"
        if n_calls == 0:
            return f"turn {turn} has no expected calls"
        return None

    @property
    def tools(self) -> tuple[str, ...]:
        """The distinct tools of the expected calls, sorted."""
        return tuple(sorted({c.tool for t in self.turns for c in t.expected_calls}))

    @property
    def has_failure_turn(self) -> bool:
        return any(t.expect == "failure" for t in self.turns)

    @property
    def n_turns(self) -> int:
        return len(self.turns)
