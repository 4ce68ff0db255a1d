"""Expression warps and `train warp-pairs` on real synthetic faces, the real face stage and FaceMesh."""
import json

import cv2
import numpy as np
import pytest

from benchmarks.cgit_transfer import held_out_faces
from face import bilinear
from face.expressions import EXPRESSIONS
from train import warp_pairs
from train.data import pairs_of, side_map_beside
from train.datasets.sources import load_samples
from train.expression_warp import ExpressionMeans, ExpressionWarp, load_targets

SURPRISE, NEUTRAL = EXPRESSIONS.index("surprise"), EXPRESSIONS.index("neutral")


@pytest.fixture(scope="module")
def faces():
    """Two held-out drivers, two drawings each: every face and the same head in all seven expressions."""
    return held_out_faces(5, "pose", 64, drivers=2, faces_per_driver=2, progress=False)


@pytest.fixture(scope="module")
def warp():
    warp = ExpressionWarp(bilinear.load())
    yield warp
    warp.close()


def inside_face(crop):
    return crop.max(axis=2) > 0


def test_a_face_warped_to_its_own_expression_stays_itself(faces, warp):
    crop = faces["faces"][0]
    shape = warp.fit(crop)
    same = warp(crop, shape, shape.w_exp)
    assert same.shape == crop.shape and same.dtype == crop.dtype
    surprised = warp(crop, shape, warp.fit(faces["real"][0][SURPRISE]).w_exp)
    change = lambda img: np.abs(img.astype(int) - crop.astype(int))[inside_face(crop) & inside_face(img)].mean()
    assert (inside_face(crop) & inside_face(same)).sum() > 0.9 * inside_face(crop).sum()
    # resampled (enlarged and back) and its texture taken a little towards the detected landmarks, it
    # moves a few grey levels; another expression moves it several times as much
    assert change(same) < 8 and change(same) < 0.4 * change(surprised)


def test_a_neutral_face_warped_to_surprise_opens_its_mouth_and_is_fitted_nearer_a_real_surprise(faces, warp):
    real = faces["real"][1]
    neutral, surprised = warp.fit(real[NEUTRAL]), warp.fit(real[SURPRISE])
    moved = warp(real[NEUTRAL], neutral, surprised.w_exp)
    again = warp.fit(moved)
    assert (np.linalg.norm(again.w_exp - surprised.w_exp)
            < 0.6 * np.linalg.norm(neutral.w_exp - surprised.w_exp))
    # the opened mouth is a dark cavity under the nose, where the neutral face had lips and skin
    dark = lambda img: int((cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[36:52, 20:44] < 40).sum())
    assert dark(moved) > dark(real[NEUTRAL]) + 10


def test_each_expression_needs_fitted_faces_to_give_its_geometry():
    means = ExpressionMeans(4)
    means.add(0, np.ones(4))
    with pytest.raises(ValueError, match="no fitted face of disgust, fear, happiness, sadness, surprise, neutral"):
        means.means()


def write_tree(root, faces):
    """A labelled class-folder tree of one driver's faces in every expression (with side maps), and the
    files a long run must skip: an unreadable one, one that is no square crop, one without a face."""
    for label, name in enumerate(EXPRESSIONS):
        folder = root / name
        folder.mkdir(parents=True)
        for k in (0, 2):
            cv2.imwrite(str(folder / f"f{k}.png"), faces["real"][k][label])
        cv2.imwrite(str(side_map_beside(folder / "f0.png")), faces["side"][0])
    (root / "anger" / "broken.png").write_bytes(b"not a png")
    cv2.imwrite(str(root / "fear" / "frame.png"), np.zeros((48, 64, 3), np.uint8))
    cv2.imwrite(str(root / "sadness" / "blank.png"), np.zeros((64, 64, 3), np.uint8))


def test_warp_pairs_writes_six_pairs_beside_each_face_that_cgit_training_finds(faces, tmp_path):
    write_tree(tmp_path / "data", faces)
    summary = warp_pairs.run(warp_pairs.build_parser().parse_args(
        ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--calibrate-images", "3",
         "--calibrate-rounds", "2", "--no-progress"]))
    assert summary["counts"] == {"images": 15, "no_face": 1, "unreadable": 1, "not_square": 1, "pairs": 14 * 6}
    assert summary["class_images"] == [2] * 7
    assert len(summary["calibration_gaps"]) == 2
    assert summary["model_path"] is None   # the shipped model: named by no path, valid wherever the project moves
    samples, _ = load_samples(tmp_path / "out")
    assert len(samples) == 15
    for sample in samples:
        pairs = pairs_of(sample, "expression")
        assert pairs[sample.label] is None   # the face itself is its own expression's image
        if sample.path.name == "blank.png":
            assert pairs == [None] * 7
            continue
        assert sum(p is not None for p in pairs) == 6
        assert cv2.imread(str(pairs[(sample.label + 1) % 7])).shape == (64, 64, 3)
    # copied as they were, side maps with them
    assert (tmp_path / "out" / "happiness" / "f0.png").read_bytes() == (tmp_path / "data" / "happiness" / "f0.png").read_bytes()
    assert side_map_beside(tmp_path / "out" / "happiness" / "f0.png").is_file()
    targets, model = load_targets(tmp_path / "out" / "expressions.json")
    assert targets.shape == (7, model.num_expression)
    assert np.allclose(targets, json.loads((tmp_path / "out" / "expressions.json").read_text())["targets"])


