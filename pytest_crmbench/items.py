"""Benchmark items: datasets turned into cases with readable ids and markers (no hooks).

The plugin parametrizes test modules with these cases; the controller of an xdist run
uses the same functions to know which case a node id stands for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from functools import cached_property, lru_cache
from pathlib import Path

import pytest

from pytest_crmbench.collect_cache import CollectCache
from pytest_crmbench.crm.catalog import AGENT_TOOLS, BY_TOOL
from pytest_crmbench.dataset import workflows
from pytest_crmbench.dataset.arc import is_arc
from pytest_crmbench.dataset.defects import Defect
from pytest_crmbench.dataset.golden import GoldenCase, GoldenFile, as_conversation, load_golden
from pytest_crmbench.dataset.loader import Dataset, load_dataset
from pytest_crmbench.dataset.model import CHECKED, Conversation
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
class Compact:
    """A validated conversation as its JSONL line, with what collection and the plugin's
    bookkeeping read of it (markers, tools, workflow, work): a tenth of the memory of the
    objects, which are rebuilt from the line when the item runs."""

    line: bytes
    conv_id: str
    test_id: str  # of its first trial
    markers: tuple[str, ...]
    tools: tuple[str, ...]
    workflow: str
    complexity: str
    work: int  # turns plus reference calls (shard balancing)


_DIGEST_FIELDS = tuple(f.name for f in fields(Compact) if f.name != "line")


@lru_cache(maxsize=4)  # an item asks more than once; trials of a case run one after another
def _rebuild(line: bytes) -> Conversation:
    # Validated when the dataset was loaded: converted again, not checked again.
    return Conversation.model_validate_json(line, context=CHECKED)


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
    compact: Compact | None = None  # or the conversation, kept as its line

    @cached_property
    def _golden_conversation(self) -> Conversation | None:
        return as_conversation(*self.golden) if self.golden is not None else None

    @property
    def conversation(self) -> Conversation | None:
        """What the agent is given: the conversation, or an agent golden case as one."""
        if self.kind == "golden_agent":
            return self._golden_conversation
        if self.compact is not None:
            return _rebuild(self.compact.line)
        return self.dialogue

    def markers(self) -> list[str]:
        if self.compact is not None:
            return list(self.compact.markers)
        return case_markers(self.kind, self.conversation, self.golden)

    def tools(self) -> list[str]:
        if self.compact is not None:
            return list(self.compact.tools)
        conv = self.conversation
        if conv is not None:
            return _tools(conv)
        return [self.golden[1].tool] if self.golden is not None else []

    def workflow(self) -> str | None:
        if self.compact is not None:
            return self.compact.workflow
        conv = self.conversation
        if conv is not None:
            return conv.workflow
        return workflows.of_tool(self.golden[0].task) if self.golden is not None else None

    def complexity(self) -> str:
        if self.compact is not None:
            return self.compact.complexity
        conv = self.conversation
        return conv.complexity if conv is not None else "simple"

    def work(self) -> int:
        """Expected work of the item, for balancing shards: turns plus reference calls."""
        if self.compact is not None:
            return self.compact.work
        conv = self.conversation
        return _work(conv) if conv is not None else 1

    def unjudged_result(self, reason: str, outcome: Outcome = "error") -> ItemResult:
        """The result of this item when it could not be judged (error) or was skipped."""
        return error_result(
            self.case_id,
            reason,
            test_id=self.test_id,
            family=self.kind,
            trial=self.trial,
            workflow=self.workflow(),
            complexity=self.complexity(),
            tools=self.tools(),
            outcome=outcome,
        )


def _tools(conv: Conversation) -> list[str]:
    return sorted({c.tool for t in conv.turns for c in t.expected_calls})


def _work(conv: Conversation) -> int:
    return sum(1 + len(t.expected_calls) for t in conv.turns)


def case_markers(kind: Family, conv: Conversation | None, golden: GoldenPair | None) -> list[str]:
    """The markers of an item: every one, its family, complexity, workflow, tools, refusal."""
    marks = ["crmbench", kind]
    if conv is not None:
        marks.append(conv.complexity)
        marks.append(workflows.marker(conv.workflow))
        # Only the registered tool markers (an imported conversation may name others).
        marks += [t for t in _tools(conv) if t in BY_TOOL and BY_TOOL[t].agent]
        if any(t.expect == "failure" for t in conv.turns):
            marks.append(REFUSAL_MARKER)
        if is_arc(conv):
            marks.append("arc")
    elif golden is not None:
        gc = golden[1]
        marks += ["simple", gc.tool]
        if gc.expect == "failure":
            marks.append(REFUSAL_MARKER)
    return marks


def _keep(conv: Conversation, line: bytes | None) -> Conversation | Compact:
    """What collection holds of a loaded conversation: its line and digest (see
    :class:`Compact`), or the object itself when it has no line (imported from Arc)."""
    if line is None:
        return conv
    return Compact(
        line,
        conv.id,
        conversation_test_id(conv),
        tuple(case_markers("conversation", conv, None)),
        tuple(_tools(conv)),
        conv.workflow,
        conv.complexity,
        _work(conv),
    )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def conversation_test_id(conv: Conversation) -> str:
    """``CONV-0412-quote-management-complex`` (the id already carries it, or we add it)."""
    if conv.title:
        return f"{conv.id}-{slug(conv.title)}"
    return str(conv.id)


@lru_cache(maxsize=16)
def _load_conversations(paths: tuple[str, ...], cache_dir: Path | None = None) -> Dataset:
    """The dataset as collection keeps it; with ``cache_dir``, from the collect cache
    when the files and the plugin are what they were (see :mod:`.collect_cache`)."""
    cache = CollectCache(cache_dir) if cache_dir is not None else None
    if cache is not None:
        found = cache.get(paths)
        if found is not None:
            dataset, digests = found
            try:
                kept = tuple(
                    Compact(**{**d, "markers": tuple(d["markers"]), "tools": tuple(d["tools"])})
                    for d in digests
                )
            except (KeyError, TypeError):  # an entry of another shape: load as usual
                pass
            else:
                return replace(dataset, kept=kept)
    dataset = load_dataset([Path(p) for p in paths], keep=_keep)
    compacts = [k for k in dataset.kept if isinstance(k, Compact)]
    if cache is not None and compacts and len(compacts) == len(dataset.kept):
        digests = [{f: getattr(c, f) for f in _DIGEST_FIELDS} for c in compacts]
        cache.put(paths, dataset, digests)
    return dataset


def conversation_cases(
    paths: tuple[str, ...], trials: int, cache_dir: Path | None = None
) -> tuple[list[Case], Dataset]:
    """A dataset's items (``trials`` each); ``cache_dir``: pytest's collect cache."""
    dataset = _load_conversations(paths, cache_dir)
    cases = []
    source = ",".join(paths)
    for kept in dataset.kept:
        compact: Compact | None = None
        conv: Conversation | None = None
        if isinstance(kept, Compact):
            compact, conv_id, base = kept, kept.conv_id, kept.test_id
        else:
            conv = kept
            conv_id, base = kept.id, conversation_test_id(kept)
        defects = tuple(d for d in dataset.defects.get(conv_id, ()) if d.blocking)
        for trial in range(1, trials + 1):
            tid = base if trials == 1 else f"{base}-t{trial}"
            cases.append(
                Case("conversation", conv_id, tid, trial, source, defects, conv, compact=compact)
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
