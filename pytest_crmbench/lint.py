"""``crmbench lint FILE…``: find dataset defects without running an agent.

Works on the project's format (``crmbench/1``) and on upstream (Arc) files alike (the
first non-blank line decides). Reports, per conversation and turn:

* what the loader rejects, by kind: unrendered placeholders, unknown tools or arguments,
  broken or forward references, duplicate ids, complexity/turn-count mismatches, bad
  seed records (``crmbench/1``); everything the Arc importer finds (Arc);
* unstated values: literal arguments (amounts, stages, names…; not ids) the user's
  words never state (:mod:`pytest_crmbench.dataset.stated`);
* reference calls that fail unexpectedly (or succeed where a refusal is expected), and
  references without a value, on the reference run (memory store);
* reply facts (``must_mention``) absent from the turn's reference results;
* replies that cannot tell the work from a shortcut (``crmbench/1``): a note-reading turn
  asking for the note's author, a read-turn fact the user's words already contain, a read
  turn without records to leave out (``must_not_mention``), a refusal without a fact
  naming its reason, a file called by another type than its extension, an email beside
  a new contact that is not the contact's, and — per file — stock openers and closers;

plus distribution statistics (:func:`pytest_crmbench.generate.stats.dataset_statistics`).
The exit status is 1 when any defect is found (an empty file is one), 0 otherwise, and 2
when a path holds nothing to lint.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.crm.catalog import BY_TOOL
from pytest_crmbench.crm.clock import DeterministicIds
from pytest_crmbench.crm.seed import load_seed_world
from pytest_crmbench.dataset.arc import empty_world, import_arc_file
from pytest_crmbench.dataset.defects import KINDS, Defect
from pytest_crmbench.dataset.facts import fact_present
from pytest_crmbench.dataset.loader import FileLoader, expand_paths, file_format
from pytest_crmbench.dataset.model import Conversation
from pytest_crmbench.dataset.problems import Problem
from pytest_crmbench.dataset.refs import RefError
from pytest_crmbench.dataset.stated import describe_value, unstated_values
from pytest_crmbench.dataset.tool_args import canonical_args, unknown_argument_message
from pytest_crmbench.generate.replies import UNBOUNDED, result_text
from pytest_crmbench.generate.stats import COMPLEXITIES, dataset_statistics, format_statistics
from pytest_crmbench.runner.runner import DatasetDefect, Runner

_TURN_FIELD = re.compile(r"^turns\[(\d+)\]")
_TURN_MESSAGE = re.compile(r"\bturn (\d+)\b")
_PROBLEM_KINDS = (
    ("unrendered placeholder", "placeholder"),
    ("unknown tool", "unknown-tool"),
    ("not a tool offered to agents", "unknown-tool"),
    ("unknown argument", "unknown-argument"),
    ("forward reference", "broken-reference"),
    ("malformed reference", "broken-reference"),
    ("does not exist", "broken-reference"),
    ("has no expected calls", "broken-reference"),
    ("turns are numbered from 1", "broken-reference"),
    ("duplicate id", "duplicate-id"),
    ("but the conversation has", "complexity-mismatch"),
)


@dataclass
class LintReport:
    """Everything ``crmbench lint`` found; :meth:`as_dict` is the ``--json`` output."""

    files: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    conversations: list[Conversation] = field(default_factory=list)
    defects: list[dict[str, Any]] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.defects

    def counts_by_kind(self) -> dict[str, int]:
        counts = Counter(d["kind"] for d in self.defects)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "formats": self.formats,
            "conversations": len(self.conversations),
            "defects": self.defects,
            "counts_by_kind": self.counts_by_kind(),
            "statistics": self.statistics,
        }


def _problem_defect(problem: Any) -> tuple[str, Defect]:
    """A loader problem as a defect of its conversation (or of its file line)."""
    text = f"{problem.field}: {problem.message}" if problem.field else problem.message
    if problem.line is None:
        return problem.file, Defect("invalid-file", text)
    kind = next((k for needle, k in _PROBLEM_KINDS if needle in problem.message), None)
    if kind is None:
        seed = (problem.field or "").startswith("seed")
        kind = "invalid-seed" if seed else "invalid-conversation"
    m = _TURN_FIELD.match(problem.field or "")
    turn = int(m.group(1)) + 1 if m else None
    return problem.conv_id or f"{problem.file}:{problem.line}", Defect(kind, text, turn)


def _result_text(calls: Sequence[dict[str, Any]]) -> str:
    """A turn's reference results as searchable text, read as the generator reads them
    (:func:`~pytest_crmbench.generate.replies.result_text`), plus the CRM's own error
    messages (a refusal's reason is taken from them)."""
    results = [c.get("result") for c in calls if c.get("ok")]
    errors = [str(c["error"]) for c in calls if not c.get("ok") and c.get("error")]
    return result_text(results) + "\n" + "\n".join(errors)


class _Checker:
    """Reference-run checks shared by both formats (one memory store per world)."""

    def __init__(self) -> None:
        self._runners: dict[bool, Any] = {}

    def runner(self, arc: bool) -> Any:
        if arc not in self._runners:
            world = empty_world() if arc else load_seed_world()
            self._runners[arc] = Runner(open_memory_store(world), world)
        return self._runners[arc]

    def check(self, conv: Conversation, *, arc: bool, unstated: bool) -> list[Defect]:

        found: list[Defect] = []
        if unstated:  # the project's format: what its model does not check statically
            found += _unknown_arguments(conv)
            said: list[str] = []
            for number, turn in enumerate(conv.turns, 1):
                said.append(turn.user)
                for call in turn.expected_calls:
                    for path, value in unstated_values(
                        call.tool, call.args, "\n".join(said), conv.reference_date
                    ):
                        found.append(
                            Defect(
                                "unstated-value",
                                f"{call.tool} {path}={describe_value(value)} is never stated "
                                "by the user",
                                number,
                            )
                        )
        try:
            run = self.runner(arc).reference_run(conv)
        except DatasetDefect as exc:
            m = _TURN_MESSAGE.search(str(exc))
            turn_no = int(m.group(1)) if m else None
            detail = str(exc).split(": ", 1)[1] if m and ": " in str(exc) else str(exc)
            return [*found, Defect("reference-call-failed", detail, turn_no)]
        except RefError as exc:
            return [*found, Defect("broken-reference", str(exc), _turn_using(conv, str(exc)))]
        except Exception as exc:  # lint reports, never crashes
            return [*found, Defect("invalid-conversation", f"reference run: {exc!r}")]
        if unstated:
            found += _honesty_defects(conv, run)
        ids = _reference_ids(conv, run) if arc else {}
        for number, (turn, ref) in enumerate(zip(conv.turns, run.turns, strict=True), 1):
            if not turn.reply.must_mention:
                continue
            text = _result_text(ref.calls)
            for fact in turn.reply.must_mention:
                if not fact_present(ids.get(fact, fact), text):
                    found.append(
                        Defect(
                            "fact-not-in-results",
                            f"must_mention {fact!r} is not in the reference results",
                            number,
                        )
                    )
        return found


# == replies that measure the work ===================================================
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_FILE_NAME = re.compile(r"\S+\.\w{1,5}\b")
# A word for a file type -> the extensions it fits.
_FILE_TYPES: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), frozenset(exts.split()))
    for pattern, exts in (
        (r"\bpdfs?\b", "pdf"),
        (r"\b(?:excel|spreadsheets?|xlsx?)\b", "xlsx xls csv"),
        (r"\bcsvs?\b", "csv"),
        (r"\bword (?:docs?|documents?|files?)\b|\bdocx\b", "doc docx"),
        (r"\b(?:powerpoint|slides|pptx?)\b", "ppt pptx key pdf"),
        (r"\bkeynote\b", "key"),
        (r"\btext files?\b|\btxt\b", "txt"),
    )
)
#: stock-phrase: an opener or closer on more than this share of a file's turns is a
#: template tic; files with fewer turns than ``STOCK_MIN_TURNS`` are too small to judge.
STOCK_SHARE = 0.01
STOCK_MIN_TURNS = 500
_TOKEN = re.compile(r"\w(?:[\w'’-]*\w)?")  # a word, inner apostrophes and dashes kept


