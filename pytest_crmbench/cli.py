"""The ``crmbench`` console script: what is not a test run.

Subcommands are added as the project grows; each is a small function taking the parsed
arguments and returning an exit status. Bad input is refused in one line on stderr,
``crmbench <subcommand>: <what went wrong>; <what to do>``, with exit status 2 (as
argparse does for usage errors); a traceback is left for bugs only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pytest_crmbench import __version__
from pytest_crmbench.audit import add_parser as add_audit
from pytest_crmbench.crm.catalog import AGENT_TOOLS, TOOLS
from pytest_crmbench.fakemodel.cli import add_parser as add_fake_server
from pytest_crmbench.lint import add_parser as add_lint
from pytest_crmbench.reports import add_parser as add_reports

# What a shell reports for a writer killed by SIGPIPE (128 + 13): ``| head`` closed early.
EXIT_BROKEN_PIPE = 141


def _fail(command: str, what: str, todo: str) -> int:
    """Bad input: one line on stderr and exit status 2; a traceback would bury the cause."""
    print(f"crmbench {command}: {what}; {todo}", file=sys.stderr)
    return 2


def _cmd_tools(args: argparse.Namespace) -> int:
    """Print the agent tool catalog (``--all`` adds the 10 helpers)."""
    tools = TOOLS if args.all else AGENT_TOOLS
    if args.json:
        json.dump([t.as_dict() for t in tools], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    width = max(len(t.name) for t in tools)
    for t in tools:
        schema = t.json_schema()
        required = set(schema["required"])
        params = ", ".join(
            (name if name in required else name + "?") for name in schema["properties"]
        )
        print(f"{t.name:<{width}}  [{t.group}] {t.description}")
        if params:
            print(f"{'':<{width}}    ({params})")
    print(f"\n{len(tools)} tools" + ("" if args.all else " offered to agents"))
    return 0


def _unwritable(out: Path) -> tuple[str, str] | None:
    """Why ``out`` cannot take the dataset, found before generating (which takes a while)."""
    if out.exists() and not out.is_dir():
        return f"--output {out} is a file", "give a folder to write into (it is created if missing)"
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        return f"cannot write to {out} ({exc.strerror or exc})", "give --output a writable folder"
    return None


def _cmd_generate(args: argparse.Namespace) -> int:
    """Generate the conversation dataset and its stratified 400 subset; print statistics."""
    if args.count is not None and args.count < 1:
        return _fail("generate", f"--count {args.count} is too small", "give --count 1 or more")
    out = Path(args.output)
    bad = _unwritable(out)
    if bad:
        return _fail("generate", *bad)
    if args.holdout:
        return _generate_holdout(args, out)
    # lazy: the generator and its phrase pools load only for `crmbench generate`
    from pytest_crmbench.generate import dataset_statistics, format_statistics, write_dataset

    try:
        report = write_dataset(
            out,
            seed=42 if args.seed is None else args.seed,
            count=1200 if args.count is None else args.count,
        )
    except OSError as exc:
        return _fail(
            "generate",
            f"cannot write to {exc.filename or out} ({exc.strerror or exc})",
            "give --output a writable folder",
        )
    print(f"wrote {report.full} ({len(report.conversations)} conversations)")
    print(f"wrote {report.subset} ({len(report.subset_conversations)} conversations, stratified)")
    print(format_statistics(dataset_statistics(report.conversations)))
    print(f"generated and validated in {report.seconds:.1f} s ({report.attempts} attempts)")
    return 0


def _generate_holdout(args: argparse.Namespace, out: Path) -> int:
    """``--holdout``: only ``conversations_holdout.jsonl``, disjoint from the main file."""
    main = Path(args.main) if args.main else out / "conversations.jsonl"
    if not main.is_file():
        return _fail("generate", f"--holdout needs the main dataset: no {main}", "give --main FILE")
    # lazy: the generator and its phrase pools load only for `crmbench generate`
    from pytest_crmbench.generate import dataset_statistics, format_statistics
    from pytest_crmbench.generate.holdout import (  # lazy: as above
        HOLDOUT_COUNT,
        HOLDOUT_SEED,
        write_holdout,
    )

    seed = HOLDOUT_SEED if args.seed is None else args.seed
    count = HOLDOUT_COUNT if args.count is None else args.count
    report = write_holdout(out, main, seed=seed, count=count)
    print(
        f"wrote {report.path} ({len(report.conversations)} conversations, seed {seed}; "
        f"{report.dropped} candidates dropped for overlapping {main})"
    )
    print(format_statistics(dataset_statistics(report.conversations)))
    print(f"generated and validated in {report.seconds:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crmbench", description="pytest-crmbench utilities (run the benchmark with pytest)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    tools = sub.add_parser("tools", help="print the tool catalog agents are given")
    tools.add_argument("--json", action="store_true", help="JSON Schemas, for machines")
    tools.add_argument("--all", action="store_true", help="include the 10 helper methods")
    tools.set_defaults(func=_cmd_tools)
    gen = sub.add_parser(
        "generate", help="generate the conversation dataset (deterministic for a seed)"
    )
    gen.add_argument("--output", default="cases", help="directory to write (default: cases)")
    gen.add_argument(
        "--seed", type=int, default=None, help="random seed (default: 42; --holdout: 20251)"
    )
    gen.add_argument(
        "--count", type=int, default=None, help="conversations (default: 1200; --holdout: 300)"
    )
    gen.add_argument(
        "--holdout",
        action="store_true",
        help="write only conversations_holdout.jsonl: another seed, disjoint from the main "
        "file in utterances and created-record names",
    )
    gen.add_argument(
        "--main",
        default=None,
        help="--holdout: the main dataset (default: OUTPUT/conversations.jsonl)",
    )
    gen.set_defaults(func=_cmd_generate)
    add_fake_server(sub)
    add_lint(sub)
    add_reports(sub)
    add_audit(sub)
    return parser


def _quiet_stdout() -> None:
    """Point stdout at devnull, so the flush at exit does not fail again on the closed pipe
    (Python's documented recipe for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces stdout for good


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a reader that goes away (``crmbench tools | head -1``) ends it
    quietly with :data:`EXIT_BROKEN_PIPE`, not with a BrokenPipeError traceback."""
    try:
        try:
            args = build_parser().parse_args(argv)
            status: int = args.func(args)
        finally:
            sys.stdout.flush()  # inside the try: a closed pipe shows up here at the latest
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
