"""Gymnasium environment throughput: env steps per second on the memory store.

Target (the project's performance targets):
  P9  Gym env steps per second on the memory store: ≥ 2,000

Three policies play every shipped conversation through ``gymnasium.make("crmbench/
CRM-v0")`` (the wrappers ``make`` adds included): ``replay`` (the reference calls, then
the reply with the facts: every step a real CRM call or a judged turn — the P9
measure), ``noop`` (replies "Done." at once: only judged turns) and ``random`` (tools
from the catalog with empty arguments, a reply one step in four: mostly refused calls).
``env`` steps/s counts the time spent inside ``reset`` and ``step``; ``loop`` steps/s
the whole loop, the policy's own work included. For comparison, ``runner`` is the
replay agent through ``Runner.run`` (what the pytest items call) in the same repeats:
the same work without the env in between.

A warm-up pass plays every conversation once first, so the reference runs (cached per
conversation, as in any long training run) are not counted; the cold pass is reported
apart.

    python benchmarks/bench_gym.py [--repeat 5] [--count N] [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import machine_info, write_results

ROOT = Path(__file__).resolve().parents[1]
TARGET_STEPS_PER_S = 2000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--count", type=int, default=0, help="first N conversations (0: all)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/bench_gym.json"))
    args = parser.parse_args(argv)
    try:
        import gymnasium
        import numpy as np

        import pytest_crmbench.gym as crm_gym
    except ImportError as exc:
        print(f"bench_gym: {exc}; install the extra: pip install -e '.[gym]'", file=sys.stderr)
        return 2
    from pytest_crmbench.agents.scripted import NoopAgent, ReplayAgent, reference_script
    from pytest_crmbench.crm.catalog import agent_catalog
    from pytest_crmbench.dataset.model import Conversation

    started_all = time.perf_counter()

    class Timed(gymnasium.Wrapper[Any, Any, Any, Any]):
        """Adds up the time spent inside the env (its wrappers included)."""

        spent = 0.0

        def step(self, action: Any) -> Any:
            t0 = time.perf_counter()
            out = self.env.step(action)
            Timed.spent += time.perf_counter() - t0
            return out

        def reset(self, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            out = self.env.reset(**kwargs)
            Timed.spent += time.perf_counter() - t0
            return out

    env = Timed(gymnasium.make("crmbench/CRM-v0"))
    core = env.unwrapped
    assert isinstance(core, crm_gym.CrmEnv)
    cases = list(core.cases[: args.count] if args.count else core.cases)
    names = [t["name"] for t in agent_catalog()]

    def replay(conv: Conversation) -> ReplayAgent:
        agent = ReplayAgent()
        agent.receive_script(conv.id, reference_script(conv))
        return agent

    def play_replay() -> int:
        steps = 0
        for conv in cases:
            played = crm_gym.play(env, replay(conv), options={"case": conv.id})
            if played.turn_rewards != [1.0] * len(conv.turns):
                raise SystemExit(f"bench_gym: replay failed {conv.id}: {played.info}")
            steps += len(played.rewards)
        return steps

    def play_noop() -> int:
        return sum(
            len(crm_gym.play(env, NoopAgent(), options={"case": c.id}).rewards) for c in cases
        )

    def play_random() -> int:
        rng = np.random.default_rng(0)
        steps = 0
        for conv in cases:
            env.reset(options={"case": conv.id}, seed=int(rng.integers(1 << 30)))
            done = False
            while not done:
                if rng.random() < 0.25:
                    action = crm_gym.reply("Done.")
                else:
                    action = crm_gym.tool_call(names[int(rng.integers(len(names)))], "{}")
                _, _, terminated, truncated, _ = env.step(action)
                steps += 1
                done = terminated or truncated
        return steps

    def run_runner() -> int:
        steps = 0
        for conv in cases:
            result = core.runner.run(conv, replay(conv))
            steps += sum(len(t["calls"]) + 1 for t in result["turns"])
        return steps

    policies = {"replay": play_replay, "noop": play_noop, "random": play_random}

    def measure(fn: Any) -> dict[str, float]:
        Timed.spent = 0.0
        t0 = time.perf_counter()
        steps = fn()
        loop = time.perf_counter() - t0
        env_s = Timed.spent or loop
        return {"steps": steps, "loop_s": loop, "env_s": env_s}

    cold = measure(play_replay)  # reference runs computed here
    for fn in (play_noop, play_random, run_runner):
        fn()  # warm-up
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in [*policies, "runner"]}
    for _ in range(args.repeat):
        for name, fn in policies.items():
            runs[name].append(measure(fn))
        t0 = time.perf_counter()
        steps = run_runner()
        wall = time.perf_counter() - t0
        runs["runner"].append({"steps": steps, "loop_s": wall, "env_s": wall})
    env.close()

    summary: dict[str, dict[str, float]] = {}
    for name, items in runs.items():
        summary[name] = {
            "steps": items[0]["steps"],
            "env_steps_per_s": statistics.median(r["steps"] / r["env_s"] for r in items),
            "loop_steps_per_s": statistics.median(r["steps"] / r["loop_s"] for r in items),
        }
    cold_rate = cold["steps"] / cold["env_s"]
    p9 = summary["replay"]["env_steps_per_s"]
    verdict = "PASS" if p9 >= TARGET_STEPS_PER_S else "FAIL"
    load = os.getloadavg()

    print(
        f"bench_gym: {args.repeat} repeats, medians; {len(cases)} conversations, memory store; "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load {load[0]:.1f}"
    )
    print(f"{'policy':<34}{'steps':>8}{'env steps/s':>14}{'loop steps/s':>14}")
    print("-" * 70)
    for name, row in summary.items():
        label = "runner (Runner.run, replay agent)" if name == "runner" else name
        env_rate = "" if name == "runner" else f"{row['env_steps_per_s']:.0f}"
        print(f"{label:<34}{row['steps']:>8.0f}{env_rate:>14}{row['loop_steps_per_s']:>14.0f}")
    print(f"{'replay, cold (reference runs)':<34}{cold['steps']:>8.0f}{cold_rate:>14.0f}")
    print("-" * 70)
    print(f"P9 env steps/s, replay, memory: {p9:.0f}  target ≥ {TARGET_STEPS_PER_S:.0f}  {verdict}")
    ratio = summary["replay"]["loop_steps_per_s"] / summary["runner"]["loop_steps_per_s"]
    print(f"   env loop / Runner.run, same replay work: {ratio:.2f}x")

    written = write_results(
        args.output,
        {
            "machine": machine_info(gymnasium=gymnasium.__version__),
            "config": {"repeat": args.repeat, "conversations": len(cases)},
            "runs": runs,
            "cold_replay": cold,
            "summary": summary,
            "target_id": "P9",
            "target_steps_per_s": TARGET_STEPS_PER_S,
            "value": p9,
            "verdict": verdict,
            "env_loop_over_runner": ratio,
            "wall_seconds": time.perf_counter() - started_all,
        },
    )
    print(f"results written to {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