def _notes_in(value: Any) -> list[dict[str, Any]]:
    """Note records inside a result (``notes`` lists of records with content)."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        notes = value.get("notes")
        if isinstance(notes, list):
            found += [n for n in notes if isinstance(n, dict) and "content" in n]
        for v in value.values():
            found += _notes_in(v)
    elif isinstance(value, list):
        for v in value:
            found += _notes_in(v)
    return found


def _file_type_problem(user: str, file_name: str) -> str | None:
    """How the user's words call a file by another type than its extension, if they do."""
    if "." not in file_name:
        return None
    ext = file_name.rsplit(".", 1)[1].lower()
    words = _FILE_NAME.sub(" ", user)
    for pattern, exts in _FILE_TYPES:
        m = pattern.search(words)
        if m and ext not in exts:
            return f"the user calls {file_name!r} a {m.group(0)!r}"
    return None


def _honesty_defects(conv: Conversation, run: Any) -> list[Defect]:
    """Turns whose reply check a shortcut passes, or whose words mislead (project format)."""
    found: list[Defect] = []
    for number, (turn, ref) in enumerate(zip(conv.turns, run.turns, strict=True), 1):
        facts = turn.reply.must_mention
        read = turn.expect == "success" and not ref.changes
        if turn.expect == "failure":
            errors = [str(c.get("error") or "") for c in ref.calls if not c.get("ok")]
            if not any(fact_present(f, e) for f in facts for e in errors):
                found.append(
                    Defect(
                        "refusal-without-reason",
                        "no required fact names the reason the CRM gives"
                        + (f" ({errors[-1][:80]!r})" if errors else ""),
                        number,
                    )
                )
        if read:
            for fact in facts:
                if fact_present(fact, turn.user):
                    found.append(
                        Defect(
                            "echoed-fact",
                            f"must_mention {fact!r} is already in the user's words",
                            number,
                        )
                    )
            bounded = any(c["tool"] not in UNBOUNDED for c in ref.calls)
            if bounded and facts and not turn.reply.must_not_mention:
                found.append(
                    Defect(
                        "no-precision",
                        "a read turn without must_not_mention: dumping every record passes it",
                        number,
                    )
                )
            notes = [n for c in ref.calls if c.get("ok") for n in _notes_in(c.get("result"))]
            if notes and "note" in turn.user.lower():
                authors = {str(n["created_by"]) for n in notes if n.get("created_by")}
                contents = [str(n["content"]) for n in notes]
                for fact in facts:
                    if any(fact_present(fact, a) for a in authors) and not any(
                        fact_present(fact, c) for c in contents
                    ):
                        found.append(
                            Defect(
                                "note-author-fact",
                                f"must_mention {fact!r} is who wrote the note, not what it says",
                                number,
                            )
                        )
        for call in turn.expected_calls:
            if call.tool == "upload_document" and isinstance(call.args.get("file_name"), str):
                problem = _file_type_problem(turn.user, call.args["file_name"])
                if problem:
                    found.append(Defect("file-type-wording", problem, number))
            if call.tool in ("create_new_contact", "modify_contact"):
                own = call.args.get("email")
                if call.tool == "modify_contact":
                    own = (call.args.get("updates") or {}).get("email")
                others = [
                    e
                    for e in _EMAIL.findall(turn.user)
                    if not isinstance(own, str) or e.lower() != own.lower()
                ]
                if others:
                    found.append(
                        Defect(
                            "contact-email-ambiguity",
                            f"{others[0]!r} beside a contact is not the contact's email",
                            number,
                        )
                    )
    return found


