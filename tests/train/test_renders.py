"""`python -m train renders`: a target set from drives — real encoded videos and frame folders."""
import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from train.datasets.folder import index_unlabelled_folder
from train.renders import FRONTAL_PAIR, drive_names, main


@pytest.fixture(scope="module")
def drives(tmp_path_factory):
    from train.synthetic.writer import SynthWriter

    root = tmp_path_factory.mktemp("drives")
    made = tmp_path_factory.mktemp("drive")
    SynthWriter(made, seed=5, size=64, drivers=1).write_video(2.0, progress=False)   # 60 frames
    shutil.copy(made / "drive.mp4", root / "car_a.mp4")
    (root / "fleet").mkdir()
    shutil.copy(made / "drive.mp4", root / "fleet" / "car_a.mp4")   # the same file name in another folder
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    frames = root / "car_b"
    frames.mkdir()
    video = cv2.VideoCapture(str(made / "drive.mp4"))
    for i in range(6):
        ok, frame = video.read()
        assert ok
        cv2.imwrite(str(frames / f"{i:03d}.png"), frame)
    video.release()
    (frames / "003.png").write_bytes(b"\x89PNG truncated")      # one unreadable frame in the middle
    return root


def test_drives_become_renders_side_maps_and_frontal_pairs(drives, tmp_path, capsys):
    out = tmp_path / "target"
    assert main(["--input", str(drives), "--out", str(out), "--every", "4", "--size", "64", "--no-progress"]) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts["drives"] == 4 and counts["bad_drives"] == 1 and counts["bad_frames"] == 1
    assert counts["frames"] == 60 + 60 + 6 and counts["renders"] > 0
    rows = list(csv.DictReader((out / "renders.csv").open()))
    assert len(rows) == counts["renders"] and {r["drive"] for r in rows} == {"car_a", "fleet/car_a", "car_b"}
    # two videos of one name keep their own folders: none overwrote the other's renders
    assert sum(r["drive"] == "car_a" for r in rows) == sum(r["drive"] == "fleet/car_a" for r in rows) > 0
    assert sum(int(r["pair"]) for r in rows) == counts["pairs"]
    for row in rows:
        render = out / row["path"]
        image, side = cv2.imread(str(render)), cv2.imread(str(render.with_name(render.stem + ".side.png")))
        assert image.shape == side.shape == (64, 64, 3)
        frontal = abs(float(row["yaw"])) <= FRONTAL_PAIR["yaw"] and abs(float(row["pitch"])) <= FRONTAL_PAIR["pitch"]
        assert render.with_name(render.stem + ".pair.png").is_file() == frontal == bool(int(row["pair"]))
    # every 4th frame with a face, per drive: the frame folder's five readable frames give two
    assert sum(r["drive"] == "car_b" for r in rows) == 2
    # the set is a target folder as exprada reads it: the renders only
    assert len(index_unlabelled_folder(out)) == counts["renders"]


