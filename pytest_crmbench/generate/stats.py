"""Figures that describe a conversation dataset (printed by ``crmbench generate``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_crmbench.crm.catalog import AGENT_TOOLS
from pytest_crmbench.dataset.model import Conversation

COMPLEXITIES = ("simple", "medium", "complex")


def dataset_statistics(conversations: Iterable[Conversation]) -> dict[str, Any]:
    """Counts per complexity, workflow and tool (turns using it), refusal share, utterances,
    and how many turns check precision (``must_not_mention``) or have a judge's rubric."""
    convs: Sequence[Conversation] = list(conversations)
    n = len(convs)
    complexity: Counter[str] = Counter(str(c.complexity) for c in convs)
    workflow: Counter[str] = Counter(str(c.workflow) for c in convs)
    tools: Counter[str] = Counter()
    for conv in convs:
        for turn in conv.turns:
            for tool in {call.tool for call in turn.expected_calls}:
                tools[tool] += 1
    turns = [t for c in convs for t in c.turns]
    users = [t.user for t in turns]
    refusal_convs = sum(1 for c in convs if c.has_failure_turn)
    refs = sum(
        1
        for c in convs
        if any("{{turn_" in str(call.args) for t in c.turns for call in t.expected_calls)
    )
    return {
        "conversations": n,
        "turns": len(turns),
        "turns_per_conversation": round(len(turns) / n, 2) if n else 0.0,
        "complexity": {k: complexity.get(k, 0) for k in COMPLEXITIES},
        "complexity_share": {
            k: round(complexity.get(k, 0) / n, 4) if n else 0.0 for k in COMPLEXITIES
        },
        "workflow": dict(sorted(workflow.items(), key=lambda kv: (-kv[1], kv[0]))),
        "tools": {
            t.name: tools.get(t.name, 0)
            for t in sorted(AGENT_TOOLS, key=lambda t: (-tools.get(t.name, 0), t.name))
        },
        "refusal_conversations": refusal_convs,
        "refusal_share": round(refusal_convs / n, 4) if n else 0.0,
        "refusal_turns": sum(1 for t in turns if t.expect == "failure"),
        "disambiguation_conversations": sum(1 for c in convs if "disambiguation" in c.tags),
        "cross_turn_conversations": refs,
        "utterances": len(users),
        "distinct_utterances": len(set(users)),
        "rubric_turns": sum(1 for t in turns if t.reply.rubric),
        "precision_turns": sum(1 for t in turns if t.reply.must_not_mention),
    }


def format_statistics(stats: dict[str, Any]) -> str:
    """A readable multi-line rendering of :func:`dataset_statistics`."""
    n = stats["conversations"]
    lines = [
        f"conversations: {n}   turns: {stats['turns']} "
        f"({stats['turns_per_conversation']} per conversation)",
        "complexity:    "
        + ", ".join(
            f"{k} {v} ({stats['complexity_share'][k]:.1%})" for k, v in stats["complexity"].items()
        ),
        f"refusals:      {stats['refusal_conversations']} conversations "
        f"({stats['refusal_share']:.1%}), {stats['refusal_turns']} turns",
        f"cross-turn references: {stats['cross_turn_conversations']} conversations; "
        f"disambiguation: {stats['disambiguation_conversations']}",
        f"utterances:    {stats['utterances']} ({stats['distinct_utterances']} distinct)",
        f"replies:       {stats['precision_turns']} turns with records to leave out, "
        f"{stats['rubric_turns']} with a rubric",
        "workflows:",
    ]
    lines += [f"  {w:<30} {c:>5}" for w, c in stats["workflow"].items()]
    lines.append("tools (turns whose reference calls use them):")
    lines += [f"  {t:<26} {c:>5}" for t, c in stats["tools"].items()]
    return "\n".join(lines)
