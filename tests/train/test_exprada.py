"""ExprADA training end to end on CPU, tiny: w=4, 64², a handful of images written here."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from face.expressions import EXPRESSIONS
from tiny_checkpoints import rewrite_in_old_layout
from tiny_data import face_like, side_map_of, write_images, write_labelled
from train import distributed
from train.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from train.exprada import ExprADATrainer, build_parser, main
from train.networks import NETWORK_NAMES, Generator
from train.runlog import setup_logging

TINY = ["--width", "4", "--image-size", "64", "--batch-size", "2", "--workers", "0", "--no-progress",
        "--log-every", "1", "--sample-every", "3", "--checkpoint-every", "2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("exprada")
    write_labelled(root / "src", per_class=2, size=64, classes=("anger", "happiness", "surprise"))
    write_images(root / "tgt", 5, 64, seed=7, brightness=110)
    (root / "tgt" / "img_003.png").write_bytes(b"\x89PNG broken")  # an unreadable file in the middle
    return root


def _args(data, mode="cgit"):
    return ["--mode", mode, "--source", str(data / "src"), "--target", str(data / "tgt")] + TINY


def _states(run):
    return load_checkpoint(run)


def test_resume_is_exact_and_the_run_leaves_its_records(data, tmp_path):
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    assert main(_args(data) + ["--steps", "6", "--out", str(straight)]) == 0
    assert main(_args(data) + ["--steps", "6", "--out", str(halves), "--stop-after", "3"]) == 0
    assert load_checkpoint(halves)["step"] == 3
    assert main(["--resume", str(halves)]) == 0
    a, b = load_checkpoint(straight), load_checkpoint(halves)
    assert a["step"] == b["step"] == 6 and a["kind"] == "cgit_generator"
    for name in NETWORK_NAMES:
        for key, tensor in a["models"][name].items():
            assert torch.equal(tensor, b["models"][name][key]), f"{name}.{key} differs after resume"
    for key in ("G", "D"):
        exp_a = [s["exp_avg_sq"] for s in a["optimizers"][key]["state"].values()]
        exp_b = [s["exp_avg_sq"] for s in b["optimizers"][key]["state"].values()]
        assert all(torch.equal(x, y) for x, y in zip(exp_a, exp_b))
        assert a["schedulers"][key]["last_epoch"] == b["schedulers"][key]["last_epoch"] == 6
    # weights moved from their initial values, and the run recorded what a person needs
    torch.manual_seed(0)
    assert not torch.equal(a["models"]["G_ts"]["encoder.0.0.weight"], Generator(4, 7).encoder[0][0].weight)
    rows_a, rows_b = (list(csv.DictReader((run / "metrics.csv").open())) for run in (straight, halves))
    untimed = [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in rows_a]
    assert untimed == [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in rows_b]
    assert [row["step"] for row in rows_a] == ["1", "2", "3", "4", "5", "6"]
    header = list(rows_a[0])
    for tag in ("G/adv_ts", "G/adv_st", "G/bi", "G/re", "G/cls_f", "D/adv_s", "D/adv_t", "D/cls_r", "lr",
                "count/bad_files"):
        assert tag in header
    assert sorted(p.name for p in (straight / "samples").iterdir()) == ["step_00000003.png", "step_00000006.png"]
    assert "img_003.png" in (straight / "bad_files.txt").read_text()
    summary = json.loads((straight / "summary.json").read_text())
    assert summary["bad_files"] == 1 and summary["step"] == 6 and summary["skipped_steps"] == 0
    assert list((straight / "tensorboard").iterdir())


@pytest.mark.parametrize("sig, workers, whole_group", [
    (signal.SIGTERM, 0, False),   # `docker stop`, torchrun: the training process alone
    (signal.SIGTERM, 2, True),    # a job scheduler (Slurm's scancel): every process, the data workers too
    (signal.SIGINT, 2, True),     # Ctrl-C in a terminal: the foreground process group
], ids=["sigterm", "sigterm-group-workers", "sigint-group-workers"])
def test_a_stop_signal_ends_the_step_saves_and_exits_128_plus_it_and_the_run_resumes(data, tmp_path, sig, workers,
                                                                                   whole_group):
    """What a job scheduler, `docker stop` or Ctrl-C does to a training: it saves at a step's end."""
    run = tmp_path / "run"
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "train", "exprada", *_args(data), "--steps", "100000", "--checkpoint-every", "100000",
           "--workers", str(workers), "--out", str(run)]
    training = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    rows = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (rows.exists() and len(rows.read_text().splitlines()) >= 2) and training.poll() is None:
        assert time.monotonic() < deadline, "no training step logged in 120 s"
        time.sleep(0.2)
    if whole_group:
        os.killpg(training.pid, sig)
    else:
        training.send_signal(sig)
    _, stderr = training.communicate(timeout=120)
    assert training.returncode == 128 + sig, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    step = _states(run)["step"]
    assert json.loads(rows.read_text().splitlines()[-1])["step"] == step   # saved after the last whole step
    assert f"interrupted at step {step}: saving a checkpoint" in (run / "train.log").read_text()
    assert main(["--resume", str(run), "--stop-after", str(step + 1)]) == 0 and _states(run)["step"] == step + 1


