"""Credentials, scopes and the guard dependencies."""
