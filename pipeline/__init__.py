"""The live pipeline: sources, stages joined by ZeroMQ, supervisor, decide, the emotion stream (see pipeline/README.md)."""

__version__ = "0.1.0"   # the project's version (pyproject.toml reads it from here)
