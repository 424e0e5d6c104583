"""The runner: conversation → verdict. Used by the pytest plugin, the CLI and the Gym env."""

from pytest_crmbench.runner.runner import (
    DatasetDefect,
    InfrastructureError,
    Runner,
    RunOptions,
)

__all__ = ["DatasetDefect", "InfrastructureError", "RunOptions", "Runner"]