def _phrase(tokens: Sequence[str], *, opener: bool) -> str | None:
    """Two words of wording (no value: a name, a number, a stage) as a stock candidate."""
    if len(tokens) < 2:
        return None
    for i, word in enumerate(tokens):
        if any(ch.isdigit() for ch in word):
            return None
        capital = word[:1].isupper() and not (opener and i == 0)
        if capital and word not in ("I", "I'm", "I'd", "I've", "I'll"):
            return None
    return " ".join(t.lower() for t in tokens)


def stock_phrases(users: Sequence[str]) -> list[tuple[str, str, int]]:
    """``(where, phrase, count)`` of openers (first two words) and closers (last two)
    on more than ``STOCK_SHARE`` of the utterances — none for fewer than
    ``STOCK_MIN_TURNS`` utterances."""
    if len(users) < STOCK_MIN_TURNS:
        return []
    counts: Counter[tuple[str, str]] = Counter()
    for text in users:
        tokens = _TOKEN.findall(text)
        for where, part in (("opener", tokens[:2]), ("closer", tokens[-2:])):
            phrase = _phrase(part, opener=where == "opener")
            if phrase is not None:
                counts[(where, phrase)] += 1
    limit = STOCK_SHARE * len(users)
    return [(w, p, n) for (w, p), n in sorted(counts.items()) if n > limit]


