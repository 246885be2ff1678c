"""Themes and findings: the learning that reviews produce."""
