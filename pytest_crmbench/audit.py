"""``crmbench audit``: the verifier's own mutation test, run on a dataset.

A verdict is only as good as the mistakes it catches. The audit runs the oracle with one
planted mistake per conversation (a *degradation*: drop a write, perturb one argument,
add a write nobody asked for, "fix" a request the CRM must refuse, answer "Done" to one)
and a set of cheaters that do no real work (noop, dump every search, always refuse, echo
the user with plausible numbers). It prints each agent's conversation and turn pass
rates and the share of applied degradations that were caught, and fails when a
degradation that changed the outcome escaped or a cheater passes more than 1 % of the
conversations or 5 % of the turns. Memory store, no pytest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pytest_crmbench.agents.base import Agent, Briefing, ToolHandle
from pytest_crmbench.agents.cheaters import CHEATERS
from pytest_crmbench.agents.scripted import NoopAgent, ReplayAgent, ScriptTurn
from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.crm.catalog import BY_TOOL
from pytest_crmbench.crm.seed import load_seed_world
from pytest_crmbench.dataset.golden import as_conversation, load_golden
from pytest_crmbench.dataset.loader import load_dataset
from pytest_crmbench.dataset.model import Conversation
from pytest_crmbench.dataset.refs import RefError
from pytest_crmbench.locations import shipped_conversations, shipped_golden
from pytest_crmbench.runner import DatasetDefect, Runner
from pytest_crmbench.runner.records import ItemResult

WRITE_GROUPS = frozenset({"create", "modify", "lifecycle"})
MAX_CHEATER_CONVERSATIONS = 0.01
MAX_CHEATER_TURNS = 0.05
_NUMERIC = ("amount", "value", "probability")
_TEXT = ("name", "notes", "content", "title", "description")


def _is_write(call: dict[str, Any]) -> bool:
    spec = BY_TOOL.get(str(call.get("tool")))
    return spec is not None and spec.group in WRITE_GROUPS


class Degraded(ReplayAgent):
    """The oracle with one planted mistake, on one eligible turn of each conversation
    (chosen from the case id, so the audit is reproducible). ``applied`` says whether
    the mistake was really made (a perturbed call that the CRM took, an extra write that
    went through…): only applied mistakes count."""

    kind = "degraded"

    def __init__(self) -> None:
        super().__init__()
        self.target = 0
        self.applied = False
        self.reference_date = date.today()

    def eligible(self, step: ScriptTurn) -> bool:
        raise NotImplementedError

    def degrade(self, step: ScriptTurn, tools: ToolHandle) -> str:
        raise NotImplementedError

    def receive_script(self, case_id: str, script: Sequence[ScriptTurn]) -> None:
        super().receive_script(case_id, script)
        turns = [n for n, step in enumerate(script, 1) if self.eligible(step)]
        digest = int(hashlib.sha256(case_id.encode()).hexdigest(), 16)
        self.target = turns[digest % len(turns)] if turns else 0
        self.applied = False

    def start(self, briefing: Briefing) -> None:
        super().start(briefing)
        self.reference_date = briefing.reference_date

    def respond(self, message: str, tools: ToolHandle) -> str:
        if self._turn + 1 != self.target:
            return super().respond(message, tools)
        step = self._script[self._turn]
        self._turn += 1
        return self.degrade(step, tools)

    def play(
        self, calls: Iterable[dict[str, Any]], tools: ToolHandle, skip: int | None = None
    ) -> list[Any]:
        """Make ``calls`` (references resolved) but the one at index ``skip``, recording
        the results for later turns in their places."""
        results: list[Any] = []
        for index, call in enumerate(calls):
            if index == skip:
                results.append(None)
                continue
            outcome = tools.call(call["tool"], self.resolve(call.get("args") or {}))
            results.append(outcome.result if outcome.ok else None)
        self._results[self._turn] = results
        return results

    def resolve(self, args: Any) -> Any:
        """After its mistake a later reference may have no value: pass it on as written
        (the CRM refuses it) rather than crash."""
        try:
            return super().resolve(args)
        except RefError:
            return args

    @staticmethod
    def done(step: ScriptTurn) -> str:
        return f"Done. {'; '.join(step.facts)}".strip()


class DropWrite(Degraded):
    kind = "drop a write"

    def eligible(self, step: ScriptTurn) -> bool:
        return not step.expect_failure and sum(map(_is_write, step.calls)) == 1

    def degrade(self, step: ScriptTurn, tools: ToolHandle) -> str:
        write = next(i for i, c in enumerate(step.calls) if _is_write(c))
        self.play(step.calls, tools, skip=write)
        self.applied = True
        return self.done(step)


class PerturbArgument(Degraded):
    kind = "perturb an argument"

    def eligible(self, step: ScriptTurn) -> bool:
        return not step.expect_failure and any(_perturbable(c) for c in step.calls)

    def degrade(self, step: ScriptTurn, tools: ToolHandle) -> str:
        results: list[Any] = []
        for call in step.calls:
            args = self.resolve(call.get("args") or {})
            changed = _perturb(args) if _perturbable(call) and not self.applied else None
            outcome = tools.call(call["tool"], changed if changed is not None else args)
            results.append(outcome.result if outcome.ok else None)
            self.applied |= changed is not None and outcome.ok
        self._results[self._turn] = results
        return self.done(step)


class AddWrite(Degraded):
    kind = "add a write"

    def eligible(self, step: ScriptTurn) -> bool:
        return not step.expect_failure and not any(map(_is_write, step.calls)) and bool(step.calls)

    def degrade(self, step: ScriptTurn, tools: ToolHandle) -> str:
        results = self.play(step.calls, tools)
        target = _first_record(results)
        if target is not None:
            outcome = tools.call(
                "add_note",
                {"entity_type": target[0], "entity_id": target[1], "content": "Reviewed."},
            )
            self.applied = outcome.ok
        return self.done(step)


class FixRefusal(Degraded):
    """Silently "fixes" what the CRM must refuse (a probability of 150 becomes 100, a
    past close date a future one, a .exe a .pdf…) and writes it."""

    kind = "fix a refused request"

    def eligible(self, step: ScriptTurn) -> bool:
        return step.expect_failure

    def degrade(self, step: ScriptTurn, tools: ToolHandle) -> str:
        results: list[Any] = []
        for call in step.calls:
            args = self.resolve(call.get("args") or {})
            outcome = tools.call(call["tool"], args)
            if not outcome.ok and _is_write(call):
                fixed = _fix(args, self.reference_date)
                if fixed is not None:
                    outcome = tools.call(call["tool"], fixed)
                    self.applied |= outcome.ok
            results.append(outcome.result if outcome.ok else None)
        self._results[self._turn] = results
        return self.done(step)


class DoneToRefusal(Degraded):
    kind = 'reply "Done" to a refusal'

    def eligible(self, step: ScriptTurn) -> bool:
        return step.expect_failure

    def degrade(self, step: ScriptTurn, tools: ToolHandle) -> str:
        self.play(step.calls, tools)
        self.applied = True
        return "Done."


DEGRADATIONS: tuple[type[Degraded], ...] = (
    DropWrite,
    PerturbArgument,
    AddWrite,
    FixRefusal,
    DoneToRefusal,
)


def _perturbable(call: dict[str, Any]) -> bool:
    return _is_write(call) and _perturb(call.get("args") or {}) is not None


def _perturb(args: dict[str, Any]) -> dict[str, Any] | None:
    """``args`` with one literal value changed (a number, or free text), else None."""
    out = json.loads(json.dumps(args))
    for holder in (out, out.get("updates")):
        if not isinstance(holder, dict):
            continue
        for key, value in holder.items():
            if "{{" in str(value):
                continue
            if key in _NUMERIC and isinstance(value, int | float) and not isinstance(value, bool):
                holder[key] = value - 5 if key == "probability" and value >= 5 else value + 7
                return dict(out)
            if key in _TEXT and isinstance(value, str) and value.strip():
                holder[key] = value + " (rev B)"
                return dict(out)
    return None


def _fix(args: dict[str, Any], today: date) -> dict[str, Any] | None:
    """A refused call's arguments bent into ones the CRM accepts (None: no idea how)."""
    out = json.loads(json.dumps(args))
    changed = False
    for holder in (out, out.get("updates")):
        if not isinstance(holder, dict):
            continue
        for key, value in list(holder.items()):
            if key == "probability" and isinstance(value, int | float):
                holder[key], changed = max(0, min(100, value)), True
            elif key in ("amount", "value") and isinstance(value, int | float):
                holder[key], changed = max(0, min(10_000_000, value)), True
            elif key in ("close_date", "valid_until", "end_date") and isinstance(value, str):
                holder[key], changed = (today + timedelta(days=30)).isoformat(), True
            elif key == "file_name" and isinstance(value, str) and "." in value:
                holder[key], changed = value.rsplit(".", 1)[0] + ".pdf", True
            elif key == "stage" and isinstance(value, str):
                holder[key], changed = "Negotiation", True
    return dict(out) if changed else None


