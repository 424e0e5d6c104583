"""The benchmark as a Gymnasium environment (the ``[gym]`` extra): ``crmbench/CRM-v0``.

One episode is one conversation. Each step is one action of the agent: a tool call, or
the final reply of the current turn. A reply ends the turn, which is judged at once by
the runner's own verdict (:class:`~pytest_crmbench.runner.runner.ConversationSession`,
the object :meth:`Runner.run <pytest_crmbench.runner.runner.Runner.run>` drives for
the pytest items): the tool calls go through the same recording handle and per-turn
limit, the state change is journaled by the same tracking store, the turn is judged by
the same checks, ``recover`` works the same way. Only who holds the loop differs.

Spaces. Everything an LLM agent exchanges is text, so both spaces are :class:`Dict`\\ s of
text fields plus small :class:`Discrete` counters. The text fields are :class:`TextField`,
a plain :class:`Text` (so ``check_env``, batching and ``SyncVectorEnv`` see a standard
space) that also crosses ``AsyncVectorEnv``'s shared memory correctly, which Gymnasium's
own ``Text`` does not (it is read from shared memory once, when the vector env is made;
Farama-Foundation/Gymnasium#1164). ``Text`` only holds characters of a declared set, hence:

* observation ``result`` (the last tool call's ``{"ok", "result"|"error"}``) and ``tools``
  (the catalog) are JSON written with ``ensure_ascii`` — printable ASCII, whatever the
  CRM holds; a result longer than :data:`MAX_RESULT` characters is cut, as the LLM
  agents cut it (a cut result is no longer valid JSON and says so);
* observation ``user`` is the user's message as written; its character set is printable
  ASCII plus the characters of the dataset's messages;
* ``turn`` is the 0-based index of the turn being played (the number already judged),
  ``calls`` the number of tool calls made in it.

An action is ``{"kind": 0, "tool": name, "arguments": JSON object}`` (a tool call) or
``{"kind": 1, "reply": text}`` (the reply that ends the turn); :func:`tool_call` and
:func:`reply` build them, and ``step`` also takes the short forms ``{"tool", "arguments"}``
(arguments as a JSON string or a dict) and ``{"reply"}``. Arguments that are not a JSON
object reach the CRM as they are, and its refusal is the call's result, as in pytest.
A reply may hold any character (the declared set is what ``sample()`` draws from).

Rewards: on a reply, the turn's verdict (1 passed, 0 failed); ``tool_error_penalty``
subtracts that much for every tool call that returned an error. ``terminated`` after
the last turn's reply; ``truncated`` when a turn goes over the call limit (that turn is
judged as it stands and fails, as it would in pytest). ``info`` after a reply holds the
turn number, ``passed`` and ``reasons`` — the pytest report's reasons (``reasons=
"student"``: what failed without the expected values, as ``--crm-feedback student``);
at the episode's end ``conversation`` sums it up (``passed``, ``turns_passed``,
``n_turns``) and :meth:`CrmEnv.item` is the item result the pytest item would report
(with timings, hence not in ``info``, which must repeat exactly under a seed). ``reset``
info holds what a real assistant knows: an opaque ``session`` token, the
``reference_date`` and the ``system_prompt``. Neither the case id nor anything of the
reference is shown before a turn is judged.
"""

from __future__ import annotations

import json
import multiprocessing
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal, SupportsFloat, overload

try:
    import gymnasium
    import numpy as np
    from gymnasium import spaces
    from gymnasium.vector.utils import (
        create_shared_memory,
        read_from_shared_memory,
        write_to_shared_memory,
    )
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "pytest_crmbench.gym needs gymnasium: pip install 'pytest-crmbench[gym]'"
    ) from exc

