"""The live pipeline: sources, stages joined by ZeroMQ, supervisor, decide, the emotion stream (see pipeline/README.md)."""
