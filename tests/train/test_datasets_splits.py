"""Subject-independent splits: disjoint, seeded, k folds covering every subject once, split files."""
import numpy as np
import pytest

from train.datasets import Sample
from train.datasets.splits import (apply_split, check_parts_disjoint, make_split, read_split, with_subjects_from_names,
                                   write_split)


def _samples(tmp_path, subjects=20, per_subject=3):
    return [Sample(tmp_path / f"s{s:02d}_{i}.png", label=i % 7, subject=f"s{s:02d}")
            for s in range(subjects) for i in range(per_subject)]


def test_holdout_split_is_disjoint_by_subject_seeded_and_sized(tmp_path):
    samples = _samples(tmp_path)
    split = make_split(samples, val_fraction=0.1, test_fraction=0.3, seed=3)
    parts = {k: set(v) for k, v in split["subjects"].items()}
    assert [len(parts[k]) for k in ("train", "val", "test")] == [12, 2, 6]
    assert not (parts["train"] & parts["test"]) and not (parts["train"] & parts["val"]) and not (parts["val"] & parts["test"])
    assert split == make_split(samples, val_fraction=0.1, test_fraction=0.3, seed=3)
    assert split["subjects"] != make_split(samples, val_fraction=0.1, test_fraction=0.3, seed=4)["subjects"]
    images = apply_split(samples, split)
    assert sum(len(v) for v in images.values()) == len(samples)
    assert {s.subject for s in images["test"]} == parts["test"]


def test_k_folds_put_every_subject_in_exactly_one_test_fold(tmp_path):
    samples = _samples(tmp_path, subjects=10)
    tests = [make_split(samples, k=5, fold=f, val_fraction=0.0, seed=1)["subjects"] for f in range(5)]
    test_subjects = [s for t in tests for s in t["test"]]
    assert sorted(test_subjects) == sorted({s.subject for s in samples}) and all(len(t["test"]) == 2 for t in tests)
    assert all(len(t["train"]) == 8 and not t["val"] for t in tests)
    with pytest.raises(ValueError, match="fold must be in 0..4"):
        make_split(samples, k=5, fold=5)
    with pytest.raises(ValueError, match="k-fold needs 2 <= k <= 10"):
        make_split(samples, k=11, fold=0)


def test_split_file_round_trip_and_its_errors(tmp_path):
    samples = _samples(tmp_path)
    split = make_split(samples, seed=0)
    path = write_split(tmp_path / "run" / "split.json", split)
    assert read_split(path) == split
    bad = dict(split, subjects={**split["subjects"], "test": split["subjects"]["test"] + [split["subjects"]["train"][0]]})
    write_split(tmp_path / "bad.json", bad)
    with pytest.raises(ValueError, match=f"subject '{split['subjects']['train'][0]}' is in both 'train' and 'test'"):
        read_split(tmp_path / "bad.json")
    stranger = Sample(tmp_path / "x.png", label=0, subject="nobody")
    with pytest.raises(ValueError, match="x.png has subject 'nobody', which the split does not name"):
        apply_split(samples + [stranger], split)


def test_images_without_subjects_are_an_error_unless_split_by_image_or_named_by_pattern(tmp_path, caplog):
    anonymous = [Sample(tmp_path / f"S{i % 4:03d}_{i}.png", label=0) for i in range(12)]
    with pytest.raises(ValueError, match="12 of 12 images have no subject"):
        make_split(anonymous)
    by_image = make_split(anonymous, by_image=True, seed=0)
    assert sum(len(v) for v in by_image["subjects"].values()) == 12 and "NOT subject-independent" in caplog.text
    named = with_subjects_from_names(anonymous, r"^(S\d+)_")
    assert {s.subject for s in named} == {"S000", "S001", "S002", "S003"}
    with pytest.raises(ValueError, match="does not match the subject pattern"):
        with_subjects_from_names(anonymous, r"^subject(\d+)")


def test_parts_given_apart_must_not_share_a_subject(tmp_path):
    a, b = _samples(tmp_path, subjects=2), _samples(tmp_path, subjects=3)
    with pytest.raises(ValueError, match=r"subject 's00' appears in both train \(.*s00_0.png\) and test"):
        check_parts_disjoint({"train": a, "test": b})
    check_parts_disjoint({"train": a[:3], "test": b[3:]})  # s00 only in train, s01/s02 only in test


def test_fractions_outside_zero_one_are_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"test fraction must be in \[0, 1\)"):
        make_split(_samples(tmp_path), test_fraction=1.0)
    assert np.isclose(make_split(_samples(tmp_path), val_fraction=0, test_fraction=0)["val_fraction"], 0)
