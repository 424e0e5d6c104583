"""Helpers for the pytester-based plugin tests (``tests/test_plugin_*.py``)."""
