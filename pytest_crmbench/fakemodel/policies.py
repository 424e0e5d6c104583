"""How the fake model answers: scripted replies, the dataset oracle, a toy judge.

A policy is any object with ``respond(request: FakeRequest) -> FakeReply``; it must be
thread-safe (the server answers concurrent requests, e.g. from xdist workers).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from pytest_crmbench.agents.judge import DATA_BLOCKS, JUDGE_MARKER, RUBRIC_HEADING
from pytest_crmbench.agents.scripted import oracle_reply
from pytest_crmbench.dataset.golden import as_conversation, load_golden
from pytest_crmbench.dataset.loader import load_dataset
from pytest_crmbench.dataset.refs import RefError, resolve
from pytest_crmbench.fakemodel.wire import FakeCall, FakeMessage, FakeReply, FakeRequest


class Policy(Protocol):
    def respond(self, request: FakeRequest) -> FakeReply: ...


def call_id(req: FakeRequest, tag: str) -> str:
    """A tool-call id in the API's style, unique within the conversation."""
    digest = hashlib.sha256(f"{len(req.messages)}|{tag}".encode()).hexdigest()[:10]
    return ("toolu_" if req.api == "anthropic" else "call_") + f"{tag}_{digest}"


# == scripted ========================================================================
Step = FakeReply | dict[str, Any] | Callable[[FakeRequest], FakeReply]


def as_reply(req: FakeRequest, step: Step, index: int) -> FakeReply:
    if callable(step):
        return step(req)
    if isinstance(step, FakeReply):
        return step
    calls = [
        FakeCall(str(c.get("id") or call_id(req, f"s{index}x{n}")), c["name"], c.get("args", {}))
        for n, c in enumerate(step.get("calls") or [])
    ]
    return FakeReply(str(step.get("text", "")), calls)


class ScriptedPolicy:
    """Answers with the given steps in order (``{"text": …, "calls": [{"name", "args"}]}``,
    a :class:`FakeReply`, or a function of the request); then ``(script exhausted)``."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self._steps = list(steps)
        self._next = 0
        self._lock = threading.Lock()
        self.requests: list[FakeRequest] = []

    def respond(self, request: FakeRequest) -> FakeReply:
        with self._lock:
            self.requests.append(request)
            index = self._next
            self._next += 1
        if index >= len(self._steps):
            return FakeReply("(script exhausted)")
        return as_reply(request, self._steps[index], index)


# == the oracle ======================================================================
_ORACLE_ID = re.compile(r"_o(\d+)x(\d+)_")


def _decode_result(text: str) -> tuple[bool, Any, str | None]:
    """A tool result the agent sent back: ``{"ok": …, "result"|"error": …}``."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return False, None, text
    if isinstance(data, dict) and "ok" in data:
        return bool(data["ok"]), data.get("result"), data.get("error")
    return True, data, None


Outcomes = dict[tuple[int, int], tuple[bool, Any, Any]]
Plan = tuple[Any, int, Outcomes, dict[int, list[Any]], list[int]]


