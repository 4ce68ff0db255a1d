import csv
import json

import cv2
import torch

from train.runlog import RunLog, write_json


def test_scalars_go_to_csv_jsonl_and_tensorboard_and_resume_drops_later_rows(tmp_path):
    log = RunLog(tmp_path)
    for step in (1, 2, 3):
        log.scalars(step, {"loss/g": step * 1.0})
    log.scalars(4, {"loss/g": 4.0, "loss/d": 0.5})  # a new column widens the CSV
    log.close()
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"] and rows[3]["loss/d"] == "0.5" and rows[0]["loss/d"] == ""
    assert list((tmp_path / "tensorboard").iterdir())
    resumed = RunLog(tmp_path, start_step=2)
    resumed.scalars(3, {"loss/g": 30.0})
    resumed.close()
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(r["step"], r["loss/g"]) for r in rows] == [("1", "1.0"), ("2", "2.0"), ("3", "30.0")]
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3] and lines[-1]["loss/g"] == 30.0


def test_image_grid_is_a_png_with_one_row_per_tensor(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    white = torch.ones(3, 3, 16, 16)
    path = log.image_grid(5, {"input": white, "output": -white})
    grid = cv2.imread(str(path))
    assert path.name == "step_00000005.png" and grid.shape == (32, 96 + 3 * 16, 3)
    assert grid[:16, 96:].min() == 255 and grid[16:, 96:].max() == 0


def test_bad_files_are_recorded_once_and_disabled_log_writes_nothing(tmp_path):
    log = RunLog(tmp_path / "a", tensorboard=False)
    assert (tmp_path / "a" / "bad_files.txt").read_text() == ""   # written from the start: none yet
    assert log.bad_file("x.png", "corrupt") and not log.bad_file("x.png", "corrupt")
    assert (tmp_path / "a" / "bad_files.txt").read_text() == "x.png\tcorrupt\n"
    quiet = RunLog(tmp_path / "b", enabled=False)
    quiet.scalars(1, {"a": 1})
    assert not (tmp_path / "b").exists()
    write_json(tmp_path / "s.json", {"a": 1})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 1}