def test_drive_names_follow_the_input_tree_and_never_clash(tmp_path):
    (tmp_path / "x").mkdir()
    drives = [tmp_path / "a" / "cam.mp4", tmp_path / "b" / "cam.mp4", tmp_path / "x.mp4", tmp_path / "x"]
    for video in drives[:3]:
        video.parent.mkdir(exist_ok=True)
        video.touch()
    assert drive_names(drives, tmp_path) == ["a/cam", "b/cam", "x", "x~2"]
    assert drive_names([tmp_path / "a" / "cam.mp4"], tmp_path / "a" / "cam.mp4") == ["cam"]
    assert drive_names([tmp_path / "x"], tmp_path / "x") == ["x"]


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no such file or folder"):
        main(["--input", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no video"):
        main(["--input", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    blank = tmp_path / "blank"
    blank.mkdir()
    cv2.imwrite(str(blank / "0.png"), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(SystemExit, match="no face found"):
        main(["--input", str(blank), "--out", str(tmp_path / "o"), "--no-progress"])
    for option, expected in ((["--every", "0"], "argument --every: must be at least 1, got 0"),
                             (["--size", "16"], "argument --size: must be at least 32, got 16")):
        with pytest.raises(SystemExit) as stop:
            main(["--input", str(blank), "--out", str(tmp_path / "o"), *option])
        assert stop.value.code == 2 and expected in capsys.readouterr().err
    # The face model and the output folder are tried before the first drive is read (were tracebacks).
    (tmp_path / "not-a-model.npz").write_text("root:x:0:0")
    with pytest.raises(SystemExit, match=r"^error: .*not-a-model.npz: not a readable .npz model"):
        main(["--input", str(blank), "--out", str(tmp_path / "o2"), "--model", str(tmp_path / "not-a-model.npz")])
    assert not (tmp_path / "o2").exists()
    with pytest.raises(SystemExit, match=r"^error: --out /proc: cannot write in /proc: "):
        main(["--input", str(blank), "--out", "/proc"])


def test_turn_pairs_write_turned_renders_beside_the_paired_ones(drives, tmp_path, capsys):
    out = tmp_path / "target"
    args = ["--input", str(drives / "car_a.mp4"), "--out", str(out), "--every", "4", "--size", "64", "--no-progress"]
    assert main(args + ["--turn-pairs", "30"]) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts["pairs"] > 0 and counts["turned_pairs"] == 2 * counts["pairs"]
    rows = list(csv.DictReader((out / "renders.csv").open()))
    turned = [r for r in rows if float(r["turn"])]
    assert len(rows) == counts["renders"] + counts["turned_pairs"] and len(turned) == counts["turned_pairs"]
    by_path = {r["path"]: r for r in rows}
    for row in turned:
        image = out / row["path"]
        render = image.with_name(image.name.split("_turn")[0] + ".png")
        source = by_path[str(render.relative_to(out))]
        assert source["pair"] == row["pair"] == "1" and source["frame"] == row["frame"]
        assert float(row["yaw"]) == pytest.approx(float(source["yaw"]) + float(row["turn"]), abs=0.011)
        assert (image.with_name(image.stem + ".pair.png").read_bytes()
                == render.with_name(render.stem + ".pair.png").read_bytes())
        assert cv2.imread(str(image)).shape == (64, 64, 3)
    assert len(index_unlabelled_folder(out)) == len(rows)


def test_a_turn_outside_1_to_90_degrees_is_refused(drives, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--input", str(drives / "car_a.mp4"), "--out", str(tmp_path / "t"), "--turn-pairs", "0"])
    assert "--turn-pairs" in capsys.readouterr().err and not (tmp_path / "t").exists()


@pytest.fixture(scope="module")
def two_camera_drives(tmp_path_factory):
    """A two-camera rig, as encoded videos: the cabin camera sees the head turned 35° while a second
    camera, the same instant, faces it; a second drive has no second-view recording."""
    from face.expressions import EXPRESSIONS
    from train.synthetic.scene import Pose
    from train.synthetic.writer import SynthWriter

    root = tmp_path_factory.mktemp("cabin")
    views = tmp_path_factory.mktemp("front")
    writer = SynthWriter(tmp_path_factory.mktemp("unused"), seed=6, size=64, drivers=1)
    rng = np.random.default_rng(0)
    driver, camera = writer.drivers["target"][0]
    w_exp = writer.factory.expression(rng, EXPRESSIONS.index("happiness"))
    clips = {root / "rig" / "drive.mp4": 35.0, views / "rig" / "drive.mp4": 0.0, root / "alone.mp4": 35.0}
    for path, yaw in clips.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
        for i in range(8):
            pose = Pose(yaw=yaw + 0.5 * i, pitch=2.0, cx=320 + 2 * i, cy=230, height=200)
            frame, _ = writer.target_frame(np.random.default_rng(i), driver, camera, w_exp, pose)
            video.write(frame)
        video.release()
    return root, views


def test_a_second_view_pairs_turned_renders_with_its_crop_of_the_same_instant(two_camera_drives, tmp_path, capsys):
    import face

    root, views = two_camera_drives
    out = tmp_path / "target"
    assert main(["--input", str(root), "--second-view", str(views), "--out", str(out), "--every", "2", "--size", "64",
                 "--no-progress"]) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts["drives"] == 2 and counts["no_second_view"] == 1 and counts["pairs"] == 0
    rows = list(csv.DictReader((out / "renders.csv").open()))
    rig = [r for r in rows if r["drive"] == "rig/drive"]
    alone = [r for r in rows if r["drive"] == "alone"]
    assert len(rig) == len(alone) == 4 and all(abs(float(r["yaw"])) > FRONTAL_PAIR["yaw"] for r in rows)
    assert all(r["view"] == r["pair"] == "1" for r in rig) and counts["view_pairs"] == 4
    assert all(r["view"] == r["pair"] == "0" for r in alone)
    assert not any((out / "alone").glob("*.pair.png"))
    # Each pair is what the second camera's own face stage crops from the same frame index.
    with face.FaceStage(size=64, video=True) as stage:
        capture = cv2.VideoCapture(str(views / "rig" / "drive.mp4"))
        crops = [stage(capture.read()[1]).crop for _ in range(8)]
        capture.release()
    for row in rig:
        pair = cv2.imread(str((out / row["path"]).with_suffix(".pair.png")))
        assert np.array_equal(pair, crops[int(row["frame"])])
    assert len(index_unlabelled_folder(out)) == counts["renders"]
    with pytest.raises(SystemExit, match=r"^error: --second-view .*nowhere: no such file or folder"):
        main(["--input", str(root), "--second-view", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