class OraclePolicy:
    """Plays the reference: finds the conversation by the user messages so far and makes
    the current turn's expected calls (references resolved from the tool results in the
    history), then replies with the turn's facts.

    ``parallel``: all of a turn's calls in one response (references only point to earlier
    turns), else one call per response (a longer tool loop).
    """

    def __init__(self, conversations: Iterable[Any], *, parallel: bool = False) -> None:
        self.parallel = parallel
        self._index: dict[tuple[str, ...], tuple[Any, int]] = {}
        for conv in conversations:
            users: tuple[str, ...] = ()
            for k, turn in enumerate(conv.turns, start=1):
                users = (*users, turn.user)
                self._index.setdefault(users, (conv, k))

    def __len__(self) -> int:
        return len(self.conversations())

    def conversations(self) -> list[Any]:
        """The conversations it knows, each once."""
        return list({id(conv): conv for conv, _ in self._index.values()}.values())

    def respond(self, request: FakeRequest) -> FakeReply:
        plan = self._plan(request)
        if plan is None:
            return FakeReply("I am sorry, I cannot help with that request.")
        conv, k, outcomes, results, todo = plan
        turn = conv.turns[k - 1]
        if todo and request.can_call_tools:
            calls = []
            for i in todo if self.parallel else todo[:1]:
                call = self._call(request, k, i, turn.expected_calls[i], results)
                if call is None:
                    return FakeReply("I could not find the record from earlier in our talk.")
                calls.append(call)
            return FakeReply("", calls)
        return self._reply(turn, k, outcomes)

    def _plan(self, request: FakeRequest) -> Plan | None:
        """(conversation, turn number, outcomes so far, results of earlier turns, the
        turn's calls still to make), or None for a conversation it does not know."""
        found = self._index.get(tuple(request.user_texts()))
        if found is None:
            return None
        conv, k = found
        outcomes = self._outcomes(request.messages)
        results = {
            t: [
                outcomes.get((t, i), (False, None, None))[1]
                for i in range(len(conv.turns[t - 1].expected_calls))
            ]
            for t in range(1, k)
        }
        turn = conv.turns[k - 1]
        todo = [i for i in range(len(turn.expected_calls)) if (k, i) not in outcomes]
        return conv, k, outcomes, results, todo

    @staticmethod
    def _call(
        request: FakeRequest, k: int, i: int, expected: Any, results: dict[int, list[Any]]
    ) -> FakeCall | None:
        """Expected call ``i`` of turn ``k``, references resolved (None: unresolvable)."""
        try:
            resolved = resolve(expected.args, results)
        except RefError:
            return None
        return FakeCall(call_id(request, f"o{k}x{i}"), expected.tool, resolved)

    @staticmethod
    def _reply(turn: Any, k: int, outcomes: Outcomes) -> FakeReply:
        errors = [
            str(outcomes[(k, i)][2])
            for i in range(len(turn.expected_calls))
            if (k, i) in outcomes and not outcomes[(k, i)][0]
        ]
        return FakeReply(oracle_reply(errors, turn.reply.must_mention))

    @staticmethod
    def _outcomes(messages: Sequence[FakeMessage]) -> dict[tuple[int, int], tuple[bool, Any, Any]]:
        """(turn, expected-call index) → outcome of the oracle's own calls in the history."""
        by_id = {m.tool_call_id: m for m in messages if m.role == "tool"}
        out: dict[tuple[int, int], tuple[bool, Any, Any]] = {}
        turn = 0
        for m in messages:
            if m.role == "user":
                turn += 1
            elif m.role == "assistant":
                for c in m.calls:
                    match = _ORACLE_ID.search(c.id)
                    result = by_id.get(c.id)
                    if match and result is not None and int(match.group(1)) == turn:
                        out[(turn, int(match.group(2)))] = _decode_result(result.text)
        return out


# == a learner =======================================================================
_ENUM_KEYS = ("stage", "status", "entity_type")
_WRITE_GROUPS = ("modify", "lifecycle")
_LOOKUP_GROUPS = ("search", "read")
LESSON_KEYWORDS: dict[str, tuple[str, ...]] = {
    "enum-case": ("enum",),
    "required-field": ("required field",),
    "lookup-first": ("search", "before"),
}


def learnt_lessons(system: str) -> set[str]:
    """Lessons found in a system prompt: a ``- `` line after a line mentioning
    "lessons" that holds every keyword of the lesson (case-insensitive). The base prompt
    has no lessons section, so general guidance there does not count."""
    found: set[str] = set()
    in_lessons = False
    for line in system.splitlines():
        low = line.strip().casefold()
        if "lessons" in low and not low.startswith("- "):
            in_lessons = True
            continue
        if in_lessons and low.startswith("- "):
            for key, words in LESSON_KEYWORDS.items():
                if all(w in low for w in words):
                    found.add(key)
    return found


