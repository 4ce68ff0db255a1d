"""The table-3 benchmark's own parts: the small labelled sets it draws and how it tells a finished run.
(Its commands — train synth, exprada, classifier — are each tested where they live.)"""
import json

import cv2
import numpy as np
import pytest

from benchmarks import cgit_augment


def write_tree(root, per_class):
    for label in ("anger", "happiness"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = np.full((16, 16, 3), 10 * i, np.uint8)
            cv2.imwrite(str(root / label / f"img_{i}.png"), image)
            cv2.imwrite(str(root / label / f"img_{i}.side.png"), image)
    return root


def test_small_labelled_sets_are_drawn_per_seed_with_their_side_maps(tmp_path):
    source = write_tree(tmp_path / "source", 6)
    a = cgit_augment.small_labelled_set(source, tmp_path / "a", 3, seed=7)
    b = cgit_augment.small_labelled_set(source, tmp_path / "b", 3, seed=7)
    c = cgit_augment.small_labelled_set(source, tmp_path / "c", 3, seed=8)
    names = lambda root: sorted(p.relative_to(root).as_posix() for p in root.rglob("img_*.png")  # noqa: E731
                                if not p.name.endswith(".side.png"))
    assert len(names(a)) == 6 and names(a) == names(b) and names(a) != names(c)
    for image in (a / "anger").glob("img_?.png"):
        assert image.with_name(image.stem + ".side.png").is_file()   # the side map comes along
    with pytest.raises(SystemExit, match="fewer than --labelled-per-class 9"):
        cgit_augment.small_labelled_set(source, tmp_path / "d", 9, seed=7)


def test_a_run_is_finished_only_when_its_summary_reached_the_last_step(tmp_path):
    run = tmp_path / "run"
    assert not cgit_augment.finished(run)
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"step": 30, "total_steps": 60}))   # interrupted
    assert not cgit_augment.finished(run)
    (run / "summary.json").write_text(json.dumps({"step": 60, "total_steps": 60, "test": {"accuracy": 0.5}}))
    assert cgit_augment.finished(run) and cgit_augment.test_accuracy(run) == 0.5
    # a finished run is not trained again (no command runs, so no log), and says so: its time is not the training's
    assert cgit_augment.train_run(run, ["train", "classifier"], tmp_path / "log") is False
    assert not (tmp_path / "log").exists()


def test_a_cgit_arms_reading_is_kept_and_not_made_again(tmp_path):
    run = tmp_path / "classifier_s7_cgit1000_real0.5"
    read = tmp_path / f"read_{run.name}"   # what `train evaluate --out` wrote the first time
    read.mkdir()
    (read / "metrics.json").write_text(json.dumps({"accuracy": {"mean": 0.6}}))
    # a reader that does not exist: any new `train evaluate` would fail
    assert cgit_augment.read_as_asked(str(tmp_path / "no_reader"), run, tmp_path / "log") == 0.6
    assert not (tmp_path / "log").exists()


def test_replicates_need_as_many_heldout_seeds():
    with pytest.raises(SystemExit, match="as many --heldout-seeds"):
        cgit_augment.main(["--seeds", "7", "8", "--heldout-seeds", "101"])


def test_the_labelled_share_is_a_share_or_pooled_and_names_its_runs_apart(capsys):
    parse = cgit_augment.build_parser().parse_args
    assert parse([]).real_share == 0.5 and parse(["--real-share", "pooled"]).real_share == "pooled"
    for bad, why in (("1.5", "must be between 0 and 1, got 1.5"), ("nan", "must be between 0 and 1, got nan"),
                     ("half", "must be a number, got 'half'")):
        with pytest.raises(SystemExit):
            parse(["--real-share", bad])
        err = capsys.readouterr().err
        assert f"argument --real-share: {why}" in err and "(or 'pooled')" in err
    assert cgit_augment.share_suffix("pooled") == "" and cgit_augment.share_suffix(0.5) == "_real0.5"


def test_added_passes_train_each_count_long_enough_to_draw_its_images_and_pair_none_at_the_same_steps():
    parse = cgit_augment.build_parser().parse_args
    fixed = parse([])
    assert cgit_augment.arms_of(fixed)[0] == "none" and {cgit_augment.arm_steps(fixed, n) for n in fixed.counts} == {600}
    passes = parse(["--added-passes", "2"])
    # 2 passes over 7 classes × N images, 16 added images in each batch of 32 (real share 0.5)
    assert [cgit_augment.arm_steps(passes, n) for n in passes.counts] == [875, 1750, 4375]
    assert cgit_augment.arm_steps(passes, 100) == 600   # never fewer than --classifier-steps
    assert cgit_augment.arms_of(passes)[:3] == ["none 1000", "none 2000", "none 5000"]
    assert cgit_augment.output_name(passes) == "table3_real0.5_passes2"