def test_a_checkpoint_from_before_run_state_resumes_exactly(data, tmp_path):
    args = _args(data, "uit") + ["--steps", "4", "--epochs-constant", "1", "--epochs-decay", "1"]
    assert main(args + ["--out", str(tmp_path / "straight")]) == 0
    assert main(args + ["--stop-after", "2", "--out", str(tmp_path / "old")]) == 0
    old_config = rewrite_in_old_layout(tmp_path / "old" / "checkpoints" / "last.pt")
    assert old_config["constant_steps"] == 2 and old_config["source_count"] == 6
    assert main(["--resume", str(tmp_path / "old")]) == 0
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "old")
    assert b["step"] == 4 and b["run_state"] == a["run_state"] and b["config"] == a["config"]
    assert "constant_steps" in b["run_state"] and "constant_steps" not in b["config"]
    for name in NETWORK_NAMES:
        for key, tensor in a["models"][name].items():
            assert torch.equal(tensor, b["models"][name][key]), f"{name}.{key} differs after resume"
    assert a["schedulers"]["G"]["last_epoch"] == b["schedulers"]["G"]["last_epoch"] == 4


def test_a_resumed_old_checkpoint_keeps_its_schedule_when_the_data_changed(data, tmp_path):
    shutil.copytree(data / "src", tmp_path / "src")
    args = ["--mode", "uit", "--source", str(tmp_path / "src"), "--target", str(data / "tgt"), *TINY,
            "--epochs-constant", "1", "--epochs-decay", "1"]
    assert main(args + ["--stop-after", "2", "--out", str(tmp_path / "run")]) == 0
    old_config = rewrite_in_old_layout(tmp_path / "run" / "checkpoints" / "last.pt")
    assert (old_config["steps_per_epoch"], old_config["total_steps"], old_config["constant_steps"]) == (3, 6, 3)
    write_images(tmp_path / "src" / "more", 2, 64, seed=9)  # 8 images: 4 steps an epoch, were the schedule made anew
    assert main(["--resume", str(tmp_path / "run")]) == 0
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 6 and state["run_state"]["total_steps"] == 6 and state["run_state"]["source_count"] == 8
    assert "source data changed since the run started" in (tmp_path / "run" / "train.log").read_text()


def test_checkpoint_rebuilds_each_network_and_names_a_mismatch(data, tmp_path):
    run = tmp_path / "uit"
    main(_args(data, "uit") + ["--steps", "1", "--out", str(run)])
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["config"]["width"] == 4 and state["config"]["classes"] == list(EXPRESSIONS)
    g, config, kind = load_model(run / "checkpoints" / "last.pt")
    assert kind == "uit_generator" and not g.training and g.num_classes == 0
    image, side = g(torch.zeros(1, 6, 64, 64))
    assert image.shape == side.shape == (1, 3, 64, 64)
    d, _, _ = load_model(run, "D_s")
    assert d.class_head is None
    with pytest.raises(CheckpointError, match="no model 'G_x'"):
        load_model(run, "G_x")
    with pytest.raises(CheckpointError, match=r"a uit_generator checkpoint; --semantic-classifier needs a classifier "
                                              r"\(python -m train classifier\)"):
        load_model(run, expect="classifier", needed_by="--semantic-classifier")
    state["config"]["width"] = 8  # a config that does not fit the stored weights
    save_checkpoint(tmp_path / "bad.pt", **{k: state[k] for k in ("kind", "config", "models", "step", "epoch", "rng")})
    with pytest.raises(CheckpointError, match=r"bad.pt model 'G_ts' \(config mode=uit, width=8.*shape mismatches"):
        load_model(tmp_path / "bad.pt")


