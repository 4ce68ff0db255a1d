"""The driver monitor on held-out synthetic drives: `python -m benchmarks.driver_monitor`, one JSON line.

Each seed gives a drive of a new driver (`python -m train synth`, seeds no setting was chosen on)
with scripted blinks, eye-only gaze shifts, short look-aways (mirror checks, phone glances), long
distractions and long eye closures, every one in drive.json; one more seed gives an attentive drive
(`--attentive-seconds`, default 10 minutes: blinks, gaze shifts, mirror checks, a calm head, nothing
a monitor should alert on) and a drowsy one (closures adding up to a high PERCLOS). Every drive
replays through the staged pipeline (`--fast`; decisions follow the drive's own clock, so pace
changes nothing) with the shipped models and the default settings, and its stream is scored against
the truth:

  eyes_closed_precision/recall   per frame: closed_prob ≥ 0.5 against lids ≥ half shut
  blink_precision/recall         blinks published (driver.blink) against scripted blinks, matched by overlap;
  blink_duration_error_ms        …and the matched ones' duration, published − the time the scripted lids
                                 were at least half shut (mean, mean |·|)
  gaze_error_deg                 camera-terms gaze (head and eyes) against the truth, eyes open: median, mean
  eye_in_head_error_deg          the eye-in-head part alone
  head_pose_mae_deg              yaw, pitch, roll
  distraction_precision/recall   `distraction` events against scripted episodes ≥ 3 s;
  distraction_latency_s          event time − (episode start + 3 s): mean, max
  microsleep_precision/recall    `microsleep` events against scripted closures ≥ 1 s; latency likewise
  false_resets                   a calibrated driver calibrated anew although nobody changed
  false_alerts_per_hour          attentive drive: distraction, time_sharing, microsleep, drowsiness starts
  drowsy                         drowsy drive: when a `drowsiness` (PERCLOS) event started
  driver_change                  each pair of scripted drives joined (70 s of one driver, then 30 s of
                                 the next, no empty seat between): seconds until the monitor calibrates
                                 anew, from the other identity alone (None: not noticed)
Every figure over the scripted drives is mean ± std over the seeds. Writes OUT/driver_monitor.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.cli import exit_status
from face.outputs import writable_folder
from face.ranges import at_least
from pipeline.config import PipelineConfig
from pipeline.demo import REPO, writer_digest
from pipeline.dms import DmsSettings
from train.eval_metrics import mean_std as sample_mean_std

SCRIPTED = ("--blinks-per-minute", "15", "--gaze-shifts-per-minute", "6", "--look-aways", "8",
            "--distractions", "4", "--eye-closures", "5", "--head-sway", "0.4")
ATTENTIVE = ("--blinks-per-minute", "15", "--gaze-shifts-per-minute", "6", "--look-aways", "20",
             "--head-sway", "0.4")
DROWSY = ("--blinks-per-minute", "20", "--eye-closures", "14", "--head-sway", "0.4")
ALERT_KINDS = ("distraction", "time_sharing", "microsleep", "drowsiness")
MATCH_SLACK_S = 0.1    # a published blink may start or end this far outside the scripted one
CHANGE_AFTER_S = 70.0   # driver_change: the first driver's share (calibrated after 60 s)


# ---- drives ---------------------------------------------------------------------------------------

def write_drive(folder: Path, seed: int, seconds: float, script) -> Path:
    """drive.mp4 (+ drive.json) of one synthetic driver, written unless the same code and options
    already wrote it into `folder`."""
    options = ["--seed", str(seed), "--video-seconds", str(seconds), *script]
    key = hashlib.sha256((writer_digest() + " ".join(options)).encode()).hexdigest()
    stamp, video = folder / "drive.key", folder / "drive.mp4"
    if video.is_file() and stamp.is_file() and stamp.read_text() == key:
        return video
    command = [sys.executable, "-m", "train", "synth", "--out", str(folder), "--per-class", "0",
               "--target-per-class", "0", "--drivers", "1", "--no-progress", *options]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: `{' '.join(command)}` failed:\n{done.stderr[-2000:]}")
    stamp.write_text(key)
    return video


def replay(video: Path, settings: DmsSettings) -> list:
    """Every Result of the staged pipeline's fast replay of `video`, in frame order."""
    from pipeline import supervisor

    results = []
    config = PipelineConfig(source=str(video), fast=True, dms=settings, publish=f"ipc:///tmp/dms-bench-{time.time_ns()}")
    summary = supervisor.run(config, on_message=results.append)
    if summary.get("error"):
        raise SystemExit(f"error: the pipeline stopped on {video}: {summary['error']}")
    return sorted(results, key=lambda r: r.emotion.frame_id)


