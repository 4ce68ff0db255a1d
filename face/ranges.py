"""The one check of a number a user gives against its range, for every command: argparse types for the
options (`type=at_least(1)`), `check_ranges` for a training's merged settings. Out of range, a number was
read as "not given" (--steps 0 trained the default epochs), ran on regardless (a negative count, a NaN
rate) or ended deep in a run (a numpy AxisError after loading every model)."""
from __future__ import annotations

import argparse
import math
from typing import NamedTuple


class Range(NamedTuple):
    least: float | None = None
    most: float | None = None
    strict: bool = False   # `least` itself is out: a rate or a duration that must be above it

    def refusal(self, value) -> str | None:
        """Why `value` is outside ("must be at least 1, got 0"), None when inside; NaN and ±inf never are."""
        low_ok = self.least is None or value > self.least or (value == self.least and not self.strict)
        if math.isfinite(value) and low_ok and (self.most is None or value <= self.most):
            return None
        low = None if self.least is None else f"{'above' if self.strict else 'at least'} {self.least}"
        high = None if self.most is None else f"at most {self.most}"
        if low and high:
            bound = f"between {self.least} and {self.most}" if not self.strict else f"{low} and {high}"
        else:
            bound = low or high or "a finite number"
        return f"must be {bound}, got {value}"


def number_type(kind=int, least=None, most=None, strict=False):
    """An argparse type: the option's text read as `kind`, refused outside the range (argparse's error:
    its usage line, then one line naming the option and the bound; exit 2)."""
    allowed = Range(least, most, strict)

    def convert(text: str):
        value = kind(text)   # a ValueError here is argparse's own "invalid int value: 'x'"
        why = allowed.refusal(value)
        if why:
            raise argparse.ArgumentTypeError(why)
        return value

    convert.__name__ = kind.__name__
    return convert


def at_least(bound, kind=int):
    return number_type(kind, least=bound)


def between(least, most, kind=float):
    return number_type(kind, least=least, most=most)


def above(bound, kind=float):
    return number_type(kind, least=bound, strict=True)


def check_ranges(settings: dict, ranges: dict) -> None:
    """SystemExit naming the first setting outside its range (`ranges`: name → (least, most[, strict])),
    before anything is made; settings that are None (not given) are not checked."""
    for key, spec in ranges.items():
        value = settings.get(key)
        why = None if value is None else Range(*spec).refusal(value)
        if why:
            raise SystemExit(f"error: --{key.replace('_', '-')} {why}")