def test_bad_setups_fail_before_training_with_clear_errors(data, tmp_path):
    with pytest.raises(SystemExit, match="nope does not exist"):
        main(["--mode", "uit", "--source", str(tmp_path / "nope"), "--target", str(data / "tgt"), "--out",
              str(tmp_path / "r")] + TINY)
    (tmp_path / "src" / "fear").mkdir(parents=True)
    with pytest.raises(SystemExit, match="'fear' has no images"):
        main(["--mode", "cgit", "--source", str(tmp_path / "src"), "--target", str(data / "tgt"), "--out",
              str(tmp_path / "r")] + TINY)
    with pytest.raises(SystemExit, match="--mode, --source, --target"):
        main(["--out", str(tmp_path / "r2")])
    with pytest.raises(SystemExit, match="multiple of 64"):
        main(_args(data) + ["--image-size", "80", "--out", str(tmp_path / "r3")])
    run = tmp_path / "r4"
    main(_args(data, "uit") + ["--steps", "2", "--out", str(run), "--stop-after", "1"])
    with pytest.raises(CheckpointError, match="width: checkpoint 4, now 8"):
        main(["--resume", str(run), "--width", "8"])
    with pytest.raises(SystemExit, match="already holds a run"):
        main(_args(data, "uit") + ["--steps", "2", "--out", str(run)])
    assert not (tmp_path / "r").exists()   # data that cannot make a run leaves no run folder (was: an empty log)
    (tmp_path / "mine").mkdir()
    with pytest.raises(SystemExit, match="'fear' has no images"):
        main(["--mode", "cgit", "--source", str(tmp_path / "src"), "--target", str(data / "tgt"), "--out",
              str(tmp_path / "mine")] + TINY)
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())   # the user's folder stays
    assert not (tmp_path / "r3").exists()   # refused settings leave no run folder behind
    with pytest.raises(SystemExit, match="^error: --out /proc/no-such/run: cannot write in"):
        main(_args(data, "uit") + ["--steps", "2", "--out", "/proc/no-such/run"])   # was: FileNotFoundError
    with pytest.raises(SystemExit, match="^error: --out /proc: cannot write in"):
        main(_args(data, "uit") + ["--steps", "2", "--out", "/proc"])   # exists, holds no file: was a traceback at the log


@pytest.mark.parametrize("option, expected", [
    (["--steps", "0"], "--steps must be at least 1, got 0"),   # was: read as not given, the default 200 epochs
    (["--stop-after", "0"], "--stop-after must be at least 1, got 0"),   # was: never stopped
    (["--lr", "nan"], "--lr must be at least 0, got nan"),
    (["--lambda-re", "-1"], "--lambda-re must be at least 0, got -1.0"),
    (["--ema", "1"], "--ema must be between 0 and 0.9999, got 1.0"),   # an average that never moves
    (["--image-size", "0"], "--image-size must be at least 64, got 0"),
    (["--steps", "2", "--workers", "-1"], "--workers must be at least 0, got -1"),
])
def test_numbers_out_of_range_are_refused_before_anything_is_made(data, tmp_path, option, expected):
    with pytest.raises(SystemExit, match=f"^error: {re.escape(expected)}$"):
        main(["--mode", "uit", "--source", str(data / "src"), "--target", str(data / "tgt"), "--out",
              str(tmp_path / "r"), *option])
    assert not (tmp_path / "r").exists()


