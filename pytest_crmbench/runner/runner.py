"""Conversation → verdict, without pytest: the heart of the benchmark.

1. The reference run executes the expected calls on a seeded memory copy and records,
   per turn, the results and the net change (and checks the dataset is coherent).
2. The agent run drives the agent turn by turn on the real store, through a recording
   tool handle with a per-turn call limit, journaling what each turn changed.
3. Each turn is judged (:mod:`pytest_crmbench.runner.verdict`); with ``recover`` a failed
   turn's state is replaced by the expected one so later turns are scored on their own.

Results are plain-JSON :class:`~pytest_crmbench.runner.records.ItemResult` dicts, ready
for pytest reports and JSONL streams.
"""

from __future__ import annotations

import json
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pytest_crmbench.agents.base import (
    Agent,
    AgentUnavailable,
    Briefing,
    DescribesModel,
    LearnsFromFeedback,
    ReportsLearningUsage,
    ReportsUsage,
    ToolResult,
    Usage,
)
from pytest_crmbench.agents.judge import LLMJudge
from pytest_crmbench.agents.prompt import build_system_prompt
from pytest_crmbench.agents.scripted import ScriptedOracle, reference_script
from pytest_crmbench.crm.catalog import agent_catalog
from pytest_crmbench.crm.clock import DeterministicIds, FixedClock
from pytest_crmbench.crm.entities import BY_TABLE, LOAD_ORDER
from pytest_crmbench.crm.errors import CrmError
from pytest_crmbench.crm.memory import MemoryStore
from pytest_crmbench.crm.seed import SeedWorld, record_from_json
from pytest_crmbench.crm.service import CRM
from pytest_crmbench.crm.store import Store
from pytest_crmbench.dataset import answer_key
from pytest_crmbench.dataset.facts import fact_present, missing_facts
from pytest_crmbench.dataset.model import Conversation, Turn
from pytest_crmbench.dataset.refs import resolve
from pytest_crmbench.runner import verdict as V
from pytest_crmbench.runner.records import (
    CallRecord,
    ItemResult,
    TurnKind,
    TurnResult,
    read_answer_key,
)
from pytest_crmbench.runner.tracking import Change, TrackingStore

DEFAULT_MAX_CALLS = 8


class DatasetDefect(Exception):
    """The conversation itself is incoherent (its reference calls do not behave as declared)."""


class InfrastructureError(Exception):
    """The item could not be judged: agent unreachable, database down, agent crashed."""


@dataclass
class RunOptions:
    max_calls_per_turn: int = DEFAULT_MAX_CALLS
    recover: bool = False
    strict_actions: bool = False
    trial: int = 0
    judge: LLMJudge | None = None  # optional LLM judge of rubric turns
    # After each conversation, tell an agent that learns (``feedback()``) how it did:
    # ``student`` says what failed, never the expected values; ``teacher`` adds them.
    feedback: Literal["off", "student", "teacher"] = "off"
    # When: after the whole conversation, or after every turn as well (the turn's own view).
    feedback_every: Literal["conversation", "turn"] = "conversation"


@dataclass
class RefTurn:
    calls: list[CallRecord]  # resolved {tool, args, ok, result|error}
    changes: list[Change]


@dataclass
class ReferenceRun:
    turns: list[RefTurn] = field(default_factory=list)


def _json_safe(value: Any) -> Any:
    """A plain-JSON copy (agents may pass anything; reports must stay serialisable)."""
    if value is None or type(value) in (str, int, bool):  # the common case: a tool name
        return value
    try:
        return json.loads(json.dumps(value, default=str, allow_nan=False))
    except (ValueError, TypeError):
        return repr(value)


