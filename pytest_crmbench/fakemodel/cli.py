"""``crmbench fake-server``: run the fake model server in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from typing import Any

from pytest_crmbench.fakemodel.policies import RouterPolicy, load_oracle
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
    p.add_argument("--latency", type=float, default=0.25, help="seconds per call (0.25)")
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
    p.add_argument("--verbose", action="store_true", help="one line per answered request")
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    datasets = list(args.dataset)
    if not datasets and not args.golden:
        with contextlib.suppress(FileNotFoundError):
            datasets = [str(shipped_conversations())]
    try:
        oracle = load_oracle(datasets, args.golden, parallel=args.parallel)
        kinds = tuple(k.strip() for k in args.faults.split(",") if k.strip())
        faults = FaultConfig(
            rate=args.fault_rate,
            kinds=kinds,
            seed=args.seed,
            retry_after=args.retry_after,
            timeout_sleep=args.timeout_sleep,
        )
        server = FakeModelServer(
            RouterPolicy(oracle),
            latency=args.latency,
            faults=faults,
            host=args.host,
            port=args.port,
            log=(lambda line: print(line, flush=True)) if args.verbose else None,
        )
    except (OSError, ValueError) as exc:
        print(f"crmbench fake-server: {exc}", file=sys.stderr)
        return 2
    print(f"fake model server on {server.base_url} ({len(oracle)} conversations)", flush=True)
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
