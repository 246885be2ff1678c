"""Learning from Deaths service."""

__version__ = "0.1.0"
