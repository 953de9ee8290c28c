"""Helpers shared by the test files (importable because tests/ holds the suite's conftest.py)."""
