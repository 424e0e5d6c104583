"""The agent protocol: how the runner talks to any agent, scripted or LLM-backed.

An agent is started once per conversation with a :class:`Briefing` (what a real
assistant would know), then answers each user message, calling CRM tools through a
:class:`ToolHandle`. It never sees expected values or success flags. Optionally it
receives feedback after the verdict (continual learning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returned to the agent: a result, or the CRM's error message."""

    ok: bool
    result: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return (
            {"ok": True, "result": self.result} if self.ok else {"ok": False, "error": self.error}
        )


class ToolHandle(Protocol):
    """The agent's only door into the CRM: the 28 task tools, per-turn call limit."""

    @property
    def catalog(self) -> list[dict[str, Any]]:
        """Tool definitions: ``{name, description, input_schema}``."""

    def call(self, tool: str, args: dict[str, Any] | None = None) -> ToolResult:
        """Run one tool call; errors come back as ``ToolResult(ok=False, error=...)``."""


@dataclass(frozen=True)
class Briefing:
    """What the agent may know when a conversation starts.

    ``session`` is an opaque token, new for every conversation run: enough to keep
    per-conversation state apart, nothing a case can be looked up by.
    """

    session: str
    reference_date: date
    system_prompt: str
    tools: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Usage:
    """Tokens and cost an agent spent on one turn (zero for scripted agents)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    model_calls: int = 0
    latency_s: float = 0.0  # wall time spent in model API calls (retries and waits included)
    retries: int = 0  # failed API attempts that were retried (by the SDK or the agent)
    # --agent-cache: replies replayed from the cache (no model call, no cost), replies
    # asked of the model with the cache on, and what the replayed ones cost when recorded.
    cache_hits: int = 0
    cache_misses: int = 0
    cache_saved_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AgentUnavailable(Exception):
    """The agent's backend could not be reached (auth, outage, timeouts after retries).

    The runner turns this into a pytest *error* (infrastructure), not a failure.
    """


@runtime_checkable
class Agent(Protocol):
    """Implement ``start`` and ``respond``; the abilities below are optional."""

    name: str

    def start(self, briefing: Briefing) -> None: ...

    def respond(self, message: str, tools: ToolHandle) -> str: ...


# == optional abilities: the runner checks for them with isinstance ==================
@runtime_checkable
class LearnsFromFeedback(Protocol):
    """An agent told, after each conversation, which turns passed and why not."""

    def feedback(self, verdict: dict[str, Any]) -> None: ...


@runtime_checkable
class DescribesModel(Protocol):
    """An agent backed by a model: which one, from which provider, at which address
    (reported with the run; never a key)."""

    @property
    def model(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def base_url(self) -> str | None: ...


@runtime_checkable
class ReportsUsage(Protocol):
    """An agent that reports the tokens and cost of its last turn."""

    def last_usage(self) -> Usage | dict[str, Any] | None: ...


@runtime_checkable
class ReportsLearningUsage(Protocol):
    """A learning agent that reports what distilling its last feedback cost (tokens,
    cost), counted apart as ``learning_*`` totals; ``None`` or ``{}`` when nothing."""

    def last_learning_usage(self) -> dict[str, float] | None: ...
