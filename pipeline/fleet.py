"""Evaluate a fleet of drives on Ray: `python -m pipeline.fleet DRIVES... --out OUT`.

A DMS team judges a model on hundreds of recorded drives, not one. Each drive — a video with its
ground truth beside it (drive.json), a `--record`ing (its frames/), or a folder of images; a folder
of such drives counts as all of them — goes through the pipeline's own steps (the sequential loop of
pipeline/sequential.py: every frame, lossless) on a Ray worker that loaded the models once. An
embedded local Ray starts by default (`--workers N` processes); `--address ray://HOST:10001` or
`auto` uses a running cluster.

Per drive and over the fleet: accuracy of the published label and of each path against the truth,
the confusion of the published label, latency percentiles, the driver monitor's events, failed
frames. A drive that cannot be read is reported with its error and never stops the others. Results
are kept per drive in OUT/drives/: a rerun skips what was done with the same models and code.

Two model sets side by side: `--candidate-generator/--candidate-classifier` evaluates a candidate on
the same drives, with the per-drive paired difference of the published accuracy and its 95 %
confidence interval (t distribution over drives) — the question before shipping a model.

Writes OUT/fleet.json (also printed as one line) and OUT/fleet.html.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.config import CLASSES, DEFAULT_CLASSIFIER, DEFAULT_GENERATOR, IDENTITY, PipelineConfig, resolve_models
from pipeline.fusion import PATHS
from face.outputs import writable_folder
from face.ranges import at_least
from pipeline.provenance import code_digest
from pipeline.sources import IMAGE_SUFFIXES
from pipeline.truth import NO_FACE

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm"}
RUNTIME_SOURCES = ("face", "engines", "pipeline")   # the code a drive's figures depend on
LATENCY_BINS = np.arange(0, 1001)                     # ms; the last bin holds everything slower
CONFIDENCE = 0.95


# ---- which drives ----------------------------------------------------------------------------------

def is_drive(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in VIDEO_SUFFIXES
    return path.is_dir() and ((path / "frames").is_dir()
                              or any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir() if p.is_file()))


def find_drives(paths) -> list[str]:
    """Each path that is a drive; in a folder that is not one, the drives in it and the videos of its
    sub-folders (a fleet written by `train synth --fleet`: DRIVE/drive.mp4), sorted. What a recording
    replays is its frames/ folder."""
    drives = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such drive or folder")
        if is_drive(path):
            inside = [path]
        elif not path.is_dir():
            raise FileNotFoundError(f"{path}: not a drive (a video: {', '.join(sorted(VIDEO_SUFFIXES))}; "
                                    "a recording; a folder of images) nor a folder of drives")
        else:
            inside = []
            for entry in sorted(path.iterdir()):
                if is_drive(entry):
                    inside.append(entry)
                elif entry.is_dir():
                    inside += sorted(p for p in entry.iterdir() if p.is_file() and is_drive(p))
        drives += [str((p / "frames") if (p / "frames").is_dir() else p) for p in inside]
    if not drives:
        raise FileNotFoundError(f"no drives (videos, recordings or image folders) in {', '.join(map(str, paths))}")
    return drives


# ---- one drive -------------------------------------------------------------------------------------

def drive_figures(summary: dict, classes) -> dict:
    """What a fleet keeps of one drive's summary: counts that pool over drives, not just rates."""
    results = summary.pop("results")
    index = {name: i for i, name in enumerate(classes)}
    hits = {path: [0, 0] for path in ("published", *PATHS)}
    confusion = np.zeros((len(classes), len(classes)), int)
    latency = np.zeros(len(LATENCY_BINS), int)
    for result in results:
        emotion = result.emotion
        total = emotion.latency_ms.get("total")
        if total is not None:
            latency[min(int(total), len(LATENCY_BINS) - 1)] += 1
        if result.truth is None or result.truth == NO_FACE or not emotion.valid:
            continue
        expected = classes[result.truth]
        hits["published"][0] += emotion.label == expected
        hits["published"][1] += 1
        if emotion.label in index:
            confusion[result.truth, index[emotion.label]] += 1
        for path, label in result.path_labels.items():
            if path in hits:
                hits[path][0] += label == expected
                hits[path][1] += 1
    keep = ("frames", "valid", "failed", "first_failure", "fps", "latency_ms", "frames_with_truth", "face_found_rate",
            "no_face_agreement", "published_from", "driver", "skipped")
    return {**{k: summary.get(k) for k in keep}, "classes": list(classes), "hits": hits, "confusion": confusion.tolist(),
            "latency_hist": latency.tolist(),
            **{f"accuracy_{path}": rate(*hits[path]) for path in hits}}


def rate(hits: int, total: int):
    return round(hits / total, 4) if total else None