def test_a_classifier_s_numbers_out_of_range_are_refused_too(tmp_path):
    from train.classifier import main as classifier_main

    for option, expected in ((["--epochs", "0"], "--epochs must be at least 1, got 0"),
                             (["--val-fraction", "1.5"], "--val-fraction must be between 0 and 1, got 1.5"),
                             (["--folds", "1", "--fold", "0"], "--folds must be at least 2, got 1")):
        with pytest.raises(SystemExit, match=f"^error: {re.escape(expected)}$"):
            classifier_main(["--data", str(tmp_path), "--backbone", "small", "--out", str(tmp_path / "c"), *option])


def _trainer(data, run_dir, extra=()):
    args = build_parser().parse_args(_args(data, "uit") + ["--steps", "10", "--max-nonfinite", "3", *extra])
    config = ExprADATrainer.resolve_config(args, None)
    return ExprADATrainer(config, run_dir, distributed.Context(), setup_logging(run_dir))


def test_a_nonfinite_step_changes_nothing_and_persistent_ones_stop_the_run(data, tmp_path):
    trainer = _trainer(data, tmp_path / "nan")
    x = torch.rand(2, 6, 64, 64) * 2 - 1
    y = torch.zeros(2, dtype=torch.long)
    before = {k: v.clone() for k, v in trainer.nets["G_ts"].state_dict().items()}
    poisoned = x.clone()
    poisoned[0, 0, 0, 0] = float("nan")
    scalars = trainer.model.step_tensors(poisoned, y, x, y)
    assert not bool(scalars["finite"])
    assert all(torch.equal(v, trainer.nets["G_ts"].state_dict()[k]) for k, v in before.items())
    assert all(float(s["step"]) == 0 for s in trainer.model.opt_G.state.values())  # Adam's count not advanced
    assert bool(trainer.model.step_tensors(x, y, x, y)["finite"])  # the next good batch trains
    assert not torch.equal(before["encoder.0.0.weight"], trainer.nets["G_ts"].state_dict()["encoder.0.0.weight"])

    diverged = _trainer(data, tmp_path / "diverged")
    with torch.no_grad():
        diverged.nets["G_st"].encoder[0][0].weight.fill_(float("inf"))
    with pytest.raises(FloatingPointError, match="3 steps in a row with non-finite"):
        diverged.train()
    assert diverged.counters["nonfinite_steps"] == 3 and load_checkpoint(tmp_path / "diverged")["step"] == 2
    assert "non-finite" in (tmp_path / "diverged" / "train.log").read_text()


def test_training_learns_the_cycle_and_the_reconstruction(data, tmp_path):
    run = tmp_path / "learn"
    main(_args(data, "uit") + ["--steps", "20", "--epochs-decay", "0", "--lr", "2e-3", "--log-every", "5",
                               "--out", str(run)])
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    first, last = rows[0], rows[-1]
    assert float(last["G/bi"]) < 0.6 * float(first["G/bi"])
    assert float(last["G/re"]) < 0.6 * float(first["G/re"])
    assert float(last["D/adv_s"]) < float(first["D/adv_s"])  # the discriminator learns to tell them apart


def test_uit_with_skips_residual_and_the_semantic_term_trains_and_records_it(data, tmp_path):
    from train.classifier_nets import build_classifier

    config = {"arch": "small", "image_size": 64, "width": 4, "classes": list(EXPRESSIONS)}
    torch.manual_seed(0)
    classifier = save_checkpoint(tmp_path / "cls" / "checkpoints" / "last.pt", kind="classifier", config=config,
                                 models={"classifier": build_classifier(config)})
    run = tmp_path / "sem"
    extra = ["--skips", "--residual", "--lambda-sem", "1", "--lambda-sem-target", "0.5", "--steps", "2", "--out", str(run)]
    assert main(_args(data, "uit") + extra + ["--semantic-classifier", str(tmp_path / "cls")]) == 0
    state = load_checkpoint(run)
    assert state["config"]["skips"] and state["config"]["residual"] and state["config"]["lambda_sem"] == 1.0
    assert set(state["models"]) == set(NETWORK_NAMES)  # the frozen classifier is not part of the run
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert float(rows[-1]["G/sem"]) > 0 and "G/sem_acc" in rows[-1] and "G/sem_t_agree" in rows[-1]
    generator, _, _ = load_model(run)
    assert generator.skips and generator.residual
    with pytest.raises(SystemExit, match="needs --semantic-classifier"):
        main(_args(data, "uit") + ["--lambda-sem", "1", "--steps", "1", "--out", str(tmp_path / "nosem")])
    assert classifier.is_file()


