"""An HTML picture of a run: `python -m pipeline.report RECORD [--out RECORD/report.html]`.

From a recording (`run_pipeline.py --record RECORD`): the run's figures as its summary gives them
(frames, fps, latency, accuracy of every path against the recording's ground truth), the labels over
time against the truth, the latency of every stage, the confusion of the published label, and the
driver monitor's events. One self-contained file (charts inlined as PNG), for a browser or a mail.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import json
import sys
from pathlib import Path

import numpy as np

from pipeline import truth as truth_io
from pipeline.fusion import PATHS
from pipeline.messages import DecodeError, Emotion, Result, decode_published
from pipeline.summary import Tally
from pipeline.truth import NO_FACE

STAGE_ORDER = ("capture", "face", "translate", "classify", "decide", "total")


def load_run(record: Path):
    """(emotion messages in frame order, events as dicts, truth {frame: class index}) of a recording;
    a line that does not decode is skipped."""
    emotions = []
    for line in (record / "emotion.jsonl").read_text().splitlines():
        try:
            message = decode_published(line.encode())
        except DecodeError:
            continue
        if isinstance(message, Emotion):
            emotions.append(message)
    emotions.sort(key=lambda m: m.frame_id)
    events_file = record / "event.jsonl"
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()] \
        if events_file.is_file() else []
    frames_index = record / "frames" / "frames.jsonl"
    truth = truth_io.load(frames_index) if frames_index.is_file() else {}
    return emotions, events, truth


def tally_of(emotions, truth: dict, classes) -> Tally:
    """The same figures the run's own summary gave (pipeline/summary.py), from the recorded messages."""
    tally = Tally(classes)
    for message in emotions:
        labels = {path: max(probs, key=probs.get) for path, probs in (message.paths or {}).items()
                  if path in PATHS and probs} if message.valid else {}
        tally.add(Result(message, truth.get(message.frame_id), labels))
    return tally


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def charts(emotions, truth: dict, classes) -> dict[str, str]:
    """{name: PNG data URI}: labels over time, latency per stage, the published label's confusion."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    seconds = np.array([(m.t_media_ns if m.t_media_ns is not None else m.t_capture_ns) for m in emotions], float)
    seconds = (seconds - seconds[0]) / 1e9 if len(seconds) else seconds
    index = {name: i for i, name in enumerate(classes)}
    fig, ax = plt.subplots(figsize=(10, 3.2))
    rows = (("truth", [truth.get(m.frame_id) for m in emotions], "#2a9d8f", 10, 0.0),   # offsets: all three show
            ("published", [index.get(m.label) if m.valid else None for m in emotions], "#e76f51", 5, 0.2),
            ("smoothed", [index.get(m.smoothed_label) for m in emotions], "#264653", 3, -0.2))
    for name, values, colour, size, offset in rows:
        points = [(t, v + offset) for t, v in zip(seconds, values) if v is not None and v != NO_FACE]
        if points:
            ax.scatter(*zip(*points), s=size, color=colour, label=name)
    no_face = [t for t, m in zip(seconds, emotions) if not m.valid]
    if no_face:
        ax.scatter(no_face, [-1] * len(no_face), s=4, color="#999999", label="no face / invalid")
    ax.set_yticks(range(-1, len(classes)), ["-", *classes])
    ax.set_xlabel("seconds")
    ax.legend(loc="upper right", fontsize=7, ncol=4)
    ax.set_title("labels over time", fontsize=10)
    fig.tight_layout()
    out["timeline"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 3.2))
    stages = [s for s in STAGE_ORDER if any(s in m.latency_ms for m in emotions)]
    ax.boxplot([[m.latency_ms[s] for m in emotions if s in m.latency_ms] for s in stages], showfliers=False)
    ax.set_xticks(range(1, len(stages) + 1), stages)
    ax.set_ylabel("ms")
    ax.set_title("latency per stage (capture to publish: total)", fontsize=10)
    fig.tight_layout()
    out["latency"] = _png(fig)

    counts = np.zeros((len(classes), len(classes)), int)
    for m in emotions:
        t = truth.get(m.frame_id)
        if m.valid and t is not None and t != NO_FACE and m.label in index:
            counts[t, index[m.label]] += 1
    fig, ax = plt.subplots(figsize=(5, 4.4))
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("published")
    ax.set_ylabel("truth")
    for i in range(len(classes)):
        for j in range(len(classes)):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_title("published label vs truth", fontsize=10)
    fig.tight_layout()
    out["confusion"] = _png(fig)
    return out


def _table(rows, header=None) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def render(record: Path, classes=None) -> str:
    emotions, events, truth = load_run(record)
    if not emotions:
        raise ValueError(f"{record}: no emotion messages in emotion.jsonl")
    classes = tuple(classes or next(iter(m.probs for m in emotions if m.probs), None) or ())
    summary = tally_of(emotions, truth, classes).summary({})
    figures = [("source", emotions[0].source), ("frames", summary["frames"]), ("face found", summary["valid"]),
               ("failed in a stage", summary["failed"]), ("seconds", summary.get("seconds")),
               ("fps", summary.get("fps")), ("latency p50 / p99 ms",
                                             f"{summary['latency_ms']['p50']} / {summary['latency_ms']['p99']}")]
    accuracy = [(name, summary.get(f"accuracy_{key}")) for name, key in
                (("published (" + str(summary.get("published_from") or "-") + ")", "published"),
                 ("smoothed", "smoothed"), ("translated (with UIT)", "translated"), ("render", "render"),
                 ("crop (aligned frame)", "crop"))]
    started = [e for e in events if e.get("state") == "start"]
    event_rows = [(e.get("frame_id"), e.get("kind"), e.get("cause") or "", e.get("confidence")) for e in started]
    pictures = charts(emotions, truth, classes)
    style = ("body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;"
             "margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 9px;text-align:left}"
             "h2{margin-top:28px}img{max-width:100%}")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>ExprADA run: {html.escape(str(record))}"
             f"</title><style>{style}</style></head><body>",
             f"<h1>ExprADA run</h1><p>{html.escape(str(record))}</p>",
             "<h2>Run</h2>", _table(figures),
             f"<h2>Accuracy against the recording's truth ({summary['frames_with_truth']} frames)</h2>",
             _table([(n, "-" if v is None else f"{100 * v:.1f} %") for n, v in accuracy], ("path", "accuracy")),
             f"<img id='timeline' alt='labels over time' src='{pictures['timeline']}'>",
             "<h2>Latency</h2>", f"<img id='latency' alt='latency per stage' src='{pictures['latency']}'>",
             "<h2>Confusion</h2>", f"<img id='confusion' alt='confusion' src='{pictures['confusion']}'>",
             f"<h2>Driver monitor: {len(started)} events, {summary['driver']['blinks']} blinks</h2>",
             _table(event_rows, ("frame", "event", "cause", "confidence")) if event_rows else "<p>no events</p>",
             "</body></html>"]
    return "\n".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("record", help="a folder written by run_pipeline.py --record")
    p.add_argument("--out", help="the HTML file (default: RECORD/report.html)")
    args = p.parse_args(argv)
    record = Path(args.record)
    if not (record / "emotion.jsonl").is_file():
        print(f"exprada report: {record} holds no recording (emotion.jsonl, from run_pipeline.py --record)",
              file=sys.stderr)
        return 2
    try:
        page = render(record)
    except ValueError as error:
        print(f"exprada report: {error}", file=sys.stderr)
        return 2
    out = Path(args.out or record / "report.html")
    out.write_text(page)
    print(json.dumps({"report": str(out), "bytes": len(page)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