def stock_phrase_defects(convs: Sequence[Conversation]) -> list[Defect]:
    """The dataset-level ``stock-phrase`` finding of one file."""
    users = [t.user for c in convs for t in c.turns]
    return [
        Defect(
            "stock-phrase",
            f"{where} {phrase!r} on {n} of {len(users)} turns "
            f"({n / len(users):.1%} > {STOCK_SHARE:.0%})",
        )
        for where, phrase, n in stock_phrases(users)
    ]


def _reference_ids(conv: Conversation, run: Any) -> dict[str, str]:
    """Imported facts may name records the conversation creates, by the ids the agent
    run gives them (``DeterministicIds(conversation id)``, in creation order); the
    reference run makes the same records under its own scope (``<id>#reference``)."""

    created = sum(1 for t in run.turns for c in t.changes if c.kind == "created")
    agent, reference = DeterministicIds(conv.id), DeterministicIds(conv.id + "#reference")
    return {agent.new_id(): reference.new_id() for _ in range(created)}


def _unknown_arguments(conv: Conversation) -> list[Defect]:
    """Criteria of searches and fields of modify tools the tool does not define (the
    model only checks the arguments of tools without such free-form parts)."""

    out = []
    for number, turn in enumerate(conv.turns, 1):
        for call in turn.expected_calls:
            spec = BY_TOOL.get(call.tool)
            if spec is not None and spec.extra is not None:
                for name in canonical_args(spec, call.args)[1]:
                    out.append(
                        Defect("unknown-argument", unknown_argument_message(spec, name), number)
                    )
    return out


def _turn_using(conv: Conversation, message: str) -> int | None:
    """The first turn whose arguments hold the reference a RefError message names."""
    m = re.search(r"\{\{[^{}]*\}\}", message)
    if m is None:
        return None
    for number, turn in enumerate(conv.turns, 1):
        if any(m.group(0) in json.dumps(c.args, ensure_ascii=False) for c in turn.expected_calls):
            return number
    return None


def lint_files(paths: str | Path | Iterable[str | Path]) -> LintReport:
    """Lint dataset files (a directory means its ``*.jsonl`` files)."""

    items = [paths] if isinstance(paths, str | Path) else list(paths)
    problems: list[Problem] = []
    files = expand_paths([str(p) for p in items], problems)
    report = LintReport(files=[str(f) for f in files])
    found: list[tuple[str, Defect]] = [_problem_defect(p) for p in problems]
    checker = _Checker()
    arc_convs: list[Conversation] = []
    for path in files:
        # Each file is a dataset of its own (ids are unique per file): the shipped
        # 400-conversation subset repeats ids of the full set on purpose.
        locations: dict[str, tuple[Path, int]] = {}
        sources: dict[str, str] = {}
        try:
            data = path.read_bytes()
        except OSError as e:
            found.append((str(path), Defect("invalid-file", f"cannot read: {e.strerror}")))
            continue
        if file_format(data) == "arc":
            report.formats[str(path)] = "arc"
            imported = import_arc_file(path, data, locations, sources)
            found += [_problem_defect(p) for p in imported.problems]
            for item in imported.items:
                conv = item.conversation
                found += [(conv.id, d) for d in item.defects]
                if not item.blocking:
                    found += [(conv.id, d) for d in checker.check(conv, arc=True, unstated=False)]
            report.conversations += imported.conversations
            arc_convs += imported.conversations
        else:
            report.formats[str(path)] = "crmbench/1"
            loader = FileLoader(path, locations)
            loader.load(data)
            found += [_problem_defect(p) for p in loader.problems]
            for conv in loader.conversations:
                found += [(conv.id, d) for d in checker.check(conv, arc=False, unstated=True)]
            found += [(str(path), d) for d in stock_phrase_defects(loader.conversations)]
            report.conversations += loader.conversations
    report.defects = [d.as_dict(conv) for conv, d in found]
    report.statistics = _statistics(report.conversations, arc_convs, found)
    return report