def _first_record(results: Sequence[Any]) -> tuple[str, str] | None:
    """(entity type, id) of the first record a turn's reads returned."""
    for result in results:
        rows = result if isinstance(result, list) else [result]
        for row in rows:
            if not isinstance(row, dict):
                continue
            for key, entity in (
                ("opportunity_id", "Opportunity"),
                ("quote_id", "Quote"),
                ("client_id", "Client"),
                ("contact_id", "Contact"),
                ("contract_id", "Contract"),
            ):
                if isinstance(row.get(key), str):
                    return entity, row[key]
    return None


@dataclass
class AgentAudit:
    """How one agent did over the audited conversations."""

    name: str
    kind: str  # oracle | degradation | cheater
    conversations: int = 0
    passed: int = 0
    turns: int = 0
    turns_passed: int = 0
    applied: int = 0
    caught: int = 0
    escaped: list[str] = field(default_factory=list)

    @property
    def conversation_rate(self) -> float:
        return self.passed / self.conversations if self.conversations else 0.0

    @property
    def turn_rate(self) -> float:
        return self.turns_passed / self.turns if self.turns else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.name,
            "kind": self.kind,
            "conversations": self.conversations,
            "conversation_pass_rate": round(self.conversation_rate, 6),
            "turns": self.turns,
            "turn_pass_rate": round(self.turn_rate, 6),
            "applied": self.applied,
            "caught": self.caught,
            "escaped": self.escaped,
        }