def test_the_semantic_term_takes_a_classifiers_exported_program_when_only_the_exports_are_kept(data, tmp_path):
    """`--semantic-classifier MODEL.pt2`: the program `train export` wrote (its digest checked, as the
    runtime checks it) reads the translations as its checkpoint would, and the term trains through it."""
    from train.checkpoint import exported_classifier
    from train.classifier_nets import build_classifier
    from train.export import export_checkpoint

    config = {"arch": "small", "image_size": 64, "width": 4, "classes": list(EXPRESSIONS)}
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "cls" / "checkpoints" / "last.pt", kind="classifier", config=config,
                                 models={"classifier": build_classifier(config)})
    program = export_checkpoint(checkpoint, tmp_path / "classifier.pt2")
    net, _, _ = load_model(checkpoint)
    exported = exported_classifier(program)
    image = torch.rand(3, 3, 64, 64) * 2 - 1
    assert exported.image_size == 64
    assert torch.allclose(exported(image)[0], net(image)[0], atol=1e-5)
    run = tmp_path / "sem"
    args = _args(data, "uit") + ["--lambda-sem", "1", "--lambda-sem-target", "0.5", "--steps", "2", "--out", str(run)]
    assert main(args + ["--semantic-classifier", str(program)]) == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert float(rows[-1]["G/sem"]) > 0
    assert set(load_checkpoint(run)["models"]) == set(NETWORK_NAMES)   # the classifier is not part of the run
    # A program without its digest beside it is refused before it loads (a .pt2 can run code).
    (tmp_path / "classifier.pt2.sha256").unlink()
    with pytest.raises(CheckpointError, match=r"^--semantic-classifier: .*classifier.pt2: refused"):
        exported_classifier(program)


def test_uit_with_frontal_pairs_trains_on_them_and_refuses_a_target_without_any(data, tmp_path):
    target = tmp_path / "tgt"
    shutil.copytree(data / "tgt", target)
    run = tmp_path / "pairs"
    args = ["--mode", "uit", "--source", str(data / "src"), "--target", str(target)] + TINY
    with pytest.raises(SystemExit, match=r"--lambda-pair needs frontal pairs .*none in"):
        main(args + ["--lambda-pair", "10", "--steps", "1", "--out", str(run)])
    for name in ("img_000", "img_001"):   # the camera's crop of these renders' frames: here, brighter copies
        image = cv2.imread(str(target / f"{name}.png"))
        cv2.imwrite(str(target / f"{name}.pair.png"), cv2.add(image, 40))
    assert main(args + ["--residual", "--lambda-pair", "10", "--steps", "4", "--out", str(run)]) == 0
    assert load_checkpoint(run)["config"]["lambda_pair"] == 10.0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert sum(float(r["G/pairs"]) for r in rows) > 0 and max(float(r["G/pair"]) for r in rows) > 0
    assert "frontal pairs: 2 of" in (run / "train.log").read_text()


