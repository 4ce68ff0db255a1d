"""The FP32/FP16/INT8 report: accuracy and agreement figures are computed right, NaN batches counted."""
import json

import cv2
import numpy as np
import pytest

import engines
from calibration.frames import collect
from calibration.quantize import batched_feeds, convert_fp16, quantize_int8
from calibration.report import evaluate, labelled_files, main


class ConstantEngine:
    """An Engine-shaped object answering fixed outputs, so the report's arithmetic can be checked exactly."""

    def __init__(self, outputs, path="const"):
        self.outputs, self.path = outputs, path

    def run(self, feeds):
        n = len(next(iter(feeds.values())))
        return {k: (v(n, feeds) if callable(v) else v[:n]) for k, v in self.outputs.items()}


def test_accuracy_agreement_and_nan_counting():
    images = np.zeros((4, 3, 8, 8), np.float32)
    labels = np.array([0, 1, 2, 3])
    identity = ConstantEngine({"translated": lambda n, f: f["image"], "side_map_out": lambda n, f: f["side_map"]})
    right = ConstantEngine({"logits": np.eye(7, dtype=np.float32)[[0, 1, 2, 3]] * 5})
    half_right = ConstantEngine({"logits": np.eye(7, dtype=np.float32)[[0, 1, 6, 6]] * 5})
    broken = ConstantEngine({"translated": np.full((4, 3, 8, 8), np.nan, np.float32),
                             "side_map_out": np.zeros((4, 3, 8, 8), np.float32)})
    report = evaluate({"fp32": (identity, right), "int8": (identity, half_right), "bad": (broken, right)},
                      images, images, labels, batch=4)
    assert report["fp32"]["accuracy"] == 1.0 and report["fp32"]["agreement_with_fp32"] == 1.0
    assert report["int8"]["accuracy"] == 0.5 and report["int8"]["agreement_with_fp32"] == 0.5
    assert report["int8"]["translated_mae_vs_fp32"] == 0.0
    assert report["bad"]["nonfinite_samples"] == 4 and report["bad"]["accuracy"] == 0.0
    assert report["bad"]["agreement_with_fp32"] is None


def test_labelled_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        labelled_files(tmp_path / "nowhere")
    (tmp_path / "bored").mkdir()
    with pytest.raises(ValueError, match="bored: folder name is not an expression"):
        labelled_files(tmp_path)


def test_report_cli_on_prerendered_set(tmp_path, generator_128, classifier_128, face_frames, capsys):
    calib = collect(face_frames, size=128, limit=6, progress=False)
    for i in range(6):  # write the calibration faces as a small pre-rendered labelled set
        folder = tmp_path / "set" / ("happiness" if i % 2 else "neutral")
        folder.mkdir(parents=True, exist_ok=True)
        side = 128 if i < 3 else 256  # renders at another square size are resized to the model's
        to_u8 = lambda x: cv2.resize(((np.moveaxis(x, 0, -1) + 1) * 127.5).round().astype(np.uint8), (side, side))
        cv2.imwrite(str(folder / f"s{i}.png"), to_u8(calib.images[i]))
        cv2.imwrite(str(folder / f"s{i}.side.png"), to_u8(calib.side_maps[i]))
    feeds = batched_feeds({"image": calib.images, "side_map": calib.side_maps}, 3)
    int8 = quantize_int8(generator_128, tmp_path / "g.int8.onnx", feeds)
    fp16 = convert_fp16(generator_128, tmp_path / "g.fp16.onnx")
    assert main(["--labelled", str(tmp_path / "set"), "--prerendered", "--generator", f"fp32={generator_128}",
                 "--generator", f"fp16={fp16}", "--generator", f"int8={int8}",
                 "--classifier", f"fp32={classifier_128}", "--out", str(tmp_path / "r.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["precisions"]) == {"fp32", "fp16", "int8"}
    for figures in result["precisions"].values():
        assert figures["samples"] == 6 and 0 <= figures["agreement_with_fp32"] <= 1
    assert result["precisions"]["fp16"]["translated_mae_vs_fp32"] < 0.01
    assert json.loads((tmp_path / "r.json").read_text()) == result


def test_report_cli_mistakes_are_one_line_and_exit_2(tmp_path, classifier_128, capsys):
    for args, expected in (
            (["--generator", "fp32", "--classifier", f"fp32={classifier_128}"], "--generator takes PRECISION=PATH"),
            (["--generator", "fp32=identity", "--classifier", f"int8={classifier_128}"], "--classifier fp32=PATH is required"),
            (["--generator", "fp32=identity", "--classifier", f"fp32={classifier_128}"], "nowhere not found"),
            (["--generator", "fp32=identity", "--classifier", f"fp32={classifier_128}", "--out", "/proc/r.json"],
             "--out /proc/r.json: cannot write in /proc")):   # before the labelled images are read
        assert main(["--labelled", str(tmp_path / "nowhere"), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("python -m calibration.report: ") and expected in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as stop:   # was handed to ONNX Runtime as given
        main(["--labelled", str(tmp_path), "--generator", "fp32=identity", "--classifier", f"fp32={classifier_128}",
              "--threads", "-1"])
    assert stop.value.code == 2 and "argument --threads: must be at least 0, got -1" in capsys.readouterr().err
