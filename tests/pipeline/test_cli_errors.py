"""Bad input through the real command: a clear error naming what was wrong, exit code 2, no hang,
and no stage process left behind (the source is checked before any stage starts)."""
import os
import subprocess

import pytest

from pipeline_helpers import REPO, env, free_endpoint, pipeline_command


def run(source, models):
    return subprocess.run(pipeline_command(source, models, "--publish", free_endpoint()), cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("damage, expected", [
    ("truncated", "not a readable video"),
    ("garbage", "not a readable video"),
])
def test_damaged_video(tmp_path, models, drive_clip, damage, expected):
    bad = tmp_path / "bad.mp4"
    data = drive_clip.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(50_000))
    result = run(bad, models)
    assert result.returncode == 2 and f"{bad}: {expected}" in result.stderr


def test_missing_camera(models):
    result = run("/dev/video77", models)
    assert result.returncode == 2 and "/dev/video77: no such camera device" in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may list any folder, so a permission error cannot be made")
def test_folder_without_permission(tmp_path, models):
    folder = tmp_path / "frames"
    folder.mkdir()
    folder.chmod(0)
    try:
        result = run(folder, models)
    finally:
        folder.chmod(0o755)
    assert result.returncode == 2 and f"{folder}: cannot read folder: Permission denied" in result.stderr


def test_folder_of_unreadable_images(tmp_path, models):
    for name in ("a.png", "b.jpg"):
        (tmp_path / name).write_bytes(b"\x89PNG broken")
    result = run(tmp_path, models)
    assert result.returncode == 2
    assert f"{tmp_path}: none of the 2 images is readable ({tmp_path / 'a.png'}: not a readable image" in result.stderr


def test_missing_model(tmp_path, drive_clip, models):
    result = run(drive_clip, (str(tmp_path / "none.onnx"), models[1]))
    assert result.returncode == 2 and "none.onnx not found" in result.stderr


def test_publish_port_in_use_stops_the_run_with_the_reason(drive_clip, models):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        result = subprocess.run(pipeline_command(drive_clip, models, "--publish", endpoint), cwd=REPO, env=env(),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"stage decide: cannot publish on {endpoint}: Address already in use" in result.stderr


@pytest.mark.parametrize("option, expected", [
    (("--fusion-weight", "1.5"), "argument --fusion-weight: must be between 0 and 1, got 1.5"),
    (("--publish-label", "average"), "argument --publish-label: invalid choice: 'average'"),
    (("--crop-yaw", "0"), "argument --crop-yaw: must be above 0, got 0.0"),
    (("--crop-yaw", "-10"), "argument --crop-yaw: must be above 0, got -10.0"),
    (("--publish", "nonsense"), "run_pipeline: --publish nonsense: not a ZeroMQ address"),
    (("--publish", "tcp://127.0.0.1:99999"), "run_pipeline: --publish tcp://127.0.0.1:99999: needs a host and a port"),
    # root may write anywhere os.access looks, but not under /proc: the folder is made and tried up front
    (("--save-video", "/proc/no-such/overlay.mp4"),
     "run_pipeline: --save-video /proc/no-such/overlay.mp4: cannot write in /proc/no-such: "),
    (("--report", "/proc/no-such/report"), "run_pipeline: --report /proc/no-such/report: cannot write in /proc/no-such"),
    (("--save-video", "/tmp"), "run_pipeline: --save-video /tmp: needs a video file name, e.g. overlay.mp4"),
    # were taken as given: every stage restarted at once (stall timeout), nothing published (message size)
    (("--stall-timeout", "-1"), "argument --stall-timeout: must be at least 0, got -1.0"),
    (("--max-message-mb", "0"), "argument --max-message-mb: must be at least 1, got 0.0"),
    (("--folder-fps", "nan"), "argument --folder-fps: must be above 0, got nan"),
    (("--threads", "-1"), "argument --threads: must be at least 0, got -1"),
    (("--pixel-format", "XYZW"), "argument --pixel-format: invalid choice: 'XYZW'"),   # was: silently the camera's own
])
def test_bad_publish_label_options_are_refused_before_anything_starts(drive_clip, models, option, expected):
    result = subprocess.run(pipeline_command(drive_clip, models, "--publish", free_endpoint(), *option), cwd=REPO,
                            env=env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and expected in result.stderr