def test_cgit_with_expression_pairs_holds_each_translation_to_the_pair_in_the_asked_expression(data, tmp_path):
    target = tmp_path / "tgt"
    shutil.copytree(data / "tgt", target)
    (target / "img_003.png").unlink()   # every batch full, so the count below is exact
    args = ["--mode", "cgit", "--source", str(data / "src"), "--target", str(target), "--seed", "3"] + TINY
    with pytest.raises(SystemExit, match=r"--lambda-pair needs expression pairs .*none in"):
        main(args + ["--lambda-pair", "1", "--steps", "1", "--out", str(tmp_path / "none")])
    for image_path in target.glob("img_*.png"):   # only happiness has a pair: a brighter copy
        cv2.imwrite(str(target / f"{image_path.stem}.as-happiness.png"), cv2.add(cv2.imread(str(image_path)), 40))
    run = tmp_path / "pairs"
    assert main(args + ["--lambda-pair", "10", "--steps", "6", "--out", str(run)]) == 0
    assert "expression pairs: 4 of 4 target images" in (run / "train.log").read_text()
    trainer = ExprADATrainer.__new__(ExprADATrainer)   # the labels each step asked for, as the run drew them
    trainer.config, trainer.ctx = {"seed": 3}, distributed.Context()
    asked_happy = [int((trainer.wanted_labels(step, 2) == EXPRESSIONS.index("happiness")).sum()) for step in range(6)]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [float(r["G/pairs"]) for r in rows] == asked_happy and sum(asked_happy) > 0
    with pytest.raises(SystemExit, match="not part of the --stargan baseline"):
        main(args + ["--stargan", "--lambda-pair", "1", "--steps", "1", "--out", str(tmp_path / "stargan")])


def test_cgit_on_a_kdef_tree_takes_its_expression_pairs_from_the_file_names(tmp_path):
    rng = np.random.default_rng(0)
    kdef = tmp_path / "KDEF"
    for person in ("AF01", "AM02"):
        for k, code in enumerate(("AN", "HA", "SU")):
            image = face_like(rng, 64, 120 + 30 * k)
            (kdef / person).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(kdef / person / f"{person}{code}S.JPG"), image)
            cv2.imwrite(str(kdef / person / f"{person}{code}S.side.png"), side_map_of(image))
    run = tmp_path / "run"
    args = ["--mode", "cgit", "--source", str(kdef), "--target", str(kdef), "--face-crop", "none", "--seed", "3"] + TINY
    assert main(args + ["--lambda-pair", "10", "--steps", "4", "--stop-after", "2", "--out", str(run)]) == 0
    log = (run / "train.log").read_text()
    assert "CGIT: 6 source, 6 target images" in log and "expression pairs: 6 of 6 target images" in log
    assert load_checkpoint(run)["config"]["data_options"] == {"face_crop": "none"}
    with pytest.raises(CheckpointError, match="different training settings: data_options"):
        main(["--resume", str(run), "--face-crop", "auto"])
    assert main(["--resume", str(run)]) == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 4 and sum(float(r["G/pairs"]) for r in rows) > 0


def test_a_finished_run_is_extended_with_resume_and_steps(data, tmp_path):
    run = tmp_path / "extend"
    main(_args(data, "uit") + ["--steps", "4", "--out", str(run)])
    assert load_checkpoint(run)["step"] == 4
    main(["--resume", str(run), "--steps", "6", "--no-progress", "--workers", "0"])
    state = load_checkpoint(run)
    assert state["step"] == 6 and state["run_state"]["total_steps"] == 6 and state["config"]["steps"] == 6
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows][-2:] == [5, 6] and float(rows[-2]["lr"]) > 0   # learning again
    with pytest.raises(SystemExit, match="must be beyond the run's 6 steps"):
        main(["--resume", str(run), "--steps", "5", "--no-progress", "--workers", "0"])
    with pytest.raises(CheckpointError, match="different training settings"):
        main(["--resume", str(run), "--lr", "0.5", "--no-progress", "--workers", "0"])


def test_cgit_levers_a_wider_discriminator_and_the_asked_expression_term(data, tmp_path):
    from train.classifier_nets import build_classifier

    config = {"arch": "small", "image_size": 64, "width": 4, "classes": list(EXPRESSIONS)}
    save_checkpoint(tmp_path / "cls" / "checkpoints" / "last.pt", kind="classifier", config=config,
                    models={"classifier": build_classifier(config)})
    run = tmp_path / "levers"
    assert main(_args(data) + ["--d-width", "8", "--diffaugment", "--lambda-sem", "1", "--lambda-sem-target", "1",
                               "--semantic-classifier", str(tmp_path / "cls"), "--steps", "2", "--out", str(run)]) == 0
    state = load_checkpoint(run)
    d_s, _, _ = load_model(run, "D_s")
    g_ts, _, _ = load_model(run, "G_ts")
    assert d_s.width == 8 and g_ts.width == 4 and state["config"]["diffaugment"]
    row = list(csv.DictReader((run / "metrics.csv").open()))[-1]
    assert float(row["G/sem_t"]) > 0 and "G/sem_t_agree" in row   # CGIT: read as the asked expression


