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
    assert cv2.imread(str(tmp_path / "out" / "strips" / "img_000.png")).shape == (64, 64 * 8, 3)
    main(["--checkpoint", str(runs / "cgit"), "--input", str(image), "--out", str(tmp_path / "one"),
          "--expression", "happiness"])
    assert [p.name for p in (tmp_path / "one").iterdir() if p.is_dir() and p.name != ".cache"] == ["happiness"]
    with pytest.raises(ValueError, match="unknown expression 'smug'"):
        main(["--checkpoint", str(runs / "cgit"), "--input", str(image), "--out", str(tmp_path / "x"),
              "--expression", "smug"])
