"""Every benchmark command: a model it cannot use is one line on stderr and exit 2, not a traceback."""
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cli import exit_status

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command, expected", [
    (["benchmarks.paper_table4", "--classifier", "{tmp}/none.onnx", "--generator", "g={tmp}/none.onnx"],
     "python -m benchmarks.paper_table4: ONNX model {tmp}/none.onnx not found"),
    (["benchmarks.cgit_transfer", "--classifier", "{tmp}/corrupt.onnx", "--model", "m={tmp}"],
     "python -m benchmarks.cgit_transfer: ONNX model {tmp}/corrupt.onnx could not be loaded"),
])
def test_an_unusable_model_is_one_line_and_exit_2(tmp_path, command, expected):
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07 no model")
    args = [part.format(tmp=tmp_path) for part in command]
    run = subprocess.run([sys.executable, "-m", *args, "--out", str(tmp_path / "out")], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    lines = run.stderr.splitlines()
    assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith(expected.format(tmp=tmp_path)), run.stderr


@pytest.mark.parametrize("command", [["benchmarks.paper_table4"], ["benchmarks.cgit_transfer"], ["benchmarks.cgit_augment"],
                                     ["benchmarks.publish_choice", "--generator", "g", "missing.npz"], ["benchmarks.driver_monitor"]])
def test_an_out_that_cannot_be_written_is_refused_before_anything_is_measured(tmp_path, command):
    # /proc exists but holds no new file; each of these wrote its results only at the end (a traceback then)
    run = subprocess.run([sys.executable, "-m", *command, "--out", "/proc"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.splitlines() == [
        f"python -m {command[0]}: --out /proc: cannot write in /proc: No such file or directory"], run.stderr


@pytest.mark.parametrize("command, expected", [
    (["benchmarks.cgit_transfer", "--drivers", "0"], "argument --drivers: must be at least 1, got 0"),   # was: numpy AxisError
    (["benchmarks.cgit_transfer", "--threads", "-2"], "argument --threads: must be at least 0, got -2"),   # was: ran on
    (["benchmarks.paper_table4", "--bins", "0", "-15"], "argument --bins: must be at least 0, got -15"),
    (["benchmarks.cgit_augment", "--counts", "1000", "0"], "argument --counts: must be at least 1, got 0"),
    (["benchmarks.driver_monitor", "--seconds", "nan"], "argument --seconds: must be at least 1, got nan"),
    (["benchmarks.paper_table4", "--fusion-weight", "2"], "argument --fusion-weight: must be between 0 and 1, got 2.0"),
    (["benchmarks.pipeline_replay", "--frames", "0"], "argument --frames: must be at least 1, got 0"),
    (["benchmarks.fleet_scaling", "--seconds", "0"], "argument --seconds: must be above 0, got 0.0"),
    (["benchmarks.train_step", "--steps", "0"], "argument --steps: must be at least 1, got 0"),
    (["benchmarks.face_quality", "--drive-seconds", "-1"], "argument --drive-seconds: must be above 0, got -1.0"),
])
def test_a_count_below_its_least_is_argparses_error_before_anything_runs(command, expected):
    run = subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.splitlines()[-1].endswith(f": error: {expected}"), run.stderr


def test_a_main_that_hands_back_its_result_exits_0_and_its_own_status_is_kept():
    assert exit_status(lambda: {"steps_per_s": 1.0}) == 0   # benchmarks.train_step returns its figures
    assert exit_status(lambda: None) == 0 and exit_status(lambda: 3) == 3


def test_train_step_names_the_variants_it_knows(capsys):
    from benchmarks import train_step

    with pytest.raises(SystemExit) as stop:   # was: KeyError
        train_step.main(["--device", "cpu", "--variants", "fp64"])
    assert stop.value.code == 2 and "--variants: no fp64 on cpu; known: " in capsys.readouterr().err


def test_a_checkpoint_of_the_wrong_kind_is_one_line_and_exit_2(tmp_path):
    # was a SystemExit of the benchmark's own, after the calibration frames were drawn
    from train.checkpoint import checkpoint_path, save_checkpoint
    from train.networks import Generator

    models = {"G_ts": Generator(4, 7, num_residual=1), "G_st": Generator(4, 0, num_residual=1)}
    path = save_checkpoint(checkpoint_path(tmp_path / "cgit"), kind="cgit_generator", models=models,
                           config={"mode": "cgit", "width": 4, "image_size": 64, "num_residual": 1})
    run = subprocess.run([sys.executable, "-m", "benchmarks.engines_int8_cpu", "--checkpoint", str(path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.splitlines() == [
        f"python -m benchmarks.engines_int8_cpu: {path}: a cgit_generator checkpoint; --checkpoint needs a UIT generator "
        "(python -m train exprada --mode uit)"], run.stderr