from pytest_crmbench.agents.base import Agent, Briefing, ToolResult
from pytest_crmbench.agents.judge import LLMJudge
from pytest_crmbench.backends import Backend, open_memory_store, open_postgres_store
from pytest_crmbench.crm.catalog import agent_catalog
from pytest_crmbench.crm.seed import SeedWorld, load_seed_world
from pytest_crmbench.crm.store import Store
from pytest_crmbench.dataset import Dataset, load_dataset
from pytest_crmbench.dataset.arc import is_arc
from pytest_crmbench.dataset.model import Conversation
from pytest_crmbench.locations import project_dir
from pytest_crmbench.runner.arc import ArcRunner
from pytest_crmbench.runner.records import ItemResult
from pytest_crmbench.runner.runner import (
    DEFAULT_MAX_CALLS,
    ConversationSession,
    RecordingHandle,
    Runner,
    RunOptions,
)

Obs = dict[str, Any]
Action = Mapping[str, Any]

CALL, REPLY = 0, 1  # action kinds
SPLITS = {"main": "conversations.jsonl", "holdout": "conversations_holdout.jsonl"}
ENV_IDS = {"crmbench/CRM-v0": "main", "crmbench/CRM-holdout-v0": "holdout"}
ASCII = "".join(chr(c) for c in range(32, 127))  # all that JSON with ensure_ascii writes
TOOL_CHARS = string.ascii_lowercase + string.digits + "_"
MAX_USER = 4096
MAX_RESULT = 50_000  # the LLM agents' cut (agents.llm.MAX_TOOL_RESULT_CHARS)
MAX_ARGUMENTS = 8192
MAX_REPLY = 8192
AGENT_NAME = "gym"


def tool_call(tool: str, arguments: Mapping[str, Any] | str | None = None) -> dict[str, Any]:
    """The action that calls ``tool`` (``arguments``: a dict or a JSON object string)."""
    text = arguments if isinstance(arguments, str) else json.dumps(dict(arguments or {}))
    return {"kind": CALL, "tool": tool, "arguments": text, "reply": ""}


def reply(text: str) -> dict[str, Any]:
    """The action that answers the user and ends the turn."""
    return {"kind": REPLY, "tool": "", "arguments": "", "reply": text}


def _json_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    if len(text) > MAX_RESULT:
        marker = f" ... [cut: {len(text)} characters in all; narrow the search]"
        text = text[: MAX_RESULT - len(marker)] + marker
    return text


class TextField(spaces.Text):
    """A :class:`~gymnasium.spaces.Text` whose values cross ``AsyncVectorEnv``'s shared
    memory as code points, decoded when read. Gymnasium itself reads a ``Text`` from
    shared memory once, when the vector env is made, so plain ``Text`` observations would
    stay at their first value there; this one is read at every step."""


