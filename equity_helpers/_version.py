"""The package's version: part of every cache key, so new code never reuses old results."""

__version__ = "0.1.0"
