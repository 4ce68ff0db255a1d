"""The demo drive is written on first use and again when the code that writes it changes."""
import json

import pipeline.demo as demo


def test_demo_drive_is_written_once_and_rewritten_for_other_writer_code(tmp_path, capsys):
    video = demo.demo_video(tmp_path, seconds=1)
    truth = json.loads(video.with_suffix(".json").read_text())
    assert video.is_file() and len(truth["frames"]) == 30
    assert (tmp_path / demo.DIGEST_FILE).read_text().strip() == demo.writer_digest()
    assert "first run only" in capsys.readouterr().err
    written = video.stat().st_mtime_ns
    assert demo.demo_video(tmp_path, seconds=1) == video and video.stat().st_mtime_ns == written  # cached
    (tmp_path / demo.DIGEST_FILE).write_text("written by other code\n")
    demo.demo_video(tmp_path, seconds=1)
    assert "changed since it was written" in capsys.readouterr().err
    assert video.stat().st_mtime_ns != written
    assert (tmp_path / demo.DIGEST_FILE).read_text().strip() == demo.writer_digest()