class SharedTexts(Sequence[str]):
    """One ``TextField`` of every sub-env, read from shared memory when accessed (a deep
    copy, which ``AsyncVectorEnv`` returns by default, is a plain tuple of the values)."""

    def __init__(self, rows: np.ndarray[Any, np.dtype[np.int32]]) -> None:
        self._rows = rows  # row i: [length, code points...] of sub-env i

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        row = self._rows[index]
        return str(row[1 : 1 + int(row[0])].tobytes().decode("utf-32-le"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the buffer under it

    def __repr__(self) -> str:
        return repr(tuple(self))

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[str, ...]:
        return tuple(self)

    def __reduce__(self) -> tuple[type[tuple[str, ...]], tuple[tuple[str, ...]]]:
        return tuple, (tuple(self),)


def _rows(space: TextField, memory: Any) -> np.ndarray[Any, np.dtype[np.int32]]:
    flat = np.frombuffer(memory.get_obj(), dtype=np.int32)
    return flat.reshape(-1, space.max_length + 1)


@create_shared_memory.register(TextField)
def _create_text_memory(space: TextField, n: int = 1, ctx: Any = multiprocessing) -> Any:
    return ctx.Array(np.dtype(np.int32).char, n * (space.max_length + 1))


@read_from_shared_memory.register(TextField)
def _read_text_memory(space: TextField, memory: Any, n: int = 1) -> SharedTexts:
    return SharedTexts(_rows(space, memory))


@write_to_shared_memory.register(TextField)
def _write_text_memory(space: TextField, index: int, value: str, memory: Any) -> None:
    codes = np.frombuffer(value.encode("utf-32-le"), dtype=np.int32)
    if len(codes) > space.max_length:
        raise ValueError(f"a text of {len(codes)} characters in a field of {space.max_length}")
    row = _rows(space, memory)[index]
    row[0] = len(codes)
    row[1 : 1 + len(codes)] = codes


@cache
def _tools_json() -> str:
    return json.dumps(agent_catalog(), ensure_ascii=True)


@cache
def _world() -> SeedWorld:
    return load_seed_world()


@cache
def _dataset(paths: tuple[str, ...]) -> Dataset:
    return load_dataset(list(paths))  # frozen, so one copy serves every env of a process


def _arguments(raw: Any) -> Any:
    """What the CRM is given: a JSON string parsed if it parses, anything else as is."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw  # the CRM refuses it with its own message
    return dict(raw) if isinstance(raw, Mapping) else raw


def _parse_action(action: Any) -> tuple[int, Any, Any, str]:
    """(kind, tool, arguments, reply) of an action in any accepted form."""
    if isinstance(action, str):
        return REPLY, None, None, action
    if not isinstance(action, Mapping):
        raise TypeError(
            f"an action is a dict (tool_call(...) or reply(...)), not {type(action).__name__}"
        )
    kind = action.get("kind")
    if kind is None:
        kind = REPLY if "reply" in action and not action.get("tool") else CALL
    kind = int(kind)
    if kind not in (CALL, REPLY):
        raise ValueError(f"action kind must be 0 (tool call) or 1 (reply), not {kind}")
    tool = action.get("tool")
    text = action.get("reply")
    return (
        kind,
        str(tool) if tool is not None else None,
        _arguments(action.get("arguments")),
        "" if text is None else str(text),
    )


class CrmEnv(gymnasium.Env[Obs, Action]):
    """One conversation per episode; steps are tool calls and replies (see the module doc).

    ``dataset`` is a path (or paths) of a conversations file, ``split`` a shipped one
    (``main``: ``cases/conversations.jsonl``, ``holdout``); ``backend="postgres"`` runs on
    the database at ``postgres_url`` (which the env owns: it installs the schema). The
    run options (``max_calls_per_turn``, ``recover``, ``strict_actions``, ``judge``) mean
    what the plugin's ``--crm-*`` options mean.
    """

    metadata = {"render_modes": []}  # noqa: RUF012  # gymnasium declares it so

    def __init__(
        self,
        dataset: str | Path | Sequence[str | Path] | None = None,
        *,
        split: str = "main",
        backend: Backend = "memory",
        postgres_url: str | None = None,
        max_calls_per_turn: int = DEFAULT_MAX_CALLS,
        recover: bool = False,
        strict_actions: bool = False,
        judge: LLMJudge | None = None,
        tool_error_penalty: float = 0.0,
        reasons: Literal["report", "student"] = "report",
        render_mode: str | None = None,
    ) -> None:
        if dataset is None:
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}: use one of {sorted(SPLITS)}")
            dataset = project_dir("cases") / SPLITS[split]
        paths = [dataset] if isinstance(dataset, str | Path) else list(dataset)
        self.dataset = _dataset(tuple(str(Path(p).resolve()) for p in paths))
        self.cases: tuple[Conversation, ...] = tuple(
            c for c in self.dataset.conversations if c.id not in self.dataset.defects
        )
        if not self.cases:
            raise ValueError("the dataset has no conversation to play (all are defective)")
        if backend == "postgres":
            if not postgres_url:
                raise ValueError("backend='postgres' needs postgres_url='postgresql://...'")
            if any(is_arc(c) for c in self.cases):
                raise ValueError(
                    "upstream (Arc) conversations run on the memory store only here: "
                    "use backend='memory'"
                )
            store = open_postgres_store(postgres_url, _world())
        elif backend == "memory":
            store = open_memory_store(_world())
        else:
            raise ValueError(f"unknown backend {backend!r}: use 'memory' or 'postgres'")
        if reasons not in ("report", "student"):
            raise ValueError(f"reasons must be 'report' or 'student', not {reasons!r}")
        options = RunOptions(
            max_calls_per_turn=max_calls_per_turn,
            recover=recover,
            strict_actions=strict_actions,
            judge=judge,
        )
        self._stores: list[Store] = [store]

        def open_arc_store(world: SeedWorld) -> Store:
            self._stores.append(open_memory_store(world))
            return self._stores[-1]

        self.runner = ArcRunner(Runner(store, _world(), options), open_arc_store)
        self.tool_error_penalty = float(tool_error_penalty)
        self.reasons = reasons
        self.render_mode = render_mode
        self.session: ConversationSession | None = None
        self._handle: RecordingHandle | None = None
        self._over = True
        self._started = 0.0
        self._user_max = max(MAX_USER, *(len(t.user) for c in self.cases for t in c.turns))
        user_chars = sorted(
            set(ASCII + "\n\t").union(*(t.user for c in self.cases for t in c.turns))
        )
        max_turns = max(len(c.turns) for c in self.cases)
        self.observation_space = spaces.Dict(
            {
                "turn": spaces.Discrete(max_turns + 1),
                "calls": spaces.Discrete(max_calls_per_turn + 2),
                "user": TextField(self._user_max, min_length=0, charset="".join(user_chars)),
                "result": TextField(MAX_RESULT, min_length=0, charset=ASCII),
                "tools": TextField(len(_tools_json()), min_length=0, charset=ASCII),
            }
        )
        self.action_space = spaces.Dict(
            {
                "kind": spaces.Discrete(2),
                "tool": TextField(64, min_length=0, charset=TOOL_CHARS),
                "arguments": TextField(MAX_ARGUMENTS, min_length=0, charset=ASCII),
                "reply": TextField(MAX_REPLY, min_length=0, charset=ASCII),
            }
        )

    # -- Gymnasium API -----------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        """Start a conversation: ``options={"case": id}`` names it, otherwise it is drawn
        from the env's random generator (so ``seed`` fixes it)."""
        super().reset(seed=seed)
        case = (options or {}).get("case")
        if case is not None:
            conv = self.dataset.by_id.get(str(case))
            if conv is None:
                raise ValueError(f"no conversation {case!r} in the env's dataset")
        else:
            conv = self.cases[int(self.np_random.integers(len(self.cases)))]
        token = self.np_random.bytes(16).hex()  # opaque, and reproducible under a seed
        self._started = time.perf_counter()
        self.session = self.runner.runner_for(conv).begin(conv, session=token)
        self._handle = self.session.open_turn()
        self._over = False
        briefing = self.session.briefing
        info = {
            "session": briefing.session,
            "reference_date": briefing.reference_date.isoformat(),
            "system_prompt": briefing.system_prompt,
        }
        return self._obs("", 0), info

    def step(self, action: Action) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        session, handle = self.session, self._handle
        if session is None or handle is None or self._over:
            raise RuntimeError("the episode is over: call reset() before step()")
        kind, tool, arguments, text = _parse_action(action)
        if kind == REPLY:
            info = self._judge(text)
            reward = 1.0 if info["passed"] else 0.0
            return self._obs("", 0), reward, session.done, False, info
        outcome = handle.call(tool, arguments)  # as the agent sent it: the CRM judges
        reward = 0.0 if outcome.ok else -self.tool_error_penalty
        calls = len(handle.calls)
        if not handle.limit_hit:
            return self._obs(_json_text(outcome.as_dict()), calls), reward, False, False, {}
        # Over the limit: the turn is judged as it stands (it fails) and the episode ends.
        info = self._judge("")
        return self._obs(_json_text(outcome.as_dict()), calls), reward, False, True, info

    def close(self) -> None:
        self.session = self._handle = None
        self._over = True
        while self._stores:
            self._stores.pop().close()

    # -- helpers -------------------------------------------------------------------------
    def item(self) -> ItemResult:
        """The item result of the episode so far, as the pytest item would report it
        (agent ``gym``)."""
        if self.session is None:
            raise RuntimeError("no episode: call reset() first")
        return self.session.result(AGENT_NAME, None, self._started)

    def _judge(self, text: str) -> dict[str, Any]:
        """Close the open turn on ``text``; the next one opens unless the episode ends."""
        session, handle = self.session, self._handle
        assert session is not None and handle is not None
        result, student = session.close_turn(text)
        info: dict[str, Any] = {
            "turn": result["turn"],
            "passed": result["passed"],
            "reasons": [str(r) for r in result["reasons"]]
            if self.reasons == "report"
            else list(student),
        }
        if session.done or handle.limit_hit:
            self._over = True
            self._handle = None
            turns = session.turns
            info["conversation"] = {
                "passed": all(t["passed"] for t in turns),
                "turns_passed": sum(t["passed"] for t in turns),
                "n_turns": len(turns),
            }
        else:
            self._handle = session.open_turn()
        return info

    def _obs(self, result_text: str, calls: int) -> Obs:
        session = self.session
        assert session is not None
        return {
            "turn": len(session.turns),
            "calls": calls,
            "user": "" if self._over else session.turn.user,
            "result": result_text,
            "tools": _tools_json(),
        }


@dataclass
class Played:
    """What :func:`play` saw: every step's reward, the replies' rewards (one per turn
    played), how the episode ended, the last ``info`` and the item result."""

    rewards: list[float] = field(default_factory=list)
    turn_rewards: list[float] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    item: ItemResult | None = None


class _StepTools:
    """A tool handle whose calls are env steps: how a benchmark agent plays the env."""

    def __init__(self, env: gymnasium.Env[Obs, Action], played: Played) -> None:
        self.env = env
        self.played = played

    @property
    def catalog(self) -> list[dict[str, Any]]:
        return agent_catalog()

    def call(self, tool: str, args: dict[str, Any] | None = None) -> ToolResult:
        played = self.played
        if played.terminated or played.truncated:
            return ToolResult(False, error="The episode is over.")
        obs, reward, played.terminated, played.truncated, info = self.env.step(
            {"kind": CALL, "tool": tool, "arguments": args}
        )
        played.rewards.append(float(reward))
        if played.truncated:
            played.info = info
        try:
            outcome = json.loads(obs["result"])
        except ValueError:  # cut (too long): the text as the agent would read it
            return ToolResult(True, result=obs["result"])
        return ToolResult(bool(outcome["ok"]), outcome.get("result"), outcome.get("error"))


def play(
    env: gymnasium.Env[Obs, Action],
    agent: Agent,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
) -> Played:
    """Play one episode with a benchmark agent (``start``/``respond``): its tool calls and
    replies become the env's steps. Scores as the same agent's pytest item would."""
    obs, info = env.reset(seed=seed, options=options)
    agent.start(
        Briefing(
            session=info["session"],
            reference_date=date.fromisoformat(info["reference_date"]),
            system_prompt=info["system_prompt"],
            tools=json.loads(obs["tools"]),
        )
    )
    played = Played()
    tools = _StepTools(env, played)
    while not (played.terminated or played.truncated):
        text = agent.respond(obs["user"], tools)
        if played.truncated:
            break
        obs, reward, played.terminated, played.truncated, played.info = env.step(
            {"kind": REPLY, "reply": text}
        )
        played.rewards.append(float(reward))
        played.turn_rewards.append(float(reward))
    core = env.unwrapped
    played.item = core.item() if isinstance(core, CrmEnv) else None
    return played


def register() -> None:
    """Register ``crmbench/CRM-v0`` (the shipped conversations) and one id per shipped
    split (``crmbench/CRM-holdout-v0``); any dataset with ``make(..., dataset=path)``."""
    for env_id, split in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=f"{__name__}:CrmEnv", kwargs={"split": split})


register()
