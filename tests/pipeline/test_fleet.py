"""Fleet evaluation on a real local Ray (2 workers): three tiny drives, one corrupt; a rerun skips
what is done; a candidate identical to the baseline differs by exactly nothing."""
import json
import shutil
import subprocess
import sys

import pytest

from pipeline.fleet import find_drives, paired
from pipeline_helpers import REPO, env


@pytest.fixture(scope="module")
def fleet_dir(drive_clip, tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    for name in ("drive_a", "drive_b"):
        (root / name).mkdir()
        shutil.copy(drive_clip, root / name / "drive.mp4")
        shutil.copy(drive_clip.with_suffix(".json"), root / name / "drive.json")
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is no video")
    return root


def fleet(fleet_dir, models, out, *extra):
    drives = [fleet_dir / "drive_a" / "drive.mp4", fleet_dir / "drive_b" / "drive.mp4", fleet_dir / "broken.mp4"]
    run = subprocess.run([sys.executable, "-m", "pipeline.fleet", *map(str, drives), "--out", str(out),
                          "--generator", models[0], "--classifier", models[1], "--workers", "2", "--quiet", *extra],
                         cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr[-3000:]   # the corrupt drive: results written, but not a pass
    assert run.stderr.splitlines()[-1].startswith("exprada fleet: 1 of 3 drives failed (listed in ")
    return json.loads(run.stdout.splitlines()[-1])


def test_two_ray_workers_evaluate_the_drives_report_the_corrupt_one_and_a_rerun_skips_what_is_done(
        fleet_dir, models, tmp_path):
    out = tmp_path / "out"
    first = fleet(fleet_dir, models, out)
    assert first["drives"] == 3 and first["evaluated"] == 3 and first["skipped_done"] == 0
    assert [f["drive"] for f in first["failed_drives"]] == [str(fleet_dir / "broken.mp4")]
    base = first["baseline"]
    assert base["drives"] == 2 and base["frames"] == 2 * 36 and base["accuracy_published"] is not None
    assert sum(map(sum, base["confusion"])) > 0 and base["latency_ms"]["p50"] is not None
    page = (out / "fleet.html").read_text()
    assert "broken.mp4" in page and "Over the fleet" in page
    again = fleet(fleet_dir, models, out)
    assert again["skipped_done"] == 2 and again["evaluated"] == 1   # only the failed drive is tried again
    assert again["baseline"]["accuracy_published"] == base["accuracy_published"]


def test_a_candidate_identical_to_the_baseline_differs_by_nothing(fleet_dir, models, tmp_path):
    result = fleet(fleet_dir, models, tmp_path / "cmp", "--candidate-classifier", models[1], "--no-ray")
    same = result["paired"]["accuracy_published"]
    assert same["drives"] == 2 and same["mean"] == 0.0 and same["ci95"] == [0.0, 0.0]
    assert result["candidate"]["accuracy_published"] == result["baseline"]["accuracy_published"]


def test_folders_of_drives_and_recordings_are_found(fleet_dir, tmp_path):
    (tmp_path / "rec" / "frames").mkdir(parents=True)
    assert find_drives([fleet_dir]) == [str(fleet_dir / "broken.mp4"), str(fleet_dir / "drive_a" / "drive.mp4"),
                                        str(fleet_dir / "drive_b" / "drive.mp4")]   # videos, and those of sub-folders
    assert find_drives([fleet_dir / "drive_a", tmp_path / "rec"]) == [str(fleet_dir / "drive_a" / "drive.mp4"),
                                                                     str(tmp_path / "rec" / "frames")]
    with pytest.raises(FileNotFoundError, match="no such drive"):
        find_drives([tmp_path / "missing"])
    (tmp_path / "drive.json").write_text("{}")   # the truth beside a video, given by mistake
    with pytest.raises(FileNotFoundError, match="drive.json: not a drive .* nor a folder of drives"):
        find_drives([tmp_path / "drive.json"])   # was: NotADirectoryError, a traceback


def test_the_paired_interval_widens_with_the_spread():
    rows = [{"baseline": {"accuracy_published": 0.5}, "candidate": {"accuracy_published": 0.5 + d}}
            for d in (0.1, 0.2, 0.0, 0.1)]
    result = paired(rows)
    assert result["mean"] == 0.1 and result["ci95"][0] < 0.1 < result["ci95"][1]


def test_a_drive_gives_the_same_messages_whatever_drive_the_worker_ran_before(fleet_dir, drive_clip, models):
    """The fleet's worker keeps one pipeline for all its drives: each drive must start afresh (the
    face tracker, the pooled identity, the driver monitor), so its figures do not depend on the order."""
    from pipeline.config import PipelineConfig
    from pipeline.sequential import SequentialPipeline
    from pipeline.messages import to_builtins

    pipeline = SequentialPipeline(PipelineConfig(generator=models[0], classifier=models[1], fast=True))
    try:
        alone = [to_builtins(r.emotion) for r in pipeline.run(str(drive_clip))["results"]]
        pipeline.run(str(drive_clip))   # another drive before it
        again = [to_builtins(r.emotion) for r in pipeline.run(str(drive_clip))["results"]]
    finally:
        pipeline.close()
    timing = ("t_capture_ns", "t_publish_ns", "latency_ms")
    assert [{k: v for k, v in m.items() if k not in timing} for m in again] == \
        [{k: v for k, v in m.items() if k not in timing} for m in alone]


def test_a_corrupt_or_wrong_model_or_an_unwritable_out_is_refused_in_one_line_before_any_drive_runs(fleet_dir, models, tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 not a model")
    for option, expected in ((["--candidate-generator", str(corrupt)], f"{corrupt}: not a readable model file"),
                             (["--candidate-generator", models[1]], "is a classifier model; expected uit_generator")):
        run = subprocess.run([sys.executable, "-m", "pipeline.fleet", str(fleet_dir), "--out", str(tmp_path / "out"),
                              "--generator", models[0], "--classifier", models[1], "--no-ray", *option],
                             cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
        lines = run.stderr.splitlines()
        assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith("exprada fleet: ") and expected in lines[0]
        assert not (tmp_path / "out").exists()
    run = subprocess.run([sys.executable, "-m", "pipeline.fleet", str(fleet_dir), "--out", "/proc/no-such/out",
                          "--generator", models[0], "--classifier", models[1], "--no-ray"],
                         cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--out /proc/no-such/out: cannot write in /proc/no-such/out" in run.stderr
