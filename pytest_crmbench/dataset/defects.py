"""Dataset defects: what makes a conversation unfair or unusable, found without an agent.

Found by the Arc importer (:mod:`pytest_crmbench.dataset.arc`) and by ``crmbench lint``
(:mod:`pytest_crmbench.lint`). A *blocking* defect means the conversation cannot
be scored fairly: the plugin still collects it, but skips it (or marks it xfail) with the
defect named. The other kinds are findings for the dataset's author only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: kind -> what it means (the documented list; ``crmbench lint`` uses these names).
KINDS: dict[str, str] = {
    "placeholder": "the user's words hold a placeholder that cannot be rendered "
    "({{opportunity_name}}, {stage}, or {{turn_N.x}} without a value)",
    "unknown-tool": "the expected tool does not exist or is not offered to agents",
    "unknown-argument": "an argument the tool does not define",
    "unstated-value": "a literal argument value the user's words never state",
    "empty-search": "a search with no criteria (any search would pass)",
    "no-check": "no turn writes, must be refused or has a fact to convey (any agent passes)",
    "reference-call-failed": "a reference call fails (or succeeds where a refusal is "
    "expected) on the reference run",
    "broken-reference": "a {{turn_N.x}} reference that is malformed, points forward, or "
    "has no value in the reference results",
    "invalid-seed": "a seeded record the CRM would not hold (unknown field or entity, "
    "bad value, missing required value, dangling foreign key, duplicate email)",
    "duplicate-id": "the conversation id was already used",
    "too-many-turns": "more than 10 turns",
    "invalid-conversation": "the line cannot be turned into a valid conversation",
    "invalid-file": "the file cannot be read",
    "complexity-mismatch": "the declared complexity does not match the turn count",
    "fact-not-in-results": "a required reply fact is absent from the turn's reference results",
    "note-author-fact": "a note-reading turn requires the note's author, not what it says",
    "echoed-fact": "a read turn requires a fact the user's words already contain "
    "(repeating the question passes it)",
    "no-precision": "a read turn has no must_not_mention (a reply listing every record passes it)",
    "refusal-without-reason": "a refused turn has no required fact naming the reason in "
    "the CRM's error (a blanket \"I can't\" passes it)",
    "file-type-wording": "the user calls a file by another type than its extension",
    "contact-email-ambiguity": "an email beside a contact in the user's words is not the "
    "contact's (it reads as theirs)",
    "stock-phrase": "an opener or closer on more than 1 % of a file's turns (a finding of "
    "the whole file)",
}

#: Kinds that do not stop a conversation from being scored.
NON_BLOCKING = frozenset({"complexity-mismatch", "stock-phrase"})


@dataclass(frozen=True)
class Defect:
    """One defect of one conversation; ``turn`` is 1-based, None for the whole line."""

    kind: str
    detail: str
    turn: int | None = None

    @property
    def blocking(self) -> bool:
        return self.kind not in NON_BLOCKING

    def __str__(self) -> str:
        where = f"turn {self.turn}: " if self.turn is not None else ""
        return f"{self.kind} ({where}{self.detail})"

    def as_dict(self, conversation: str) -> dict[str, Any]:
        return {
            "conversation": conversation,
            "turn": self.turn,
            "kind": self.kind,
            "detail": self.detail,
        }


def skip_reason(defects: tuple[Defect, ...] | list[Defect], limit: int = 3) -> str:
    """``arc defect: placeholder (turn 1: '{stage}'); unstated-value (…)`` — the reason
    shown for a skipped (or xfail) item; the first ``limit`` blocking defects, then a count."""
    blocking = [d for d in defects if d.blocking]
    text = "; ".join(str(d) for d in blocking[:limit])
    if len(blocking) > limit:
        text += f"; and {len(blocking) - limit} more"
    return "arc defect: " + text
