"""What a run prints: the summary and real problems, never mediapipe's start-up chatter
(face/landmarks.py); with --quiet the summary's JSON line on stdout and nothing else."""
import json
import re
import subprocess

from pipeline_helpers import REPO, env, free_endpoint, pipeline_command

CHATTER = re.compile(r"inference_feedback_manager|landmark_projection|XNNPACK|absl::InitializeLog|^[WIEF]\d{4} ",
                     re.MULTILINE)


def run(source, models, *extra):
    command = pipeline_command(source, models, "--fast", "--max-frames", "12", "--publish", free_endpoint(), *extra)
    return subprocess.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=180)


def test_a_run_prints_no_mediapipe_chatter(drive_clip, models):
    done = run(drive_clip, models)
    assert done.returncode == 0, done.stderr
    assert not CHATTER.findall(done.stderr), done.stderr
    assert done.stderr.startswith("frames 12 (face found in 12)")   # the summary, first line on stderr


def test_quiet_prints_the_summary_line_only(drive_clip, models):
    done = run(drive_clip, models, "--quiet")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    (line,) = done.stdout.splitlines()
    assert json.loads(line)["summary"]["frames"] == 12
