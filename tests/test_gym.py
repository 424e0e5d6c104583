"""The Gymnasium environment is the same benchmark: same runner, same verdicts, no leaks.

The reference agent and the do-nothing agent are played through the env (their tool
calls and replies become steps) and through ``Runner.run`` — what the pytest items call —
on every shipped conversation: the env's rewards are 1 and 0 on every turn, and its item
results equal the runner's except for timings.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium  # in the dev extra: these tests run in CI, never skip
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

import pytest_crmbench.gym as crm_gym
from pytest_crmbench.agents.scripted import NoopAgent, ReplayAgent, reference_script
from pytest_crmbench.dataset.model import Conversation

ROOT = Path(__file__).resolve().parents[1]
STARTER = Path(__file__).parent / "plugin_support" / "data" / "conversations.jsonl"
TIMINGS = {"duration_s", "harness_s", "agent_s", "ms"}


def replay(conv: Conversation) -> ReplayAgent:
    """The reference agent, handed its script as the runner hands it to the oracle."""
    agent = ReplayAgent()
    agent.receive_script(conv.id, reference_script(conv))
    return agent


def comparable(value: Any) -> Any:
    """An item result without what differs between two runs of the same agent: timings,
    the agent's name and the oracle mark (the runner's, for its built-in oracle)."""
    if isinstance(value, dict):
        return {
            k: comparable(v)
            for k, v in value.items()
            if k not in TIMINGS and k not in ("agent", "oracle")
        }
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


@pytest.fixture(scope="module")
def env() -> Iterator[Any]:
    made = gymnasium.make("crmbench/CRM-v0")
    yield made
    made.close()


def test_replay_earns_1_on_every_turn_and_scores_as_the_runner(env: Any) -> None:
    core = env.unwrapped
    assert len(core.cases) == 1200
    for conv in core.cases:
        played = crm_gym.play(env, replay(conv), options={"case": conv.id})
        assert played.terminated and not played.truncated, conv.id
        assert played.turn_rewards == [1.0] * len(conv.turns), (conv.id, played.info)
        # The runner the pytest items call, on the same store, between two episodes.
        expected = core.runner.run(conv, replay(conv))
        assert comparable(played.item) == comparable(expected), conv.id


def test_noop_earns_0_on_every_turn_and_scores_as_the_runner(env: Any) -> None:
    core = env.unwrapped
    for conv in core.cases:
        played = crm_gym.play(env, NoopAgent(), options={"case": conv.id})
        assert played.terminated, conv.id
        assert played.turn_rewards == [0.0] * len(conv.turns), conv.id
        assert comparable(played.item) == comparable(core.runner.run(conv, NoopAgent()))


def test_passes_gymnasiums_env_checker() -> None:
    made = gymnasium.make("crmbench/CRM-v0", dataset=STARTER)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker warning fails the test
        check_env(made.unwrapped)
    made.close()


def random_episode(env: Any, seed: int, steps: int = 40) -> list[Any]:
    """A trace of a random policy (tools from the catalog, empty or odd arguments)."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    names = [t["name"] for t in json.loads(obs["tools"])]
    trace: list[Any] = [obs, info]
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.25:
            action = crm_gym.reply("Done. " + obs["user"][:40])
        else:
            args = "{}" if roll < 0.8 else '{"name": "Acme"'  # the last one is not JSON
            action = crm_gym.tool_call(str(rng.choice(names)), args)
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            trace.append((obs, info))
    return trace


def test_a_seed_reproduces_the_episode_exactly() -> None:
    made = gymnasium.make("crmbench/CRM-v0")
    first = random_episode(made, 7)
    assert random_episode(made, 7) == first
    assert random_episode(made, 8) != first
    users = {made.reset(seed=s)[0]["user"] for s in range(6)}
    assert len(users) > 1  # the seed picks the conversation
    made.close()


def test_options_pick_a_case_and_unknown_cases_are_refused(env: Any) -> None:
    conv = env.unwrapped.dataset.by_id["CONV-0042"]
    obs, info = env.reset(options={"case": "CONV-0042"})
    assert obs["user"] == conv.turns[0].user
    assert obs["turn"] == 0 and obs["calls"] == 0 and obs["result"] == ""
    assert info["reference_date"] == conv.reference_date.isoformat()
    assert "CONV-0042" not in json.dumps(info)  # only an opaque session token
    with pytest.raises(ValueError, match="no conversation 'NOPE'"):
        env.reset(options={"case": "NOPE"})


def test_registered_variants_and_the_dataset_argument() -> None:
    holdout = gymnasium.make("crmbench/CRM-holdout-v0")
    assert {c.id[:5] for c in holdout.unwrapped.cases} == {"HOLD-"}
    holdout.close()
    starter = gymnasium.make("crmbench/CRM-v0", dataset=str(STARTER))
    assert [c.id for c in starter.unwrapped.cases][:2] == ["CONV-0001", "CONV-0002"]
    assert len(starter.unwrapped.cases) < 100
    starter.close()
    with pytest.raises(ValueError, match="unknown split"):
        crm_gym.CrmEnv(split="nope")


