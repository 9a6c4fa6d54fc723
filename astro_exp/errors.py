"""One-line, actionable errors.

Entry points catch :class:`AstroExpError` and print ``error: <message>`` without a
traceback, so every message must say what went wrong *and* what to do about it.
"""


class AstroExpError(Exception):
    """Base class for errors shown to the user as one line."""


class ConfigError(AstroExpError, ValueError):
    """A config value is wrong (unknown model name, bad split fractions, ...)."""


class DataError(AstroExpError):
    """Input data is missing, unreadable or empty."""


class CheckpointError(AstroExpError):
    """A checkpoint is missing, corrupt, or not an astro-exp bundle."""
