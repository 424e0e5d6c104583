"""Running ``golden_sandbox`` cases: the payload goes verbatim to the CRM's guards.

(``golden_agent`` cases are one-turn conversations and go through the runner.)
"""

from __future__ import annotations

from typing import Any

from pytest_crmbench.crm.clock import DeterministicIds, FixedClock
from pytest_crmbench.crm.errors import CrmError
from pytest_crmbench.crm.service import CRM, to_json
from pytest_crmbench.crm.store import Store
from pytest_crmbench.dataset import workflows
from pytest_crmbench.dataset.golden import GoldenCase, GoldenFile
from pytest_crmbench.runner.records import ItemResult
from pytest_crmbench.runner.runner import load_conversation_seed
from pytest_crmbench.runner.tracking import TrackingStore


def run_sandbox(gf: GoldenFile, case: GoldenCase, store: Store) -> ItemResult:
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
        "workflow": workflows.of_tool(gf.task),
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
