"""``crmbench fake-server``: run the fake model server in the foreground."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_crmbench.dataset.loader import DatasetError
from pytest_crmbench.fakemodel.policies import (
    LearnerPolicy,
    OraclePolicy,
    RouterPolicy,
    load_oracle,
)
from pytest_crmbench.fakemodel.server import ALL_FAULTS, FakeModelServer, FaultConfig
from pytest_crmbench.locations import shipped_conversations


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "fake-server",
        help="run a local fake model server (Anthropic + OpenAI APIs) answering as the oracle",
        description=(
            "Serve the Anthropic Messages API (POST /v1/messages) and the OpenAI Chat "
            "Completions API (POST /v1/chat/completions) on 127.0.0.1. Conversations of "
            "the dataset are answered with their reference calls; latency and faults are "
            "simulated. Point the agents at it with ANTHROPIC_BASE_URL / OPENAI_BASE_URL "
            "or --agent-base-url (any API key works)."
        ),
    )
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    p.add_argument(
        "--dataset",
        action="append",
        default=[],
        help="conversation JSONL file(s) the oracle knows (repeatable; default: "
        "the shipped conversations)",
    )
    p.add_argument(
        "--golden", action="append", default=[], help="golden file(s) or folder(s) (agent cases)"
    )
    p.add_argument(
        "--latency",
        type=float,
        default=0.25,
        help="seconds from a request's arrival to its answer (0.25)",
    )
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of faulty calls (0)")
    p.add_argument(
        "--faults",
        default=",".join(ALL_FAULTS),
        help=f"fault kinds, comma-separated (default all: {','.join(ALL_FAULTS)})",
    )
    p.add_argument("--seed", type=int, default=0, help="fault RNG seed (0)")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of 429s (1 s)")
    p.add_argument(
        "--timeout-sleep", type=float, default=65.0, help="how long a 'timeout' fault hangs (65 s)"
    )
    p.add_argument(
        "--parallel", action="store_true", help="the oracle makes a turn's calls in one response"
    )
    p.add_argument(
        "--policy",
        choices=("oracle", "learner"),
        default="oracle",
        help="oracle (default), or learner: systematic mistakes (enum case, a missing "
        "required field, writing before looking up) until the system prompt holds the lesson",
    )
    p.add_argument("--verbose", action="store_true", help="one line per answered request")
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _fail(what: str, todo: str) -> int:
    """Bad input: one line on stderr, exit status 2 (a traceback would bury the cause)."""
    print(f"crmbench fake-server: {_one_line(what)}; {todo}", file=sys.stderr)
    return 2


def _warn(what: str, todo: str) -> None:
    print(f"crmbench fake-server: {_one_line(what)}; {todo}", file=sys.stderr, flush=True)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _bad_number(args: argparse.Namespace) -> tuple[str, str] | None:
    """The first out-of-range number, checked before anything is loaded or bound (a
    negative latency or an infinite sleep would only show up later, mid-run)."""
    if not 0 <= args.port <= 65535:
        return f"--port {args.port} is out of range", "give 1 to 65535, or 0 for a free port"
    for flag, value, example in (
        ("--latency", args.latency, "0.25"),
        ("--retry-after", args.retry_after, "1"),
        ("--timeout-sleep", args.timeout_sleep, "65"),
    ):
        if not (math.isfinite(value) and value >= 0):
            return (
                f"{flag} {value:g} is not a duration",
                f"give seconds, 0 or more (e.g. {example})",
            )
    if not (math.isfinite(args.fault_rate) and 0 <= args.fault_rate <= 1):
        return (
            f"--fault-rate {args.fault_rate:g} is not a share",
            "give a number from 0 to 1 (e.g. 0.1)",
        )
    return None


def _fault_config(args: argparse.Namespace) -> FaultConfig | tuple[str, str]:
    kinds = tuple(k.strip() for k in args.faults.split(",") if k.strip())
    choose = f"choose from {','.join(ALL_FAULTS)}"
    unknown = [k for k in kinds if k not in ALL_FAULTS]
    if unknown:
        return f"--faults: unknown fault kind(s) {', '.join(unknown)}", choose
    if not kinds and args.fault_rate > 0:
        return "--faults names no fault kind but --fault-rate is above 0", choose
    try:
        return FaultConfig(
            rate=args.fault_rate,
            kinds=kinds,
            seed=args.seed,
            retry_after=args.retry_after,
            timeout_sleep=args.timeout_sleep,
        )
    except ValueError as exc:
        return str(exc), choose


def _bad_golden(paths: list[str]) -> tuple[str, str] | None:
    todo = "give --golden a golden JSON file or a folder of them"
    for item in paths:
        path = Path(item)
        if path.is_dir():
            if not any(p.is_file() for p in path.glob("*.json")):
                return f"folder {item} holds no *.json golden file", todo
        elif not path.is_file():
            return f"{item}: no such file or folder", todo
    return None


def _golden_error(exc: Exception) -> str:
    """A golden file's error in one line: pydantic's report spans many."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        first = cause.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        more = f" (and {cause.error_count() - 1} more)" if cause.error_count() > 1 else ""
        return f"{str(exc).split(': ', 1)[0]}: {where}: {first['msg']}{more}"
    return str(exc)


