"""The end-of-run summary: frames, fps, latency, drops, and accuracy against the recording's ground
truth of the published label (`--publish-label`: pose, fusion, translated, render or crop), of the
translated path alone (the classifier on the UIT generator's translation), of the render alone (the
same classifier on the untranslated frontal render) and of the crop alone (the same classifier on
the plain aligned crop of the frame), on the same frames.

Kept as running counts and compact latency arrays, so a drive of hours costs a few MB, not a copy
of every message."""
from __future__ import annotations

from array import array

import numpy as np

from pipeline.fusion import PATHS
from pipeline.messages import Result, is_failure
from pipeline.stages import TIMED
from pipeline.truth import NO_FACE


def percentile(values, q):
    return round(float(np.percentile(np.frombuffer(values, np.float32) if isinstance(values, array) else values, q)),
                 2) if len(values) else None


class Tally:
    """Adds up one Result per published frame (pipeline/decide.py: DecideStep)."""

    def __init__(self, classes):
        self.classes = tuple(classes)
        self.frames = self.valid = 0
        self.first_capture = self.last_publish = None
        # "between": capture → publish less the time inside the stages (hops, wake-ups, queues)
        self.latency = {name: array("f") for name in ("total", "between", *TIMED)}
        self.with_face = self.found = self.no_face = self.no_face_agreed = 0
        self.hits = {"published": 0, "smoothed": 0, **{path: 0 for path in PATHS}}
        self.path_frames = {path: 0 for path in PATHS}
        self.published_from = None
        self.blinks = 0
        self.events: dict[str, int] = {}   # driver-monitor events started, by kind
        self.failed, self.first_failure = 0, None   # frames a stage raised on, and the first one's reason

    def add(self, result: Result):
        emotion = result.emotion
        self.frames += 1
        self.blinks += bool(emotion.driver and emotion.driver.blink)
        for event in result.events:
            if event.state == "start":
                self.events[event.kind] = self.events.get(event.kind, 0) + 1
        self.valid += emotion.valid
        if is_failure(emotion.reason):
            self.failed += 1
            self.first_failure = self.first_failure or emotion.reason
        t0, t1 = emotion.t_capture_ns, emotion.t_publish_ns
        self.first_capture = t0 if self.first_capture is None else min(self.first_capture, t0)
        self.last_publish = t1 if self.last_publish is None else max(self.last_publish, t1)
        for name, value in emotion.latency_ms.items():
            if name in self.latency:
                self.latency[name].append(value)
        if "total" in emotion.latency_ms:
            inside = sum(value for name, value in emotion.latency_ms.items() if name in TIMED)
            self.latency["between"].append(emotion.latency_ms["total"] - inside)
        if emotion.valid:
            self.published_from = emotion.published_from or self.published_from
        truth = result.truth
        if truth is None:
            return
        if truth == NO_FACE:
            self.no_face += 1
            self.no_face_agreed += not emotion.valid
            return
        self.with_face += 1
        if not emotion.valid:
            return
        self.found += 1
        expected = self.classes[truth]
        self.hits["published"] += emotion.label == expected
        self.hits["smoothed"] += emotion.smoothed_label == expected
        for path, label in result.path_labels.items():
            if path in self.path_frames:
                self.path_frames[path] += 1
                self.hits[path] += label == expected

    def progress_line(self) -> str:
        """One line of the run so far, for a terminal: frames, face found, fps, latency, accuracy."""
        parts = [f"frames {self.frames}", f"face {self.valid}"]
        if self.frames > 1:
            seconds = max((self.last_publish - self.first_capture) / 1e9, 1e-9)
            parts.append(f"{(self.frames - 1) / seconds:.1f} fps")
        if len(self.latency["total"]):
            parts.append(f"p50 {percentile(self.latency['total'], 50)} ms")
        if self.found:
            parts.append(f"accuracy {100 * self.hits['published'] / self.found:.1f} %")
        if self.failed:
            parts.append(f"failed {self.failed}")
        return " · ".join(parts)

    def summary(self, stages: dict, skipped: int = 0) -> dict:
        """stages: the supervisor's totals per stage (drops, malformed, errors, restarts); skipped: the
        source's unreadable or unsupported frames and files (pipeline/messages.py: SourceStatus)."""
        result = {"frames": self.frames, "valid": self.valid, "failed": self.failed,
                  "first_failure": self.first_failure}
        if self.frames:
            seconds = (self.last_publish - self.first_capture) / 1e9
            result["seconds"] = round(seconds, 3)
            result["fps"] = round((self.frames - 1) / max(seconds, 1e-9), 2) if self.frames > 1 else None
        result["latency_ms"] = {"p50": percentile(self.latency["total"], 50),
                                "p99": percentile(self.latency["total"], 99)}
        for name in ("between", *TIMED):
            if len(self.latency[name]):
                result["latency_ms"][f"{name}_p50"] = percentile(self.latency[name], 50)
        for key in ("drops", "malformed", "errors", "restarts"):
            result[key] = sum(s.get(key, 0) for s in stages.values())
        result["skipped"] = skipped
        result["driver"] = {"blinks": self.blinks, "events": dict(sorted(self.events.items()))}
        result.update({
            "frames_with_truth": self.with_face + self.no_face,
            "face_found_rate": _rate(self.found, self.with_face),
            "no_face_agreement": _rate(self.no_face_agreed, self.no_face),
            # accuracy on labelled frames where a face was found (each path: where it was classified)
            "published_from": self.published_from,
            "accuracy_published": _rate(self.hits["published"], self.found),
            "accuracy_translated": _rate(self.hits["translated"], self.path_frames["translated"]),
            "accuracy_render": _rate(self.hits["render"], self.path_frames["render"]),
            "accuracy_crop": _rate(self.hits["crop"], self.path_frames["crop"]),
            "accuracy_smoothed": _rate(self.hits["smoothed"], self.found),
        })
        return result


def summarize(results, stages: dict, classes, skipped: int = 0) -> dict:
    tally = Tally(classes)
    for result in results:
        tally.add(result)
    return tally.summary(stages, skipped)


def _rate(hits, total):
    return round(hits / total, 4) if total else None


def describe(summary: dict) -> str:
    """A few human lines for the end of a run."""
    lat = summary["latency_ms"]
    lines = [f"frames {summary['frames']} (face found in {summary['valid']}), "
             f"{summary.get('fps')} fps, latency p50 {lat['p50']} ms / p99 {lat['p99']} ms",
             f"drops {summary['drops']}, malformed {summary['malformed']}, errors {summary['errors']}, "
             f"restarts {summary['restarts']}, skipped {summary['skipped']}"]
    if summary.get("failed"):
        lines.append(f"{summary['failed']} frames failed in a stage; the first: {summary['first_failure']}")
    driver = summary.get("driver")
    if driver:
        events = ", ".join(f"{kind} {n}" for kind, n in driver["events"].items()) or "none"
        lines.append(f"driver monitor: {driver['blinks']} blinks; events started: {events}")
    if summary.get("frames_with_truth"):
        lines.append(f"accuracy vs ground truth on {summary['frames_with_truth']} frames: "
                     f"published ({summary.get('published_from') or '-'}) {summary['accuracy_published']}, "
                     f"translated (with UIT) {summary['accuracy_translated']}, "
                     f"render {summary['accuracy_render']}, "
                     f"crop (aligned frame) {summary.get('accuracy_crop')}, "
                     f"smoothed {summary['accuracy_smoothed']}; face found {summary['face_found_rate']}")
    return "\n".join(lines)
