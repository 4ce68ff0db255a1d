import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_clips import brightness_classifier, drive_frames, identity_generator, write_clip  # noqa: E402

SIZE = 64
THRESHOLD = -0.5   # mean of the frontal render in network units: bright clip frames ≈ -0.33, dark ≈ -0.64


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return (str(identity_generator(folder / "uit_generator.onnx", SIZE)),
            str(brightness_classifier(folder / "classifier.onnx", THRESHOLD, SIZE)))


@pytest.fixture(scope="session")
def drive_plan():
    return ["bright"] * 12 + ["dark"] * 12 + ["empty"] * 4 + ["bright"] * 8


@pytest.fixture(scope="session")
def drive_clip(tmp_path_factory, drive_plan):
    frames, truth = drive_frames(drive_plan)
    return write_clip(tmp_path_factory.mktemp("clip") / "drive.mp4", frames, truth)


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory):
    """300 frames (10 s at 30 fps): long enough to kill stages one after another and see the stream go on."""
    frames, truth = drive_frames((["bright"] * 10 + ["dark"] * 10) * 15)
    return write_clip(tmp_path_factory.mktemp("long") / "drive.mp4", frames, truth)


@pytest.fixture(scope="session")
def recording(drive_clip, models, tmp_path_factory):
    """A --record'ing of the drive clip by the staged pipeline (frames, every message, the truth)."""
    import subprocess

    from pipeline_helpers import REPO, env, free_endpoint, pipeline_command
    record = tmp_path_factory.mktemp("recording") / "rec"
    made = subprocess.run(pipeline_command(drive_clip, models, "--fast", "--publish", free_endpoint(), "--record",
                                           record, "--json"), cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr
    return record
