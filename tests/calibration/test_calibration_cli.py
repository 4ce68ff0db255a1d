"""`python -m calibration` end to end: frames folder → face stage → INT8 Q/DQ file; FP16 without frames."""
import json

import pytest

import engines
from calibration.__main__ import main


def test_cli_int8_from_a_frames_folder(tmp_path, generator_128, face_frames, capsys):
    out = tmp_path / "uit.int8.onnx"
    assert main(["--onnx", str(generator_128), "--frames", str(face_frames), "--out", str(out),
                 "--method", "minmax", "--limit", "6"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["calibration"]["samples"] == 6 and result["method"] == "minmax"
    assert engines.load(out).metadata["exprada.precision"] == "int8"


def test_cli_fp16_and_missing_frames(tmp_path, generator_128, capsys):
    assert main(["--onnx", str(generator_128), "--precision", "fp16", "--out", str(tmp_path / "h.onnx")]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp16"
    with pytest.raises(SystemExit):
        main(["--onnx", str(generator_128), "--out", str(tmp_path / "x.onnx")])  # int8 without --frames
    assert main(["--onnx", str(generator_128), "--frames", str(tmp_path / "no_such_video.mp4"),
                 "--out", str(tmp_path / "x.onnx")]) == 2
    assert "no_such_video.mp4" in capsys.readouterr().err


def test_a_corrupt_model_or_frames_without_a_face_are_one_line_and_exit_2(tmp_path, generator_128, capsys):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(generator_128.read_bytes()[:500])
    faceless = tmp_path / "faceless"
    faceless.mkdir()
    (faceless / "000.png").write_bytes(b"\x89PNG broken")
    for onnx, frames, expected in ((corrupt, faceless, f"ONNX model {corrupt} could not be loaded"),
                                   (generator_128, faceless, "no face found")):
        assert main(["--onnx", str(onnx), "--frames", str(frames), "--out", str(tmp_path / "x.onnx")]) == 2
        last = capsys.readouterr().err.splitlines()[-1]   # (after the frames' progress bar)
        assert last.startswith("python -m calibration: ") and expected in last
    assert not (tmp_path / "x.onnx").exists()


def test_an_output_that_cannot_be_written_is_refused_before_the_frames_are_read(tmp_path, generator_128, capsys):
    missing = tmp_path / "no_such_video.mp4"   # would be the error if the frames were read first
    for precision in ("int8", "fp16"):
        assert main(["--onnx", str(generator_128), "--precision", precision, "--frames", str(missing),
                     "--out", "/proc/x.onnx"]) == 2
        assert capsys.readouterr().err.strip() == ("python -m calibration: --out /proc/x.onnx: "
                                                   "cannot write in /proc: No such file or directory")


@pytest.mark.parametrize("option, expected", [(["--limit", "0"], "argument --limit: must be at least 1, got 0"),
                                              (["--stride", "0"], "argument --stride: must be at least 1, got 0"),
                                              (["--percentile", "150"], "argument --percentile: must be above 0 and at most 100, got 150.0"),
                                              (["--percentile", "nan"], "argument --percentile: must be above 0 and at most 100, got nan")])
def test_counts_and_a_percentile_out_of_range_are_refused_before_anything_is_read(tmp_path, option, expected, capsys):
    with pytest.raises(SystemExit) as stop:   # were: run on, or failed after the frames were read
        main(["--onnx", str(tmp_path / "missing.onnx"), "--frames", str(tmp_path), "--out", str(tmp_path / "x.onnx"),
              *option])
    assert stop.value.code == 2 and expected in capsys.readouterr().err
