"""The quality benchmark runs end to end (small and offline) and prints one JSON line of figures."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_face_quality_prints_its_figures(tmp_path):
    sheet = tmp_path / "sheet.png"
    cmd = [sys.executable, "-m", "benchmarks.face_quality", "--drivers", "1", "--pose-frames", "6",
           "--speed-frames", "15", "--drive-seconds", "2", "--pose-std-frames", "24", "--offline",
           "--video-drivers", "1", "--video-frames", "10",
           "--sheet", str(sheet)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    report = json.loads(lines[0])
    synthetic = report["synthetic"]
    assert set(synthetic["ssim_by_yaw"]) == {"0", "15", "30", "45"}
    # Frontal renders of near-frontal synthetic faces resemble the truth; pose is read roughly.
    assert synthetic["ssim_by_yaw"]["0"] > 0.6 and synthetic["pose_mae_deg"]["yaw"] < 15
    assert report["real"]["skimage/astronaut"]["face"] is True
    assert report["speed"]["ratio"] > 0 and sheet.is_file()
    assert report["speed"]["size"] == 128 and report["speed_deployment"]["size"] == 64
    assert report["speed_deployment"]["ratio"] > 0 and report["speed_deployment"]["parts"]["render"] > 0
    assert report["drive"]["frames"] == 60 and report["drive"]["face_found_rate"] > 0.8
    assert 0 < report["pose_std_calibration"]["within_2std"]["yaw"] <= 1
    speed = report["speed_deployment"]
    # The fit + renders + side map, timed in place, are a part of the rest of the stage.
    assert 0 < speed["fit_render_sidemap_only_ms"] < speed["fit_render_sidemap_ms"] and speed["crop_ms"] > 0
    read = report["landmark_read"]   # FaceMesh's points read from its result both ways, the same numbers
    assert read["points"] == 478 and read["same"] and read["serialised_us"] > 0 and read["attribute_us"] > 0
    # Video mode with the stream fitted in the low-rank space and in the direct form.
    video = report["video"]
    assert set(video) == {"low_rank", "direct"}
    for figures in video.values():
        assert figures["faces"] == figures["frames"] == 10 and figures["ssim_by_yaw"]["0"] > 0.6
        assert figures["yaw_mae_deg"] < 10 and 0 < figures["shape_mae_cm"] < 1
