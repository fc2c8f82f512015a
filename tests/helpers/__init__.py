"""Helpers the tests share, imported by name (never through conftest)."""