def test_a_cgit_other_than_the_recipe_is_trained_with_its_width_and_class_term_and_named_apart():
    parse = cgit_augment.build_parser().parse_args
    recipe, other = parse([]), parse(["--cgit-width", "16", "--cgit-lambda-cls", "5", "--added-passes", "2"])
    assert cgit_augment.cgit_tag(recipe) == "" and cgit_augment.output_name(recipe) == "table3_real0.5"
    flags = cgit_augment.cgit_flags(recipe)
    assert flags[flags.index("--width") + 1] == "8" and flags[flags.index("--lambda-cls") + 1] == "1"
    flags = cgit_augment.cgit_flags(other)
    assert flags[flags.index("--width") + 1] == "16" and flags[flags.index("--lambda-cls") + 1] == "5"
    assert cgit_augment.output_name(other) == "table3_real0.5_passes2_w16_cls5"
    assert cgit_augment.cgit_tag(parse(["--cgit-lambda-cls", "5"])) == "_cls5"


@pytest.mark.parametrize("argv", [["--added-passes", "2", "--real-share", "pooled"],
                                  ["--added-passes", "2", "--real-share", "1"]])
def test_added_passes_need_a_share_below_one(argv):
    with pytest.raises(SystemExit, match="--added-passes needs"):
        cgit_augment.main(argv)


def test_a_negative_count_of_passes_is_argparses_error(capsys):
    with pytest.raises(SystemExit) as stop:
        cgit_augment.main(["--added-passes", "-1"])
    assert stop.value.code == 2 and "argument --added-passes: must be at least 0, got -1.0" in capsys.readouterr().err


