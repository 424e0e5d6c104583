"""Golden cases (golden.md): the ``sandbox`` family runs payloads verbatim against the
CRM's guards; the ``agent`` family becomes a one-turn conversation for the runner.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_crmbench.crm.catalog import BY_TOOL
from pytest_crmbench.crm.clock import DeterministicIds, FixedClock
from pytest_crmbench.crm.entities import BY_TABLE
from pytest_crmbench.crm.errors import CrmError
from pytest_crmbench.crm.service import CRM, to_json
from pytest_crmbench.crm.store import Store
from pytest_crmbench.runner.runner import load_conversation_seed
from pytest_crmbench.runner.tracking import TrackingStore

GOLDEN_FORMAT = "crmbench-golden/1"

TASK_WORKFLOW = {
    "create_new_client": "Client Management",
    "create_new_opportunity": "Opportunity Management",
    "create_quote": "Quote Management",
    "upload_document": "Document Management",
    "modify_opportunity": "Opportunity Management",
    "opportunity_search": "Opportunity Management",
}


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
        except (ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
        for case in gf.cases:
            if case.id in seen:
                raise ValueError(f"{path}: duplicate golden id {case.id} (also in {seen[case.id]})")
            seen[case.id] = path
            out.append((gf, case))
    return out


def as_conversation(gf: GoldenFile, case: GoldenCase) -> Any:
    """An agent-family case as a one-turn ``crmbench/1`` conversation."""
    from pytest_crmbench.dataset.model import Conversation

    return Conversation.model_validate(
        {
            "format": "crmbench/1",
            "id": case.id,
            "title": case.slug,
            "workflow": TASK_WORKFLOW.get(gf.task, "Opportunity Management"),
            "complexity": "simple",
            "reference_date": gf.reference_date.isoformat(),
            "seed": case.setup,
            "turns": [
                {
                    "user": case.user,
                    "expected_calls": case.expected_calls,
                    "expect": case.expect,
                    "error_contains": case.error_contains,
                    "reply": {"must_mention": case.must_mention},
                }
            ],
            "tags": ["golden", "golden_agent"],
        }
    )


def run_sandbox(gf: GoldenFile, case: GoldenCase, store: Store) -> dict[str, Any]:
    """Send the payload verbatim; return the plain-JSON result (``passed`` + ``problems``)."""
    assert case.payload is not None
    store.reset()
    try:
        load_conversation_seed(store, case.setup)
        tracking = TrackingStore(store)
        crm = CRM(tracking, clock=FixedClock(gf.reference_date), ids=DeterministicIds(case.id))
        before = store.dump() if case.expect == "failure" else None
        tracking.start()
        problems: list[str] = []
        result: Any = None
        error: str | None = None
        try:
            result = crm.call(case.tool, case.payload, agent=True)
        except CrmError as exc:
            error = exc.message
        changes = tracking.changes()
        if case.expect == "failure":
            if error is None:
                problems.append(
                    f"expected an error containing {case.error_contains!r}, got success"
                )
            elif (case.error_contains or "") not in error:
                problems.append(f"error {error!r} does not contain {case.error_contains!r}")
            if store.dump() != before:
                problems.append("state changed although the call failed")
        else:
            if error is not None:
                problems.append(f"unexpected error: {error}")
            problems += _check_success(case, result, changes)
    finally:
        store.reset()
    return {
        "case_id": case.id,
        "family": "golden_sandbox",
        "workflow": TASK_WORKFLOW.get(gf.task),
        "complexity": "simple",
        "tools": [case.tool],
        "trial": 0,
        "passed": not problems,
        "outcome": "passed" if not problems else "failed",
        "first_failure": None if not problems else {"turn": 1, "reason": problems[0]},
        "problems": problems,
        "result": result if isinstance(result, dict | list) else to_json(result),
        "error": error,
        "turns": [],
    }


def _check_success(case: GoldenCase, result: Any, changes: list[Any]) -> list[str]:
    problems: list[str] = []
    if case.expected_count is not None or case.expected_names is not None:
        rows = result if isinstance(result, list) else []
        if case.expected_count is not None and len(rows) != case.expected_count:
            problems.append(f"expected {case.expected_count} results, got {len(rows)}")
        names = [r.get("name") for r in rows if isinstance(r, dict)]
        if case.expected_names is not None and names != case.expected_names:
            problems.append(f"expected results {case.expected_names}, got {names}")
        if changes:
            problems.append("a search changed the state")
        return problems
    if case.expected is not None:
        written = [c for c in changes if c.after is not None]
        if len(written) != 1:
            problems.append(f"expected exactly one written record, got {len(written)}")
            return problems
        record = {k: to_json(v) for k, v in (written[0].after or {}).items()}
        for name, want in case.expected.items():
            got = record.get(name)
            same = got == want or (
                isinstance(got, int | float) and isinstance(want, int | float) and got == want
            )
            if not same:
                problems.append(f"{name}: {got!r} ≠ expected {want!r}")
    return problems
