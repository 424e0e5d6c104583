"""The runner's output contract: item and turn results as typed, plain-JSON dicts.

They are ``TypedDict``s rather than classes because they travel as they are: on pytest
reports through xdist, into the JSON report and the JSONL stream.
Every result of an item that could not be judged is built by :func:`error_result`.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

Outcome = Literal["passed", "failed", "error", "skipped"]
TurnKind = Literal["write", "read", "refusal"]  # changes state / only reads / must be refused
Family = Literal["conversation", "golden_sandbox", "golden_agent"]


class CallRecord(TypedDict):
    """One tool call the agent made, as it was recorded."""

    tool: Any
    args: Any
    ok: bool
    result: NotRequired[Any]
    error: NotRequired[str | None]
    ms: NotRequired[float]


class ExpectedCallRecord(TypedDict):
    tool: str
    args: Any


class FirstFailure(TypedDict):
    turn: int
    reason: str | None


class TurnResult(TypedDict):
    """The verdict of one turn: ``checks`` holds state, refusal, reply, judge, action."""

    turn: int
    kind: TurnKind
    user: str
    expect: str
    passed: bool
    reason: str | None
    reasons: list[str]
    checks: dict[str, Any]
    calls: list[CallRecord]
    expected_calls: list[ExpectedCallRecord]
    reply: str
    usage: dict[str, Any] | None
    duration_s: float
    agent_s: float
    harness_s: float


class ItemResult(TypedDict):
    """The result of one benchmark item (conversation, golden case, or one not judged)."""

    case_id: str
    family: str
    workflow: str | None
    complexity: str
    trial: int
    tools: list[str]
    passed: bool
    outcome: Outcome
    turns: list[TurnResult]
    test_id: NotRequired[str]
    first_failure: NotRequired[FirstFailure | None]
    agent: NotRequired[str]
    n_turns: NotRequired[int]
    turns_passed: NotRequired[int]
    usage: NotRequired[dict[str, Any]]
    duration_s: NotRequired[float]
    harness_s: NotRequired[float]
    error: NotRequired[str | None]  # why it was not judged (or a sandbox call's error)
    problems: NotRequired[list[str]]  # golden sandbox: what differed
    result: NotRequired[Any]  # golden sandbox: what the call returned
    oracle: NotRequired[bool]  # the agent was given, or took, reference data
    model: NotRequired[dict[str, str | None]]  # name, provider, host of a model-backed agent
    stream: NotRequired[str]  # ordered runs: the stream the item ran in
    seq: NotRequired[int]  # ordered runs: its position (1-based) in that stream


ANSWER_KEY_REASON = "the agent opened the benchmark's answer key"


def read_answer_key(result: ItemResult, files: list[str]) -> ItemResult:
    """The result of an item whose agent opened a dataset file: failed, and ``oracle``."""
    reason = f"{ANSWER_KEY_REASON}: {', '.join(sorted(set(files)))}"
    return {
        **result,
        "passed": False,
        "outcome": "failed",
        "oracle": True,
        "first_failure": {"turn": 0, "reason": reason},
        "error": reason,
    }


def error_result(
    case_id: str,
    reason: str,
    *,
    test_id: str,
    family: str,
    trial: int = 1,
    workflow: str | None = None,
    complexity: str = "simple",
    tools: list[str] | None = None,
    outcome: Outcome = "error",
) -> ItemResult:
    """The result of an item that was not judged: an error (infrastructure, a crashed
    worker) or a skip (a dataset defect), with the reason."""
    return {
        "case_id": case_id,
        "test_id": test_id,
        "family": family,
        "trial": trial,
        "workflow": workflow,
        "complexity": complexity,
        "tools": list(tools or []),
        "passed": False,
        "outcome": outcome,
        "error": reason,
        "turns": [],
    }
