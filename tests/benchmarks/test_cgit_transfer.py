"""The expression-transfer benchmark (tables 5–6) on a tiny setting: real synthetic held-out drivers,
the shipped classifier, the real face stage for identities, CGIT checkpoints as the trainer saves them."""
import json

import numpy as np
import pytest
import torch

from benchmarks import cgit_transfer
from benchmarks.cli import exit_status
from face.expressions import NUM_EXPRESSIONS
from train.checkpoint import checkpoint_path, save_checkpoint
from train.networks import Generator


def cgit_run(run_dir, **shape):
    torch.manual_seed(0)
    models = {"G_ts": Generator(4, NUM_EXPRESSIONS, num_residual=1, **shape), "G_st": Generator(4, 0, num_residual=1)}
    config = {"mode": "cgit", "width": 4, "image_size": 64, "num_residual": 1, **shape}
    save_checkpoint(checkpoint_path(run_dir), kind="cgit_generator", config=config, models=models)
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cgit_runs")
    return {"identity": cgit_run(root / "identity", skips=True, residual=True),   # the identity at init
            "scrambled": cgit_run(root / "scrambled")}                            # table 1, untrained


def test_a_generator_that_ignores_the_asked_expression_scores_one_in_seven(runs, tmp_path):
    out = tmp_path / "transfer"
    args = cgit_transfer.build_parser().parse_args([
        "--seeds", "5", "6", "--drivers", "2", "--faces-per-driver", "2", "--strips", "1", "--no-progress",
        "--model", f"identity={runs['identity']}", "--model", f"scrambled={runs['scrambled']}", "--out", str(out)])
    result = cgit_transfer.run(args)
    rows = result["rows"]
    assert set(rows) == {"real", "identity", "scrambled"}
    # every face is asked for all seven expressions and the identity gives the same face seven times:
    # exactly one of the seven asks matches whatever the classifier reads
    assert rows["identity"]["accuracy"]["per_seed"] == [14.29, 14.29]
    assert rows["identity"]["own_over_other"]["mean"] == 0.0   # the very face it was made from
    assert sum(map(sum, result["confusion"]["identity"])) == 2 * 4 * NUM_EXPRESSIONS
    assert 0 <= rows["real"]["accuracy"]["mean"] <= 100 and 0 < rows["real"]["own_over_other"]["mean"]
    for ratio, real in zip(result["accuracy_of_real"]["identity"]["per_seed"], rows["real"]["accuracy"]["per_seed"]):
        assert ratio == pytest.approx(14.29 / real, abs=0.002)
    assert result["paired"]["identity - real"]["per_seed"] == pytest.approx(
        np.subtract(14.29, rows["real"]["accuracy"]["per_seed"]), abs=0.011)
    assert set(result["paired"]) == {"identity - real", "scrambled - real", "scrambled - identity"}
    assert result["paired"]["scrambled - identity"]["per_seed"] == pytest.approx(
        np.subtract(rows["scrambled"]["accuracy"]["per_seed"], 14.29), abs=0.011)
    saved = json.loads((out / "transfer.json").read_text())
    assert saved["rows"] == rows
    for name in ("confusion_real.png", "confusion_identity.png", "strips.png"):
        assert (out / name).stat().st_size > 0


def test_a_uit_checkpoint_is_refused_in_one_line_before_any_face_is_drawn(tmp_path, monkeypatch, capsys):
    models = {"G_ts": Generator(4, 0, num_residual=1), "G_st": Generator(4, 0, num_residual=1)}
    save_checkpoint(checkpoint_path(tmp_path / "uit"), kind="uit_generator", models=models,
                    config={"mode": "uit", "width": 4, "image_size": 64, "num_residual": 1})
    monkeypatch.setattr(cgit_transfer, "held_out_faces", lambda *a, **k: pytest.fail("faces drawn before the models were checked"))
    # the second replicate's file is the wrong one: it was found only once the first replicate's faces were done
    argv = ["--seeds", "5", "6", "--drivers", "2", "--faces-per-driver", "1", "--no-progress",
            "--model", f"u={cgit_run(tmp_path / 'cgit')},{tmp_path / 'uit'}", "--out", str(tmp_path / "o")]
    assert exit_status(lambda: cgit_transfer.main(argv)) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(": a uit_generator checkpoint; --model u needs a CGIT generator (python -m train exprada --mode cgit)")
    assert str(tmp_path / "uit") in line
    with pytest.raises(SystemExit, match="at least two --seeds"):
        cgit_transfer.main(["--seeds", "5"])


def test_the_expression_warp_is_a_row_of_its_own_that_keeps_the_person(tmp_path):
    from face import bilinear
    from face.expressions import EXPRESSIONS

    targets = tmp_path / "expressions.json"   # as train warp-pairs writes it; here the model's own class shapes
    targets.write_text(json.dumps({"expressions": list(EXPRESSIONS),
                                   "targets": bilinear.load().expression_weights.tolist()}))
    args = cgit_transfer.build_parser().parse_args([
        "--seeds", "5", "6", "--drivers", "2", "--faces-per-driver", "2", "--strips", "1", "--no-progress",
        "--model", f"warp={targets}", "--out", str(tmp_path / "o")])
    result = cgit_transfer.run(args)
    warp = result["rows"]["warp"]
    assert len(warp["accuracy"]["per_seed"]) == 2 and warp["unread_identities"] == 0
    # the warp keeps the identity weights and moves the geometry: each warp is read as nearer the face it was
    # made from than other drivers' faces are (single-crop fits mix some expression into identity)
    assert warp["own_over_other"]["mean"] < 1
    assert set(result["paired"]) == {"warp - real"}
    targets.write_text("{}")
    with pytest.raises(SystemExit, match=f"^error: --model warp: {targets}: not a train warp-pairs expressions.json"):
        cgit_transfer.main(["--seeds", "5", "6", "--model", f"warp={targets}", "--out", str(tmp_path / "o")])
