"""The held-out split: conversations from another seed, disjoint from the main dataset.

Disjoint means no user utterance and no created-record name (client, opportunity,
contact, company name; quote, contract or document title/file name) in common with the
main file, so what an agent learnt there cannot be replayed here — only transferred.
Ids are ``HOLD-NNNN``; candidates that overlap are dropped, so numbering has gaps.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_crmbench.dataset.loader import load_dataset
from pytest_crmbench.dataset.model import Conversation
from pytest_crmbench.generate.generator import Generator, PlanItem, make_plan, write_jsonl

HOLDOUT_FILE = "conversations_holdout.jsonl"
HOLDOUT_SEED = 20251
HOLDOUT_COUNT = 300  # enough turns that no stock phrase passes 1 % by chance
NAME_KEYS = ("name", "title", "file_name", "company_name")


def created_names(conversations: Iterable[Conversation]) -> set[str]:
    """Names of the records the conversations create (case-folded)."""
    out: set[str] = set()
    for conv in conversations:
        for turn in conv.turns:
            for call in turn.expected_calls:
                if not call.tool.startswith(("create", "upload", "clone")):
                    continue
                args: dict[str, Any] = call.args if isinstance(call.args, dict) else {}
                for key in NAME_KEYS:
                    if isinstance(args.get(key), str):
                        out.add(args[key].casefold())
                if isinstance(args.get("first_name"), str) and isinstance(
                    args.get("last_name"), str
                ):
                    out.add(f"{args['first_name']} {args['last_name']}".casefold())
    return out


def utterances(conversations: Iterable[Conversation]) -> set[str]:
    return {" ".join(t.user.split()).casefold() for c in conversations for t in c.turns}


def overlaps(conv: Conversation, said: set[str], names: set[str]) -> bool:
    return bool(utterances([conv]) & said or created_names([conv]) & names)


@dataclass
class HoldoutReport:
    path: Path
    conversations: list[Conversation]
    dropped: int
    seconds: float


def generate_holdout(
    main: Sequence[Conversation], seed: int = HOLDOUT_SEED, count: int = HOLDOUT_COUNT
) -> tuple[list[Conversation], int]:
    """``count`` conversations disjoint from ``main`` (and each other), and how many
    candidates were dropped for overlapping."""
    said, names = utterances(main), created_names(main)
    generator = Generator(seed)
    out: list[Conversation] = []
    dropped = 0
    batch = 0
    while len(out) < count:
        plan = make_plan(generator.rng, count * 2)
        for item in plan:
            conv_id = f"HOLD-{batch * count * 2 + int(item.conv_id.split('-')[1]):04d}"
            conv = generator.conversation(PlanItem(conv_id, *_rest(item)))
            if overlaps(conv, said, names):
                dropped += 1
                continue
            said |= utterances([conv])
            names |= created_names([conv])
            out.append(conv)
            if len(out) == count:
                break
        batch += 1
    return out, dropped


def _rest(item: PlanItem) -> tuple[str, str, bool]:
    return item.complexity, item.workflow, item.refusal


def write_holdout(
    output: str | Path,
    main_file: str | Path,
    seed: int = HOLDOUT_SEED,
    count: int = HOLDOUT_COUNT,
) -> HoldoutReport:
    """Write ``conversations_holdout.jsonl`` into ``output`` (only that file)."""
    started = time.perf_counter()
    main = load_dataset(Path(main_file)).conversations
    conversations, dropped = generate_holdout(main, seed, count)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    path = out / HOLDOUT_FILE
    write_jsonl(path, conversations)
    return HoldoutReport(path, conversations, dropped, time.perf_counter() - started)