@dataclass
class AuditReport:
    agents: list[AgentAudit]
    conversations: int
    defects: list[str] = field(default_factory=list)  # cases the oracle cannot even run

    @property
    def problems(self) -> list[str]:
        out = [f"dataset defect: {d}" for d in self.defects]
        for a in self.agents:
            if a.kind == "degradation" and a.escaped:
                shown = ", ".join(a.escaped[:5])
                out.append(f"{a.name}: {len(a.escaped)} degradation(s) escaped ({shown})")
            if a.kind == "cheater" and a.conversation_rate > MAX_CHEATER_CONVERSATIONS:
                out.append(f"{a.name}: passes {a.conversation_rate:.1%} of the conversations")
            if a.kind == "cheater" and a.turn_rate > MAX_CHEATER_TURNS:
                out.append(f"{a.name}: passes {a.turn_rate:.1%} of the turns")
            if a.kind == "oracle" and a.passed != a.conversations:
                out.append(f"{a.name}: the oracle fails {a.conversations - a.passed} case(s)")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "agents": [a.as_dict() for a in self.agents],
            "problems": self.problems,
            "ok": not self.problems,
        }


def _audited_cases(datasets: Sequence[str], golden: Sequence[str]) -> list[Conversation]:
    convs = list(load_dataset([Path(p) for p in datasets]).conversations) if datasets else []
    files = [
        p
        for g in golden
        for p in (sorted(Path(g).glob("*.json")) if Path(g).is_dir() else [Path(g)])
    ]
    convs += [as_conversation(gf, gc) for gf, gc in load_golden(files) if gc.family == "agent"]
    return convs


