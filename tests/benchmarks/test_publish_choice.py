"""Choosing the publish settings from a table-4 run's saved probabilities (a probs.npz made here with
known answers: the crop right near yaw 0, the translation right when turned, the render guessing)."""
import json

import numpy as np
import pytest

from benchmarks import publish_choice

CLASSES = 7


def one_hot(labels, right, rng):
    """Confident on the label where `right`, on a random class elsewhere."""
    guess = np.where(right, labels, rng.integers(0, CLASSES, len(labels)))
    p = np.full((len(labels), CLASSES), 0.02, np.float32)
    p[np.arange(len(labels)), guess] = 0.88
    return p


@pytest.fixture()
def probs(tmp_path):
    rng = np.random.default_rng(0)
    saved = {}
    for seed in (301, 302, 303):
        for b in (0, 30, 60):
            labels = rng.integers(0, CLASSES, 200)
            yaw = b + rng.uniform(-3, 3, 200)
            saved[f"{seed}/{b}/label"] = labels
            saved[f"{seed}/{b}/fitted_yaw"] = yaw.astype(np.float32)
            saved[f"{seed}/{b}/raw_crop"] = one_hot(labels, rng.random(200) < (0.9 if b == 0 else 0.2), rng)
            saved[f"{seed}/{b}/render"] = one_hot(labels, rng.random(200) < 0.3, rng)
            saved[f"{seed}/{b}/G"] = one_hot(labels, rng.random(200) < (0.5 if b == 0 else 0.8), rng)
    path = tmp_path / "probs.npz"
    np.savez_compressed(path, **saved)
    return path


def test_the_choice_follows_the_better_path_at_each_pose_and_is_written(probs, tmp_path):
    out = tmp_path / "choice"
    result = publish_choice.run(publish_choice.build_parser().parse_args([str(probs), "--generator", "G", "--out", str(out)]))
    chosen = result["chosen"]
    # turned faces: only the translation is right, so the chosen pool leans on it (above an even share,
    # the confident translation outvotes the render), and the crop is off by 30°
    assert chosen["weight"] > 0.5 and chosen["crop_yaw"] <= 30
    assert chosen["worst_margin"] >= result["current"]["worst_margin"]
    assert chosen["worst_margin"] == max(s["worst_margin"] for s in result["grid"])
    assert len(result["grid"]) == len(publish_choice.WEIGHTS) * len(publish_choice.CROP_YAWS)
    assert set(result["single_rows"]) == {"raw_crop", "render", "translated"}
    assert json.loads((out / "publish_choice.json").read_text()) == result
    assert (out / "publish_choice.png").stat().st_size > 0


def test_check_reports_one_setting_and_chooses_nothing(probs, tmp_path):
    result = publish_choice.run(publish_choice.build_parser().parse_args(
        [str(probs), "--generator", "G", "--check", "1", "15", "--out", str(tmp_path)]))
    assert "chosen" not in result and "grid" not in result
    assert result["checked"]["weight"] == 1 and result["checked"]["crop_yaw"] == 15
    # weight 1 and no crop beyond 15°: the published label at ±60° is the translation's own
    assert result["checked"]["accuracy"]["60"] == result["single_rows"]["translated"]["60"]


def test_bad_input_is_a_one_line_error(probs, tmp_path):
    with pytest.raises(SystemExit, match="no generator 'H'; it has G"):
        publish_choice.main([str(probs), "--generator", "H"])
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(SystemExit, match="not a table-4 probs.npz"):
        publish_choice.main([str(tmp_path / "other.npz"), "--generator", "G"])
    with pytest.raises(SystemExit, match="cannot read"):
        publish_choice.main([str(tmp_path / "missing.npz"), "--generator", "G"])
    with pytest.raises(SystemExit, match="weight in \\[0, 1\\]"):
        publish_choice.main([str(probs), "--generator", "G", "--check", "2", "30"])
