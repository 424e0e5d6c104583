"""The ``crmbench`` option group: every command-line option with its ini equivalent.

Ini names follow one rule: ``crmbench_`` + the option name without ``--``/``crm-``,
dashes as underscores (``--crm-min-pass-rate`` → ``crmbench_min_pass_rate``), so teams
can pin any of them in ``pyproject.toml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest

from pytest_crmbench.postgres.server import redact_url
from pytest_crmbench.results.gate import baseline_problems
from pytest_crmbench.results.stream import RUN_IDENTITY


@dataclass(frozen=True)
class Opt:
    flag: str
    default: Any
    help: str
    type: Callable[[str], Any] = str
    is_flag: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return "crmbench_" + self.flag.removeprefix("--").removeprefix("crm-").replace("-", "_")


OPTIONS: tuple[Opt, ...] = (
    Opt(
        "--agent",
        "replay",
        "agent: replay (oracle), noop, claude, openai, an entry-point name, or module:attr",
    ),
    Opt("--agent-model", None, "model name for LLM agents"),
    Opt("--agent-base-url", None, "API base URL (any OpenAI-compatible server for openai)"),
    Opt("--agent-temperature", 0.0, "sampling temperature", float),
    Opt("--agent-max-tokens", 1024, "max output tokens per model call", int),
    Opt("--agent-timeout", 60.0, "per-call timeout of the model API in seconds", float),
    Opt(
        "--agent-prices",
        None,
        "model prices overriding the built-in table: a JSON file or inline JSON "
        '{"model": {"input": .., "output": .., "cache_read": .., "cache_write": ..}} '
        "(USD per million tokens)",
    ),
    Opt(
        "--agent-rpm",
        None,
        "requests per minute to the model, for the whole process (evenly spaced; default: "
        "no limit)",
        int,
    ),
    Opt(
        "--agent-tpm",
        None,
        "tokens per minute to the model, for the whole process (estimated before a request, "
        "corrected by the reported usage; default: no limit)",
        int,
    ),
    Opt(
        "--agent-max-connections",
        None,
        "most requests in flight to the model at once, for the whole process (default: no limit)",
        int,
    ),
    Opt(
        "--agent-cache",
        None,
        "directory of cached model responses, keyed by the full request: a re-run of the "
        "same agent on the same data makes no model call (never stores API keys)",
    ),
    Opt("--crm-backend", "postgres", "CRM store", choices=("postgres", "memory")),
    Opt(
        "--crm-postgres",
        "auto",
        "where PostgreSQL comes from: auto (CRMBENCH_POSTGRES_URL, "
        "else Docker, else embedded), docker, embedded, or a postgresql:// URL",
    ),
    Opt(
        "--crm-postgres-image",
        None,
        "Docker image for the testcontainers provider "
        "(default postgres:16; env CRMBENCH_POSTGRES_IMAGE)",
    ),
    Opt(
        "--crm-dataset",
        None,
        "conversation dataset file(s) or folder, comma-separated (default: the shipped dataset)",
    ),
    Opt(
        "--crm-arc-defects",
        "skip",
        "conversations imported from the upstream (Arc) format with a dataset defect: "
        "skip them, or xfail them (not run)",
        choices=("skip", "xfail"),
    ),
    Opt("--crm-trials", 1, "run every case K times and report pass^k", int),
    Opt("--crm-judge", "none", "LLM judge for rubric turns: none, openai:MODEL, anthropic:MODEL"),
    Opt("--crm-max-calls", 8, "tool calls allowed per turn", int),
    Opt(
        "--crm-concurrency",
        1,
        "conversations in flight at once in each process (threads, each conversation on a "
        "store of its own and with an agent of its own); with -n W: W x N in flight",
        int,
    ),
    Opt(
        "--crm-feedback",
        "off",
        "tell an agent that implements feedback() how each conversation went: student "
        "(what failed, never the expected values) or teacher (with them); off by default",
        choices=("off", "student", "teacher"),
    ),
    Opt(
        "--crm-feedback-every",
        "conversation",
        "with --crm-feedback: call feedback() after each conversation, or after each turn too",
        choices=("conversation", "turn"),
    ),
    Opt(
        "--crm-stream-seed",
        None,
        "run the items as an ordered stream shuffled with this seed (default with "
        "--crm-feedback: dataset order)",
        int,
    ),
    Opt(
        "--crm-window",
        None,
        "learning curve: pass rate per window of N consecutive conversations (default 50 "
        "in a feedback run; giving it records the curve in any run)",
        int,
    ),
    Opt(
        "--agent-memory",
        None,
        "JSON file a learning agent (playbook:claude, playbook:openai) loads its lessons "
        "from and saves them to",
    ),
    Opt(
        "--agent-frozen",
        False,
        "a learning agent keeps its lessons fixed (evaluation without learning)",
        is_flag=True,
    ),
    Opt(
        "--crm-recover", False, "after a failed turn continue from the expected state", is_flag=True
    ),
    Opt(
        "--crm-strict-actions",
        False,
        "require the expected tool calls (not only the state)",
        is_flag=True,
    ),
    Opt("--crm-results", None, "append one JSON line per finished item to this file"),
    Opt(
        "--crm-resume",
        False,
        "skip items already in --crm-results; summarise both parts",
        is_flag=True,
    ),
    Opt(
        "--crm-report",
        ".crmbench/report.json",
        "JSON report path of benchmark runs ('none' disables the default report)",
    ),
    Opt("--crm-min-pass-rate", None, "gate: minimum pass rate over non-error items", float),
    Opt("--crm-baseline", None, "gate: a previous JSON report or results JSONL to compare with"),
    Opt("--crm-max-regressions", None, "gate: cases allowed to regress vs the baseline", int),
    Opt("--crm-max-error-rate", None, "gate: maximum share of errored items", float),
    Opt(
        "--crm-stop-after-errors",
        3,
        "stop the run after this many consecutive items could not be judged (agent or "
        "database unreachable); 0 never stops. --crm-resume completes the rest",
        int,
    ),
    Opt("--crm-label", None, "a label stored in the report (e.g. the commit or experiment)"),
    Opt(
        "--crm-shard",
        None,
        "run only part K of N of the selection (K/N, e.g. 2/3): deterministic and balanced "
        "by turns; merge the shards' reports with `crmbench merge`",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("crmbench", "pytest-crmbench agent benchmark")
    for opt in OPTIONS:
        if opt.is_flag:
            parser.addini(opt.dest, opt.help, type="bool", default=opt.default)
        else:
            parser.addini(opt.dest, opt.help, type="string", default=opt.default)
        if opt.is_flag:
            group.addoption(
                opt.flag, action="store_true", default=None, dest=opt.dest, help=opt.help
            )
        else:
            group.addoption(
                opt.flag, default=None, dest=opt.dest, help=opt.help, choices=opt.choices
            )


def _value(config: pytest.Config, opt: Opt) -> Any:
    value = config.getoption(opt.dest)
    if value is None:
        value = config.getini(opt.dest)
    if value is None or value == "":
        return opt.default
    if opt.is_flag:
        return bool(value)
    try:
        return opt.type(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise pytest.UsageError(f"{opt.flag}: invalid value {value!r} ({exc})") from exc


DEFAULT_WINDOW = 50


def parse_shard(text: str) -> tuple[int, int] | None:
    """``"K/N"`` → (K, N) with 1 ≤ K ≤ N, else None."""
    k, sep, n = text.strip().partition("/")
    if not sep or not k.isdigit() or not n.isdigit():
        return None
    shard = (int(k), int(n))
    return shard if 1 <= shard[0] <= shard[1] else None


@dataclass(frozen=True)
class Settings:
    """Resolved options (command line over ini over defaults), plain data."""

    agent: str
    agent_model: str | None
    agent_base_url: str | None
    agent_temperature: float
    agent_max_tokens: int
    agent_timeout: float
    agent_prices: str | None
    agent_rpm: int | None
    agent_tpm: int | None
    agent_max_connections: int | None
    agent_cache: str | None
    backend: str
    postgres: str
    postgres_image: str | None
    dataset: str | None
    arc_defects: str
    trials: int
    judge: str
    max_calls: int
    concurrency: int
    feedback: Literal["off", "student", "teacher"]
    feedback_every: Literal["conversation", "turn"]
    stream_seed: int | None
    window: int | None
    agent_memory: str | None
    agent_frozen: bool
    recover: bool
    strict_actions: bool
    results: str | None
    resume: bool
    report: str
    min_pass_rate: float | None
    baseline: str | None
    max_regressions: int | None
    max_error_rate: float | None
    stop_after_errors: int
    label: str | None
    shard: str | None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """Resolve and check every option now: a bad value is one usage error before
        anything runs, not one error per item after a full run."""
        values = {o.dest.removeprefix("crmbench_"): _value(config, o) for o in OPTIONS}
        settings = cls(**values)
        for problem in settings.problems():
            raise pytest.UsageError(problem)
        # Pinned in the ini, it waits for a baseline given in CI; on the command line
        # without one it would check nothing.
        if config.getoption("crmbench_max_regressions") is not None and not settings.baseline:
            raise pytest.UsageError(
                "--crm-max-regressions needs --crm-baseline REPORT (the run to compare with)"
            )
        return settings

    def problems(self) -> list[str]:
        """What is wrong with these settings (first problem first), each a full sentence
        naming the option, what it got and what is allowed."""
        out: list[str] = []

        def bounded(flag: str, value: float | None, low: float, high: float | None) -> None:
            if value is None:
                return
            if value != value or value < low or (high is not None and value > high):
                allowed = f"between {low:g} and {high:g}" if high is not None else f"≥ {low:g}"
                out.append(f"{flag}: {value:g} is out of range (allowed: {allowed})")

        for opt in OPTIONS:
            value = getattr(self, opt.dest.removeprefix("crmbench_"))
            if opt.choices and value not in opt.choices:
                out.append(f"{opt.flag}: {value!r} is not one of {', '.join(opt.choices)}")
        bounded("--crm-min-pass-rate", self.min_pass_rate, 0, 1)
        bounded("--crm-max-error-rate", self.max_error_rate, 0, 1)
        bounded("--crm-max-regressions", self.max_regressions, 0, None)
        bounded("--crm-trials", self.trials, 1, 1000)
        bounded("--crm-max-calls", self.max_calls, 1, 1000)
        bounded("--crm-concurrency", self.concurrency, 1, 1024)
        if self.concurrency > 1 and self.ordered:
            out.append(
                f"--crm-concurrency {self.concurrency}: an ordered run (--crm-feedback, "
                "--crm-stream-seed, --crm-window) runs its conversations one after another, "
                "so one learning agent sees them in order; use --crm-concurrency 1 (with -n "
                "for parallel streams)"
            )
        bounded("--agent-temperature", self.agent_temperature, 0, 2)
        bounded("--agent-max-tokens", self.agent_max_tokens, 1, None)
        bounded("--agent-timeout", self.agent_timeout, 0.001, None)
        bounded("--agent-rpm", self.agent_rpm, 1, None)
        bounded("--agent-tpm", self.agent_tpm, 1, None)
        bounded("--agent-max-connections", self.agent_max_connections, 1, None)
        if self.agent_cache and Path(self.agent_cache).is_file():
            out.append(f"--agent-cache: {self.agent_cache} is a file, not a directory")
        bounded("--crm-stop-after-errors", self.stop_after_errors, 0, None)
        bounded("--crm-window", self.window, 1, None)
        mode = self.postgres
        if mode not in ("auto", "docker", "embedded"):
            if not mode.startswith(("postgres://", "postgresql://")):
                out.append(
                    f"--crm-postgres: {mode!r} is not auto, docker, embedded or a "
                    "postgresql://user@host:port/dbname URL"
                )
            elif not urlsplit(mode).hostname and "host=" not in mode:
                out.append(f"--crm-postgres: {redact_url(mode)} names no host")
        if self.shard is not None and parse_shard(self.shard) is None:
            out.append(
                f"--crm-shard: {self.shard!r} is not K/N with 1 ≤ K ≤ N (e.g. 2/3: the second "
                "of three shards)"
            )
        if self.resume and not self.results:
            out.append("--crm-resume needs --crm-results PATH (the results file to resume)")
        if self.baseline:
            out += baseline_problems(self.baseline)
        if self.dataset:
            for part in (p.strip() for p in self.dataset.split(",") if p.strip()):
                path = Path(part)
                if not path.exists():
                    out.append(f"--crm-dataset: no such file or folder: {part}")
                elif path.is_dir() and not any(path.glob("*.jsonl")):
                    out.append(f"--crm-dataset: {part} holds no *.jsonl dataset")
        return out

    @property
    def ordered(self) -> bool:
        """Whether items run as ordered streams with a learning curve: a feedback run,
        or one given a stream seed or a window (e.g. the no-learning baseline)."""
        return self.feedback != "off" or self.stream_seed is not None or self.window is not None

    @property
    def curve_window(self) -> int:
        return self.window or DEFAULT_WINDOW

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run: results of one may complete the other's."""
        return {key: getattr(self, key) for key in RUN_IDENTITY}

    def public(self) -> dict[str, Any]:
        """Settings for the report (nothing secret lives here)."""
        return dict(self.__dict__)