def audit(
    conversations: Sequence[Conversation],
    *,
    agents: Sequence[tuple[str, str, Callable[[], Agent]]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> AuditReport:
    """Run every audit agent over ``conversations`` on a memory store."""
    world = load_seed_world()
    runner = Runner(open_memory_store(world), world)
    roster = list(agents) if agents is not None else default_agents()
    out = []
    defects: dict[str, str] = {}
    for name, kind, make in roster:
        if progress:
            progress(name)
        row = AgentAudit(name, kind)
        for conv in conversations:
            agent = make()
            try:
                result = runner.run(conv, agent)
            except DatasetDefect as exc:
                defects.setdefault(conv.id, str(exc))
                continue
            _count(row, result, agent)
        out.append(row)
    return AuditReport(out, len(conversations), list(defects.values()))


def _count(row: AgentAudit, result: ItemResult, agent: Agent) -> None:
    row.conversations += 1
    row.passed += bool(result["passed"])
    row.turns += len(result["turns"])
    row.turns_passed += sum(t["passed"] for t in result["turns"])
    if isinstance(agent, Degraded) and agent.applied:
        row.applied += 1
        target = result["turns"][agent.target - 1]
        if target["passed"]:
            row.escaped.append(f"{result['case_id']} turn {agent.target}")
        else:
            row.caught += 1


def default_agents() -> list[tuple[str, str, Callable[[], Agent]]]:
    roster: list[tuple[str, str, Callable[[], Agent]]] = [
        ("replay (oracle)", "oracle", ReplayAgent)
    ]
    roster += [(d.kind, "degradation", d) for d in DEGRADATIONS]
    roster += [("noop", "cheater", NoopAgent)]
    roster += [(name, "cheater", factory) for name, factory in CHEATERS.items()]
    return roster


def format_report(report: AuditReport) -> str:
    lines = [
        f"crmbench audit: {report.conversations} conversations (memory store)",
        "",
        f"  {'agent':<30} {'conversations':>13} {'turns':>8}   degradations caught",
    ]
    for a in report.agents:
        caught = f"{a.caught}/{a.applied}" + (f"  ({len(a.escaped)} escaped)" if a.escaped else "")
        lines.append(
            f"  {a.name:<30} {a.conversation_rate:>12.1%} {a.turn_rate:>8.1%}   "
            + (caught if a.kind == "degradation" else "")
        )
    lines.append("")
    if report.problems:
        lines += ["FAILED:"] + [f"  {p}" for p in report.problems]
    else:
        lines.append(
            "PASSED: every applied degradation was caught; no cheater passes more than "
            f"{MAX_CHEATER_CONVERSATIONS:.0%} of the conversations or {MAX_CHEATER_TURNS:.0%} "
            "of the turns"
        )
    return "\n".join(lines)


def _cmd_audit(args: argparse.Namespace) -> int:
    datasets = list(args.dataset)
    golden = list(args.golden)
    if not datasets and not golden:
        datasets, golden = [str(shipped_conversations())], [str(shipped_golden())]
    try:
        cases = _audited_cases(datasets, golden)
    except (OSError, ValueError) as exc:
        print(f"crmbench audit: {exc}", file=sys.stderr)
        return 2
    if args.limit:
        cases = cases[: args.limit]
    if not cases:
        print("crmbench audit: no conversation to audit; give --dataset FILE", file=sys.stderr)
        return 2
    report = audit(
        cases, progress=None if args.json else lambda n: print(f"  running {n}…", file=sys.stderr)
    )
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
    return 0 if not report.problems else 1


def add_parser(sub: Any) -> None:
    """Register ``crmbench audit`` on the CLI's subparsers."""
    p = sub.add_parser(
        "audit",
        help="mutation-test the verifier on a dataset: degraded oracles and cheaters",
    )
    p.add_argument("--dataset", action="append", default=[], help="conversation JSONL file(s)")
    p.add_argument("--golden", action="append", default=[], help="golden file(s) or folder(s)")
    p.add_argument("--limit", type=int, default=0, help="audit only the first N cases")
    p.add_argument("--json", action="store_true", help="a machine-readable report")
    p.set_defaults(func=_cmd_audit)
