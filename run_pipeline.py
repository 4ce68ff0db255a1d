"""Run the driver-monitoring pipeline: frames → face → UIT translation → classifier → decide → ZeroMQ.

    python run_pipeline.py                                   # the demo: synthetic driver video
    python run_pipeline.py --source /dev/video0              # live NIR camera
    python run_pipeline.py --source drive.mp4 --fast         # replay a recording as fast as possible
    python -m pipeline.subscribe                             # in another terminal: the emotion stream

Ends (end of a replay, --max-frames, Ctrl-C) with a summary: frames, fps, latency, drops, and the
accuracy against the recording's ground truth of the published label, of the translated path (with
UIT), of the untranslated render (without UIT) and of the plain aligned crop of the frame.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from face.outputs import writable_folder
from face.ranges import above, at_least, between
from pipeline.config import DEFAULT_CLASSIFIER, DEFAULT_GENERATOR, DEFAULT_PUBLISH, LAYOUTS, PipelineConfig
from pipeline.dms import describe_settings, parse_settings
from pipeline.fusion import CROP_YAW, FUSION_WEIGHT, POSE_WEIGHT, PUBLISH_MODES
from pipeline.sources import PIXEL_FORMATS

EXIT_ERROR, EXIT_BAD_INPUT = 1, 2
EXIT_CODES = """exit status:
  0    the run ended (end of a replay, --max-frames)
  1    a fatal error stopped the run (the summary's "error" says which), or every frame failed in a
       stage (the summary's "first_failure" says why; frames without a face are no failure)
  2    bad input: a source, model or option that cannot be used; nothing was started
  130  stopped by Ctrl-C (SIGINT)
  143  stopped by SIGTERM

Unreadable or unsupported images in a folder are skipped, each named once on stderr, and counted
(the summary's "skipped"); only a folder in which no image at all can be read is bad input."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="demo", help="demo | /dev/videoN | VIDEO_FILE | IMAGE_FOLDER (default demo)")
    p.add_argument("--engine", default="onnxruntime", choices=("onnxruntime", "torch", "tensorrt"))
    p.add_argument("--generator", default=DEFAULT_GENERATOR,
                   help="UIT generator model, or identity: no translation (the render is its own translation)")
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER, help="expression classifier model")
    p.add_argument("--publish", default=DEFAULT_PUBLISH,
                   help="ZeroMQ PUB endpoint for the emotion, status and event stream (default %(default)s)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --publish address other machines can reach (default: loopback only)")
    p.add_argument("--curve-secret-key", metavar="FILE",
                   help="encrypt the stream with CURVE: the pipeline's .key_secret (python -m pipeline.curve)")
    p.add_argument("--curve-clients", metavar="DIR", help="CURVE: the public keys (*.key) of the subscribers let in")
    p.add_argument("--fast", action="store_true", help="replay files and folders as fast as possible (not paced)")
    p.add_argument("--live", action="store_true", help="latest-frame-wins for any source (cameras always are)")
    p.add_argument("--save-video", metavar="OUT.mp4", help="write the overlay video")
    p.add_argument("--display", action="store_true", help="show the overlay in a window")
    p.add_argument("--record", metavar="DIR", help="keep raw frames and every message for replay tests")
    p.add_argument("--report", metavar="DIR",
                   help="record the run into DIR (as --record) and write DIR/report.html at its end: an HTML page "
                        "of the run (pipeline/report.py)")
    p.add_argument("--max-frames", type=at_least(1), metavar="N", help="stop after N frames")
    p.add_argument("--single-process", action="store_true", help="all stages as threads of one process (inproc)")
    p.add_argument("--layout", choices=LAYOUTS, default="fused",
                   help="fused: face, translate and classify in one process per face worker, two hops fewer: the "
                        "lowest latency and the fastest replay on a few cores (default); staged: each in its own "
                        "process (one process per model, e.g. one GPU context)")
    p.add_argument("--publish-label", default="fusion", choices=PUBLISH_MODES,
                   help="the label published: pose (the three paths pooled log-linearly, the crop's weight "
                        "falling from 1 at yaw 0 to 0 at --crop-yaw), fusion (the translated path and the "
                        "render pooled), or one path alone: translated (classifier on the UIT translation), "
                        "render (on the untranslated frontal render), crop (on the plain aligned crop of the "
                        "frame) (default fusion)")
    p.add_argument("--fusion-weight", type=between(0, 1), default=None, metavar="W",
                   help=f"fusion: the translated path's weight in [0, 1], the render's is 1-W (default "
                        f"{FUSION_WEIGHT:g}); pose: the translated path's share of what the crop leaves "
                        f"(default {POSE_WEIGHT:g})")
    p.add_argument("--crop-yaw", type=above(0), default=CROP_YAW, metavar="DEG",
                   help=f"pose: the |yaw| in degrees from which the crop has no weight (default {CROP_YAW:g})")
    p.add_argument("--published-paths-only", action="store_true",
                   help="classify only the path(s) the published label needs (pose: all three; fusion: "
                        "translated and render; otherwise one: no accuracy figure for the others)")
    p.add_argument("--threads", type=at_least(0), default=1, help="engine threads per stage (default 1)")
    p.add_argument("--face-workers", type=at_least(1), default=min(2, len(os.sched_getaffinity(0))), metavar="N",
                   help="replicas of the face stage (fused: of the whole perceive stage) on alternate frames, "
                        "the costliest stage (default 2; 1 on one core)")
    p.add_argument("--pixel-format", default="auto", choices=("auto", *PIXEL_FORMATS),
                   help="camera FOURCC: GREY or Y16 for NIR sensors (default: the camera's own)")
    p.add_argument("--folder-fps", type=above(0), default=30.0, help="pace of an image folder replay")
    p.add_argument("--max-message-mb", type=at_least(1, float), default=64.0,
                   help="larger messages arriving at a stage are dropped and counted (default 64; a 640×480 "
                        "frame is 0.9 MB)")
    p.add_argument("--stall-timeout", type=at_least(0, float), default=15.0, metavar="S",
                   help="restart a stage that reports nothing for S seconds (0: never; default 15)")
    p.add_argument("--dms", action="append", default=[], metavar="KEY=VALUE",
                   help="a driver-monitor threshold, e.g. --dms distraction_s=2.5 (repeat for more; "
                        "--dms-help lists them with their defaults)")
    p.add_argument("--dms-help", action="store_true", help="list the driver-monitor settings and exit")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line only")
    p.add_argument("--native-logs", action="store_true",
                   help="let mediapipe/TFLite's own log lines through (silenced by default), for debugging")
    p.add_argument("--quiet", action="store_true",
                   help="--json, and stderr only for problems (errors, skipped files, restarts); the demo video too "
                        "is written silently")
    return p.parse_args(argv)


def refuse(message: str) -> SystemExit:
    """Bad input, said on stderr; the exit status is argparse's own for a bad option: 2."""
    print(f"run_pipeline: {message}", file=sys.stderr)
    return SystemExit(EXIT_BAD_INPUT)


def check_outputs(args):
    """Refuse, before anything starts, outputs that could only fail later inside a stage."""
    if bool(args.curve_secret_key) != bool(args.curve_clients):
        raise refuse("CURVE needs both --curve-secret-key and --curve-clients")
    if args.display and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise refuse("--display needs a graphical session (DISPLAY is not set); use --save-video OUT.mp4 instead")
    if args.report and args.record and Path(args.report).resolve() != Path(args.record).resolve():
        raise refuse("--report DIR records into DIR: give --record the same folder or leave it out")
    if args.save_video and (Path(args.save_video).is_dir() or not Path(args.save_video).suffix):
        raise refuse(f"--save-video {args.save_video}: needs a video file name, e.g. overlay.mp4")
    for option, path in (("--save-video", args.save_video), ("--record", args.record), ("--report", args.report)):
        if path:
            try:
                writable_folder(Path(path).parent if option == "--save-video" else path, f"{option} {path}")
            except ValueError as error:
                raise refuse(str(error)) from None
    args.record = args.record or args.report


def config_from(args) -> PipelineConfig:
    check_outputs(args)
    try:
        dms = parse_settings(args.dms)
    except ValueError as error:
        raise refuse(str(error)) from None
    return PipelineConfig(
        source=args.source, fast=args.fast, live=True if args.live else None, engine=args.engine,
        generator=args.generator, classifier=args.classifier, threads=args.threads,
        all_paths=not args.published_paths_only, publish_mode=args.publish_label, fusion_weight=args.fusion_weight,
        crop_yaw=args.crop_yaw,
        publish=args.publish, allow_remote=args.allow_remote, curve_secret_key=args.curve_secret_key,
        curve_clients=args.curve_clients, save_video=args.save_video, display=args.display,
        record=args.record, max_frames=args.max_frames, single_process=args.single_process,
        pixel_format=args.pixel_format, folder_fps=args.folder_fps, max_bytes=int(args.max_message_mb * (1 << 20)),
        stall_timeout_s=args.stall_timeout, face_workers=args.face_workers, layout=args.layout, dms=dms,
        progress=sys.stderr.isatty() and not (args.json or args.quiet))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.dms_help:
        print(describe_settings())
        return 0
    config = config_from(args)
    if args.native_logs:   # read by face/landmarks.py in every stage process (they inherit it)
        os.environ["EXPRADA_NATIVE_LOGS"] = "1"
    from pipeline import supervisor
    from pipeline.sources import SourceError
    from pipeline.summary import describe

    try:
        if args.quiet and config.source == "demo":
            from pipeline.demo import demo_video
            demo_video(quiet=True)   # written now if missing, so the run finds it and says nothing
        summary = supervisor.run(config)
    except (SourceError, FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"run_pipeline: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:   # before the stages started (e.g. while writing the demo video)
        return 128 + signal.SIGINT
    if not (args.json or args.quiet):
        print(describe(summary), file=sys.stderr)
    if args.report and summary.get("frames"):
        from pipeline.report import write_report
        summary["report"] = str(write_report(args.report))
    print(json.dumps({"summary": summary}))
    if summary.get("error"):
        print(f"run_pipeline: {summary['error']}", file=sys.stderr)
    elif every_frame_failed(summary):
        print(f"run_pipeline: every frame failed ({summary['failed']}); the first: {summary['first_failure']}",
              file=sys.stderr)
    return exit_status(summary)


def every_frame_failed(summary: dict) -> bool:
    """A run that published frames, each of them a stage's failure (not frames without a face)."""
    return bool(summary.get("frames")) and summary.get("failed") == summary["frames"]


def exit_status(summary: dict) -> int:
    """An error stopped the run or every frame failed (a signal during the shutdown it caused changes
    nothing); else the signal that stopped it, as a shell reports one (128 + its number); else the
    run ended: 0."""
    if summary.get("error") or every_frame_failed(summary):
        return EXIT_ERROR
    if summary.get("interrupted"):
        return 128 + signal.Signals[summary["interrupted"]]
    return 0


if __name__ == "__main__":
    sys.exit(main())
