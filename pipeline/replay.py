"""Replay a recording and compare: `python -m pipeline.replay RECORD [--generator G] [--classifier C]`.

A recording made with `run_pipeline.py --record RECORD` holds the raw frames and every message the
run published. This pushes those frames through the pipeline again — with the same models, or with
new ones to see what a change does — and compares every emotion and event message with the recorded
one, field by field, timing aside (clocks, latencies and the source's name differ from run to run;
numbers agree within --atol). As openpilot's process replay does for its models: a code or model
change that should change nothing must replay to the same messages, and one that should change
something shows where.

Prints one JSON line: frames compared, frames that differ, how often each field differs (e.g.
`label`, `probs.happiness`, `driver.state`), the first differences, the events of each run by kind.
Exit status: 0 the replay matches, 1 it differs, 2 bad input (no recording there).
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
from collections import Counter
from pathlib import Path

from pipeline.config import DEFAULT_CLASSIFIER, DEFAULT_GENERATOR, PipelineConfig
from pipeline.messages import Emotion, Event, to_builtins
from face.outputs import writable_folder
from face.ranges import at_least
from pipeline.record import read_messages

TIMING = {"t_capture_ns", "t_publish_ns", "latency_ms", "source"}   # what differs from run to run anyway
EXIT_SAME, EXIT_DIFFERENT, EXIT_BAD_INPUT = 0, 1, 2
SHOWN = 20   # differences listed in full


def differences(recorded, replayed, atol: float, path: str = "") -> list[tuple[str, object, object]]:
    """(field path, recorded, replayed) for every leaf that differs; timing fields aside, numbers
    within atol agree."""
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        out = []
        for key in sorted(set(recorded) | set(replayed)):
            if key in TIMING and not path:
                continue
            out += differences(recorded.get(key), replayed.get(key), atol, f"{path}.{key}" if path else key)
        return out
    if isinstance(recorded, list) and isinstance(replayed, list) and len(recorded) == len(replayed):
        return [d for i, (a, b) in enumerate(zip(recorded, replayed))
                for d in differences(a, b, atol, f"{path}[{i}]")]
    numbers = (int, float)
    if (isinstance(recorded, numbers) and isinstance(replayed, numbers) and not isinstance(recorded, bool)
            and not isinstance(replayed, bool)):
        return [] if abs(recorded - replayed) <= atol else [(path, recorded, replayed)]
    same = recorded == replayed and isinstance(recorded, bool) == isinstance(replayed, bool)   # True is not 1
    return [] if same else [(path, recorded, replayed)]


def free_local_endpoint() -> str:
    """A loopback TCP endpoint no one uses now: the replay's stream is for no one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def read_recorded(path: Path, kind) -> tuple[list[dict], int]:
    """The `kind` messages of a recorded .jsonl as plain dicts, and the count of lines skipped as damaged."""
    messages, malformed = read_messages(path, kind)
    return [to_builtins(m) for m in messages], malformed


def compare(recorded: list[dict], replayed: list[dict], atol: float) -> dict:
    """The emotion messages of two runs, matched by frame_id."""
    before = {m["frame_id"]: m for m in recorded}
    after = {m["frame_id"]: m for m in replayed}
    fields, shown, differing = Counter(), [], 0
    for frame_id in sorted(set(before) & set(after)):
        found = differences(before[frame_id], after[frame_id], atol)
        if found:
            differing += 1
        for field, old, new in found:
            fields[field] += 1
            if len(shown) < SHOWN:
                shown.append({"frame_id": frame_id, "field": field, "recorded": old, "replayed": new})
    return {"frames_recorded": len(before), "frames_replayed": len(after),
            "missing": sorted(set(before) - set(after))[:SHOWN], "extra": sorted(set(after) - set(before))[:SHOWN],
            "frames_differing": differing, "fields": dict(fields.most_common()), "first": shown}


def replay(record: Path, config: PipelineConfig) -> tuple[list[dict], list[dict], dict]:
    """Run RECORD/frames through the pipeline (its threads in this process, replay mode, lossless);
    (emotion messages, event messages, summary)."""
    from pipeline import supervisor

    with tempfile.TemporaryDirectory(prefix="exprada-replay-") as folder:
        config.source, config.record, config.fast, config.single_process = str(record / "frames"), folder, True, True
        summary = supervisor.run(config)
        return (read_recorded(Path(folder) / "emotion.jsonl", Emotion)[0],
                read_recorded(Path(folder) / "event.jsonl", Event)[0], summary)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("record", help="a folder written by run_pipeline.py --record")
    p.add_argument("--generator", default=DEFAULT_GENERATOR, help="UIT generator model (default: %(default)s)")
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER, help="classifier model (default: %(default)s)")
    p.add_argument("--engine", default="onnxruntime", choices=("onnxruntime", "torch", "tensorrt"))
    p.add_argument("--publish-label", default=PipelineConfig.publish_mode,
                   help="the published label's mode, as the recorded run had it (default: %(default)s)")
    p.add_argument("--face-workers", type=at_least(1), default=PipelineConfig.face_workers,
                   help="face replicas, as the recorded run had them: each tracks every other frame "
                        "(default: %(default)s)")
    p.add_argument("--publish", help="where the replay publishes (default: a free local port)")
    p.add_argument("--atol", type=at_least(0, float), default=1e-3, help="numbers within this agree (default: %(default)s)")
    p.add_argument("--out", help="also write the comparison JSON here")
    args = p.parse_args(argv)
    record = Path(args.record)
    if args.out:
        try:
            writable_folder(Path(args.out).parent, f"--out {args.out}")
        except ValueError as error:   # said now, not after the whole replay
            print(f"exprada replay: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
    recorded, damaged = read_recorded(record / "emotion.jsonl", Emotion)
    recorded_events, damaged_events = read_recorded(record / "event.jsonl", Event)
    if not (record / "frames").is_dir() or not recorded:
        print(f"exprada replay: {record} holds no recording (frames/ and emotion.jsonl, from run_pipeline.py "
              f"--record)", file=sys.stderr)
        return EXIT_BAD_INPUT
    config = PipelineConfig(generator=args.generator, classifier=args.classifier, engine=args.engine,
                            publish_mode=args.publish_label, face_workers=args.face_workers,
                            publish=args.publish or free_local_endpoint())
    try:
        emotions, events, summary = replay(record, config)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"exprada replay: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = {"record": str(record), "generator": args.generator, "classifier": args.classifier,
              **compare(recorded, emotions, args.atol),
              "damaged_lines": damaged + damaged_events,   # skipped in the recording: their frames show as `extra`
              "events": {"recorded": dict(Counter(e["kind"] for e in recorded_events if e["state"] == "start")),
                         "replayed": dict(Counter(e["kind"] for e in events if e["state"] == "start"))},
              "accuracy_published": summary.get("accuracy_published")}
    result["same"] = (not result["frames_differing"] and not result["missing"] and not result["extra"]
                      and result["events"]["recorded"] == result["events"]["replayed"])
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return EXIT_SAME if result["same"] else EXIT_DIFFERENT


if __name__ == "__main__":
    sys.exit(main())
