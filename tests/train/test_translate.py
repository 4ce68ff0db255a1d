import json

import cv2
import pytest

from face.expressions import EXPRESSIONS
from tiny_data import write_images, write_labelled
from train.exprada import main as train_main
from train.translate import main

TINY = ["--width", "4", "--image-size", "64", "--batch-size", "2", "--workers", "0", "--no-progress", "--steps", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("translate")
    write_labelled(root / "src", per_class=1, size=64, classes=("anger", "fear"))
    write_images(root / "tgt", 3, 64, seed=3)
    for mode in ("uit", "cgit"):
        train_main(["--mode", mode, "--source", str(root / "src"), "--target", str(root / "tgt"),
                    "--out", str(root / mode)] + TINY)
    return root


def test_uit_translates_a_folder_keeping_names_and_skipping_bad_files(runs, tmp_path):
    inputs = tmp_path / "in"
    write_images(inputs / "sub", 2, 80, seed=5)  # another size: resized to the model's 64²
    (inputs / "broken.jpg").write_bytes(b"nope")
    assert main(["--checkpoint", str(runs / "uit"), "--input", str(inputs), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert cv2.imread(str(out / "sub" / "img_000.png")).shape == (64, 64, 3)
    assert (out / "sub" / "img_001.side.png").is_file()
    summary = json.loads((out / "translate_summary.json").read_text())
    assert summary["written"] == 2 and summary["bad_files"] == [str(inputs / "broken.jpg")]
    assert not list(inputs.rglob("*.cache*"))  # nothing written into the input folder


def test_cgit_translates_one_image_to_every_expression_with_a_strip(runs, tmp_path):
    image = write_images(tmp_path / "in", 1, 64, seed=6)[0]
    main(["--checkpoint", str(runs / "cgit" / "checkpoints" / "last.pt"), "--input", str(image),
          "--out", str(tmp_path / "out")])
    for name in EXPRESSIONS:
        assert (tmp_path / "out" / name / "img_000.png").is_file()
    strip = cv2.imread(str(tmp_path / "out" / "strips" / "img_000.png"))
    assert strip.shape == (16 + 128, 128 * 8, 3)   # a band of names over the input and 7 faces, each 2×
    for column in range(8):   # every column is named
        assert strip[:16, column * 128:(column + 1) * 128].max() > 128
    main(["--checkpoint", str(runs / "cgit"), "--input", str(image), "--out", str(tmp_path / "one"),
          "--expression", "happiness"])
    assert [p.name for p in (tmp_path / "one").iterdir() if p.is_dir() and p.name != ".cache"] == ["happiness"]
    with pytest.raises(SystemExit, match="^error: .*unknown expression 'smug'"):
        main(["--checkpoint", str(runs / "cgit"), "--input", str(image), "--out", str(tmp_path / "x"),
              "--expression", "smug"])


def test_a_camera_frame_is_cropped_to_its_face_before_translation(runs, tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    import numpy as np
    frame = np.zeros((480, 640, 3), np.uint8)   # a face off-centre in a wide frame, as a camera sees it
    face = cv2.resize(cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR), (320, 320))
    frame[80:400, 300:620] = face
    inputs = tmp_path / "in"
    inputs.mkdir()
    cv2.imwrite(str(inputs / "frame.png"), frame)
    main(["--checkpoint", str(runs / "uit"), "--input", str(inputs), "--out", str(tmp_path / "out")])
    assert cv2.imread(str(tmp_path / "out" / "frame.png")).shape == (64, 64, 3)   # named after the frame
    crops = list((tmp_path / "out" / ".cache" / "face_crops").rglob("*.png"))
    assert len(crops) == 1   # the face stage's aligned crop is what was translated, not the squashed frame
    main(["--checkpoint", str(runs / "uit"), "--input", str(inputs), "--out", str(tmp_path / "whole"),
          "--face-crop", "none"])
    assert not (tmp_path / "whole" / ".cache" / "face_crops").exists()


def test_an_input_without_images_is_one_line(runs, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=f"^error: input folder {tmp_path / 'empty'} holds no images$"):
        main(["--checkpoint", str(runs / "uit"), "--input", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])


def test_an_output_folder_that_cannot_be_written_is_one_line(runs, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    with pytest.raises(SystemExit, match=r"^error: --out /proc: cannot write in /proc: "):   # was: a traceback
        main(["--checkpoint", str(runs / "uit"), "--input", str(tmp_path / "in"), "--out", "/proc"])
    with pytest.raises(SystemExit) as stop:   # was: range() error
        main(["--checkpoint", str(runs / "uit"), "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
              "--batch-size", "0"])
    assert stop.value.code == 2 and "argument --batch-size: must be at least 1, got 0" in capsys.readouterr().err
