"""`python -m train classifier` end to end on tiny data: learning, splits, exact resume, balanced
sampling, bad files, pretrained weights, CGIT augmentation."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from face.expressions import EXPRESSIONS
from tiny_checkpoints import rewrite_in_old_layout, write_classifier_run, write_generator_run
from tiny_data import write_images, write_labelled
from train.checkpoint import CheckpointError, load_checkpoint, load_model
from train.classifier import main
from train.classifier_nets import build_classifier
from train.sampling import BalancedStepBatchSampler, step_sampler

FAST = ["--backbone", "small", "--width", "4", "--image-size", "32", "--batch-size", "8", "--workers", "0",
        "--no-progress", "--log-every", "1"]


def _kdef_like(root: Path, people=6, classes=("anger", "happiness", "sadness")):
    """A CSV over per-person images whose class shows as brightness (learnable), with subjects."""
    rows = []
    for p in range(people):
        for k, name in enumerate(classes):
            for path in write_images(root / f"p{p}" / name, 2, 32, seed=p * 10 + k, brightness=60 + 80 * k, side=False):
                rows.append(f"{path.relative_to(root)},{name},p{p}")
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    return root / "list.csv"


def test_training_learns_splits_by_subject_and_reports_test_figures(tmp_path):
    data = _kdef_like(tmp_path / "data")
    run = tmp_path / "run"
    assert main([*FAST, "--width", "8", "--data", str(data), "--steps", "60", "--lr", "3e-3", "--val-fraction", "0.2",
                 "--test-fraction", "0.2", "--eval-every", "10", "--out", str(run)]) == 0
    split = json.loads((run / "split.json").read_text())
    assert [len(split["subjects"][k]) for k in ("train", "val", "test")] == [4, 1, 1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 60 and summary["test"]["images"] == 6
    assert summary["test"]["accuracy"] >= 0.5  # 3 brightness classes: chance is 1/3
    metrics = json.loads((run / "test" / "metrics.json").read_text())
    assert metrics["missing_classes"] == ["disgust", "fear", "surprise", "neutral"]
    assert sum(map(sum, metrics["confusion_matrix"])) == 6
    assert (run / "test" / "confusion.png").stat().st_size > 1000 and (run / "checkpoints" / "best.pt").is_file()
    net, config, kind = load_model(run / "checkpoints" / "best.pt")
    assert kind == "classifier" and config["arch"] == "small" and config["train_classes"] == {
        "anger": 8, "happiness": 8, "sadness": 8}


def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=3, size=32, classes=EXPRESSIONS[:3], side=False)
    common = [*FAST, "--data", str(data), "--split-by-image", "--steps", "6", "--dropout", "0.5",
              "--checkpoint-every", "100", "--balanced"]
    assert main([*common, "--out", str(tmp_path / "straight")]) == 0
    assert main([*common, "--stop-after", "3", "--out", str(tmp_path / "halted")]) == 0
    assert load_checkpoint(tmp_path / "halted")["step"] == 3
    with pytest.raises(CheckpointError, match="lr: checkpoint 0.0001, now 0.5"):
        main(["--resume", str(tmp_path / "halted"), "--lr", "0.5"])
    assert main(["--resume", str(tmp_path / "halted")]) == 0
    a = load_checkpoint(tmp_path / "straight")
    b = load_checkpoint(tmp_path / "halted")
    assert b["step"] == 6
    for key, value in a["models"]["classifier"].items():
        assert torch.equal(value, b["models"]["classifier"][key]), key
    rows = [json.loads(line) for line in (tmp_path / "halted" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "train/loss" in r] == [1, 2, 3, 4, 5, 6]


def test_a_checkpoint_from_before_run_state_loads_and_resumes_exactly(tmp_path):
    data = _kdef_like(tmp_path / "data", people=5)
    common = [*FAST, "--data", str(data), "--steps", "6", "--val-fraction", "0.2", "--test-fraction", "0.2",
              "--eval-every", "2", "--checkpoint-every", "100"]
    assert main([*common, "--out", str(tmp_path / "straight")]) == 0
    assert main([*common, "--stop-after", "3", "--out", str(tmp_path / "old")]) == 0
    new = load_checkpoint(tmp_path / "old")
    assert {"total_steps", "steps_per_epoch", "train_count", "train_digest", "train_classes", "data_format"} <= \
        set(new["run_state"]) and not set(new["run_state"]) & set(new["config"])
    old_config = rewrite_in_old_layout(tmp_path / "old" / "checkpoints" / "last.pt")
    assert old_config["total_steps"] == 6 and old_config["data_format"] == "csv"
    _, config, _ = load_model(tmp_path / "old")
    assert config["train_classes"] == new["run_state"]["train_classes"]
    assert main(["--resume", str(tmp_path / "old")]) == 0
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "old")
    assert b["step"] == 6 and b["run_state"] == a["run_state"] and b["config"] == a["config"]
    for key, value in a["models"]["classifier"].items():
        assert torch.equal(value, b["models"]["classifier"][key]), key
    assert json.loads((tmp_path / "old" / "summary.json").read_text())["test"] == \
        json.loads((tmp_path / "straight" / "summary.json").read_text())["test"]


def test_balanced_sampling_draws_every_class_equally_often_and_deterministically():
    labels = [0] * 80 + [3] * 15 + [6] * 5
    sampler = BalancedStepBatchSampler(labels, 30, seed=1, num_steps=100, flip=True)
    drawn = np.array([labels[i] for batch in sampler for i, _ in batch])
    share = {k: float((drawn == k).mean()) for k in (0, 3, 6)}
    assert all(abs(v - 1 / 3) < 0.03 for v in share.values()), share
    assert sampler.batch_for_step(7) == BalancedStepBatchSampler(labels, 30, seed=1, num_steps=1, flip=True).batch_for_step(7)
    other_rank = BalancedStepBatchSampler(labels, 30, seed=1, num_steps=1, rank=1, world_size=2)
    assert other_rank.batch_for_step(7) != sampler.batch_for_step(7)


def test_real_share_holds_the_labelled_images_share_of_every_batch_whatever_was_added():
    # 2 labelled images per class against 50 added: pooled, the labelled ones fill 4 % of the draws
    labels = [0, 0, 3, 3] + [0] * 50 + [3] * 50
    added = [False] * 4 + [True] * 100
    pooled = step_sampler(labels, 40, True, added=added, seed=2, num_steps=200)
    held = step_sampler(labels, 40, True, added=added, real_share=0.5, seed=2, num_steps=200)
    for sampler, want in ((pooled, 4 / 104), (held, 0.5)):
        drawn = np.array([i for batch in sampler for i, _ in batch])
        assert abs((drawn < 4).mean() - want) < 0.03
        assert abs((np.array(labels)[drawn] == 0).mean() - 0.5) < 0.03  # still class-balanced
    # without added images the share changes nothing: the plain balanced draw, step for step
    plain = BalancedStepBatchSampler(labels[:4], 8, seed=2, num_steps=3)
    assert list(step_sampler(labels[:4], 8, True, added=[False] * 4, real_share=0.5, seed=2, num_steps=3)) == list(plain)


def test_real_share_needs_an_augmentation_and_a_share(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=2, size=32, classes=("anger", "surprise"), side=False)
    run = tmp_path / "run"
    with pytest.raises(SystemExit, match="--real-share is a share of each batch"):
        main([*FAST, "--data", str(data), "--split-by-image", "--real-share", "0.5", "--out", str(run)])
    with pytest.raises(SystemExit, match=r"--real-share must be between 0 and 1, got 1\.5"):
        main([*FAST, "--data", str(data), "--split-by-image", "--augment-flips-crops", "--per-class", "3",
              "--real-share", "1.5", "--out", str(run)])
    assert main([*FAST, "--data", str(data), "--split-by-image", "--val-fraction", "0", "--test-fraction", "0",
                 "--steps", "2", "--augment-flips-crops", "--per-class", "3", "--real-share", "0.5", "--out", str(run)]) == 0
    assert load_checkpoint(run)["config"]["real_share"] == 0.5


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=3, size=32, classes=EXPRESSIONS[:2], side=False)
    (data / "anger" / "broken.png").write_bytes(b"\x89PNG broken")
    run = tmp_path / "run"
    assert main([*FAST, "--data", str(data), "--split-by-image", "--val-fraction", "0", "--test-fraction", "0",
                 "--steps", "4", "--out", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["bad_files"] == 1 and "broken.png" in (run / "bad_files.txt").read_text()


def test_init_weights_are_loaded_and_reported(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=2, size=32, classes=EXPRESSIONS[:2], side=False)
    donor = build_classifier({"arch": "small", "image_size": 32, "width": 4, "num_classes": 5})
    torch.save(donor.state_dict(), tmp_path / "pre.pt")
    args = [*FAST, "--data", str(data), "--split-by-image", "--steps", "1", "--init-weights", str(tmp_path / "pre.pt")]
    with pytest.raises(SystemExit, match=r"fc.weight: file \(5, 32\) vs model \(7, 32\)"):
        main([*args, "--out", str(tmp_path / "bad")])
    assert main([*args, "--init-skip", "fc", "--out", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "init_weights.json").read_text())
    assert report["skipped"] == ["fc.bias", "fc.weight"] and "stem.0.weight" in report["matched"]


def test_cgit_augmentation_adds_generated_images_per_training_class(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=2, size=32, classes=("anger", "surprise"), side=False)
    write_images(tmp_path / "renders", 3, 64, seed=5, side=True)  # the CGIT run's target domain
    cgit = write_generator_run(tmp_path / "cgit", "cgit", image_size=64, target=tmp_path / "renders")
    run = tmp_path / "run"
    assert main([*FAST, "--data", str(data), "--split-by-image", "--val-fraction", "0", "--test-fraction", "0",
                 "--steps", "2", "--augment-with", str(tmp_path / "cgit"), "--per-class", "5", "--out", str(run)]) == 0
    made = sorted(p.relative_to(run / "augmented").as_posix() for p in (run / "augmented").rglob("*.png"))
    assert len(made) == 10 and {m.split("/")[0] for m in made} == {"anger", "surprise"}
    image = cv2.imread(str(run / "augmented" / "anger" / "cgit_000000.png"))
    assert image.shape == (64, 64, 3)
    # 5 per class from 3 inputs: the fourth image is the first input again, translated the same way,
    # and the log says how many of a class's images repeat
    assert np.array_equal(cv2.imread(str(run / "augmented" / "anger" / "cgit_000003.png")), image)
    assert "5 images per class from 3 inputs: 2 of each class's images repeat" in (run / "train.log").read_text()
    state = load_checkpoint(run)
    assert state["run_state"]["train_count"] == 4 + 10
    # With flips and crops too, the same CGIT images are written flipped and cropped: each near its plain
    # twin (or its mirror image), not all unchanged, and the set made apart from the plain one.
    cropped = tmp_path / "cropped"
    assert main([*FAST, "--data", str(data), "--split-by-image", "--val-fraction", "0", "--test-fraction", "0",
                 "--steps", "1", "--augment-with", str(cgit), "--augment-flips-crops", "--per-class", "5",
                 "--out", str(cropped)]) == 0
    pairs = [(cv2.imread(str(cropped / "augmented" / p)).astype(int), cv2.imread(str(run / "augmented" / p)).astype(int))
             for p in made]
    assert all(c.shape == (64, 64, 3) and min(np.abs(c - p).mean(), np.abs(c - p[:, ::-1]).mean()) < 60 for c, p in pairs)
    assert not all(np.array_equal(c, p) for c, p in pairs)
    assert json.loads((cropped / "augmented" / "manifest.json").read_text())["flips_crops"] is True
    # A UIT checkpoint cannot condition on an expression.
    write_generator_run(tmp_path / "uit", "uit", image_size=64)
    with pytest.raises(SystemExit, match="augmentation needs a CGIT generator"):
        main([*FAST, "--data", str(data), "--split-by-image", "--steps", "1", "--augment-with", str(tmp_path / "uit"),
              "--per-class", "2", "--out", str(tmp_path / "run2")])
    with pytest.raises(SystemExit, match="go together"):
        main([*FAST, "--data", str(data), "--augment-with", str(cgit), "--out", str(tmp_path / "run3")])


def test_a_judge_keeps_only_the_cgit_images_it_reads_as_their_class(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=2, size=32, classes=("anger",), side=False)
    write_images(tmp_path / "renders", 3, 64, seed=5, side=True)
    write_generator_run(tmp_path / "cgit", "cgit", image_size=64, target=tmp_path / "renders")
    args = [*FAST, "--data", str(data), "--split-by-image", "--val-fraction", "0", "--test-fraction", "0", "--steps", "1",
            "--augment-with", str(tmp_path / "cgit"), "--per-class", "5"]
    # A judge that reads everything as anger keeps each of the 3 inputs' anger images once, then repeats them.
    write_classifier_run(tmp_path / "reads_anger", "anger")
    run = tmp_path / "run"
    assert main([*args, "--augment-judge", str(tmp_path / "reads_anger"), "--out", str(run)]) == 0
    assert json.loads((run / "augmented" / "judged.json").read_text()) == {"anger": {"tried": 3, "kept": 3}}
    made = sorted((run / "augmented" / "anger").glob("*.png"))
    assert len(made) == 5 and np.array_equal(cv2.imread(str(made[3])), cv2.imread(str(made[0])))
    assert "the judge kept 3 anger images, fewer than 5" in (run / "train.log").read_text()
    # One that reads everything as surprise keeps none: said, not trained on an empty class.
    write_classifier_run(tmp_path / "reads_surprise", "surprise")
    with pytest.raises(SystemExit, match="the judge read none of the CGIT anger images as anger"):
        main([*args, "--augment-judge", str(tmp_path / "reads_surprise"), "--out", str(tmp_path / "run2")])
    with pytest.raises(SystemExit, match="--augment-judge needs a classifier"):   # a generator is no judge
        main([*args, "--augment-judge", str(tmp_path / "cgit"), "--out", str(tmp_path / "run4")])
    with pytest.raises(SystemExit, match="--augment-judge sorts CGIT images"):
        main([*FAST, "--data", str(data), "--augment-flips-crops", "--per-class", "2",
              "--augment-judge", str(tmp_path / "reads_anger"), "--out", str(tmp_path / "run3")])


def test_random_crops_on_the_fly_are_part_of_the_run_and_resume_exactly(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=3, size=32, classes=("anger", "surprise"), side=False)
    args = [*FAST, "--data", str(data), "--split-by-image", "--val-fraction", "0", "--test-fraction", "0", "--crop"]
    assert main([*args, "--steps", "4", "--out", str(tmp_path / "straight")]) == 0
    assert main([*args, "--steps", "4", "--stop-after", "2", "--out", str(tmp_path / "resumed")]) == 0
    assert main(["--resume", str(tmp_path / "resumed"), "--no-progress"]) == 0
    straight, resumed = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert straight["config"]["crop"] is True and straight["step"] == resumed["step"] == 4
    assert all(torch.equal(straight["models"]["classifier"][k], resumed["models"]["classifier"][k])
               for k in straight["models"]["classifier"])
    assert main([*args[:-1], "--steps", "4", "--stop-after", "2", "--out", str(tmp_path / "plain")]) == 0
    with pytest.raises(CheckpointError, match="crop: checkpoint False, now True"):   # it defines the run
        main(["--resume", str(tmp_path / "plain"), "--crop"])


def test_flips_and_crops_augmentation_adds_as_many_plain_copies_per_class(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=2, size=32, classes=("anger", "surprise"), side=False)
    run = tmp_path / "run"
    assert main([*FAST, "--data", str(data), "--split-by-image", "--val-fraction", "0", "--test-fraction", "0",
                 "--steps", "2", "--augment-flips-crops", "--per-class", "6", "--out", str(run)]) == 0
    made = sorted((run / "augmented").rglob("*.png"))
    assert len(made) == 12 and {p.parent.name for p in made} == {"anger", "surprise"}
    originals = [cv2.imread(str(p)) for p in (data / "anger").glob("*.png")]
    copies = [cv2.imread(str(p)) for p in (run / "augmented" / "anger").glob("*.png")]
    assert all(c.shape == originals[0].shape for c in copies)
    # each copy is a flipped and/or cropped original, not something new: close to one of them
    assert all(min(np.abs(c.astype(int) - o).mean() for o in originals + [o[:, ::-1] for o in originals]) < 60
               for c in copies)
    assert load_checkpoint(run)["run_state"]["train_count"] == 4 + 12


def test_kdef_portraits_are_face_cropped_by_the_face_stage_before_training(tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    face = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    for person in ("F01", "M02", "F03"):
        for code in ("HA", "SA"):
            portrait = np.zeros((640, 520, 3), np.uint8)
            portrait[64:576, 4:516] = face if code == "HA" else face[:, ::-1]
            folder = tmp_path / "KDEF" / f"A{person}"
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"A{person}{code}S.JPG"), portrait)
    run = tmp_path / "run"
    assert main([*FAST, "--data", str(tmp_path / "KDEF"), "--kdef-views", "S", "--steps", "1", "--val-fraction", "0",
                 "--test-fraction", "0.3", "--out", str(run)]) == 0
    run_state = load_checkpoint(run)["run_state"]
    assert run_state["data_format"] == "kdef" and run_state["train_count"] == 4 and run_state["test_count"] == 2
    crops = sorted((run / "cache" / "masked_crops_32").glob("*.png"))
    assert len(crops) == 6 and all(cv2.imread(str(c)).shape == (32, 32, 3) for c in crops)
    assert not any(cv2.imread(str(c))[[0, 0, -1, -1], [0, -1, 0, -1]].any() for c in crops)  # black beyond the face
    assert "face crops" in (run / "train.log").read_text()


def test_diverging_training_skips_non_finite_updates_then_stops_with_the_last_finite_weights(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=2, size=32, classes=EXPRESSIONS[:2], side=False)
    run = tmp_path / "run"
    with pytest.raises(FloatingPointError, match="3 steps in a row with non-finite gradients"):
        main([*FAST, "--data", str(data), "--split-by-image", "--steps", "20", "--lr", "1e30", "--optimizer", "sgd",
              "--max-nonfinite", "3", "--checkpoint-every", "1", "--out", str(run)])
    log = (run / "train.log").read_text()
    assert log.count("update skipped") == 3 and "no longer finite; not overwriting" in log
    # The NaN forwards spoilt the batch-norm statistics: last.pt still holds the state saved before.
    state = load_checkpoint(run)
    assert state["step"] == 1 and all(torch.isfinite(v).all() for v in state["models"]["classifier"].values()
                                      if v.is_floating_point())


def _with_pairs(data: Path) -> dict[str, set[int]]:
    """Writes NAME.as-<other class>.png beside each image of a two-class tree, each a flat grey of its own;
    returns, per class, the grey levels of the pairs shown in it. One pair is a file no decoder reads."""
    shown = {"anger": set(), "surprise": set()}
    for k, path in enumerate(sorted(data.rglob("*.png"))):
        other = "surprise" if path.parent.name == "anger" else "anger"
        level = 20 + 30 * k
        cv2.imwrite(str(path.with_name(f"{path.stem}.as-{other}.png")), np.full((32, 32, 3), level, np.uint8))
        shown[other].add(level)
    broken = sorted((data / "anger").glob("*.as-surprise.png"))[0]
    shown["surprise"].discard(int(cv2.imread(str(broken))[0, 0, 0]))
    broken.write_bytes(b"not an image")
    return shown


def test_pair_augmentation_adds_each_faces_expression_pairs_to_the_class_they_show(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=2, size=32, classes=("anger", "surprise"), side=False)
    shown = _with_pairs(data)
    run = tmp_path / "run"
    assert main([*FAST, "--data", str(data), "--split-by-image", "--val-fraction", "0", "--test-fraction", "0",
                 "--steps", "2", "--augment-pairs", "--per-class", "5", "--out", str(run)]) == 0
    for name, levels in shown.items():
        made = [cv2.imread(str(p)) for p in sorted((run / "augmented" / name).glob("*.png"))]
        assert len(made) == 5
        # each added image is one of the pairs in its class, the unreadable one passed over, every pair used
        assert {int(image[0, 0, 0]) for image in made} == levels
        assert all((image == image[0, 0, 0]).all() for image in made)
    assert load_checkpoint(run)["run_state"]["train_count"] == 4 + 10
    assert "1 unreadable" in (run / "train.log").read_text()
    # flipped and cropped too: still the same pairs (a flat grey stays itself), written at the training size
    assert main([*FAST, "--data", str(data), "--split-by-image", "--val-fraction", "0", "--test-fraction", "0",
                 "--steps", "1", "--augment-pairs", "--augment-flips-crops", "--per-class", "5",
                 "--out", str(tmp_path / "cropped")]) == 0
    made = [cv2.imread(str(p)) for p in sorted((tmp_path / "cropped" / "augmented" / "anger").glob("*.png"))]
    assert {int(image[0, 0, 0]) for image in made} == shown["anger"] and {image.shape for image in made} == {(32, 32, 3)}


def test_pair_augmentation_names_a_class_without_pairs_and_goes_with_no_generator(tmp_path):
    data = write_labelled(tmp_path / "data", per_class=2, size=32, classes=("anger", "surprise"), side=False)
    base = [*FAST, "--data", str(data), "--split-by-image", "--steps", "1", "--per-class", "3"]
    with pytest.raises(SystemExit, match="no anger expression pair beside the training images"):
        main([*base, "--augment-pairs", "--out", str(tmp_path / "run")])
    with pytest.raises(SystemExit, match="give one"):
        main([*base, "--augment-pairs", "--augment-with", str(tmp_path / "cgit"), "--out", str(tmp_path / "run2")])
