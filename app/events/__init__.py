"""The outbox: every state change writes a thin event in the same transaction."""
