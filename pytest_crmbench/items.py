"""Benchmark items: datasets turned into cases with readable ids and markers (no hooks).

The plugin parametrizes test modules with these cases; the controller of an xdist run
uses the same functions to know which case a node id stands for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import pytest

from pytest_crmbench.crm.catalog import AGENT_TOOLS, BY_TOOL
from pytest_crmbench.dataset import workflows
from pytest_crmbench.dataset.arc import is_arc
from pytest_crmbench.dataset.defects import Defect
from pytest_crmbench.dataset.golden import GoldenCase, GoldenFile, as_conversation, load_golden
from pytest_crmbench.dataset.loader import Dataset, load_dataset
from pytest_crmbench.dataset.model import Conversation
from pytest_crmbench.runner.records import Family, ItemResult, Outcome, error_result

COMPLEXITY_MARKERS = ("simple", "medium", "complex")
FAMILY_MARKERS: tuple[Family, ...] = ("conversation", "golden_sandbox", "golden_agent")
REFUSAL_MARKER = "refusal"


def marker_lines() -> list[str]:
    """Every marker the plugin puts on items, registered so ``--strict-markers`` works."""
    lines = [f"{c}: {c} conversations" for c in COMPLEXITY_MARKERS]
    lines += [f"{w.marker}: workflow {w.name}" for w in workflows.TABLE]
    lines += [f"{t.name}: cases whose reference uses the {t.name} tool" for t in AGENT_TOOLS]
    lines += [
        "conversation: multi-turn conversation items",
        "golden_sandbox: golden cases sent verbatim to the CRM (no agent)",
        "golden_agent: golden cases put to the agent",
        "refusal: cases with a turn the CRM must refuse",
        "arc: conversations imported from the upstream (Arc) format",
        "crmbench: every benchmark item",
    ]
    return lines


GoldenPair = tuple[GoldenFile, GoldenCase]


@dataclass(frozen=True)
class Case:
    """One benchmark item's payload: a conversation or a golden case, and its trial."""

    kind: Family
    case_id: str
    test_id: str
    trial: int = 1
    source: str = ""
    defects: tuple[Defect, ...] = ()  # blocking defects of an imported (Arc) conversation
    dialogue: Conversation | None = None  # the conversation of a ``conversation`` item
    golden: GoldenPair | None = None  # the golden case of a ``golden_*`` item

    @cached_property
    def conversation(self) -> Conversation | None:
        """What the agent is given: the conversation, or an agent golden case as one."""
        if self.kind == "golden_agent" and self.golden is not None:
            return as_conversation(*self.golden)
        return self.dialogue

    def markers(self) -> list[str]:
        marks = ["crmbench", self.kind]
        conv = self.conversation
        if conv is not None:
            marks.append(conv.complexity)
            marks.append(workflows.marker(conv.workflow))
            # Only the registered tool markers (an imported conversation may name others).
            marks += sorted(t for t in self.tools() if t in BY_TOOL and BY_TOOL[t].agent)
            if any(t.expect == "failure" for t in conv.turns):
                marks.append(REFUSAL_MARKER)
            if is_arc(conv):
                marks.append("arc")
        elif self.golden is not None:
            gc = self.golden[1]
            marks += ["simple", gc.tool]
            if gc.expect == "failure":
                marks.append(REFUSAL_MARKER)
        return marks

    def tools(self) -> list[str]:
        conv = self.conversation
        if conv is not None:
            return sorted({c.tool for t in conv.turns for c in t.expected_calls})
        return [self.golden[1].tool] if self.golden is not None else []

    def workflow(self) -> str | None:
        conv = self.conversation
        if conv is not None:
            return conv.workflow
        return workflows.of_tool(self.golden[0].task) if self.golden is not None else None

    def unjudged_result(self, reason: str, outcome: Outcome = "error") -> ItemResult:
        """The result of this item when it could not be judged (error) or was skipped."""
        conv = self.conversation
        return error_result(
            self.case_id,
            reason,
            test_id=self.test_id,
            family=self.kind,
            trial=self.trial,
            workflow=self.workflow(),
            complexity=conv.complexity if conv is not None else "simple",
            tools=self.tools(),
            outcome=outcome,
        )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def conversation_test_id(conv: Conversation) -> str:
    """``CONV-0412-quote-management-complex`` (the id already carries it, or we add it)."""
    if conv.title:
        return f"{conv.id}-{slug(conv.title)}"
    return str(conv.id)


@lru_cache(maxsize=16)
def _load_conversations(paths: tuple[str, ...]) -> Dataset:
    return load_dataset([Path(p) for p in paths])


def conversation_cases(paths: tuple[str, ...], trials: int) -> tuple[list[Case], Dataset]:
    dataset = _load_conversations(paths)
    cases = []
    for conv in dataset.conversations:
        base = conversation_test_id(conv)
        defects = tuple(d for d in dataset.defects.get(conv.id, ()) if d.blocking)
        for trial in range(1, trials + 1):
            tid = base if trials == 1 else f"{base}-t{trial}"
            cases.append(
                Case("conversation", conv.id, tid, trial, ",".join(paths), defects, dialogue=conv)
            )
    return cases, dataset


@lru_cache(maxsize=16)
def _load_golden(paths: tuple[str, ...]) -> list[GoldenPair]:
    return load_golden([Path(p) for p in paths])


def golden_cases(paths: tuple[str, ...], trials: int) -> list[Case]:
    cases = []
    for gf, gc in _load_golden(paths):
        kind: Family = "golden_sandbox" if gc.family == "sandbox" else "golden_agent"
        n = 1 if kind == "golden_sandbox" else trials
        for trial in range(1, n + 1):
            tid = gc.test_id if n == 1 else f"{gc.test_id}-t{trial}"
            cases.append(Case(kind, gc.id, tid, trial, golden=(gf, gc)))
    return cases


def item_case(item: pytest.Item) -> Case | None:
    """The benchmark case a collected item runs, if it is one."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("crm_case") if callspec is not None else None
    return case if isinstance(case, Case) else None
