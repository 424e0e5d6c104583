"""A local fake model server for tests, offline use and benchmarks (no API key, no network).

It speaks the Anthropic Messages API and the OpenAI Chat Completions API on 127.0.0.1,
so the real SDK clients of the ``claude`` and ``openai`` agents run unchanged against
it. Answers come from a policy: scripted replies, or the dataset *oracle* (it recognises
the conversation and makes its reference calls); latency and faults are simulated.

    crmbench fake-server --port 0 --dataset cases/conversations.jsonl --latency 0.25

Knows nothing of pytest.
"""

from pytest_crmbench.fakemodel.policies import (
    FakeJudgePolicy,
    LearnerPolicy,
    OraclePolicy,
    RouterPolicy,
    ScriptedPolicy,
    learnt_lessons,
    load_learner,
    load_oracle,
)
from pytest_crmbench.fakemodel.server import ALL_FAULTS, FakeModelServer, FaultConfig
from pytest_crmbench.fakemodel.wire import FakeCall, FakeReply, FakeRequest

__all__ = [
    "ALL_FAULTS",
    "FakeCall",
    "FakeJudgePolicy",
    "FakeModelServer",
    "FakeReply",
    "FakeRequest",
    "FaultConfig",
    "LearnerPolicy",
    "OraclePolicy",
    "RouterPolicy",
    "ScriptedPolicy",
    "learnt_lessons",
    "load_learner",
    "load_oracle",
]