def test_the_call_limit_truncates_and_fails_the_turn() -> None:
    made = gymnasium.make("crmbench/CRM-v0", max_calls_per_turn=2)
    made.reset(seed=1)
    for _ in range(2):
        obs, reward, terminated, truncated, info = made.step(
            crm_gym.tool_call("client_search", {"name": "Acme"})
        )
        assert not (terminated or truncated) and info == {}
    assert obs["calls"] == 2
    obs, reward, terminated, truncated, info = made.step(
        crm_gym.tool_call("client_search", {"name": "Acme"})
    )
    assert truncated and not terminated and reward == 0.0
    assert json.loads(obs["result"]) == {
        "ok": False,
        "error": "Tool call limit reached (2 per turn).",
    }
    assert not info["passed"] and "turn limit: more than 2 tool calls" in info["reasons"]
    assert info["conversation"] == {"passed": False, "turns_passed": 0, "n_turns": 1}
    item = made.unwrapped.item()
    assert item["passed"] is False and item["turns"][0]["reason"] == info["reasons"][0]
    with pytest.raises(RuntimeError, match="call reset"):
        made.unwrapped.step(crm_gym.reply("Done."))
    made.close()


def test_tool_errors_are_the_crms_and_may_cost_a_penalty() -> None:
    made = gymnasium.make("crmbench/CRM-v0", tool_error_penalty=0.25)
    made.reset(seed=3)
    obs, reward, *_ = made.step(crm_gym.tool_call("drop_database", {}))
    assert reward == -0.25
    assert json.loads(obs["result"]) == {"ok": False, "error": "Unknown tool 'drop_database'."}
    obs, reward, *_ = made.step({"tool": "client_search", "arguments": '{"name": "Acme"'})
    assert reward == -0.25 and "must be provided as an object" in obs["result"]
    obs, reward, *_ = made.step({"tool": "client_search", "arguments": {"name": "Acme"}})
    assert reward == 0.0 and json.loads(obs["result"])["ok"] is True
    assert obs["calls"] == 3
    made.close()


def batched(actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: np.array([a[key] for a in actions]) if key == "kind" else [a[key] for a in actions]
        for key in actions[0]
    }


SCRIPT = [
    crm_gym.tool_call("client_search", {"name": "Acme"}),
    crm_gym.tool_call("opportunity_search", {}),
    crm_gym.reply("Done."),
    crm_gym.tool_call("view_opportunity_details", {"opportunity_id": "nope"}),
    crm_gym.reply("I could not do that."),
]


@pytest.mark.parametrize(
    "make_vector",
    [
        pytest.param(SyncVectorEnv, id="sync"),
        pytest.param(AsyncVectorEnv, id="async-shared-memory"),
        pytest.param(lambda fns: AsyncVectorEnv(fns, shared_memory=False), id="async-pipes"),
    ],
)
def test_vector_envs_step_as_single_envs_do(make_vector: Any) -> None:
    seeds = [11, 12]
    singles = [gymnasium.make("crmbench/CRM-v0") for _ in seeds]
    expected = [[env.reset(seed=s)[0]] for env, s in zip(singles, seeds, strict=True)]
    for env, trace in zip(singles, expected, strict=True):
        for action in SCRIPT:
            obs, reward, terminated, truncated, _ = env.step(action)
            trace.append((obs, reward, terminated, truncated))
            if terminated or truncated:
                break
    vector = make_vector([lambda: gymnasium.make("crmbench/CRM-v0")] * 2)
    try:
        obs, _ = vector.reset(seed=seeds)
        got: list[list[Any]] = [[{k: obs[k][i] for k in obs}] for i in range(2)]
        over = [False, False]
        for action in SCRIPT:
            obs, rewards, terms, truncs, _ = vector.step(batched([action, action]))
            for i in range(2):
                if not over[i]:
                    got[i].append(({k: obs[k][i] for k in obs}, rewards[i], terms[i], truncs[i]))
                    over[i] = bool(terms[i] or truncs[i])
    finally:
        vector.close()
        for env in singles:
            env.close()
    assert got == expected
    assert got[0][0]["user"] != got[1][0]["user"]  # two different conversations


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def secret_values(conv: Conversation, number: int, known: str) -> set[str]:
    """The argument values of turn ``number``'s reference calls that the agent cannot know
    before the turn is judged: not said by the user so far nor in what the env always
    shows (references to earlier results, ``{{turn_N.x}}``, are left out)."""
    out = set()
    for call in conv.turns[number - 1].expected_calls:
        for leaf in _leaves(call.args):
            text = str(leaf)
            if isinstance(leaf, bool) or len(text) < 4 or "{{" in text:
                continue
            if text.lower() not in known:
                out.add(text.lower())
    return out