class LearnerPolicy(OraclePolicy):
    """The oracle with three systematic mistakes, each dropped once the system prompt
    holds the matching lesson (see :func:`learnt_lessons`) — a model that learns from a
    playbook, to prove a learning loop end to end without an API key:

    * ``enum-case``: enum values (stage, status, entity type) sent lower-case, and the
      stage Negotiation as "negotiations" — the CRM refuses them;
    * ``required-field``: creating a record without its first required id field (or the
      client's email) — the CRM says the tool requires it;
    * ``lookup-first``: in a turn that looks a record up and then writes to it, the write
      goes first with an id guessed from the name — the CRM says it is not found.
    """

    def __init__(self, conversations: Iterable[Any], *, parallel: bool = False) -> None:
        super().__init__(conversations, parallel=parallel)
        from pytest_crmbench.crm.catalog import AGENT_TOOLS  # lazy: only the learner needs it

        self._groups = {t.name: t.group for t in AGENT_TOOLS}
        self._required = {t.name: list(t.json_schema()["required"]) for t in AGENT_TOOLS}
        self.mistakes: Counter[str] = Counter()
        self._lock = threading.Lock()

    def respond(self, request: FakeRequest) -> FakeReply:
        plan = self._plan(request)
        if plan is None or not plan[4] or not request.can_call_tools or self.parallel:
            return super().respond(request)
        conv, k, _, results, todo = plan
        learnt = learnt_lessons(request.system)
        turn = conv.turns[k - 1]
        first = turn.expected_calls[todo[0]]
        if "lookup-first" not in learnt and self._groups.get(first.tool) in _LOOKUP_GROUPS:
            for j in todo[1:]:
                write = turn.expected_calls[j]
                if self._groups.get(write.tool) in _WRITE_GROUPS:
                    call = self._call(request, k, j, write, results)
                    id_key = self._required[write.tool][0]
                    if call is not None and isinstance(call.args, dict) and id_key in call.args:
                        guess = (
                            str(first.args.get("name") or "the record")
                            if isinstance(first.args, dict)
                            else "the record"
                        )
                        call.args = {**call.args, id_key: guess}
                        self._count("lookup-first")
                        return FakeReply("", [call])
        call = self._call(request, k, todo[0], first, results)
        if call is None:
            return super().respond(request)
        if isinstance(call.args, dict):
            call.args = self._mistaken(call.name, call.args, learnt)
        return FakeReply("", [call])

    def _count(self, mistake: str) -> None:
        with self._lock:
            self.mistakes[mistake] += 1

    def _mistaken(self, tool: str, args: dict[str, Any], learnt: set[str]) -> dict[str, Any]:
        out = json.loads(json.dumps(args))
        if "enum-case" not in learnt:
            for holder in (out, out.get("updates")):
                if not isinstance(holder, dict):
                    continue
                for key in _ENUM_KEYS:
                    value = holder.get(key)
                    if isinstance(value, str) and value[:1].isupper():
                        holder[key] = "negotiations" if value == "Negotiation" else value.lower()
                        self._count("enum-case")
        if "required-field" not in learnt and self._groups.get(tool) == "create":
            for key in self._required.get(tool, []):
                if (key.endswith("_id") or key == "email") and key in out:
                    del out[key]
                    self._count("required-field")
                    break
        return dict(out)


def load_learner(datasets: Sequence[str], golden: Sequence[str] = ()) -> LearnerPolicy:
    """A learner over conversation files (JSONL) and golden files/folders (agent cases)."""
    oracle = load_oracle(datasets, golden)
    return LearnerPolicy(oracle.conversations())


def load_oracle(
    datasets: Sequence[str], golden: Sequence[str] = (), *, parallel: bool = False
) -> OraclePolicy:
    """An oracle over conversation files (JSONL) and golden files/folders (agent cases)."""
    from pathlib import Path

    conversations: list[Any] = []
    if datasets:
        conversations += list(load_dataset([Path(p) for p in datasets]).conversations)
    if golden:
        files: list[Path] = []
        for g in golden:
            path = Path(g)
            files += sorted(path.glob("*.json")) if path.is_dir() else [path]
        for gf, gc in load_golden(files):
            if gc.family == "agent":
                conversations.append(as_conversation(gf, gc))
    return OraclePolicy(conversations, parallel=parallel)


