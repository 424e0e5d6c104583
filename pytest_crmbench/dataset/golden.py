"""Golden cases: the ``crmbench-golden/1`` file format.

The ``sandbox`` family sends a payload verbatim to one CRM tool; the ``agent`` family
is a one-turn conversation put to the agent (:func:`as_conversation`).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_crmbench.crm.catalog import BY_TOOL
from pytest_crmbench.crm.entities import BY_TABLE
from pytest_crmbench.dataset import answer_key, workflows
from pytest_crmbench.dataset.model import Conversation

GOLDEN_FORMAT = "crmbench-golden/1"


class GoldenCase(BaseModel):
    """One golden case; ``payload`` for sandbox, ``user``/``expected_calls`` for agent."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z]{2,4}-[A-Z]?\d{3}$")
    slug: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    family: Literal["sandbox", "agent"]
    tool: str
    setup: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    expect: Literal["success", "failure"] = "success"
    error_contains: str | None = None
    # sandbox
    payload: dict[str, Any] | None = None
    expected: dict[str, Any] | None = None  # field values of the written record
    expected_count: int | None = None  # searches: number of results
    expected_names: list[str] | None = None  # searches: names of the results, in order
    # agent
    user: str | None = None
    expected_calls: list[dict[str, Any]] | None = None
    must_mention: list[str] = Field(default_factory=list)
    must_not_mention: list[str] = Field(default_factory=list)  # records a dump would show

    @model_validator(mode="after")
    def _coherent(self) -> GoldenCase:
        if self.tool not in BY_TOOL or not BY_TOOL[self.tool].agent:
            raise ValueError(f"unknown tool {self.tool!r}")
        if (self.expect == "failure") != bool(self.error_contains):
            raise ValueError("error_contains is required exactly when expect is 'failure'")
        if self.family == "sandbox" and self.payload is None:
            raise ValueError("a sandbox case needs a payload")
        if self.family == "agent" and (not self.user or self.expected_calls is None):
            raise ValueError("an agent case needs user and expected_calls")
        unknown = set(self.setup) - set(BY_TABLE)
        if unknown:
            raise ValueError(f"unknown setup tables {sorted(unknown)}")
        return self

    @property
    def test_id(self) -> str:
        return f"{self.id}-{self.slug}"


class GoldenFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["crmbench-golden/1"]
    task: str
    reference_date: date
    cases: list[GoldenCase]


def load_golden(paths: list[Path]) -> list[tuple[GoldenFile, GoldenCase]]:
    """All golden cases of the given files (sorted by name), ids unique."""
    out: list[tuple[GoldenFile, GoldenCase]] = []
    seen: dict[str, Path] = {}
    for path in sorted(paths):
        try:
            gf = GoldenFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
            answer_key.protect(path)
        except (ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
        for case in gf.cases:
            if case.id in seen:
                raise ValueError(f"{path}: duplicate golden id {case.id} (also in {seen[case.id]})")
            seen[case.id] = path
            out.append((gf, case))
    return out


def as_conversation(gf: GoldenFile, case: GoldenCase) -> Conversation:
    """An agent-family case as a one-turn ``crmbench/1`` conversation."""
    return Conversation.model_validate(
        {
            "format": "crmbench/1",
            "id": case.id,
            "title": case.slug,
            "workflow": workflows.of_tool(gf.task),
            "complexity": "simple",
            "reference_date": gf.reference_date.isoformat(),
            "seed": case.setup,
            "turns": [
                {
                    "user": case.user,
                    "expected_calls": case.expected_calls,
                    "expect": case.expect,
                    "error_contains": case.error_contains,
                    "reply": {
                        "must_mention": case.must_mention,
                        "must_not_mention": case.must_not_mention,
                    },
                }
            ],
            "tags": ["golden", "golden_agent"],
        }
    )