def _statistics(
    convs: Sequence[Conversation], arc: Sequence[Conversation], found: Sequence[tuple[str, Defect]]
) -> dict[str, Any]:

    stats = dataset_statistics(convs)
    n_turns = stats["turns"]
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({d.kind for _, d in found}):
        hits = [(c, d.turn) for c, d in found if d.kind == kind]
        turns = {h for h in hits if h[1] is not None}
        by_kind[kind] = {
            "conversations": len({c for c, _ in hits}),
            "turns": len(turns),
            "turn_share": round(len(turns) / n_turns, 4) if n_turns else 0.0,
        }
    ids = {c.id for c in convs}
    blocking = {c for c, d in found if d.blocking and c in ids}
    stats["tools_present"] = sorted(t for t, c in stats["tools"].items() if c)
    stats["defects"] = by_kind
    stats["defective_conversations"] = len(blocking)
    stats["clean_conversations"] = len(ids - blocking)
    if arc:
        declared = Counter(
            next((t.split(":", 1)[1] for t in c.tags if t.startswith("arc-complexity:")), "")
            for c in arc
        )
        n = len(arc)
        stats["arc"] = {
            "conversations": n,
            "upstream_complexity": {k: declared.get(k, 0) for k in COMPLEXITIES},
            "upstream_complexity_share": {
                k: round(declared.get(k, 0) / n, 4) for k in COMPLEXITIES
            },
        }
    return stats


def format_report(report: LintReport) -> str:
    """The human-readable report."""

    n = len(report.conversations)
    formats = Counter(report.formats.values())
    lines = [
        f"crmbench lint: {len(report.files)} file(s) "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(formats.items()))}), {n} conversations"
    ]
    for d in report.defects:
        where = d["conversation"] + (f" turn {d['turn']}" if d["turn"] is not None else "")
        lines.append(f"  {where}: {d['kind']}: {d['detail']}")
    stats = report.statistics
    if report.defects:
        lines.append(
            f"{len(report.defects)} defect(s); "
            f"{stats.get('defective_conversations', 0)} of {n} conversations cannot be "
            "scored fairly"
        )
        for kind, count in report.counts_by_kind().items():
            extra = stats.get("defects", {}).get(kind, {})
            lines.append(
                f"  {kind:<24} {count:>5}  ({extra.get('conversations', 0)} conversations, "
                f"{extra.get('turns', 0)} turns) — {KINDS.get(kind, '')}"
            )
    else:
        lines.append("no defects found")
    if n:
        lines.append("statistics:")
        lines.append(format_statistics(stats))
        arc = stats.get("arc")
        if arc:
            lines.append(
                "upstream (declared) complexity: "
                + ", ".join(
                    f"{k} {v} ({arc['upstream_complexity_share'][k]:.1%})"
                    for k, v in arc["upstream_complexity"].items()
                )
            )
    return "\n".join(lines)


def _missing_input(paths: Sequence[str]) -> str | None:
    """Why a path gives nothing to lint. A wrong path is a usage error (exit 2), not a
    defect of a dataset: the report would look like lint ran on something."""
    for item in paths:
        path = Path(item)
        if path.is_dir():
            if not any(p.is_file() for p in path.glob("*.jsonl")):
                return f"folder {item} holds no *.jsonl dataset"
        elif not path.exists():
            return f"{item}: no such file or directory"
        elif not path.is_file():
            return f"{item}: not a regular file"
    return None


def _cmd_lint(args: argparse.Namespace) -> int:
    missing = _missing_input(args.files)
    if missing:
        print(
            f"crmbench lint: {missing}; give JSONL dataset files or folders holding them",
            file=sys.stderr,
        )
        return 2
    report = lint_files(args.files)
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
    return 0 if report.ok else 1


def add_parser(sub: Any) -> None:
    """Register ``crmbench lint`` on the CLI's subparsers."""
    lint = sub.add_parser(
        "lint",
        help="find dataset defects (crmbench/1 or upstream Arc files); exit 1 if any",
    )
    lint.add_argument("files", nargs="+", help="JSONL files or folders of them")
    lint.add_argument("--json", action="store_true", help="a machine-readable report")
    lint.set_defaults(func=_cmd_lint)
