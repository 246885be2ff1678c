"""Helpers shared by the test modules, which never import one another
(tests/test_house_rules.py holds them to it)."""
