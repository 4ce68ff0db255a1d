"""An HTML picture of a run: `python -m pipeline.report RECORD [--out RECORD/report.html]`, or
`run_pipeline.py --report DIR` at the end of a run.

From a recording (`run_pipeline.py --record RECORD`): the run's figures as its summary gives them
(frames, fps, latency, accuracy of every path against the recording's ground truth), the labels over
time against the truth, a latency histogram per stage, the confusion of the published label, drops
and errors over time, a few frames as the overlay draws them, and the driver monitor's events. One self-contained file (charts inlined as PNG), for a browser or a mail.
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
from pipeline.messages import Emotion, Event, Result, Status, to_builtins
from face.outputs import writable_folder
from pipeline.record import read_messages
from pipeline.stages import TIMED
from pipeline.summary import Tally
from pipeline.truth import NO_FACE

REPORT_NAME = "report.html"
STAGE_ORDER = (*TIMED, "total")


def load_run(record: Path):
    """(emotion messages in frame order, events as dicts, truth {frame: class index}) of a recording;
    a line that does not decode is skipped."""
    emotions = sorted(read_messages(record / "emotion.jsonl", Emotion)[0], key=lambda m: m.frame_id)
    events = [to_builtins(e) for e in read_messages(record / "event.jsonl", Event)[0]]
    frames_index = record / "frames" / "frames.jsonl"
    truth = truth_io.load(frames_index) if frames_index.is_file() else {}
    return emotions, events, truth


def load_statuses(record: Path) -> list[dict]:
    return [to_builtins(s) for s in read_messages(record / "status.jsonl", Status)[0]]


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


def charts(emotions, truth: dict, classes, statuses=()) -> dict[str, str]:
    """{name: PNG data URI}: labels over time, latency per stage, the published label's confusion,
    drops and errors over time (from the status messages)."""
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

    fig, ax = plt.subplots(figsize=(8, 3.2))
    stages = [s for s in STAGE_ORDER if any(s in m.latency_ms for m in emotions)]
    values = {s: np.array([m.latency_ms[s] for m in emotions if s in m.latency_ms]) for s in stages}
    top = max(float(np.percentile(v, 99)) for v in values.values()) if values else 1.0
    bins = np.linspace(0, max(top, 1e-3), 40)
    for stage in stages:
        ax.hist(np.clip(values[stage], 0, bins[-1]), bins=bins, histtype="step", linewidth=1.5,
                label=f"{stage} (p50 {np.median(values[stage]):.1f} ms)")
    ax.set_xlabel("ms (the last bin holds everything beyond the 99th percentile)")
    ax.set_ylabel("frames")
    ax.legend(fontsize=7)
    ax.set_title("latency per stage (total: capture to publish)", fontsize=10)
    fig.tight_layout()
    out["latency"] = _png(fig)

    fig, ax = plt.subplots(figsize=(8, 2.6))
    if statuses:
        t0 = statuses[0]["t_ns"]
        t = [(st["t_ns"] - t0) / 1e9 for st in statuses]
        for key, colour in (("drops", "#e9c46a"), ("errors", "#e76f51"), ("restarts", "#264653")):
            ax.step(t, [sum(stage.get(key, 0) for stage in st["stages"].values()) for st in statuses],
                    where="post", color=colour, label=key)
        ax.legend(fontsize=7)
    ax.set_xlabel("seconds")
    ax.set_ylabel("so far, all stages")
    ax.set_title("drops, errors and restarts over time", fontsize=10)
    fig.tight_layout()
    out["health"] = _png(fig)

    counts = np.zeros((len(classes), len(classes)), int)
    for m in emotions:
        t = truth.get(m.frame_id)
        if m.valid and t is not None and t != NO_FACE and m.label in index:
            counts[t, index[m.label]] += 1
    out["confusion"] = _confusion_png(counts, classes, "published label vs truth")
    return out


def overlay_frames(record: Path, emotions, truth: dict, classes, count: int = 4) -> list[str]:
    """A few recorded frames, evenly through the run, drawn as the overlay draws them (box, labels,
    bars, ground truth; the renders are not recorded): PNG data URIs."""
    import cv2

    from face.imageio import load_image
    from pipeline.overlay import draw
    index = record / "frames" / "frames.jsonl"
    entries = [json.loads(line) for line in index.read_text().splitlines() if line.strip()] if index.is_file() else []
    # (load_run has read this index as the ground truth already, so every line is JSON; an entry
    # without a frame number shows no picture)
    file_of = {e.get("source_index", e["frame"]): record / "frames" / f"{e['frame']:06d}.png" for e in entries
               if isinstance(e, dict) and type(e.get("frame")) is int}
    chosen = [emotions[int(i)] for i in np.linspace(0, len(emotions) - 1, min(count, len(emotions)))]
    out = []
    for message in chosen:
        path = file_of.get(message.frame_id)
        frame = load_image(path) if path is not None else None
        if frame is None:
            continue
        image = draw({"frame": frame}, message, classes, truth.get(message.frame_id))
        image = cv2.resize(image, (480, int(round(image.shape[0] * 480 / image.shape[1]))), interpolation=cv2.INTER_AREA)
        ok, png = cv2.imencode(".png", image)
        if ok:
            out.append("data:image/png;base64," + base64.b64encode(png.tobytes()).decode())
    return out


def _confusion_png(counts, classes, title: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(counts, int).reshape(len(classes), len(classes))
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
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _table(rows, header=None) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


STYLE = ("body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;"
         "margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 9px;text-align:left}"
         "h2{margin-top:28px}img{max-width:100%}")


def _page(title: str, parts) -> str:
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                      f"<style>{STYLE}</style></head><body>", *parts, "</body></html>"])


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def render_fleet(fleet: dict) -> str:
    """The fleet evaluation's page (pipeline/fleet.py): every model set over the fleet, the paired
    comparison, the drives that failed, and one row per drive."""
    names = list(fleet["models"])
    rows = [("drives read", *(fleet[n]["drives"] for n in names)), ("frames", *(fleet[n]["frames"] for n in names)),
            *((f"accuracy {path}", *(_percent(fleet[n][f"accuracy_{path}"]) for n in names))
              for path in ("published", *PATHS)),
            ("published, mean over drives", *(_percent(fleet[n]["accuracy_published_per_drive_mean"]) for n in names)),
            ("latency p50 / p99 ms", *(f"{fleet[n]['latency_ms']['p50']} / {fleet[n]['latency_ms']['p99']}"
                                       for n in names)),
            ("frames failed in a stage", *(fleet[n]["failed"] for n in names)),
            ("driver-monitor events", *(", ".join(f"{k} {v}" for k, v in fleet[n]["events"].items()) or "none"
                                        for n in names))]
    parts = [f"<h1>ExprADA fleet: {fleet['drives']} drives</h1>",
             f"<p>{fleet['evaluated']} evaluated, {fleet['skipped_done']} kept from an earlier run, "
             f"{len(fleet['failed_drives'])} failed; {fleet['seconds']} s on {fleet['workers'] or 'no'} Ray workers</p>",
             _table([(n, m["generator"], m["classifier"]) for n, m in fleet["models"].items()],
                    ("model set", "generator", "classifier")),
             "<h2>Over the fleet</h2>", _table(rows, ("", *names))]
    for metric, p in (fleet.get("paired") or {}).items():
        if p.get("drives"):
            parts += [f"<h2>Candidate − baseline, {html.escape(metric)}, per drive</h2>",
                      _table([("drives", p["drives"]), ("mean", f"{100 * p['mean']:+.2f} points"),
                              ("std", f"{100 * p['std']:.2f} points"),
                              ("95 % interval", f"[{100 * p['ci95'][0]:+.2f}, {100 * p['ci95'][1]:+.2f}] points")])]
    if fleet["failed_drives"]:
        parts += ["<h2>Drives that failed</h2>",
                  _table([(f["drive"], f["error"]) for f in fleet["failed_drives"]], ("drive", "error"))]
    first = fleet[names[0]]
    if first["confusion"]:
        parts += [f"<h2>Confusion ({names[0]})</h2>",
                  f"<img id='confusion' alt='confusion' src='{_confusion_png(first['confusion'], first['classes'], 'published label vs truth, all drives')}'>"]
    per_drive = [(r["drive"], r.get("error") or "", *(
        (f"{r[n]['frames']} / {_percent(r[n]['accuracy_published'])}" if n in r else "-") for n in names))
        for r in fleet["per_drive"]]
    parts += ["<h2>Drives</h2>", _table(per_drive, ("drive", "error", *(f"{n}: frames / published" for n in names)))]
    return _page(f"ExprADA fleet: {fleet['drives']} drives", parts)


def write_fleet_report(fleet: dict, out) -> Path:
    out = Path(out)
    out.write_text(render_fleet(fleet))
    return out


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
    pictures = charts(emotions, truth, classes, load_statuses(record))
    frames = overlay_frames(record, emotions, truth, classes)
    parts = [f"<h1>ExprADA run</h1><p>{html.escape(str(record))}</p>",
             "<h2>Run</h2>", _table(figures),
             f"<h2>Accuracy against the recording's truth ({summary['frames_with_truth']} frames)</h2>",
             _table([(n, _percent(v)) for n, v in accuracy], ("path", "accuracy")),
             f"<img id='timeline' alt='labels over time' src='{pictures['timeline']}'>",
             "<h2>Latency</h2>", f"<img id='latency' alt='latency per stage' src='{pictures['latency']}'>",
             "<h2>Drops and errors</h2>", f"<img id='health' alt='drops and errors' src='{pictures['health']}'>",
             "<h2>Confusion</h2>", f"<img id='confusion' alt='confusion' src='{pictures['confusion']}'>",
             "<h2>Frames</h2>",
             "".join(f"<img class='frame' alt='overlay frame' src='{uri}' style='width:48%;margin:4px'>"
                     for uri in frames) or "<p>no recorded frames</p>",
             f"<h2>Driver monitor: {len(started)} events, {summary['driver']['blinks']} blinks</h2>",
             _table(event_rows, ("frame", "event", "cause", "confidence")) if event_rows else "<p>no events</p>"]
    return _page(f"ExprADA run: {record}", parts)


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
        writable_folder(Path(args.out).parent if args.out else record, f"--out {args.out or record}")
        out = write_report(record, args.out)
    except ValueError as error:
        print(f"exprada report: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"report": str(out), "bytes": out.stat().st_size}))
    return 0


def write_report(record, out=None) -> Path:
    """RECORD's page written to OUT (default RECORD/report.html)."""
    record = Path(record)
    out = Path(out or record / REPORT_NAME)
    out.write_text(render(record))
    return out


if __name__ == "__main__":
    sys.exit(main())