def test_cgit_with_its_options_trains_resumes_and_exports(data, tmp_path):
    run = tmp_path / "cgit_in"
    args = _args(data) + ["--condition", "input", "--grey", "--spectral-norm", "--class-from-image", "--skips",
                          "--residual", "--steps", "4"]
    assert main(args + ["--out", str(run), "--stop-after", "2"]) == 0
    assert main(["--resume", str(run)]) == 0
    state = load_checkpoint(run)
    assert state["step"] == 4 and state["config"]["condition"] == "input" and state["config"]["grey"]
    g_ts, _, _ = load_model(run, "G_ts")
    d_s, _, _ = load_model(run, "D_s")
    assert g_ts.condition == "input" and g_ts.grey and d_s.spectral_norm and d_s.class_from_image
    with pytest.raises(CheckpointError, match="condition"):
        main(["--resume", str(run), "--condition", "bottleneck"])
    from train.export import main as export
    assert export(["--checkpoint", str(run), "--out", str(tmp_path / "g.onnx")]) == 0
    with pytest.raises(SystemExit, match="--condition places CGIT"):
        main(_args(data, "uit") + ["--condition", "input", "--steps", "1", "--out", str(tmp_path / "uit_in")])
    with pytest.raises(SystemExit, match="--class-from-image is for CGIT"):
        main(_args(data, "uit") + ["--class-from-image", "--steps", "1", "--out", str(tmp_path / "uit_ci")])


def test_the_stargan_baseline_trains_one_conditioned_generator_on_its_own_cycle(data, tmp_path):
    run = tmp_path / "stargan"
    main(_args(data) + ["--stargan", "--steps", "20", "--epochs-decay", "0", "--lr", "2e-3", "--log-every", "5",
                        "--out", str(run)])
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert float(rows[-1]["G/cycle"]) < 0.6 * float(rows[0]["G/cycle"])   # G(G(x, y), y') comes back to x
    assert "G/bi" not in rows[-1] and "G/re" not in rows[-1] and "D/cls_r" in rows[-1]
    state = load_checkpoint(run)
    assert state["config"]["stargan"]
    from train.networks import build_network
    torch.manual_seed(state["config"]["seed"])   # as the model builds them: G^{s→t} never trained, still initial
    initial = {name: build_network(state["config"], name) for name in NETWORK_NAMES}
    for key, value in initial["G_st"].state_dict().items():
        assert torch.equal(state["models"]["G_st"][key], value), key
    assert not all(torch.equal(state["models"]["G_ts"][k], v) for k, v in initial["G_ts"].state_dict().items())
    with pytest.raises(SystemExit, match="--stargan is a CGIT baseline"):
        main(_args(data, "uit") + ["--stargan", "--steps", "1", "--out", str(tmp_path / "uit_stargan")])


def test_an_ema_generator_is_saved_resumed_exactly_and_chosen_by_load_model(data, tmp_path):
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    ema = ["--ema", "0.5", "--residual", "--steps", "4"]
    assert main(_args(data, "uit") + ema + ["--out", str(straight)]) == 0
    assert main(_args(data, "uit") + ema + ["--out", str(halves), "--stop-after", "2"]) == 0
    assert main(["--resume", str(halves)]) == 0
    a, b = load_checkpoint(straight), load_checkpoint(halves)
    assert set(a["models"]) == set(NETWORK_NAMES) | {"G_ts_ema"}
    for key, tensor in a["models"]["G_ts_ema"].items():
        assert torch.equal(tensor, b["models"]["G_ts_ema"][key]), f"G_ts_ema.{key} differs after resume"
    live, average = a["models"]["G_ts"], a["models"]["G_ts_ema"]
    assert any(not torch.equal(live[k], average[k]) for k in live)  # an average, not a copy
    chosen, _, _ = load_model(straight)
    assert all(torch.equal(v, average[k]) for k, v in chosen.state_dict().items())
