"""The project's dataset format (``crmbench/1``): models, references and the loader.

Knows nothing of pytest: the plugin, the generator and the CLI all load datasets
through :func:`load_dataset`.
"""

from pytest_crmbench.dataset.loader import (
    MAX_PROBLEMS_PER_FILE,
    Dataset,
    DatasetError,
    detect_format,
    dump_conversation,
    load_dataset,
)
from pytest_crmbench.dataset.model import (
    FORMAT,
    TURNS_BY_COMPLEXITY,
    Complexity,
    Conversation,
    ExpectedCall,
    Reply,
    Turn,
    Workflow,
)
from pytest_crmbench.dataset.problems import Problem
from pytest_crmbench.dataset.refs import Ref, RefError, find_refs, lookup, parse_refs, resolve

__all__ = [
    "FORMAT",
    "MAX_PROBLEMS_PER_FILE",
    "TURNS_BY_COMPLEXITY",
    "Complexity",
    "Conversation",
    "Dataset",
    "DatasetError",
    "ExpectedCall",
    "Problem",
    "Ref",
    "RefError",
    "Reply",
    "Turn",
    "Workflow",
    "detect_format",
    "dump_conversation",
    "find_refs",
    "load_dataset",
    "lookup",
    "parse_refs",
    "resolve",
]