def _dataset_error(exc: DatasetError) -> int:
    first, n = exc.problems[0], len(exc.problems)
    what = str(first) if n == 1 else f"{n} problems in the dataset, the first: {first}"
    if first.message == "no such file or directory":
        return _fail(what, "give --dataset an existing JSONL file or a folder of them")
    return _fail(what, f"fix it (crmbench lint {first.file} lists every problem)")


def _default_dataset() -> list[str]:
    """The shipped conversations, or nothing, said on stderr: a server that silently
    knows 0 conversations makes every agent run fail for no visible reason."""
    try:
        shipped = shipped_conversations()
    except FileNotFoundError:
        where = "no shipped conversations (not run from a checkout)"
    else:
        if shipped.is_file():
            return [str(shipped)]
        where = f"no shipped conversations at {shipped}"
    _warn(
        f"{where}: serving 0 conversations",
        "use --dataset FILE (or set CRMBENCH_HOME to the project checkout)",
    )
    return []


def _load(args: argparse.Namespace) -> OraclePolicy | int:
    """The oracle, or the exit status of a refused dataset."""
    bad = _bad_golden(args.golden)
    if bad:
        return _fail(*bad)
    datasets = list(args.dataset)
    if not datasets and not args.golden:
        datasets = _default_dataset()
    try:
        oracle = load_oracle(datasets, args.golden, parallel=args.parallel)
    except DatasetError as exc:
        return _dataset_error(exc)
    except OSError as exc:
        return _fail(f"{exc.filename}: cannot read ({exc.strerror})", "check the --golden path")
    except ValueError as exc:
        return _fail(_golden_error(exc), "fix the golden file")
    if len(oracle) == 0 and args.golden:
        _warn(
            "the golden files hold no agent case: serving 0 conversations",
            "use --dataset FILE, or golden files with agent cases",
        )
    if getattr(args, "policy", "oracle") == "learner":
        return LearnerPolicy(oracle.conversations(), parallel=args.parallel)
    return oracle


def run(args: argparse.Namespace) -> int:
    bad = _bad_number(args)
    if bad:
        return _fail(*bad)
    faults = _fault_config(args)
    if isinstance(faults, tuple):
        return _fail(*faults)
    oracle = _load(args)
    if isinstance(oracle, int):
        return oracle
    try:
        server = FakeModelServer(
            RouterPolicy(oracle),
            latency=args.latency,
            faults=faults,
            host=args.host,
            port=args.port,
            log=(lambda line: print(line, flush=True)) if args.verbose else None,
        )
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return _fail(
            f"cannot listen on {args.host}:{args.port} ({reason})",
            "choose another --port (0 picks a free one) or --host",
        )
    print(f"fake model server on {server.base_url} ({len(oracle)} conversations)", flush=True)
    print(f"  policy: {args.policy}", flush=True)
    print(f"  claude: export ANTHROPIC_BASE_URL={server.anthropic_base_url}", flush=True)
    print(f"  openai: --agent-base-url {server.openai_base_url}", flush=True)
    print("  any API key works, e.g. export ANTHROPIC_API_KEY=fake; Ctrl-C stops", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print(f"stats: {server.stats_dict()}", flush=True)
    return 0
