"""Turning datasets into pytest parameters: cases, readable ids, markers (no hooks here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

WORKFLOW_MARKERS = {
    "Opportunity Management": "opportunity_management",
    "Client Management": "client_management",
    "Contact Management": "contact_management",
    "Quote Management": "quote_management",
    "Contract Management": "contract_management",
    "Company / Account Management": "company_management",
    "Document Management": "document_management",
    "Notes & Collaboration": "notes_collaboration",
}
COMPLEXITY_MARKERS = ("simple", "medium", "complex")
FAMILY_MARKERS = ("conversation", "golden_sandbox", "golden_agent")
REFUSAL_MARKER = "refusal"


def marker_lines() -> list[str]:
    """Every marker the plugin puts on items, registered so ``--strict-markers`` works."""
    from pytest_crmbench.crm.catalog import AGENT_TOOLS

    lines = [f"{c}: {c} conversations" for c in COMPLEXITY_MARKERS]
    lines += [f"{m}: workflow {w}" for w, m in WORKFLOW_MARKERS.items()]
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


@dataclass(frozen=True)
class Case:
    """One benchmark item's payload: a conversation or a golden case, and its trial."""

    kind: str  # conversation | golden_sandbox | golden_agent
    case_id: str
    test_id: str
    data: Any  # Conversation, or (GoldenFile, GoldenCase)
    trial: int = 1
    source: str = ""
    defects: tuple[Any, ...] = ()  # blocking defects of an imported (Arc) conversation

    def markers(self) -> list[str]:
        from pytest_crmbench.crm.catalog import BY_TOOL
        from pytest_crmbench.dataset.arc import is_arc

        marks = ["crmbench", self.kind]
        conv = self.conversation
        if conv is not None:
            marks.append(conv.complexity)
            marks.append(WORKFLOW_MARKERS.get(conv.workflow, "opportunity_management"))
            # Only the registered tool markers (an imported conversation may name others).
            tools = {c.tool for t in conv.turns for c in t.expected_calls}
            marks += sorted(t for t in tools if t in BY_TOOL and BY_TOOL[t].agent)
            if any(t.expect == "failure" for t in conv.turns):
                marks.append(REFUSAL_MARKER)
            if is_arc(conv):
                marks.append("arc")
        else:
            _gf, gc = self.data
            marks += ["simple", gc.tool]
            if gc.expect == "failure":
                marks.append(REFUSAL_MARKER)
        return marks

    @property
    def conversation(self) -> Any:
        if self.kind == "conversation":
            return self.data
        if self.kind == "golden_agent":
            from pytest_crmbench.runner.golden import as_conversation

            return as_conversation(*self.data)
        return None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def conversation_test_id(conv: Any) -> str:
    """``CONV-0412-quote-management-complex`` (the id already carries it, or we add it)."""
    if conv.title:
        return f"{conv.id}-{slug(conv.title)}"
    return str(conv.id)


@lru_cache(maxsize=16)
def _load_conversations(paths: tuple[str, ...]) -> Any:
    from pytest_crmbench.dataset.loader import load_dataset

    return load_dataset([Path(p) for p in paths])


def conversation_cases(paths: tuple[str, ...], trials: int) -> tuple[list[Case], Any]:
    dataset = _load_conversations(paths)
    cases = []
    for conv in dataset.conversations:
        base = conversation_test_id(conv)
        defects = tuple(d for d in dataset.defects.get(conv.id, ()) if d.blocking)
        for trial in range(1, trials + 1):
            tid = base if trials == 1 else f"{base}-t{trial}"
            cases.append(Case("conversation", conv.id, tid, conv, trial, ",".join(paths), defects))
    return cases, dataset


@lru_cache(maxsize=16)
def _load_golden(paths: tuple[str, ...]) -> Any:
    from pytest_crmbench.runner.golden import load_golden

    return load_golden([Path(p) for p in paths])


def golden_cases(paths: tuple[str, ...], trials: int) -> list[Case]:
    cases = []
    for gf, gc in _load_golden(paths):
        kind = "golden_sandbox" if gc.family == "sandbox" else "golden_agent"
        n = 1 if kind == "golden_sandbox" else trials
        for trial in range(1, n + 1):
            tid = gc.test_id if n == 1 else f"{gc.test_id}-t{trial}"
            cases.append(Case(kind, gc.id, tid, (gf, gc), trial))
    return cases