class DriveEvaluator:
    """Every model set's pipeline, built once; one drive at a time through each. A drive that fails
    (unreadable, corrupt) gives its error, never an exception."""

    def __init__(self, model_sets: dict[str, tuple[str, str]], engine: str = "onnxruntime"):
        from pipeline.sequential import SequentialPipeline

        self.pipelines = {name: SequentialPipeline(PipelineConfig(generator=g, classifier=c, engine=engine, fast=True,
                                                                  threads=1, face_workers=1))
                          for name, (g, c) in model_sets.items()}

    def evaluate(self, drive: str) -> dict:
        out = {"drive": drive}
        started = time.perf_counter()
        for name, pipeline in self.pipelines.items():
            try:
                summary = pipeline.run(drive)
            except Exception as error:   # a bad drive is reported, the others go on
                return {"drive": drive, "error": f"{type(error).__name__}: {error}".splitlines()[0]}
            out[name] = drive_figures(summary, pipeline.config.classes)
        out["seconds"] = round(time.perf_counter() - started, 3)
        return out

    def close(self):
        for pipeline in self.pipelines.values():
            pipeline.close()


# ---- the fleet --------------------------------------------------------------------------------------

def file_digest(path: str) -> str:
    if path == IDENTITY:
        return IDENTITY
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def drive_key(drive: str, model_sets: dict, code: str) -> dict:
    """What a kept result was made from: the drive (its path, size and time), the models, the code."""
    path = Path(drive)
    stat = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in ([path] if path.is_file() else
                                                                        sorted(path.iterdir()))]
    return {"drive": str(path.resolve()), "files": hashlib.sha1(json.dumps(stat).encode()).hexdigest(),
            "models": {name: [file_digest(g), file_digest(c)] for name, (g, c) in model_sets.items()}, "code": code}


def result_file(out: Path, drive: str) -> Path:
    name = hashlib.sha1(str(Path(drive).resolve()).encode()).hexdigest()[:12]
    return out / "drives" / f"{Path(drive).parent.name if Path(drive).name == 'frames' else Path(drive).stem}_{name}.json"


def evaluate_fleet(drives, model_sets, out: Path, workers: int, address: str | None = None,
                   use_ray: bool = True, engine: str = "onnxruntime", progress=None) -> tuple[list[dict], int]:
    """(every drive's result in the order given, how many were kept from an earlier run)."""
    code = code_digest(RUNTIME_SOURCES)
    keys = {d: drive_key(d, model_sets, code) for d in drives}
    done, todo = {}, []
    for drive in drives:
        kept = result_file(out, drive)
        if kept.is_file():
            saved = json.loads(kept.read_text())
            if saved.get("key") == keys[drive] and "error" not in saved:
                done[drive] = saved
                continue
        todo.append(drive)
    skipped = len(done)
    (out / "drives").mkdir(parents=True, exist_ok=True)

    def keep(result):
        result["key"] = keys[result["drive"]]
        result_file(out, result["drive"]).write_text(json.dumps(result))
        done[result["drive"]] = result
        if progress:
            progress(result)

    if todo and not use_ray:
        evaluator = DriveEvaluator(model_sets, engine)
        try:
            for drive in todo:
                keep(evaluator.evaluate(drive))
        finally:
            evaluator.close()
    elif todo:
        import ray
        from ray.util import ActorPool

        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        try:
            remote = ray.remote(num_cpus=1)(DriveEvaluator)
            actors = [remote.remote(model_sets, engine) for _ in range(min(workers, len(todo)))]
            for result in ActorPool(actors).map_unordered(lambda actor, drive: actor.evaluate.remote(drive), todo):
                keep(result)
        finally:
            if started_here:
                ray.shutdown()
    return [done[d] for d in drives], skipped


def pooled(results: list[dict], name: str, classes) -> dict:
    """One model set's figures over every drive that was read: frame-weighted accuracies, summed
    confusion, latency percentiles over all frames, events and failures summed."""
    good = [r[name] for r in results if name in r]
    hits = {path: [sum(g["hits"][path][i] for g in good) for i in (0, 1)] for path in ("published", *PATHS)}
    latency = np.sum([g["latency_hist"] for g in good], axis=0) if good else np.zeros(len(LATENCY_BINS))
    cumulative = np.cumsum(latency)

    def percentile(q):
        return int(np.searchsorted(cumulative, q / 100 * cumulative[-1])) if cumulative[-1] else None

    events: dict[str, int] = {}
    for g in good:
        for kind, n in ((g.get("driver") or {}).get("events") or {}).items():
            events[kind] = events.get(kind, 0) + n
    return {"drives": len(good), "frames": sum(g["frames"] for g in good), "failed": sum(g["failed"] or 0 for g in good),
            **{f"accuracy_{path}": rate(*hits[path]) for path in hits},
            "accuracy_published_per_drive_mean": round(float(np.mean([g["accuracy_published"] for g in good
                                                                      if g["accuracy_published"] is not None])), 4)
            if any(g["accuracy_published"] is not None for g in good) else None,
            "latency_ms": {"p50": percentile(50), "p99": percentile(99)},
            "confusion": np.sum([g["confusion"] for g in good], axis=0).tolist() if good else [],
            "events": events, "classes": list(classes)}


