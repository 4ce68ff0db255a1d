"""Odd inputs: in a folder replay an image that cannot be read, or whose pixels the pipeline does not
take, is skipped, counted and named once on stderr; only a folder in which nothing at all can be read
is refused (exit 2, one line). A video damaged mid-file ends cleanly with a note."""
import glob
import json
import os
import subprocess

import cv2
import numpy as np
import pytest

from hostile_images import png_claiming
from pipeline_clips import drive_frames, write_clip
from pipeline_helpers import REPO, env, free_endpoint, pipeline_command
from pipeline.config import PipelineConfig
from pipeline.sequential import run_sequential
from pipeline.sources import FolderSource, SourceError


def unreadable_file(path):
    """A file named like an image that cannot be opened for reading, even by root."""
    if os.geteuid() != 0:
        path.write_bytes(b"pixels")
        path.chmod(0)
        return path
    write_only = sorted(glob.glob("/sys/bus/*/uevent"))   # sysfs attributes that root cannot read either
    if not write_only:
        pytest.skip("running as root without sysfs: no way to make a file root cannot read")
    path.symlink_to(write_only[0])
    return path


def add_bad_files(folder, first_index):
    """Every kind of bad file the fault campaign found, numbered from first_index; → {file: reason}."""
    suffixes = (".tif", ".png", ".png", ".png", ".png", ".png")
    int16, corrupt, directory, fifo, locked, huge = (folder / f"{first_index + k:03d}{s}"
                                                     for k, s in enumerate(suffixes))
    grey = cv2.cvtColor(drive_frames(["bright"])[0][0], cv2.COLOR_BGR2GRAY)
    assert cv2.imwrite(str(int16), grey.astype(np.int16) * 8)
    assert cv2.imread(str(int16), cv2.IMREAD_UNCHANGED).dtype == np.int16
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    directory.mkdir()
    os.mkfifo(fifo)   # opening it would block the capture forever
    unreadable_file(locked)
    huge.write_bytes(png_claiming(60000, 60000))   # OpenCV raised on it rather than returning None
    return {int16: "int16 pixels are not supported", corrupt: "not a readable image", directory: "not a regular file",
            fifo: "not a regular file", locked: "cannot read: Permission denied", huge: "not a readable image"}


BAD_KINDS = 6   # the files add_bad_files writes


@pytest.fixture
def folder_with_bad_files(tmp_path):
    """Six frames with a face, the bad files between the third and the fourth."""
    folder = tmp_path / "frames"
    folder.mkdir()
    frames, _ = drive_frames(["bright"] * 6)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index if index < 3 else index + BAD_KINDS:03d}.png"), frame)
    return folder, add_bad_files(folder, 3)


def skip_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("exprada pipeline: skipped ")]


def test_bad_files_are_skipped_counted_and_named_once(folder_with_bad_files, capsys):
    folder, bad = folder_with_bad_files
    source = FolderSource(folder, fast=True)
    assert [c.index for c in source.frames()] == [0, 1, 2, 9, 10, 11]
    assert source.status.skipped == BAD_KINDS and source.status.state == "ended"
    assert source.status.note == f"{folder}: skipped {BAD_KINDS} unreadable or unsupported image(s)"
    lines = skip_lines(capsys.readouterr().err)
    assert len(lines) == BAD_KINDS
    for line, (file, reason) in zip(lines, bad.items()):
        assert line.startswith(f"exprada pipeline: skipped {file}: {reason}")


def test_a_folder_opening_with_many_bad_files_still_plays_the_good_one(tmp_path, capsys):
    for index in range(12):
        (tmp_path / f"{index:03d}.png").write_bytes(b"broken")
    cv2.imwrite(str(tmp_path / "100.png"), np.full((48, 64), 90, np.uint8))
    source = FolderSource(tmp_path, fast=True)
    assert [c.index for c in source.frames()] == [12]
    assert source.status.skipped == 12 and len(skip_lines(capsys.readouterr().err)) == 12


def test_a_folder_with_nothing_readable_is_refused_naming_the_first_file(tmp_path):
    bad = add_bad_files(tmp_path, 0)
    first = min(bad)
    with pytest.raises(SourceError, match=f"none of the {BAD_KINDS} images is readable \\({first}: {bad[first]}"):
        FolderSource(tmp_path)


def run(source, models, *extra):
    return subprocess.run(pipeline_command(source, models, "--fast", "--publish", free_endpoint(), *extra), cwd=REPO,
                          env=env(), capture_output=True, text=True, timeout=120)


def summary_of(stdout):
    return json.loads(stdout.splitlines()[-1])["summary"]


def test_a_run_skips_and_counts_bad_files_and_goes_on(folder_with_bad_files, models):
    folder, bad = folder_with_bad_files
    result = run(folder, models)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = skip_lines(result.stderr)
    assert len(lines) == BAD_KINDS and all(any(line.startswith(f"exprada pipeline: skipped {f}: ") for line in lines)
                                   for f in bad)
    summary = summary_of(result.stdout)
    assert summary["frames"] == 6 and summary["skipped"] == BAD_KINDS and "error" not in summary
    assert summary["note"] == f"{folder}: skipped {BAD_KINDS} unreadable or unsupported image(s)"
    assert any(line.startswith("drops ") and line.endswith(f", skipped {BAD_KINDS}") for line in result.stderr.splitlines())


def test_a_run_on_a_folder_with_nothing_readable_exits_2_with_one_line(tmp_path, models):
    bad = add_bad_files(tmp_path, 0)
    result = run(tmp_path, models)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"run_pipeline: {tmp_path}: none of the {BAD_KINDS} images is readable ({min(bad)}: {bad[min(bad)]} "
        f"(the pipeline takes uint8, uint16, int32, int64, float32, float64))"]


def test_the_sequential_loop_counts_skipped_files_too(folder_with_bad_files, models):
    folder, _ = folder_with_bad_files
    generator, classifier = models
    summary = run_sequential(PipelineConfig(source=str(folder), fast=True, generator=generator, classifier=classifier))
    assert summary["frames"] == 6 and summary["skipped"] == BAD_KINDS


def test_a_video_damaged_mid_file_ends_cleanly_with_a_note(tmp_path, models):
    frames, truth = drive_frames(["bright"] * 30)
    clip = write_clip(tmp_path / "drive.mp4", frames, truth)
    data = clip.read_bytes()
    middle = len(data) // 2
    clip.write_bytes(data[:middle] + bytes(20_000) + data[middle + 20_000:])   # frames zeroed mid-file
    result = run(clip, models)
    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stdout)
    assert 0 < summary["frames"] < 30 and "error" not in summary
    note = f"{clip}: video ended early after {summary['frames']} of 30 frames (truncated?)"
    assert summary["note"] == note and f"exprada pipeline: {note}" in result.stderr