def visible(value: dict[str, Any]) -> str:
    """An observation or info as text, JSON escapes undone (a value must be found however
    it is written)."""
    shown = dict(value)
    if shown.get("result"):
        with contextlib.suppress(ValueError):  # a cut result stays as it is
            shown["result"] = json.loads(shown["result"])
    return json.dumps(shown, ensure_ascii=False).lower()


@pytest.mark.parametrize("reasons", ["report", "student"])
def test_nothing_of_the_reference_is_shown_before_its_turn_is_judged(reasons: str) -> None:
    """A cheater reads every observation and ``info``: before a turn is judged, none of
    its reference argument values it could not know may be there. (The report's reasons
    of a judged turn may name that turn's expected values, as the pytest report does;
    with ``reasons="student"`` no ``info`` ever does.)"""
    made = gymnasium.make("crmbench/CRM-v0", reasons=reasons)
    core = made.unwrapped
    checked = 0
    for conv in core.cases[::8]:
        obs, info = made.reset(options={"case": conv.id})
        always = (obs["tools"] + info["system_prompt"]).lower()
        seen = [visible(obs), visible(info)]
        users = ""
        for number in range(1, len(conv.turns) + 1):
            users += " " + obs["user"].lower()
            secrets = secret_values(conv, number, users + always)
            shown = "\n".join(seen)
            # Non-vacuous: the same scan finds the values in the reference itself.
            planted = visible({"calls": [c.args for c in conv.turns[number - 1].expected_calls]})
            assert all(s in planted for s in secrets)
            leaked = sorted(s for s in secrets if s in shown)
            assert leaked == [], (conv.id, number, leaked)
            checked += len(secrets)
            obs, _, terminated, _, info = made.step(crm_gym.reply("Done."))
            seen.append(visible(obs))
            if reasons == "student":
                seen.append(visible(info))
            if terminated:
                break
    assert checked > 200  # the check saw many values it could have caught
    made.close()


@pytest.mark.postgres
def test_postgres_backend_scores_as_memory(pg_servers: Any, env: Any) -> None:
    from pytest_crmbench.postgres import drop_database  # lazy: psycopg

    url = pg_servers.url("postgres", "crmbench_test_gym")
    on_pg = gymnasium.make("crmbench/CRM-v0", backend="postgres", postgres_url=url)
    try:
        for conv in env.unwrapped.cases[:: 1200 // 15]:
            played = crm_gym.play(on_pg, replay(conv), options={"case": conv.id})
            assert played.turn_rewards == [1.0] * len(conv.turns), conv.id
            on_memory = crm_gym.play(env, replay(conv), options={"case": conv.id})
            assert comparable(played.item) == comparable(on_memory.item)
    finally:
        on_pg.close()
        drop_database(pg_servers.servers["postgres"].admin_url, "crmbench_test_gym")


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Reinforcement learning: the Gymnasium environment", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Gymnasium section has no python example"
    return match.group(1)


def test_the_readme_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert re.search(r"episode 0: \d+ steps, reward [\d.]+", out), out


@pytest.mark.parametrize("agent", ["DropsSomeCalls", "KnowsTheAnswers"])
def test_episodes_score_as_the_pytest_items_of_the_same_agent(
    pytester: pytest.Pytester, agent: str
) -> None:
    """Through pytest (items, fixtures, results stream) and through the env, the same
    honest agent gets the same verdict per conversation and per turn (mixed verdicts:
    ``DropsSomeCalls`` gets about a third of the turns wrong)."""
    import importlib.util

    from plugin_support.project import MEMORY, make_project, stream_rows

    root = make_project(pytester, golden=False)
    ran = pytester.runpytest(
        *MEMORY, "-p", "no:randomly", f"--agent=crm_agents:{agent}", "--crm-results=r.jsonl"
    )
    assert ran.ret in (0, 1), ran.stdout.str()[-2000:]
    items = {r["case_id"]: r for r in stream_rows(root / "r.jsonl")}
    spec = importlib.util.spec_from_file_location("crm_agents_copy", root / "crm_agents.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = gymnasium.make("crmbench/CRM-v0", dataset=str(root / "cases" / "conversations.jsonl"))
    try:
        for case_id, item in items.items():
            if item["outcome"] == "error":  # the agent crashed: the episode ends the same way
                with pytest.raises(Exception, match="no call of turn"):
                    crm_gym.play(made, getattr(module, agent)(), options={"case": case_id})
                continue
            played = crm_gym.play(made, getattr(module, agent)(), options={"case": case_id})
            assert played.item is not None
            assert played.item["passed"] == item["passed"], case_id
            assert played.turn_rewards == [float(t["passed"]) for t in item["turns"]], case_id
    finally:
        made.close()
    assert len(items) == 12
    if agent == "DropsSomeCalls":
        judged = [r for r in items.values() if r["outcome"] != "error"]
        assert {r["passed"] for r in judged} == {True, False}