def paired(results: list[dict], metric: str = "accuracy_published") -> dict:
    """candidate − baseline per drive (drives both read, with truth): mean, std and the 95 % interval."""
    from scipy import stats

    diffs = [r["candidate"][metric] - r["baseline"][metric] for r in results
             if "candidate" in r and r["candidate"][metric] is not None and r["baseline"][metric] is not None]
    if not diffs:
        return {"drives": 0}
    d = np.asarray(diffs, float)
    mean, std = float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else 0.0
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, len(d) - 1) * std / np.sqrt(len(d))) if len(d) > 1 and std else 0.0
    return {"metric": metric, "drives": len(d), "mean": round(mean, 4), "std": round(std, 4),
            "ci95": [round(mean - half, 4), round(mean + half, 4)], "per_drive": [round(float(x), 4) for x in d]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.fleet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("drives", nargs="+", help="videos, recordings, image folders, or folders of them")
    p.add_argument("--out", required=True, help="results folder (OUT/drives/ keeps each drive's result)")
    p.add_argument("--generator", default=DEFAULT_GENERATOR, help="UIT generator, or identity (default: %(default)s)")
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER, help="classifier (default: %(default)s)")
    p.add_argument("--candidate-generator", help="a candidate's generator (default: the baseline's)")
    p.add_argument("--candidate-classifier", help="a candidate's classifier (default: the baseline's)")
    p.add_argument("--engine", default="onnxruntime", choices=("onnxruntime", "torch"))
    p.add_argument("--workers", type=at_least(1), default=2, help="Ray worker processes, each one drive at a time "
                                                           "(default: %(default)s)")
    p.add_argument("--address", help="a running Ray cluster (auto, or ray://HOST:10001); default: a local one")
    p.add_argument("--no-ray", action="store_true", help="evaluate in this process, one drive after another")
    p.add_argument("--quiet", action="store_true", help="no line per drive on stderr")
    args = p.parse_args(argv)
    try:
        drives = find_drives(args.drives)
        model_sets = {"baseline": (args.generator, args.classifier)}
        if args.candidate_generator or args.candidate_classifier:
            model_sets["candidate"] = (args.candidate_generator or args.generator,
                                       args.candidate_classifier or args.classifier)
        for g, c in model_sets.values():   # as a run checks them: present, the right kinds, one image size
            resolve_models(PipelineConfig(generator=g, classifier=c, engine=args.engine))
        writable_folder(args.out, f"--out {args.out}")
    except (FileNotFoundError, ValueError) as error:
        print(f"exprada fleet: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)

    def progress(result):
        if not args.quiet:
            what = result.get("error") or f"{result['baseline']['frames']} frames, published accuracy " \
                                          f"{result['baseline']['accuracy_published']}"
            print(f"exprada fleet: {result['drive']}: {what}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    try:
        results, skipped = evaluate_fleet(drives, model_sets, out, args.workers, args.address, not args.no_ray,
                                          args.engine, progress)
    except ConnectionError as error:   # e.g. no Ray cluster at --address
        print(f"exprada fleet: cannot reach the Ray cluster at {args.address or 'the local one'}: {error}",
              file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    classes = next((r["baseline"]["classes"] for r in results if "baseline" in r), CLASSES)
    summary = {"drives": len(drives), "evaluated": len(drives) - skipped, "skipped_done": skipped,
               "failed_drives": [{"drive": r["drive"], "error": r["error"]} for r in results if "error" in r],
               "workers": 0 if args.no_ray else args.workers, "seconds": round(seconds, 2),
               "models": {name: {"generator": g, "classifier": c} for name, (g, c) in model_sets.items()},
               **{name: pooled(results, name, classes) for name in model_sets},
               "per_drive": [{k: v for k, v in r.items() if k != "key"} for r in results]}
    if "candidate" in model_sets:
        summary["paired"] = {m: paired(results, m) for m in ("accuracy_published", "accuracy_translated")}
    out.mkdir(parents=True, exist_ok=True)
    (out / "fleet.json").write_text(json.dumps(summary, indent=1))
    from pipeline.report import write_fleet_report
    summary["report"] = str(write_fleet_report(summary, out / "fleet.html"))
    print(json.dumps({k: v for k, v in summary.items() if k != "per_drive"}))
    if summary["failed_drives"]:   # a script gating a model on the fleet must not read this as a pass
        print(f"exprada fleet: {len(summary['failed_drives'])} of {len(drives)} drives failed (listed in "
              f"{out / 'fleet.json'}); the others are evaluated", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
