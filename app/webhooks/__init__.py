"""Signed webhooks (Standard Webhooks): endpoints, the delivery worker, the delivery log."""
