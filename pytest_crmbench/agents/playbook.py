"""``--agent playbook:claude`` / ``playbook:openai``: a built-in LLM agent that learns.

After each piece of feedback it distils the failed turns' reasons into a short playbook
of lessons, appended to its system prompt from the next conversation on. Distilling is
deterministic (rules over the reasons, no model call), so it costs no tokens; the agent
still reports ``learning_*`` usage (all zero) through ``last_learning_usage()``, the
hook a learner that distils with a model uses to have its cost counted.

* **Evidence.** A lesson is adopted once ``student_evidence`` (3) pieces of student
  feedback showed its pattern in a failed turn — a tool error alone may be a one-off —
  and after one piece of teacher feedback, whose expected calls confirm the fix.
* **Bounded.** At most ``max_lessons`` lessons, each one sentence, the playbook at most
  ``max_chars`` characters.
* **Persistent.** ``memory`` (``--agent-memory PATH``): lessons and evidence are loaded
  at start and saved after every change (merged with what other workers saved), so
  learning carries across runs.
* **Frozen.** ``frozen`` (``--agent-frozen``): feedback is ignored, the playbook stays
  as loaded — evaluation without learning (e.g. on the held-out split).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_crmbench.agents.base import Briefing, ToolHandle, Usage
from pytest_crmbench.agents.claude import ClaudeAgent
from pytest_crmbench.agents.llm import LLMAgent
from pytest_crmbench.agents.openai_agent import OpenAIAgent
from pytest_crmbench.agents.pricing import PriceTable

PLAYBOOK_HEADING = "Lessons learned from earlier conversations (follow them):"
MEMORY_VERSION = 1


@dataclass(frozen=True)
class Rule:
    """A lesson and the failure reasons that call for it."""

    key: str
    pattern: re.Pattern[str]
    lesson: str


RULES: tuple[Rule, ...] = (
    Rule(
        "enum-case",
        re.compile(r"must be one of", re.I),
        "Enum values: copy them exactly as the schema lists them — capitalised, singular, "
        "hyphens kept (a lower-case or plural enum value is refused).",
    ),
    Rule(
        "required-field",
        re.compile(r"requires '|is required", re.I),
        "Required fields: when creating a record pass every required field of the tool "
        "(the * fields of the schema, e.g. the client_id or email), even if the user "
        "mentions it only in passing.",
    ),
    Rule(
        "lookup-first",
        re.compile(r"not found|no such|does not exist", re.I),
        "Lookups: search for a record before writing to it and use the id the search "
        "returns; never guess an id from a name.",
    ),
    Rule(
        "reply-facts",
        re.compile(r"required fact\(s\) missing|missing facts?:", re.I),
        "Replies: state the key facts (names, amounts, dates, counts) of what you found or did.",
    ),
    Rule(
        "refusal",
        re.compile(r"does not tell the user the request was refused", re.I),
        "Refusals: when the CRM refuses a change, tell the user plainly it could not be "
        "done and why.",
    ),
)


class Playbook:
    """Lessons and the evidence gathered for the ones not adopted yet."""

    def __init__(
        self,
        *,
        student_evidence: int = 3,
        teacher_evidence: int = 1,
        max_lessons: int = 12,
        max_chars: int = 2000,
    ) -> None:
        self.student_evidence = student_evidence
        self.teacher_evidence = teacher_evidence
        self.max_lessons = max_lessons
        self.max_chars = max_chars
        self.lessons: dict[str, str] = {}  # key -> lesson, in order of adoption
        self.evidence: dict[str, int] = {}

    def learn(self, verdict: dict[str, Any]) -> bool:
        """Take one feedback; whether the playbook changed."""
        teacher = verdict.get("mode") == "teacher"
        needed = self.teacher_evidence if teacher else self.student_evidence
        text = " ".join(
            str(r)
            for turn in verdict.get("turns") or []
            if not turn.get("passed")
            for r in turn.get("reasons") or []
        )
        changed = False
        for rule in RULES:  # one piece of evidence per feedback, however many turns show it
            if rule.key in self.lessons or not rule.pattern.search(text):
                continue
            self.evidence[rule.key] = self.evidence.get(rule.key, 0) + 1
            if self.evidence[rule.key] >= needed and self._fits(rule):
                self.lessons[rule.key] = rule.lesson
                changed = True
        return changed

    def _fits(self, rule: Rule) -> bool:
        size = sum(len(x) + 3 for x in self.lessons.values()) + len(rule.lesson)
        return len(self.lessons) < self.max_lessons and size <= self.max_chars

    def render(self) -> str:
        if not self.lessons:
            return ""
        return "\n\n" + PLAYBOOK_HEADING + "\n" + "\n".join(f"- {x}" for x in self.lessons.values())

    def as_json(self) -> dict[str, Any]:
        return {"version": MEMORY_VERSION, "lessons": self.lessons, "evidence": self.evidence}

    def merge(self, data: dict[str, Any]) -> None:
        """Add what a memory file holds (lessons kept in their order, evidence maxed)."""
        for key, lesson in (data.get("lessons") or {}).items():
            if key not in self.lessons and isinstance(lesson, str):
                self.lessons[str(key)] = lesson[:300]
        for key, n in (data.get("evidence") or {}).items():
            if isinstance(n, int):
                self.evidence[str(key)] = max(self.evidence.get(str(key), 0), n)


class PlaybookAgent:
    """Wraps an :class:`LLMAgent`: same tool loop, plus the playbook in its prompt."""

    inner_class: type[LLMAgent] = ClaudeAgent
    name = "playbook"

    @classmethod
    def warm_up(cls) -> None:
        """The inner agent's SDK, imported ahead (see :meth:`LLMAgent.warm_up`)."""
        cls.inner_class.warm_up()

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        temperature: float | None = 0.0,
        max_tokens: int | None = 1024,
        timeout: float | None = 60.0,
        *,
        memory: str | None = None,
        frozen: bool = False,
        playbook: Playbook | None = None,
        inner: LLMAgent | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        max_connections: int | None = None,
        cache_dir: str | None = None,
    ) -> None:
        self.inner = inner or self.inner_class(
            model=model,
            base_url=base_url,
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
            rpm=rpm,
            tpm=tpm,
            max_connections=max_connections,
            cache_dir=cache_dir,
        )
        self.name = f"playbook:{self.inner.name}"
        self.memory = Path(memory) if memory else None
        self.frozen = frozen
        self.playbook = playbook or Playbook()
        if self.memory is not None and self.memory.is_file():
            self.playbook.merge(self._read())
        self._learning: dict[str, float] = {}

    # -- what the runner and the plugin ask of an LLM agent -------------------------------
    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def provider(self) -> str:
        return self.inner.provider

    @property
    def base_url(self) -> str | None:
        return self.inner.base_url

    @property
    def prices(self) -> PriceTable:
        return self.inner.prices

    @prices.setter
    def prices(self, table: PriceTable) -> None:
        self.inner.prices = table

    def check_ready(self) -> None:
        self.inner.check_ready()

    def start(self, briefing: Briefing) -> None:
        prompt = briefing.system_prompt + self.playbook.render()
        self.inner.start(
            Briefing(briefing.session, briefing.reference_date, prompt, list(briefing.tools))
        )

    def respond(self, message: str, tools: ToolHandle) -> str:
        return self.inner.respond(message, tools)

    def last_usage(self) -> Usage:
        return self.inner.last_usage()

    def close(self) -> None:
        self.inner.close()

    # -- learning -------------------------------------------------------------------------
    def feedback(self, verdict: dict[str, Any]) -> None:
        # Deterministic distilling: no tokens (a model-based learner would count them here).
        self._learning = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
        if self.frozen:
            return
        if self.playbook.learn(verdict) or self.memory is not None:
            self._save()

    def last_learning_usage(self) -> dict[str, float] | None:
        spent, self._learning = self._learning, {}
        return spent

    def freeze(self) -> None:
        """Stop learning (the playbook stays as it is)."""
        self.frozen = True

    def _read(self) -> dict[str, Any]:
        assert self.memory is not None
        try:
            data = json.loads(self.memory.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        """Merge with the file (another worker may have learnt too), write atomically."""
        if self.memory is None:
            return
        if self.memory.is_file():
            self.playbook.merge(self._read())
        self.memory.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.memory.parent, prefix=".playbook-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.playbook.as_json(), fh, indent=1, ensure_ascii=False)
        os.replace(tmp, self.memory)


class ClaudePlaybook(PlaybookAgent):
    """``--agent playbook:claude``."""

    inner_class = ClaudeAgent


class OpenAIPlaybook(PlaybookAgent):
    """``--agent playbook:openai``."""

    inner_class = OpenAIAgent
