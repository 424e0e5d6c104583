"""The deterministic dataset generator behind ``crmbench generate`` (no pytest, no LLM)."""

from pytest_crmbench.generate.generator import (
    DEFAULT_COUNT,
    DEFAULT_SEED,
    FULL_FILE,
    SUBSET_FILE,
    SUBSET_SEED,
    SUBSET_SIZE,
    GenerateReport,
    Generator,
    generate_dataset,
    stratified_subset,
    write_dataset,
    write_jsonl,
)
from pytest_crmbench.generate.stats import dataset_statistics, format_statistics

__all__ = [
    "DEFAULT_COUNT",
    "DEFAULT_SEED",
    "FULL_FILE",
    "SUBSET_FILE",
    "SUBSET_SEED",
    "SUBSET_SIZE",
    "GenerateReport",
    "Generator",
    "dataset_statistics",
    "format_statistics",
    "generate_dataset",
    "stratified_subset",
    "write_dataset",
    "write_jsonl",
]
