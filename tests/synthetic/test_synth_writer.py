"""The synthetic data writer: layout, determinism, ground truth, and learnable expressions."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from face.expressions import EXPRESSIONS

ROOT = Path(__file__).resolve().parents[2]


def _synth(out: Path, *args):
    cmd = [sys.executable, "-m", "train", "synth", "--out", str(out), "--no-progress", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = _synth(out, "--seed", "3", "--per-class", "3", "--video-seconds", "2", "--drivers", "3")
    return out, summary


def test_layout_and_counts(small_set):
    out, summary = small_set
    assert summary["source"] == 21 and summary["video_frames"] == 60
    for domain in ("source", "target"):
        assert sorted(p.name for p in (out / domain).iterdir()) == sorted(EXPRESSIONS)
        for image in (out / domain).rglob("*.png"):
            if image.name.endswith((".side.png", ".pair.png")):
                continue
            side = image.with_name(image.stem + ".side.png")
            assert side.is_file(), f"no side map beside {image}"
            a, b = cv2.imread(str(image)), cv2.imread(str(side))
            assert a.shape == b.shape == (128, 128, 3)
    # Every target image that could not be made is counted, none silently lost.
    assert summary["target"] + 0 == sum(1 for p in (out / "target").rglob("t*[0-9].png"))
    assert summary["target"] >= 18


def test_csv_lists_every_image_with_its_driver(small_set):
    from train.datasets.csv_list import index_csv

    out, summary = small_set
    for domain in ("source", "target"):
        samples = index_csv(out / f"{domain}.csv", domain=domain)
        assert len(samples) == summary[domain]
        assert all(s.path.is_file() and s.path.parent.name == EXPRESSIONS[s.label] for s in samples)
        assert {s.subject for s in samples} <= {f"{domain}-driver{d:02d}" for d in range(3)}


def test_source_crops_look_nir_and_share_the_renders_framing(small_set):
    out, _ = small_set
    source = [cv2.imread(str(p)) for p in sorted((out / "source").rglob("s*[0-9].png"))]
    target = [cv2.imread(str(p)) for p in sorted((out / "target").rglob("t*[0-9].png"))]
    # NIR: grey frames (all three channels equal).
    assert all((s[..., 0] == s[..., 2]).all() for s in source)
    # Both domains are the face on black, laid out alike (face.crops.face_crop): the generator
    # translates the face, not the surround.
    corner = (slice(0, 10), slice(0, 10))
    assert max(t[corner].max() for t in target) == 0 and max(s[corner].max() for s in source) == 0
    face_s, face_t = (np.mean([i.any(axis=2) for i in images], axis=0) > 0.5 for images in (source, target))
    assert (face_s & face_t).sum() / (face_s | face_t).sum() > 0.8


def test_drive_truth(small_set):
    out, _ = small_set
    truth = json.loads((out / "drive.json").read_text())
    assert truth["fps"] == 30 and (truth["width"], truth["height"]) == (640, 480)
    frames = truth["frames"]
    assert len(frames) == 60 and [f["frame"] for f in frames] == list(range(60))
    for f in frames:
        if f["face"]:
            assert f["expression"] == EXPRESSIONS[f["label"]]
            assert all(k in f for k in ("yaw", "pitch", "roll", "box"))
        else:
            assert f["label"] == -1 and f["expression"] is None
    video = cv2.VideoCapture(str(out / "drive.mp4"))
    n = 0
    while True:
        ok, frame = video.read()
        if not ok:
            break
        assert frame.shape == (480, 640, 3)
        n += 1
    assert n == 60


def test_same_seed_same_data(small_set, tmp_path):
    out, _ = small_set
    again = tmp_path / "again"
    _synth(again, "--seed", "3", "--per-class", "3", "--video-seconds", "0", "--drivers", "3")
    for image in sorted((out / "source").rglob("*.png"))[:10] + sorted((out / "target").rglob("*.png"))[:10]:
        twin = again / image.relative_to(out)
        assert twin.read_bytes() == image.read_bytes(), f"{image.relative_to(out)} differs between runs"
    other = tmp_path / "other"
    _synth(other, "--seed", "4", "--per-class", "1", "--video-seconds", "0", "--drivers", "3")
    first = sorted((out / "source").rglob("s*[0-9].png"))[0]
    assert (other / first.relative_to(out)).read_bytes() != first.read_bytes()


def test_expression_pairs_draw_the_same_head_pose_and_camera_in_every_other_expression(small_set, tmp_path):
    from train.datasets.csv_list import index_csv
    from train.datasets.folder import index_labelled_folder

    out, _ = small_set
    paired = tmp_path / "paired"
    summary = _synth(paired, "--seed", "3", "--per-class", "3", "--video-seconds", "0", "--drivers", "3",
                     "--target-per-class", "0", "--expression-pairs")
    faces = sorted((paired / "source").rglob("s*[0-9].png"))
    assert summary["source_expression_pairs"] == 6 * len(faces) == 6 * 21
    assert json.loads((paired / "manifest.json").read_text())["expression_pairs"] is True
    for face in faces:   # the faces are those written without pairs, byte for byte
        assert face.read_bytes() == (out / face.relative_to(paired)).read_bytes()
    samples = index_labelled_folder(paired / "source")
    driver = {s.path.name: s.subject for s in index_csv(paired / "source.csv", domain="source")}
    images = {face: cv2.imread(str(face)).astype(np.float32) for face in faces}
    for face in faces:
        pairs = {name: face.with_name(f"{face.stem}.as-{name}.png") for name in EXPRESSIONS}
        assert [name for name, path in pairs.items() if not path.is_file()] == [face.parent.name]
        others = [image for f, image in images.items() if driver[f.name] != driver[face.name]]
        for name, path in pairs.items():
            if path.is_file():   # another expression of the same head: nearer it than other drivers' faces
                pair = cv2.imread(str(path)).astype(np.float32)   # (an open mouth can be as far as the nearest)
                own = np.abs(pair - images[face]).mean()
                assert 0 < own < np.median([np.abs(pair - other).mean() for other in others])
    # The pairs belong to their faces: the labelled folder still lists only the faces.
    assert len(samples) == len(faces)


def test_bad_arguments_are_refused(tmp_path):
    cmd = [sys.executable, "-m", "train", "synth", "--out", str(tmp_path), "--drivers", "0"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--drivers" in done.stderr


@pytest.fixture(scope="module")
def narrow_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("narrow")
    summary = _synth(out, "--seed", "3", "--per-class", "3", "--video-seconds", "0", "--drivers", "3",
                     "--target-yaw", "15")
    return out, summary


def test_target_yaw_narrows_the_target_poses_only(small_set, narrow_set, tmp_path):
    out, _ = small_set
    narrow, _ = narrow_set
    wide, manifest = (json.loads((d / "manifest.json").read_text()) for d in (out, narrow))
    assert manifest["target_pose"]["yaw"] == 15 and wide["target_pose"]["yaw"] == 60
    assert max(abs(r["yaw"]) for r in manifest["target"]) <= 15
    assert max(abs(r["yaw"]) for r in wide["target"]) > 15      # the default range is wider
    assert manifest["source"] == wide["source"]                  # the labelled source is unchanged
    for image in sorted((out / "source").rglob("*.png"))[:10]:
        assert (narrow / image.relative_to(out)).read_bytes() == image.read_bytes()
    done = subprocess.run([sys.executable, "-m", "train", "synth", "--out", str(tmp_path / "bad"),
                           "--target-yaw", "120"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--target-yaw" in done.stderr


def test_near_frontal_renders_get_their_frames_crop_as_a_frontal_pair(narrow_set):
    from train.datasets.folder import index_unlabelled_folder
    from train.renders import FRONTAL_PAIR

    out, summary = narrow_set
    records = json.loads((out / "manifest.json").read_text())["target"]
    paired = [r for r in records if r["pair"]]
    assert 0 < len(paired) == summary["target_pairs"] < len(records)
    for record in records:
        fitted = record["fitted"]
        frontal = abs(fitted["yaw"]) <= FRONTAL_PAIR["yaw"] and abs(fitted["pitch"]) <= FRONTAL_PAIR["pitch"]
        render = out / record["image"]
        assert record["pair"] == frontal == render.with_name(render.stem + ".pair.png").is_file()
    renders = [cv2.imread(str(out / r["image"])).astype(np.float32) for r in paired]
    crops = [cv2.imread(str((out / r["image"]).with_suffix(".pair.png"))).astype(np.float32) for r in paired]
    for i, (render, crop) in enumerate(zip(renders, crops)):
        assert crop.shape == render.shape and (crop[..., 0] == crop[..., 2]).all()   # the NIR camera's crop
        face_r, face_c = render.any(axis=2), crop.any(axis=2)
        assert (face_r & face_c).sum() / (face_r | face_c).sum() > 0.75   # laid out as the render (its outline differs)
        # ... of the same frame: nearer its own render than the other renders
        own = np.abs(crop - render).mean()
        assert all(own < np.abs(crop - other).mean() for j, other in enumerate(renders) if j != i)
    # The pairs belong to their renders: a folder of renders still lists only the renders.
    assert len(index_unlabelled_folder(out / "target")) == summary["target"]


def test_turn_pairs_add_turned_renders_of_the_paired_ones_and_change_nothing_else(narrow_set, tmp_path):
    """`--turn-pairs 25`: beside each paired render, its renders turned −25° and +25° further (rotate and
    render), each with the render's side map and the same frame crop as its pair; every other file as
    without, byte for byte."""
    from train.datasets.folder import index_unlabelled_folder

    plain, plain_summary = narrow_set
    out = tmp_path / "turned"
    summary = _synth(out, "--seed", "3", "--per-class", "3", "--video-seconds", "0", "--drivers", "3",
                     "--target-yaw", "15", "--turn-pairs", "25")
    assert summary["target_pairs"] == plain_summary["target_pairs"] > 0
    assert summary["target_turned_pairs"] == 2 * summary["target_pairs"]
    before = {p.relative_to(plain) for p in plain.rglob("*.png")}
    after = {p.relative_to(out) for p in out.rglob("*.png")}
    assert before < after and all((out / p).read_bytes() == (plain / p).read_bytes() for p in before)
    added = sorted(after - before)
    assert len(added) == 3 * summary["target_turned_pairs"]   # image, side map, pair
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["turn_pairs"] == [-25.0, 25.0]
    turned = [r for r in manifest["target"] if "turn" in r]
    assert len(turned) == summary["target_turned_pairs"] and all(r["pair"] for r in turned)
    for record in turned:
        image = out / record["image"]
        render = image.with_name(image.name.split("_turn")[0] + ".png")
        assert image.name.endswith(f"_turn{record['turn']:+g}.png") and render.is_file()
        pair = image.with_name(image.stem + ".pair.png")
        assert pair.read_bytes() == render.with_name(render.stem + ".pair.png").read_bytes()
        side = image.with_name(image.stem + ".side.png")
        assert side.read_bytes() == render.with_name(render.stem + ".side.png").read_bytes()
        a, b = cv2.imread(str(image)), cv2.imread(str(render))
        assert a.shape == b.shape and not np.array_equal(a, b)
    # They are target images with pairs like the renders: a target folder lists them, not their pairs.
    assert len(index_unlabelled_folder(out / "target")) == summary["target"] + summary["target_turned_pairs"]


def test_view_pairs_pair_every_other_render_with_a_frontal_view_of_the_same_instant(small_set, tmp_path):
    """`--view-pairs`: beside each render without a frontal pair, the face stage's crop of a second camera
    facing the head at the same instant (a two-camera rig's frontal view); every other file as without,
    byte for byte."""
    from train.datasets.folder import index_unlabelled_folder

    plain, plain_summary = small_set
    out = tmp_path / "views"
    summary = _synth(out, "--seed", "3", "--per-class", "3", "--video-seconds", "0", "--drivers", "3",
                     "--view-pairs")
    assert summary["target"] == plain_summary["target"] and summary["target_pairs"] == plain_summary["target_pairs"]
    before = {p.relative_to(plain) for p in plain.rglob("*.png") if p.parts[len(plain.parts)] in ("source", "target")}
    after = {p.relative_to(out) for p in out.rglob("*.png")}
    assert before < after and all((out / p).read_bytes() == (plain / p).read_bytes() for p in before)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["view_pairs"] is True
    viewed = [r for r in manifest["target"] if r["view_pair"]]
    assert 0 < len(viewed) == summary["target_view_pairs"]
    assert all(not r["pair"] for r in viewed)                   # a frontal pair is kept where there is one
    assert summary["target_pairs"] + summary["target_view_pairs"] == summary["target"]
    assert sorted(after - before) == sorted(Path(r["image"]).with_suffix(".pair.png") for r in viewed)
    renders = [cv2.imread(str(out / r["image"])).astype(np.float32) for r in viewed]
    views = [cv2.imread(str((out / r["image"]).with_suffix(".pair.png"))).astype(np.float32) for r in viewed]
    nearer = 0
    for i, (render, view) in enumerate(zip(renders, views)):
        assert view.shape == render.shape and (view[..., 0] == view[..., 2]).all()   # the NIR camera's
        face_r, face_v = render.any(axis=2), view.any(axis=2)
        assert (face_r & face_v).sum() / (face_r | face_v).sum() > 0.75                # laid out as the render
        own = np.abs(view - render).mean()
        nearer += own < np.median([np.abs(view - other).mean() for j, other in enumerate(renders) if j != i])
    assert nearer >= 0.8 * len(viewed)   # the same face: nearer its own render than most others
    assert len(index_unlabelled_folder(out / "target")) == summary["target"]   # pairs are not targets