# ---- scoring --------------------------------------------------------------------------------------

def _seconds(ns: int) -> float:
    return ns / 1e9


def _rate(hits: int, total: int):
    return hits / total if total else None


def _angle(a, b) -> float:
    """Degrees between two (yaw, pitch) directions."""
    def vector(yaw, pitch):
        yaw, pitch = np.radians(yaw), np.radians(pitch)
        return np.array([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    return float(np.degrees(np.arccos(np.clip(vector(*a) @ vector(*b), -1.0, 1.0))))


def match(found, truth, slack: float):
    """Greedy one-to-one matching of intervals (start, end) that overlap within `slack` seconds:
    [(found index, truth index)]."""
    pairs, taken = [], set()
    for i, (start, end) in enumerate(found):
        for j, (t_start, t_end) in enumerate(truth):
            if j not in taken and start < t_end + slack and t_start < end + slack:
                pairs.append((i, j))
                taken.add(j)
                break
    return pairs


def score_frames(results, truth: dict) -> dict:
    """Per-frame figures: eyes closed, gaze, head pose."""
    closed_tp = closed_fp = closed_fn = 0
    gaze, eye, pose = [], [], []
    for result in results:
        frame = truth["frames"][result.emotion.frame_id]
        driver, face = result.emotion.driver, result.emotion.face
        if not frame.get("face") or face is None or driver is None:
            continue
        pose.append([abs(face.yaw - frame["yaw"]), abs(face.pitch - frame["pitch"]), abs(face.roll - frame["roll"])])
        eyes = driver.eyes
        if eyes is None or eyes.closed_prob is None:
            continue
        shut, said = frame["eyes_closed"] >= 0.5, eyes.closed_prob >= 0.5
        closed_tp += shut and said
        closed_fp += said and not shut
        closed_fn += shut and not said
        if frame["eyes_closed"] < 0.2 and eyes.camera_gaze_yaw is not None and frame.get("camera_gaze") is not None:
            gaze.append(_angle((eyes.camera_gaze_yaw, eyes.camera_gaze_pitch), frame["camera_gaze"]))
            eye.append(_angle((eyes.gaze_yaw, eyes.gaze_pitch), frame["gaze"]))
    pose = np.array(pose) if pose else np.zeros((0, 3))
    return {"eyes_closed_precision": _rate(closed_tp, closed_tp + closed_fp),
            "eyes_closed_recall": _rate(closed_tp, closed_tp + closed_fn),
            "gaze_error_deg_median": float(np.median(gaze)) if gaze else None,
            "gaze_error_deg_mean": float(np.mean(gaze)) if gaze else None,
            "eye_in_head_error_deg_median": float(np.median(eye)) if eye else None,
            "head_pose_mae_deg": dict(zip(("yaw", "pitch", "roll"), pose.mean(axis=0).round(2).tolist()))
            if len(pose) else None}


def with_face(episode: dict, truth: dict) -> bool:
    """The scripted episode happened while the driver was in view (no empty-seat moment over it)."""
    return all(f.get("face") for f in truth["frames"] if episode["start"] <= f["time"] < episode["end"])


def half_shut_s(event: dict, truth: dict) -> float:
    """Seconds of an eye event during which the scripted lids were at least half shut."""
    frames = [f for f in truth["frames"] if event["start"] <= f["time"] < event["end"]]
    return sum(f["eyes_closed"] >= 0.5 for f in frames) / truth["fps"]


def score_blinks(results, truth: dict) -> dict:
    found = [(_seconds(r.emotion.driver.blink.t_start_ns), _seconds(r.emotion.driver.blink.t_end_ns))
             for r in results if r.emotion.driver and r.emotion.driver.blink]
    blinks = [e for e in truth["eye_events"] if e["kind"] == "blink" and with_face(e, truth)]
    scripted = [(e["start"], e["end"]) for e in blinks]
    pairs = match(found, scripted, MATCH_SLACK_S)
    # A published blink lasts while the eyes read closed (below half open): compare it with the time
    # the scripted lids were at least half shut, not with their whole travel.
    half_shut = [half_shut_s(e, truth) for e in blinks]
    errors = [1e3 * ((found[i][1] - found[i][0]) - half_shut[j]) for i, j in pairs]
    return {"blinks_scripted": len(scripted), "blinks_published": len(found),
            "blink_precision": _rate(len(pairs), len(found)), "blink_recall": _rate(len(pairs), len(scripted)),
            "blink_duration_error_ms_mean": float(np.mean(errors)) if errors else None,
            "blink_duration_error_ms_abs": float(np.mean(np.abs(errors))) if errors else None}


def events_of(results, kind: str, cause=None) -> list:
    return [e for r in results for e in r.events if e.kind == kind and e.state == "start"
            and (cause is None or e.cause == cause)]


def score_episodes(starts, episodes, after_s: float, name: str) -> dict:
    """Events (their starts) against scripted episodes that last at least `after_s`: an event that
    starts inside an episode (or within 1 s of its end) detects it; latency from the episode's
    start + after_s to the event's decision."""
    positives = [e for e in episodes if e["end"] - e["start"] >= after_s]
    found, latencies, matched = 0, [], set()
    for event in starts:
        t = _seconds(event.t_ns)
        hit = next((j for j, e in enumerate(positives) if j not in matched and e["start"] <= t <= e["end"] + 1.0), None)
        if hit is not None:
            matched.add(hit)
            found += 1
            latencies.append(t - (positives[hit]["start"] + after_s))
    return {f"{name}_scripted": len(positives), f"{name}_events": len(starts),
            f"{name}_precision": _rate(found, len(starts)), f"{name}_recall": _rate(found, len(positives)),
            f"{name}_latency_s_mean": float(np.mean(latencies)) if latencies else None,
            f"{name}_latency_s_max": float(np.max(latencies)) if latencies else None}


def score_scripted(results, truth: dict, settings: DmsSettings) -> dict:
    figures = score_frames(results, truth) | score_blinks(results, truth)
    distractions = [e for e in truth.get("distractions", []) if with_face(e, truth)]
    figures |= score_episodes(events_of(results, "distraction"), distractions, settings.distraction_s, "distraction")
    closures = [e for e in truth["eye_events"] if e["kind"] == "closure" and with_face(e, truth)]
    figures |= score_episodes(events_of(results, "microsleep"), closures, settings.microsleep_s, "microsleep")
    return figures


def resets(results) -> list[int]:
    """Frames on which a calibrated driver went back to calibrating."""
    states = [(r.emotion.frame_id, r.emotion.driver.state) for r in results if r.emotion.driver]
    return [i for (_, a), (i, b) in zip(states, states[1:]) if a == "calibrated" and b == "calibrating"]


def joined(first: Path, second: Path, out: Path, first_s: float, second_s: float) -> Path:
    """A video of `first_s` of one drive and then `second_s` of another (the same camera size and
    rate), as if the drivers swapped without leaving the camera's view."""
    import cv2

    out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for video, seconds in ((first, first_s), (second, second_s)):
        capture = cv2.VideoCapture(str(video))
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        for _ in range(int(round(seconds * fps))):
            ok, frame = capture.read()
            if not ok:
                break
            if writer is None:
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
            writer.write(frame)
        capture.release()
    writer.release()
    return out


def alerts(results) -> dict:
    return {kind: len(events_of(results, kind)) for kind in ALERT_KINDS}


# ---- the run --------------------------------------------------------------------------------------

def mean_std(values):
    """[mean, sample std] of the values given (None: not measured on that drive), or None."""
    values = [v for v in values if v is not None]
    return [round(v, 4) for v in sample_mean_std(values)] if values else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[601, 602, 603], help="scripted drives' seeds (held out)")
    p.add_argument("--seconds", type=at_least(1, float), default=120.0, help="length of each scripted drive")
    p.add_argument("--attentive-seed", type=int, default=611)
    p.add_argument("--attentive-seconds", type=at_least(0, float), default=600.0, help="the attentive drive (0: none)")
    p.add_argument("--drowsy-seconds", type=at_least(0, float), default=120.0, help="the drowsy drive (0: none)")
    p.add_argument("--out", type=Path, default=REPO / "cache" / "benchmarks" / "driver_monitor")
    args = p.parse_args(argv)
    writable_folder(args.out, f"--out {args.out}")   # before the drives are written and read
    settings = DmsSettings()
    started = time.perf_counter()
    per_seed, videos = {}, {}
    for seed in args.seeds:
        video = write_drive(args.out / f"scripted-{seed}", seed, args.seconds, SCRIPTED)
        results = replay(video, settings)
        per_seed[seed] = score_scripted(results, json.loads(video.with_suffix(".json").read_text()), settings)
        per_seed[seed]["false_resets"] = len(resets(results))
        videos[seed] = video
        print(json.dumps({"seed": seed, **per_seed[seed]}), file=sys.stderr, flush=True)
    keys = [k for k, v in next(iter(per_seed.values())).items() if isinstance(v, (int, float)) or v is None]
    report = {"benchmark": "driver_monitor", "seeds": args.seeds, "drive_seconds": args.seconds,
              "scripted": {k: mean_std([per_seed[s][k] for s in args.seeds]) for k in keys},
              "head_pose_mae_deg": {axis: mean_std([(per_seed[s]["head_pose_mae_deg"] or {}).get(axis) for s in args.seeds])
                                    for axis in ("yaw", "pitch", "roll")},
              "per_seed": per_seed}
    changes = []
    for a, b in zip(args.seeds, args.seeds[1:] + args.seeds[:1]):
        if a == b or args.seconds < CHANGE_AFTER_S:
            continue
        video = joined(videos[a], videos[b], args.out / f"change-{a}-{b}.mp4", CHANGE_AFTER_S, args.seconds - CHANGE_AFTER_S)
        results = replay(video, settings)
        fps = len(results) / args.seconds
        after = [i for i in resets(results) if i >= CHANGE_AFTER_S * fps]
        before = [i for i in resets(results) if i < CHANGE_AFTER_S * fps]
        changes.append({"from": a, "to": b, "false_resets_before": len(before),
                        "noticed_after_s": round(after[0] / fps - CHANGE_AFTER_S, 2) if after else None})
    report["driver_change"] = changes
    if args.attentive_seconds > 0:
        video = write_drive(args.out / f"attentive-{args.attentive_seed}", args.attentive_seed, args.attentive_seconds,
                            ATTENTIVE)
        counts = alerts(replay(video, settings))
        hours = args.attentive_seconds / 3600
        report["attentive"] = {"seconds": args.attentive_seconds, "alerts": counts,
                               "false_alerts_per_hour": round(sum(counts.values()) / hours, 2)}
    if args.drowsy_seconds > 0:
        video = write_drive(args.out / f"drowsy-{args.attentive_seed}", args.attentive_seed, args.drowsy_seconds, DROWSY)
        results = replay(video, settings)
        perclos = [r.emotion.driver.perclos for r in results if r.emotion.driver and r.emotion.driver.perclos is not None]
        starts = events_of(results, "drowsiness", "perclos")
        report["drowsy"] = {"seconds": args.drowsy_seconds, "drowsiness_events": len(starts),
                            "first_at_s": round(_seconds(starts[0].t_ns), 2) if starts else None,
                            "perclos_max": max(perclos) if perclos else None}
    scripted = report["scripted"]
    report["goals"] = {
        "blink_recall_0.9_at_precision_0.9": bool(scripted["blink_recall"] and scripted["blink_recall"][0] >= 0.9
                                                  and scripted["blink_precision"][0] >= 0.9),
        "no_false_distraction_attentive": report.get("attentive", {}).get("alerts", {}).get("distraction") == 0,
        "every_distraction_within_0.5_s": all(
            per_seed[s]["distraction_recall"] == 1.0 and (per_seed[s]["distraction_latency_s_max"] or 0) <= 0.5
            for s in args.seeds)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "driver_monitor.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
