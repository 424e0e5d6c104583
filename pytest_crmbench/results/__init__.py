"""What a run adds up to, without pytest: summary, gate, results stream, terminal table."""

from pytest_crmbench.results.gate import Gate, GateVerdict, baseline_outcomes, evaluate_gate
from pytest_crmbench.results.stream import ResultsStream, read_jsonl
from pytest_crmbench.results.summary import pass_hat_k, summarize
from pytest_crmbench.results.table import render_summary

__all__ = [
    "Gate",
    "GateVerdict",
    "ResultsStream",
    "baseline_outcomes",
    "evaluate_gate",
    "pass_hat_k",
    "read_jsonl",
    "render_summary",
    "summarize",
]
