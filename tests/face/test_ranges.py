"""The one range check every command uses: argparse types for options, check_ranges for merged settings."""
import argparse

import pytest

from face.ranges import Range, above, at_least, between, check_ranges


@pytest.mark.parametrize("allowed, value, why", [
    (Range(1), 0, "must be at least 1, got 0"),
    (Range(0, 1), 1.5, "must be between 0 and 1, got 1.5"),
    (Range(0, strict=True), 0.0, "must be above 0, got 0.0"),
    (Range(0, 100, strict=True), 0, "must be above 0 and at most 100, got 0"),
    (Range(None, 5), 6, "must be at most 5, got 6"),
    (Range(0), float("nan"), "must be at least 0, got nan"),   # every comparison with NaN is False
    (Range(0), float("inf"), "must be at least 0, got inf"),
    (Range(), float("-inf"), "must be a finite number, got -inf"),
])
def test_a_value_outside_is_refused_with_its_bound(allowed, value, why):
    assert allowed.refusal(value) == why


@pytest.mark.parametrize("allowed, value", [(Range(1), 1), (Range(0, 1), 0.0), (Range(0, 1), 1.0),
                                            (Range(0, strict=True), 1e-9), (Range(), -3)])
def test_a_value_inside_or_on_an_inclusive_bound_passes(allowed, value):
    assert allowed.refusal(value) is None


def parser():
    p = argparse.ArgumentParser(prog="tool", exit_on_error=False)
    p.add_argument("--count", type=at_least(1))
    p.add_argument("--rate", type=above(0))
    p.add_argument("--share", type=between(0, 1))
    p.add_argument("--sizes", type=at_least(16), nargs="+")
    return p


def test_the_types_read_their_kind_and_pass_values_in_range():
    args = parser().parse_args(["--count", "3", "--rate", "0.5", "--share", "1", "--sizes", "16", "64"])
    assert (args.count, args.rate, args.share, args.sizes) == (3, 0.5, 1.0, [16, 64])
    assert type(args.count) is int and type(args.rate) is float


@pytest.mark.parametrize("argv, message", [
    (["--count", "0"], "argument --count: must be at least 1, got 0"),
    (["--rate", "nan"], "argument --rate: must be above 0, got nan"),
    (["--share", "-0.1"], "argument --share: must be between 0 and 1, got -0.1"),
    (["--sizes", "64", "8"], "argument --sizes: must be at least 16, got 8"),   # each item of a list
    (["--count", "2.5"], "argument --count: invalid int value: '2.5'"),   # argparse's own, naming the kind
])
def test_argparse_names_the_option_and_the_bound(argv, message):
    with pytest.raises(argparse.ArgumentError) as error:
        parser().parse_args(argv)
    assert str(error.value) == message


def test_check_ranges_names_the_first_setting_outside_and_skips_what_was_not_given():
    ranges = dict(steps=(1, None), ema=(0, 0.9999), lr=(0, None, True))
    check_ranges(dict(steps=None, ema=0.99, lr=2e-4), ranges)
    for settings, message in ((dict(steps=0), "error: --steps must be at least 1, got 0"),
                              (dict(ema=1.0), "error: --ema must be between 0 and 0.9999, got 1.0"),
                              (dict(lr=0.0), "error: --lr must be above 0, got 0.0")):
        with pytest.raises(SystemExit, match=f"^{message}$"):
            check_ranges(settings, ranges)