def test_unlabelled_faces_get_all_seven_pairs_from_an_earlier_runs_targets(faces, tmp_path):
    model = bilinear.load()
    bilinear.save(model, tmp_path / "own.npz")   # a user's own model, named by the earlier run's record
    targets = np.random.default_rng(0).normal(0, 0.3, (7, model.num_expression))
    (tmp_path / "expressions.json").write_text(json.dumps({"targets": targets.tolist(), "expressions": list(EXPRESSIONS),
                                                           "model_path": str(tmp_path / "own.npz")}))
    for k, folder in ((0, "a"), (1, "b")):   # renders of two drivers, in folders of their own, the same name
        (tmp_path / "faces" / folder).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "faces" / folder / "face.png"), faces["real"][2 * k][NEUTRAL])
    summary = warp_pairs.run(warp_pairs.build_parser().parse_args(
        ["--data", str(tmp_path / "faces"), "--unlabelled", "--targets", str(tmp_path / "expressions.json"),
         "--out", str(tmp_path / "out"), "--no-progress"]))
    assert summary["counts"] == {"images": 2, "no_face": 0, "unreadable": 0, "not_square": 0, "pairs": 14}
    assert summary["calibration_gaps"] == [] and summary["means"] is None
    assert np.allclose(summary["targets"], targets, atol=1e-6)
    assert summary["model_path"] == str((tmp_path / "own.npz").resolve())
    copied = sorted(p.name for p in (tmp_path / "out").glob("*.png") if ".as-" not in p.name)
    assert copied == ["face-1.png", "face.png"]
    for name in copied:
        pairs = [tmp_path / "out" / name.replace(".png", f".as-{e}.png") for e in EXPRESSIONS]
        assert all(cv2.imread(str(p)).shape == (64, 64, 3) for p in pairs)


def test_unlabelled_faces_need_targets_and_targets_bring_their_own_model(tmp_path):
    (tmp_path / "faces").mkdir()
    with pytest.raises(SystemExit, match="^error: --unlabelled faces have no class to take means from: give --targets"):
        warp_pairs.main(["--data", str(tmp_path / "faces"), "--unlabelled", "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="^error: --targets names the model its geometry belongs to"):
        warp_pairs.main(["--data", str(tmp_path / "faces"), "--targets", "e.json", "--model", "m.npz",
                         "--out", str(tmp_path / "o")])


def test_a_file_that_is_not_warp_pairs_output_is_refused_by_name(tmp_path):
    bad = tmp_path / "expressions.json"
    bad.write_text(json.dumps({"targets": [[0.0] * 26] * 6, "expressions": list(EXPRESSIONS[:6])}))
    with pytest.raises(ValueError, match=f"{bad}: its targets are not one per expression"):
        load_targets(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="not a train warp-pairs expressions.json"):
        load_targets(bad)


def test_warp_pairs_names_a_missing_data_folder_or_an_expression_without_faces_in_one_line(tmp_path):
    from train.__main__ import main

    missing = tmp_path / "nowhere"
    assert main(["warp-pairs", "--data", str(missing), "--out", str(tmp_path / "o")]) == 2
    for name in EXPRESSIONS:   # every class present, each with one blank image: no face gives any class its geometry
        (tmp_path / "data" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "data" / name / "blank.png"), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(SystemExit, match="^error: no fitted face of anger, disgust, fear, happiness, sadness, "
                                         "surprise, neutral: every expression needs labelled images"):
        warp_pairs.main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "o"), "--no-progress"])


def test_whole_frames_are_cropped_and_aligned_by_the_face_stage_before_they_are_warped(tmp_path):
    from pathlib import Path

    from train.synthetic.camera import NirCamera
    from train.synthetic.scene import Pose
    from train.synthetic.writer import SynthWriter

    writer = SynthWriter(Path("/nonexistent"), seed=3, size=64, drivers=1)
    rng = np.random.default_rng(3)
    driver, camera = writer.factory.driver(rng), NirCamera(rng, 480, 640)
    for label, name in enumerate(EXPRESSIONS):   # one 640×480 cabin frame per expression, as a portrait set holds
        frame, _ = writer.target_frame(rng, driver, camera, writer.factory.expression(rng, label), Pose())
        (tmp_path / "frames" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "frames" / name / "f.png"), frame)
    summary = warp_pairs.run(warp_pairs.build_parser().parse_args(
        ["--data", str(tmp_path / "frames"), "--out", str(tmp_path / "out"), "--face-crop", "face", "--image-size", "64",
         "--calibrate-images", "0", "--no-progress"]))
    assert summary["counts"] == {"images": 7, "no_face": 0, "unreadable": 0, "not_square": 0, "pairs": 42}
    assert summary["calibration_gaps"] == []
    for name in EXPRESSIONS:
        crop = cv2.imread(str(tmp_path / "out" / name / "f.png"))
        assert crop.shape == (64, 64, 3) and crop[0, 0].max() == 0   # aligned and masked: black beyond the oval
