"""The runner: conversation → verdict, without pytest (the plugin and the CLI use it)."""

from pytest_crmbench.runner.runner import (
    DatasetDefect,
    InfrastructureError,
    Runner,
    RunOptions,
)

__all__ = ["DatasetDefect", "InfrastructureError", "RunOptions", "Runner"]
