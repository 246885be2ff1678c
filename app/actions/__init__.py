"""Improvement action plans and actions, and their spreadsheets."""