def test_a_missing_target_stops_the_benchmark_before_any_training(tmp_path):
    # the target's faces are counted first (`cgit_inputs`), so a wrong --target costs nothing
    with pytest.raises(FileNotFoundError, match="CGIT input folder .*nowhere does not exist"):
        cgit_augment.main(["--target", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out" / "commands.log").exists()
    (tmp_path / "renders").mkdir()
    cv2.imwrite(str(tmp_path / "renders" / "face.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(FileNotFoundError, match="CGIT input folder .*elsewhere does not exist"):
        cgit_augment.main(["--target", str(tmp_path / "renders"), "--cgit-inputs", str(tmp_path / "elsewhere"),
                           "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out" / "commands.log").exists()


def test_cgit_arms_that_translate_other_faces_are_named_by_them(tmp_path):
    parse = cgit_augment.build_parser().parse_args
    args = parse(["--added-passes", "2", "--kinds", "cgit", "warp", "--cgit-width", "16",
                  "--cgit-inputs", "cache/synth64_more/target", "--crop"])
    assert cgit_augment.classifier_run(tmp_path, 7, "cgit 5000", args) == \
        tmp_path / "classifier_s7_cgit5000_real0.5_w16_inputs-synth64_more-target_crop_steps4375"
    # the generator and every other arm are the same runs as without it
    assert cgit_augment.classifier_run(tmp_path, 7, "warp 5000", args) == \
        tmp_path / "classifier_s7_warp5000_real0.5_crop_steps4375"
    assert cgit_augment.cgit_tag(args) == "_w16"
    assert cgit_augment.output_name(args) == "table3_real0.5_passes2_w16_inputs-synth64_more-target_warp_crop"


def test_the_judged_arm_is_judged_by_the_none_classifier_of_the_first_count(tmp_path):
    parse = cgit_augment.build_parser().parse_args
    args = parse(["--added-passes", "2", "--kinds", "cgit", "cgit_judged", "--counts", "1000", "2000"])
    assert cgit_augment.arms_of(args) == ["none 1000", "none 2000", "cgit 1000", "cgit 2000",
                                          "cgit_judged 1000", "cgit_judged 2000"]
    # the folder that `none 1000` trains in, as run() names it
    assert cgit_augment.none_run(tmp_path, 7, args) == tmp_path / "classifier_s7_none_steps875"
    assert cgit_augment.none_run(tmp_path, 7, parse([])) == tmp_path / "classifier_s7_none"
    assert cgit_augment.output_name(args) == "table3_real0.5_passes2_judged"
    assert "flips_crops 1000" in cgit_augment.arms_of(parse([]))   # the default kinds: flips and crops, CGIT


def test_the_cropped_cgit_arm_is_named_apart():
    args = cgit_augment.build_parser().parse_args(["--added-passes", "2", "--kinds", "cgit_flips_crops", "--counts", "1000"])
    assert cgit_augment.arms_of(args) == ["none 1000", "cgit_flips_crops 1000"]
    assert cgit_augment.output_name(args) == "table3_real0.5_passes2_cgitcrops"


def test_with_crops_on_the_fly_every_classifier_run_is_named_apart(tmp_path):
    parse = cgit_augment.build_parser().parse_args
    plain, cropped = parse(["--added-passes", "2", "--kinds", "cgit"]), parse(["--added-passes", "2", "--kinds", "cgit", "--crop"])
    assert cgit_augment.classifier_run(tmp_path, 7, "cgit 1000", plain) == tmp_path / "classifier_s7_cgit1000_real0.5_steps875"
    assert cgit_augment.classifier_run(tmp_path, 7, "cgit 1000", cropped) == tmp_path / "classifier_s7_cgit1000_real0.5_crop_steps875"
    assert cgit_augment.none_run(tmp_path, 7, cropped) == tmp_path / "classifier_s7_none_crop_steps875"
    assert cgit_augment.output_name(cropped) == "table3_real0.5_passes2_crop"


def test_the_warp_arm_is_named_apart(tmp_path):
    args = cgit_augment.build_parser().parse_args(["--added-passes", "2", "--kinds", "warp", "--counts", "1000", "--crop"])
    assert cgit_augment.arms_of(args) == ["none 1000", "warp 1000"]
    assert cgit_augment.classifier_run(tmp_path, 7, "warp 1000", args) == tmp_path / "classifier_s7_warp1000_real0.5_crop_steps875"
    assert cgit_augment.output_name(args) == "table3_real0.5_passes2_warp_crop"


def test_a_cgit_with_expression_pairs_is_trained_with_them_and_named_apart(tmp_path):
    parse = cgit_augment.build_parser().parse_args
    args = parse(["--added-passes", "2", "--kinds", "cgit", "--cgit-width", "16", "--cgit-lambda-cls", "5",
                  "--cgit-lambda-pair", "300", "--crop"])
    assert cgit_augment.cgit_flags(args)[-2:] == ["--lambda-pair", "300"]
    assert "--lambda-pair" not in cgit_augment.cgit_flags(parse([]))
    assert cgit_augment.classifier_run(tmp_path, 7, "cgit 1000", args) == \
        tmp_path / "classifier_s7_cgit1000_real0.5_w16_cls5_pair300_crop_steps875"
    assert cgit_augment.output_name(args) == "table3_real0.5_passes2_w16_cls5_pair300_crop"
    # the chart names the CGIT it plots
    assert cgit_augment.cgit_label(args) == "CGIT (width 16, λ_cls 5, λ_pair 300)"
    assert cgit_augment.cgit_label(parse([])) == "CGIT"


def test_a_cgit_with_the_frozen_classifiers_term_reads_the_small_sets_own_uncropped_classifier(tmp_path):
    parse = cgit_augment.build_parser().parse_args
    args = parse(["--added-passes", "2", "--kinds", "cgit", "--cgit-width", "16", "--cgit-lambda-cls", "5",
                  "--cgit-lambda-pair", "300", "--cgit-lambda-sem", "3", "--crop"])
    assert cgit_augment.cgit_flags(args)[-4:] == ["--lambda-sem", "3", "--lambda-sem-target", "3"]
    assert "--lambda-sem" not in cgit_augment.cgit_flags(parse([]))
    # the frozen classifier is the first count's `none` trained without crops, whatever the protocol,
    # so that one generator serves both; the cropped protocol's own `none` stays its baseline
    assert cgit_augment.none_run(tmp_path, 7, cgit_augment.semantic_args(args)) == tmp_path / "classifier_s7_none_steps875"
    assert cgit_augment.none_run(tmp_path, 7, args) == tmp_path / "classifier_s7_none_crop_steps875"
    assert cgit_augment.classifier_run(tmp_path, 7, "cgit 1000", args) == \
        tmp_path / "classifier_s7_cgit1000_real0.5_w16_cls5_pair300_sem3_crop_steps875"
    assert cgit_augment.output_name(args) == "table3_real0.5_passes2_w16_cls5_pair300_sem3_crop"
    assert cgit_augment.cgit_label(args) == "CGIT (width 16, λ_cls 5, λ_pair 300, λ_sem 3)"