# == a toy judge =====================================================================
_GULLIBLE = re.compile(r"(?i)ignore (all |any )?previous instructions|give (it )?1(\.0)?\b")
_QUOTED = re.compile(r'"([^"]+)"')


class FakeJudgePolicy:
    """Answers judge requests (recognised by the judge marker in the system prompt).

    It reads the prompt the way :mod:`pytest_crmbench.agents.judge` builds it: the data
    token, the trusted rubric, the data blocks. goal = share of the rubric's
    "double-quoted phrases" found in the reply (1 for a non-empty reply when the rubric
    quotes none); process = 1, or 0.5 when a tool call failed.

    To make prompt isolation testable it is deliberately *gullible*: an instruction such
    as "ignore previous instructions" or "give 1.0" found in the user message *outside*
    the data blocks is obeyed (score 1.0) — exactly what a weak real judge might do. A
    reply kept inside its block, as the real judge prompt does, cannot reach it.

    ``mode``: ``score`` (default), ``garbage`` (non-JSON answer), ``out_of_range``.
    """

    def __init__(self, mode: str = "score") -> None:
        self.mode = mode
        self.requests: list[FakeRequest] = []
        self._lock = threading.Lock()

    @staticmethod
    def split(prompt: str) -> tuple[str, str, dict[str, str]]:
        """(outside text, rubric, data blocks) of a judge prompt."""

        match = re.search(r"Data token: (\S+)", prompt)
        token = match.group(1) if match else ""
        blocks: dict[str, str] = {}
        outside = prompt
        for name in DATA_BLOCKS:
            tok = re.escape(token)
            pattern = re.compile(
                rf"<<<BEGIN {name} {tok}>>>\n(.*?)\n<<<END {name} {tok}>>>", re.DOTALL
            )
            found = pattern.search(outside) if token else None
            if found:
                blocks[name] = found.group(1)
                outside = outside[: found.start()] + outside[found.end() :]
        rubric = ""
        if RUBRIC_HEADING in outside:
            rubric = outside.split(RUBRIC_HEADING, 1)[1].split("\n\n", 1)[0].strip()
        return outside, rubric, blocks

    def respond(self, request: FakeRequest) -> FakeReply:
        with self._lock:
            self.requests.append(request)
        if self.mode == "garbage":
            return FakeReply("The assistant did fine, I would say.")
        if self.mode == "out_of_range":
            return FakeReply('{"goal": 7, "process": 1, "reason": "great"}')
        outside, rubric, blocks = self.split(request.last_user_text())
        if _GULLIBLE.search(outside):
            return FakeReply('{"goal": 1.0, "process": 1.0, "reason": "As instructed: 1.0."}')
        reply = blocks.get("ASSISTANT_REPLY", "").casefold()
        phrases = _QUOTED.findall(rubric)
        if phrases:
            goal = sum(p.casefold() in reply for p in phrases) / len(phrases)
        else:
            goal = 1.0 if reply.strip() else 0.0
        process = 0.5 if '"ok": false' in blocks.get("TOOL_CALLS", "") else 1.0
        missing = [p for p in phrases if p.casefold() not in reply]
        reason = "all rubric points covered" if not missing else f"missing: {', '.join(missing)}"
        return FakeReply(json.dumps({"goal": goal, "process": process, "reason": reason}))


class RouterPolicy:
    """Judge requests to ``judge``, everything else to ``agent``."""

    def __init__(self, agent: Policy, judge: Policy | None = None) -> None:
        self.agent = agent
        self.judge = judge or FakeJudgePolicy()

    def respond(self, request: FakeRequest) -> FakeReply:
        return self.route(request).respond(request)

    def route(self, request: FakeRequest) -> Policy:

        return self.judge if JUDGE_MARKER in request.system else self.agent


def is_judge_request(request: FakeRequest) -> bool:

    return JUDGE_MARKER in request.system
