"""The seven expression classes, in the one order every part of the project uses."""

EXPRESSIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
NUM_EXPRESSIONS = len(EXPRESSIONS)


def expression_index(name: str) -> int:
    """Index of an expression name; a clear error for anything else."""
    try:
        return EXPRESSIONS.index(name.strip().lower())
    except ValueError:
        raise ValueError(f"unknown expression {name!r}; expected one of {', '.join(EXPRESSIONS)}") from None
