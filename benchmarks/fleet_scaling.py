"""How a fleet evaluation scales: `python -m benchmarks.fleet_scaling`, one JSON line.

The same drives (held-out synthetic drives, `train synth --fleet`) evaluated by pipeline/fleet.py
three ways in one run: a plain in-process loop (`--no-ray`), Ray with 1 worker, Ray with 2 workers,
--rounds times, each round starting with the next of the three (a run's place in the round favours
none); medians over the rounds. Printed: drives per hour of each, the 2-worker speed-up over 1
worker, Ray's overhead over the plain loop (1 worker against the loop: what Ray costs, its start
included), Ray's start alone (a local cluster started and shut down with nothing on it, once a round:
`ray_start_s`) and the overhead that is left without it (what grows with the fleet), the per-frame
cost, and the cost model for N drives on W workers: N × frames per drive × per-frame cost / W
(+ Ray's start).
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cli import exit_status, in_turn
from face.ranges import above, at_least
from pipeline.fleet import evaluate_fleet, find_drives

REPO = Path(__file__).resolve().parents[1]


def make_drives(folder: Path, count: int, seconds: float, seed: int) -> list[str]:
    if not (folder / "done").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "train", "synth", "--out", str(folder), "--fleet", str(count),
                        "--seed", str(seed), "--video-seconds", str(seconds), "--size", "64", "--no-progress"],
                       check=True, cwd=REPO, capture_output=True)
        (folder / "done").write_text("")
    return find_drives([folder])


def timed(drives, model_sets, workers: int, use_ray: bool) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as out:
        started = time.perf_counter()
        results, _ = evaluate_fleet(drives, model_sets, Path(out), workers, use_ray=use_ray)
        return time.perf_counter() - started, results


def ray_start_seconds() -> float:
    """A local Ray cluster started and shut down with nothing run on it, as evaluate_fleet starts
    and stops its own: the fixed part of Ray's cost (the cost model's "+ Ray's start")."""
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.shutdown()
    return time.perf_counter() - started


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fleet_scaling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--drives", type=at_least(1), default=6, help="(default: %(default)s)")
    p.add_argument("--seconds", type=above(0), default=10.0, help="length of each drive (default: %(default)s)")
    p.add_argument("--seed", type=int, default=400, help="the drives' first seed (default: %(default)s)")
    p.add_argument("--cache", default="cache/benchmarks/fleet", help="where the drives are kept (default: %(default)s)")
    p.add_argument("--rounds", type=at_least(1), default=1,
                   help="run the three this many times, each round starting with the next (default: %(default)s)")
    args = p.parse_args(argv)
    drives = make_drives(Path(args.cache), args.drives, args.seconds, args.seed)
    from pipeline.config import DEFAULT_CLASSIFIER, DEFAULT_GENERATOR
    models = {"baseline": (DEFAULT_GENERATOR, DEFAULT_CLASSIFIER)}
    ways = {"loop": (1, False), "ray_1": (1, True), "ray_2": (2, True)}   # name: (workers, use_ray)
    seconds, last = {name: [] for name in ways}, {}   # last: each way's latest results
    starts = []
    for index in range(args.rounds):
        for name in in_turn(list(ways), index):
            elapsed, last[name] = timed(drives, models, *ways[name])
            seconds[name].append(elapsed)
        starts.append(ray_start_seconds())
    loop_s, ray1_s, ray2_s = (statistics.median(seconds[name]) for name in ways)
    start_s = statistics.median(starts)
    results, results2 = last["loop"], last["ray_2"]
    frames = sum(r["baseline"]["frames"] for r in results if "baseline" in r)
    per_frame_ms = 1000 * loop_s / max(frames, 1)
    same = [r["baseline"]["accuracy_published"] for r in results] == [r["baseline"]["accuracy_published"]
                                                                       for r in results2]
    per_hour = lambda s: round(len(drives) * 3600 / s, 1)  # noqa: E731
    result = {"benchmark": "fleet_scaling", "drives": len(drives), "frames": frames, "rounds": args.rounds,
              "seconds": {"loop": round(loop_s, 2), "ray_1": round(ray1_s, 2), "ray_2": round(ray2_s, 2)},
              "seconds_per_round": {name: [round(s, 2) for s in runs] for name, runs in seconds.items()},
              "drives_per_hour": {"loop": per_hour(loop_s), "ray_1": per_hour(ray1_s), "ray_2": per_hour(ray2_s)},
              "speedup_2_over_1_workers": round(ray1_s / ray2_s, 3),
              "ray_overhead_over_loop": round(ray1_s / loop_s - 1, 3),
              "ray_start_s": round(start_s, 2),
              "ray_overhead_over_loop_after_start": round((ray1_s - start_s) / loop_s - 1, 3),
              "per_frame_ms": round(per_frame_ms, 2),
              "cost_model": "seconds ≈ N drives × frames per drive × per_frame_ms / 1000 / workers + Ray's start",
              "same_figures_loop_and_ray": same}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
