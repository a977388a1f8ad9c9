"""Fault tests (issue #8): killed processes, a restarted PostgreSQL, LINE answering 500/429.

A package, so that its ``conftest.py`` does not shadow ``tests/conftest.py`` (imported as
``conftest`` by the other test modules).
"""
