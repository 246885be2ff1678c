"""Organisations (issue 16): the registry, whose records deaths and plans belong to, and the
shares that open one death to another organisation (docs/organisations.md)."""