def load_conversation_seed(store: Store, seed: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """Insert a conversation's extra records on top of the seed world (one batch)."""
    store.insert_many(
        {
            table: [record_from_json(BY_TABLE[table], dict(raw)) for raw in seed[table]]
            for table in LOAD_ORDER
            if seed.get(table)
        }
    )


class RecordingHandle:
    """The agent's tool handle for one turn: task tools only, limited, every call recorded."""

    def __init__(self, crm: CRM, limit: int) -> None:
        self._crm = crm
        self._limit = limit
        self.calls: list[CallRecord] = []
        self.tool_time = 0.0
        self.limit_hit = False

    @property
    def catalog(self) -> list[dict[str, Any]]:
        return agent_catalog()

    def call(self, tool: str, args: dict[str, Any] | None = None) -> ToolResult:
        record: CallRecord = {"tool": _json_safe(tool), "args": _json_safe(args), "ok": False}
        if len(self.calls) >= self._limit:
            self.limit_hit = True
            outcome = ToolResult(False, error=f"Tool call limit reached ({self._limit} per turn).")
        else:
            started = time.perf_counter()
            try:
                outcome = ToolResult(True, result=self._crm.call(tool, args, agent=True))
            except CrmError as exc:
                outcome = ToolResult(False, error=exc.message)
            finally:
                elapsed = time.perf_counter() - started
                self.tool_time += elapsed
            record["ms"] = round(elapsed * 1000, 3)
        record["ok"] = outcome.ok
        if outcome.ok:
            record["result"] = outcome.result
        else:
            record["error"] = outcome.error
        self.calls.append(record)
        return outcome


#: Reference runs kept per runner: enough for the trials of a case and for callers that
#: ask before running (they run one conversation at a time), not one per conversation.
REF_CACHE_SIZE = 8


class Runner:
    """Runs conversations against agents on one store (one per process/worker).

    ``store`` must hold the seed world as its base (see :mod:`pytest_crmbench.backends`).
    """

    def __init__(self, store: Store, world: SeedWorld, options: RunOptions | None = None) -> None:
        self.store = store
        self.world = world
        self.options = options or RunOptions()
        self._ref_store: MemoryStore | None = None
        self._ref_cache: dict[str, ReferenceRun] = {}

    # -- reference run ---------------------------------------------------------------
    def _reference_store(self) -> MemoryStore:
        if self._ref_store is None:
            store = MemoryStore()
            self.world.load_into(store)
            store.mark_base()
            self._ref_store = store
        return self._ref_store

    def reference_run(self, conv: Conversation) -> ReferenceRun:
        """Execute the expected calls on a memory copy; the last few are cached by id."""
        cached = self._ref_cache.get(conv.id)
        if cached is not None:
            return cached
        base = self._reference_store()
        base.reset()
        try:
            load_conversation_seed(base, conv.seed)
            tracking = TrackingStore(base)
            crm = CRM(
                tracking,
                clock=FixedClock(conv.reference_date),
                ids=DeterministicIds(conv.id + "#reference"),
            )
            run = ReferenceRun()
            results: dict[int, list[Any]] = {}
            for number, turn in enumerate(conv.turns, start=1):
                tracking.start()
                calls: list[CallRecord] = []
                turn_results: list[Any] = []
                for call in turn.expected_calls:
                    args = resolve(call.args, results)
                    try:
                        result = crm.call(call.tool, args, agent=True)
                        calls.append(
                            {"tool": call.tool, "args": args, "ok": True, "result": result}
                        )
                        turn_results.append(result)
                    except CrmError as exc:
                        calls.append(
                            {"tool": call.tool, "args": args, "ok": False, "error": exc.message}
                        )
                        turn_results.append(None)
                results[number] = turn_results
                self._check_declared_outcome(conv.id, number, turn, calls)
                run.turns.append(RefTurn(calls, tracking.changes()))
        finally:
            base.reset()
        if len(self._ref_cache) >= REF_CACHE_SIZE:  # the oldest goes: memory stays flat
            del self._ref_cache[next(iter(self._ref_cache))]
        self._ref_cache[conv.id] = run
        return run

    @staticmethod
    def _check_declared_outcome(
        conv_id: str, number: int, turn: Turn, calls: list[CallRecord]
    ) -> None:
        failed = [c for c in calls if not c["ok"]]
        if turn.expect == "success" and failed:
            raise DatasetDefect(
                f"{conv_id} turn {number}: reference call {failed[0]['tool']} failed: "
                f"{failed[0]['error']}"
            )
        if turn.expect == "failure":
            if not failed:
                raise DatasetDefect(
                    f"{conv_id} turn {number}: expected a refusal, all calls passed"
                )
            if not any((turn.error_contains or "") in (c.get("error") or "") for c in failed):
                raise DatasetDefect(
                    f"{conv_id} turn {number}: refusal message {failed[0]['error']!r} lacks "
                    f"{turn.error_contains!r}"
                )

    # -- agent run -------------------------------------------------------------------
    def run(self, conv: Conversation, agent: Agent, *, trial: int | None = None) -> ItemResult:
        """Run one conversation; returns the plain-JSON result record.

        Raises :class:`InfrastructureError` when the item cannot be judged, and
        :class:`DatasetDefect` when the conversation is incoherent.
        """
        started = time.perf_counter()
        try:
            return self._run(self.begin(conv), agent, trial, started)
        except Exception as exc:  # the store's own calls, outside the agent's
            if is_database_error(exc):
                raise InfrastructureError(f"database error: {_one_line(exc)}") from exc
            raise

    def begin(self, conv: Conversation, *, session: str | None = None) -> ConversationSession:
        """Start ``conv`` on this runner's store, to be played turn by turn (the store is
        reset and seeded; ``session`` is the briefing's opaque token, new if None)."""
        reference = self.reference_run(conv)
        self.store.reset()  # every user of the shared store resets it before use
        return ConversationSession(self, conv, reference, session)

    def _run(
        self, session: ConversationSession, agent: Agent, trial: int | None, started: float
    ) -> ItemResult:
        conv, opts, briefing = session.conv, self.options, session.briefing
        read_before = len(answer_key.thread_violations())
        oracle = isinstance(agent, ScriptedOracle)
        reports_usage = isinstance(agent, ReportsUsage)  # once: protocol checks are slow
        if isinstance(agent, ScriptedOracle):  # the built-in oracle: an internal channel
            agent.receive_script(conv.id, reference_script(conv))
        self._guard(agent.start, briefing)
        while not session.done:
            handle = session.open_turn()
            reply = self._guard(agent.respond, session.turn.user, handle)
            usage: dict[str, Any] | None = None
            if reports_usage:
                reported = agent.last_usage()  # type: ignore[attr-defined]  # ReportsUsage
                usage = reported.as_dict() if isinstance(reported, Usage) else reported
            turn_result, student = session.close_turn(reply, usage)
            if session.recovered and isinstance(agent, ScriptedOracle):
                # Only the oracle is told; records kept their reference ids.
                agent.on_recovered(turn_result["turn"], session.reference_results())
            per_turn = opts.feedback != "off" and opts.feedback_every == "turn"
            if per_turn and isinstance(agent, LearnsFromFeedback):
                view = _turn_view(turn_result, student, opts.feedback)
                self._guard(agent.feedback, _turn_feedback(view, briefing.session, opts.feedback))
        result = session.result(getattr(agent, "name", type(agent).__name__), trial, started)
        if oracle:
            result["oracle"] = True
        if isinstance(agent, DescribesModel):
            host = urlsplit(agent.base_url).hostname if agent.base_url else None
            result["model"] = {"name": agent.model, "provider": agent.provider, "host": host}
        if opts.feedback != "off" and isinstance(agent, LearnsFromFeedback):
            view = _feedback_view(result, briefing.session, session.lessons, opts.feedback)
            self._guard(agent.feedback, view)
        if isinstance(agent, ReportsLearningUsage):  # what distilling the feedback cost
            spent = agent.last_learning_usage()
            if spent:
                result["usage"] = {
                    **result["usage"],
                    **{f"learning_{k}": v for k, v in spent.items()},
                }
        read = answer_key.thread_violations()[read_before:]
        return read_answer_key(result, read) if read else result

    @staticmethod
    def _guard(fn: Any, *args: Any) -> Any:
        """Call into the agent, turning its crashes into infrastructure errors (and
        watching it for reads of the answer key)."""
        try:
            with answer_key.agent_code():
                return fn(*args)
        except AgentUnavailable as exc:
            raise InfrastructureError(f"agent unavailable: {exc}") from exc
        except (InfrastructureError, CrmError):
            raise
        except Exception as exc:
            if is_database_error(exc):
                raise InfrastructureError(f"database error: {_one_line(exc)}") from exc
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            raise InfrastructureError(f"agent crashed: {tb}") from exc


class ConversationSession:
    """One conversation played turn by turn: the runner's bookkeeping and verdicts, with
    the agent outside.

    :meth:`Runner.run` drives it with an :class:`Agent`; the Gymnasium environment
    drives it with actions. Per turn: :meth:`open_turn` gives the recording tool handle
    the turn's calls go through, :meth:`close_turn` judges the reply (and, with
    ``recover``, puts the reference outcome in place of a failed turn's). One code path,
    so both score exactly alike. Made by :meth:`Runner.begin`.
    """

    def __init__(
        self, runner: Runner, conv: Conversation, reference: ReferenceRun, session: str | None
    ) -> None:
        self.conv = conv
        self.reference = reference
        self.options = runner.options
        load_conversation_seed(runner.store, conv.seed)
        self.tracking = TrackingStore(runner.store)
        self.crm = CRM(
            self.tracking, clock=FixedClock(conv.reference_date), ids=DeterministicIds(conv.id)
        )
        self.briefing = Briefing(
            session=session or uuid.uuid4().hex,
            reference_date=conv.reference_date,
            system_prompt=build_system_prompt(conv.reference_date),
            tools=agent_catalog(),
        )
        self.idmap: V.IdMap = {}
        self.turns: list[TurnResult] = []
        self.lessons: list[list[str]] = []  # per turn, the reasons in student form
        self.recovered = False  # whether the last closed turn was replaced (``recover``)
        self.handle: RecordingHandle | None = None  # the open turn's
        self._savepoint: str | None = None
        self._t0 = self._t_agent = 0.0

    @property
    def done(self) -> bool:
        return len(self.turns) == len(self.conv.turns)

    @property
    def number(self) -> int:
        """The 1-based number of the current (next or open) turn."""
        return len(self.turns) + 1

    @property
    def turn(self) -> Turn:
        return self.conv.turns[len(self.turns)]

    def open_turn(self) -> RecordingHandle:
        """Start the current turn; the agent's calls go through the handle returned."""
        self._t0 = time.perf_counter()
        self.tracking.start()
        # Only --crm-recover ever rolls a turn back; otherwise skip the savepoint.
        self._savepoint = self.tracking.savepoint() if self.options.recover else None
        self.handle = RecordingHandle(self.crm, self.options.max_calls_per_turn)
        self._t_agent = time.perf_counter()
        return self.handle

    def reference_results(self) -> list[Any]:
        """What the reference calls of the last closed turn returned (for the oracle)."""
        return [c.get("result") for c in self.reference.turns[len(self.turns) - 1].calls]

    def close_turn(
        self, reply: Any, usage: dict[str, Any] | None = None
    ) -> tuple[TurnResult, list[str]]:
        """Judge the open turn on ``reply`` and the calls made through its handle: its
        verdict, and its reasons in student form (no expected values)."""
        agent_wall = time.perf_counter() - self._t_agent
        handle, savepoint, tracking, idmap = self.handle, self._savepoint, self.tracking, self.idmap
        assert handle is not None, "close_turn() without open_turn()"
        self.handle = None
        number, turn, opts = self.number, self.turn, self.options
        ref = self.reference.turns[number - 1]
        if not isinstance(reply, str):
            reply = "" if reply is None else str(reply)
        changes = tracking.changes()
        state_problems = V.compare_changes(ref.changes, changes, idmap)
        checks: dict[str, Any] = {"state": {"passed": not state_problems, "diff": state_problems}}
        reasons: list[str] = list(state_problems)
        if turn.expect == "failure":
            refused = V.says_refused(reply)
            checks["refusal"] = {"passed": refused and not changes}
            if not refused:
                reasons.append("reply does not tell the user the request was refused")
        missing = missing_facts(turn.reply.must_mention, reply)
        checks["reply"] = {"passed": not missing, "missing": missing}
        if opts.feedback == "teacher":
            checks["reply"]["facts"] = list(turn.reply.must_mention)
            checks["reply"]["avoid"] = list(turn.reply.must_not_mention)
        if missing:
            reasons.append(
                V.Finding(
                    "missing fact"
                    + ("s" if len(missing) > 1 else "")
                    + ": "
                    + ", ".join(repr(m) for m in missing),
                    f"reply: {len(missing)} required fact(s) missing",
                )
            )
        unwanted = [f for f in turn.reply.must_not_mention if fact_present(f, reply)]
        checks["reply"]["unwanted"] = unwanted
        if unwanted:
            checks["reply"]["passed"] = False
            reasons.append(
                V.Finding(
                    "mentions records that do not match the request: "
                    + ", ".join(repr(u) for u in unwanted),
                    f"reply: {len(unwanted)} "
                    + ("record that does" if len(unwanted) == 1 else "records that do")
                    + " not match the request mentioned",
                )
            )
        if opts.judge is not None and turn.reply.rubric:
            checks["judge"] = opts.judge.score(turn.user, reply, turn.reply.rubric, handle.calls)
            if not checks["judge"]["passed"]:
                reasons.append(
                    V.Finding(checks["judge"]["message"], "judge: the reply misses the rubric")
                )
        expected_calls = [{"tool": c["tool"], "args": c["args"]} for c in ref.calls]
        matches = V.action_matches(expected_calls, handle.calls, idmap)
        checks["action"] = {"matched": all(matches), "matches": matches}
        if opts.strict_actions and not all(matches):
            missing_calls = [
                c["tool"] for c, m in zip(expected_calls, matches, strict=True) if not m
            ]
            reasons.append(
                V.Finding(
                    "expected calls not made: " + ", ".join(missing_calls),
                    f"expected calls not made: {len(missing_calls)}",
                )
            )
        if handle.limit_hit:
            reasons.append(f"turn limit: more than {opts.max_calls_per_turn} tool calls")
        errors = [c for c in handle.calls if not c["ok"]]
        if reasons and errors and turn.expect == "success":
            reasons.append(f"tool error: {errors[-1]['tool']}: {errors[-1]['error']}")
        passed = not reasons
        self.recovered = savepoint is not None and not passed
        if savepoint is None:
            pass
        elif passed:
            tracking.release(savepoint)
        else:
            tracking.rollback_to(savepoint)
            _apply_reference(tracking, ref.changes, idmap)
        if "judge" in checks:  # judge tokens/cost, kept apart as judge_* keys
            usage = {**(usage or {}), **checks["judge"]["usage"]}
        wall = time.perf_counter() - self._t0
        harness = wall - agent_wall + handle.tool_time
        kind: TurnKind = (
            "refusal" if turn.expect == "failure" else "write" if ref.changes else "read"
        )
        result: TurnResult = {
            "turn": number,
            "kind": kind,
            "user": turn.user,
            "expect": turn.expect,
            "passed": passed,
            "reason": reasons[0] if reasons else None,
            "reasons": reasons,
            "checks": checks,
            "calls": handle.calls,
            "expected_calls": [
                {"tool": c["tool"], "args": _json_safe(c["args"])} for c in ref.calls
            ],
            "reply": reply,
            "usage": usage,
            "duration_s": round(wall, 6),
            "agent_s": round(agent_wall - handle.tool_time, 6),
            "harness_s": round(harness, 6),
        }
        student = [r.student if isinstance(r, V.Finding) else r for r in reasons]
        self.turns.append(result)
        self.lessons.append(student)
        return result, student

    def result(self, agent: str, trial: int | None, started: float) -> ItemResult:
        """The item's result over the turns closed so far (every turn, once :attr:`done`)."""
        conv, opts, turns = self.conv, self.options, self.turns
        passed = all(t["passed"] for t in turns)
        first = next((t for t in turns if not t["passed"]), None)
        usage = _sum_usage(t["usage"] for t in turns)
        return {
            "case_id": conv.id,
            "family": "conversation",
            "workflow": conv.workflow,
            "complexity": conv.complexity,
            "trial": opts.trial if trial is None else trial,
            "agent": agent,
            "passed": passed,
            "outcome": "passed" if passed else "failed",
            "n_turns": len(turns),
            "turns_passed": sum(t["passed"] for t in turns),
            "first_failure": None
            if first is None
            else {"turn": first["turn"], "reason": first["reason"]},
            "tools": sorted({c.tool for t in conv.turns for c in t.expected_calls}),
            "turns": turns,
            "usage": usage,
            "duration_s": round(time.perf_counter() - started, 6),
            "harness_s": round(sum(t["harness_s"] for t in turns), 6),
        }


def _apply_reference(store: Store, changes: Sequence[Change], idmap: V.IdMap) -> None:
    """Put the reference turn's outcome in place of a failed turn's (``--crm-recover``)."""
    to_agent = {ref: agent for agent, ref in idmap.items()}

    def mapped(table: str, record: dict[str, Any]) -> dict[str, Any]:
        entity = BY_TABLE[table]
        out = dict(record)
        for f in entity.fields:
            if f.kind in ("ref", "entity_ref") and out.get(f.name) is not None:
                out[f.name] = to_agent.get(out[f.name], out[f.name])
        return out

    for change in changes:
        key = to_agent.get(change.key, change.key)
        if change.kind == "created":
            assert change.after is not None
            store.insert(change.table, mapped(change.table, change.after))
            idmap[change.key] = change.key
        elif change.kind == "deleted":
            store.delete(change.table, key)
        else:
            assert change.after is not None
            after = mapped(change.table, change.after)
            after.pop(BY_TABLE[change.table].key, None)
            store.update(change.table, key, after)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def is_database_error(exc: BaseException) -> bool:
    """Whether the store, not the agent or the dataset, failed (an infrastructure error)."""
    module = type(exc).__module__
    return module.startswith("psycopg") or isinstance(exc, ConnectionError)


def _sum_usage(items: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for item in items:
        if not item:
            continue
        for key, value in item.items():
            if isinstance(value, int | float):
                total[key] = total.get(key, 0) + value
    return total


def _turn_view(t: TurnResult, student: list[str], mode: str) -> dict[str, Any]:
    """One turn as feedback: pass/fail, failed checks and the reasons (``student``: what
    failed, never an expected value; ``teacher`` adds values, expected calls, the required
    facts and the facts to leave out)."""
    view: dict[str, Any] = {
        "turn": t["turn"],
        "kind": t["kind"],
        "passed": t["passed"],
        "failed_checks": sorted(
            name
            for name, check in t["checks"].items()
            if name != "action" and not check.get("passed", True)
        ),
        "reasons": list(student),
    }
    if mode == "teacher":
        view["reasons"] = list(t["reasons"])
        view["expected_calls"] = t["expected_calls"]
        view["must_mention"] = t["checks"]["reply"].get("facts", [])
        view["must_not_mention"] = t["checks"]["reply"].get("avoid", [])
    return view


def _turn_feedback(view: dict[str, Any], session: str, mode: str) -> dict[str, Any]:
    """Feedback after one turn (``--crm-feedback-every turn``): the same shape as the
    conversation's, holding only that turn; ``scope`` tells the two apart."""
    return {
        "mode": mode,
        "scope": "turn",
        "session": session,
        "turn": view["turn"],
        "passed": view["passed"],
        "turns": [view],
    }


def _feedback_view(
    result: ItemResult, session: str, lessons: Sequence[list[str]], mode: str
) -> dict[str, Any]:
    """What an agent may learn after a conversation: per turn, pass/fail, which checks
    failed and why (see :func:`_turn_view`)."""
    turns = [
        _turn_view(t, student, mode) for t, student in zip(result["turns"], lessons, strict=True)
    ]
    return {
        "mode": mode,
        "scope": "conversation",
        "session": session,
        "passed": result["passed"],
        "turns": turns,
    }
