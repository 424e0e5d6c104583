"""Repo-root conftest: intentionally tiny; the plugin (pytest_crmbench.plugin) does the work."""
