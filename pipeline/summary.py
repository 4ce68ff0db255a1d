"""The end-of-run summary: frames, fps, latency, drops, and accuracy against the recording's ground
truth with the UIT stage (the published label) and without it (the classifier on the untranslated
frontal render), on the same frames."""
from __future__ import annotations

import numpy as np

from pipeline.truth import NO_FACE


def percentile(values, q):
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def summarize(records: list[dict], stages: dict, classes) -> dict:
    """records: what the decide stage sent per frame ({"emotion", "truth", "baseline"});
    stages: the supervisor's totals per stage (drops, malformed, errors, restarts)."""
    emotions = [r["emotion"] for r in records]
    frames = len(emotions)
    summary = {"frames": frames, "valid": sum(1 for e in emotions if e["valid"])}
    if frames:
        start = min(e["t_capture_ns"] for e in emotions)
        end = max(e["t_publish_ns"] for e in emotions)
        summary["seconds"] = round((end - start) / 1e9, 3)
        summary["fps"] = round((frames - 1) / max((end - start) / 1e9, 1e-9), 2) if frames > 1 else None
    totals = [e["latency_ms"]["total"] for e in emotions]
    summary["latency_ms"] = {"p50": percentile(totals, 50), "p99": percentile(totals, 99)}
    for stage in ("capture", "face", "translate", "classify", "decide"):
        spent = [e["latency_ms"][stage] for e in emotions if stage in e["latency_ms"]]
        if spent:
            summary["latency_ms"][f"{stage}_p50"] = percentile(spent, 50)
    summary["drops"] = sum(s.get("drops", 0) for s in stages.values())
    summary["malformed"] = sum(s.get("malformed", 0) for s in stages.values())
    summary["errors"] = sum(s.get("errors", 0) for s in stages.values())
    summary["restarts"] = sum(s.get("restarts", 0) for s in stages.values())
    summary.update(accuracy(records, classes))
    return summary


def accuracy(records: list[dict], classes) -> dict:
    """Accuracy on labelled frames where a face was found; how often a face was found; agreement on
    frames the ground truth says have no face. None where the source has no ground truth."""
    with_face = [r for r in records if r.get("truth") is not None and r["truth"] != NO_FACE]
    without_face = [r for r in records if r.get("truth") == NO_FACE]
    found = [r for r in with_face if r["emotion"]["valid"]]
    result = {"frames_with_truth": len(with_face) + len(without_face),
              "face_found_rate": _rate(len(found), len(with_face)),
              "no_face_agreement": _rate(sum(1 for r in without_face if not r["emotion"]["valid"]), len(without_face))}
    if not found:
        return {**result, "accuracy_uit": None, "accuracy_without_uit": None, "accuracy_smoothed": None}
    truth = [classes[r["truth"]] for r in found]
    result["accuracy_uit"] = _rate(sum(r["emotion"]["label"] == t for r, t in zip(found, truth)), len(found))
    baseline = [r for r, t in zip(found, truth) if r.get("baseline") is not None]
    result["accuracy_without_uit"] = _rate(
        sum(r["baseline"] == classes[r["truth"]] for r in baseline), len(baseline)) if baseline else None
    result["accuracy_smoothed"] = _rate(sum(r["emotion"]["smoothed_label"] == t for r, t in zip(found, truth)),
                                        len(found))
    return result


def _rate(hits, total):
    return round(hits / total, 4) if total else None


def describe(summary: dict) -> str:
    """A few human lines for the end of a run."""
    lat = summary["latency_ms"]
    lines = [f"frames {summary['frames']} (face found in {summary['valid']}), "
             f"{summary.get('fps')} fps, latency p50 {lat['p50']} ms / p99 {lat['p99']} ms",
             f"drops {summary['drops']}, malformed {summary['malformed']}, errors {summary['errors']}, "
             f"restarts {summary['restarts']}"]
    if summary.get("frames_with_truth"):
        lines.append(f"accuracy vs ground truth on {summary['frames_with_truth']} frames: "
                     f"with UIT {summary['accuracy_uit']}, without UIT {summary['accuracy_without_uit']}, "
                     f"smoothed {summary['accuracy_smoothed']}; face found {summary['face_found_rate']}")
    return "\n".join(lines)
