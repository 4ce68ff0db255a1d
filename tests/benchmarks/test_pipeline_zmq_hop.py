"""The hop benchmark runs end to end (real processes, real sockets) and prints every figure it names."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_the_hop_benchmark_prints_its_figures():
    run = subprocess.run([sys.executable, "-m", "benchmarks.pipeline_zmq_hop", "--repeats", "5"], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.splitlines()[-1])
    for key in ("zmq_hop_median_us", "zmq_header_hop_bare_median_us", "zmq_header_hop_codec_median_us",
                "stage_hop_header_only_median_us", "stage_hop_made_in_slot_median_us", "stage_hop_made_in_slot_cpu_us",
                "ring_put_median_us", "pickle_dumps_loads_median_us",
                "mp_queue_hop_median_us",
                "header_typed_codec_median_us", "header_plain_json_median_us"):
        assert figures[key] > 0, key
    # The ratio is computed from the unrounded medians, so recomputing it from the printed (rounded) ones
    # agrees only to within the rounding.
    assert figures["header_typed_vs_plain_json"] == pytest.approx(
        figures["header_typed_codec_median_us"] / figures["header_plain_json_median_us"], rel=0.01)


def test_same_core_pins_the_benchmark_and_says_so():
    run = subprocess.run([sys.executable, "-m", "benchmarks.pipeline_zmq_hop", "--repeats", "5", "--rounds", "1",
                          "--same-core"], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.splitlines()[-1])
    assert figures["cores"] == [min(os.sched_getaffinity(0))]
    assert figures["stage_hop_made_in_slot_median_us"] > 0
