"""`python -m train renders`: a UIT target set from your own unlabelled NIR drives.

    python -m train renders --input drives/ --out data/target                # every video under drives/
    python -m train renders --input drive.mp4 --out data/target --every 10 --size 64
    python -m train renders --input cabin/ --second-view front/ --out data/target   # a two-camera rig

Every frame of a drive goes through the face stage as the pipeline runs it (tracking, the driver's
identity pooled over the drive); every `--every`-th frame with a face is written:
  OUT/<drive>/fNNNNNN.png        the frontal render: what the car's UIT generator will translate
  OUT/<drive>/fNNNNNN.side.png   its side map
  OUT/<drive>/fNNNNNN.pair.png   for a near-frontal frame (FRONTAL_PAIR), its frontal pair: the
                                 frame's own crop, aligned and masked as the render is — the real
                                 image the render simulates (`exprada --lambda-pair` trains on them)
                                 With --second-view, a frame that has none gets its view pair there
                                 instead: the second camera's crop of the same instant, where that
                                 camera sees the face near-frontal
  OUT/<drive>/fNNNNNN_turn+D.png with --turn-pairs D: beside a paired render, the render of the same
                                 face turned D° further (rotate and render, `write_turned`), its side
                                 map, and the frame's crop as its pair
  OUT/renders.csv                path, drive, frame, fitted yaw/pitch/roll (a turned render's: its
                                 frame's, yaw plus the turn), pair (1/0), turn (degrees, 0 for a render),
                                 view (1/0: the pair is the second view's)
A drive is a video file (.mp4 .avi .mkv .mov .webm) or a folder of frame images in name order. A
drive that cannot be read is skipped, logged and counted; frames without a face are counted.
--second-view mirrors --input: for each drive, the same path under it holds the second camera's
recording of that drive, frame for frame (synchronised: frame i of both is one instant); a drive
without one gets no view pairs, logged and counted.
"""
import argparse
import contextlib
import csv
import json
import logging
from pathlib import Path

import cv2

from face.imageio import load_image, write_image
from face.outputs import writable_folder
from face.ranges import at_least, between

from .datasets import PAIR_SUFFIX, SIDE_MAP_SUFFIX, TURNED, is_image_file, list_images

log = logging.getLogger("train.renders")

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm"})
# A render gets its frame's crop as a frontal pair within ± these fitted degrees: near enough to
# frontal that the crop shows the face where the render puts it.
FRONTAL_PAIR = dict(yaw=15.0, pitch=10.0)


def is_frontal(result) -> bool:
    """Whether a FaceResult's fitted pose is near-frontal enough for a frontal pair."""
    return abs(result.yaw) <= FRONTAL_PAIR["yaw"] and abs(result.pitch) <= FRONTAL_PAIR["pitch"]


def write_with_side_map(folder: Path, name: str, image, side) -> None:
    """NAME.png and its side map NAME.side.png in `folder` (made when missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / f"{name}.png", image)
    write_image(folder / f"{name}{SIDE_MAP_SUFFIX}", side)


def write_pair(folder: Path, name: str, crop) -> None:
    """NAME.pair.png: the real image that the render NAME.png simulates (`exprada --lambda-pair`)."""
    write_image(folder / f"{name}{PAIR_SUFFIX}", crop)


def write_render(folder: Path, name: str, result) -> bool:
    """A FaceResult as a target image: NAME.png (the frontal render), NAME.side.png and, when the
    pose is near-frontal, NAME.pair.png (the frame's crop). Returns whether it has the pair."""
    write_with_side_map(folder, name, result.frontal, result.side_map)
    paired = is_frontal(result)
    if paired:
        write_pair(folder, name, result.crop)
    return paired


def turn_offsets(degrees) -> tuple[float, ...]:
    """`--turn-pairs 20 40` → (-40, -20, 20, 40): each turn to both sides."""
    return tuple(sorted({sign * float(d) for d in degrees for sign in (-1, 1)}))


def add_turn_pairs_option(parser: argparse.ArgumentParser, note: str) -> None:
    """`--turn-pairs DEG …`, as `train renders` and `train synth` both take it."""
    parser.add_argument("--turn-pairs", type=between(1, 90), nargs="+", default=[], metavar="DEG",
                        help="beside each render with a frontal pair, its rotate-and-render renders turned ±DEG "
                             f"further (NAME_turn+DEG.png), each paired with the frame's crop; {note}")


def write_turned(folder: Path, name: str, result, renderer, turns) -> list[str]:
    """Rotate-and-render pairs beside a paired render (its pose near-frontal): for each yaw in `turns`,
    NAME_turn+30.png — the render the same face would give turned that much further
    (face.render.Renderer.turned) — its side map (the render's: the frontal shape is the same) and,
    as its pair, the frame's own crop. They teach the generator the turned render's own losses (the
    mirrored side, the foreshortened texture) where the real image is known. Returns their names
    (NAME_turn+30), in the order of `turns`."""
    names = [f"{name}{TURNED}{yaw:+g}" for yaw in turns]
    for yaw, turned in zip(turns, names):
        write_with_side_map(folder, turned, renderer.turned(result.sampling, yaw), result.side_map)
        write_pair(folder, turned, result.crop)
    return names


def find_drives(path: Path) -> list[Path]:
    """The drives under `path`: a video file, a folder of frames, or a folder of those (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SystemExit(f"error: --input {path}: no such file or folder")
    if any(is_image_file(p) for p in path.iterdir()):
        return [path]
    drives = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    drives += [p for p in sorted(path.rglob("*")) if p.is_dir() and any(is_image_file(q) for q in p.iterdir())]
    if not drives:
        raise SystemExit(f"error: --input {path}: no video ({', '.join(sorted(VIDEO_SUFFIXES))}) or folder of frames in it")
    return drives


def drive_names(drives: list[Path], root: Path) -> list[str]:
    """Each drive's folder in the target set: its path under --input, a video without its suffix, so
    `a/cam.mp4` and `b/cam.mp4` stay apart (a clash left over, as `x.mp4` beside a frame folder `x/`,
    gets `~2`, `~3`)."""
    names, taken = [], set()
    for drive in drives:
        name = drive.relative_to(root) if drive != root else Path(drive.name)
        name = (name.with_suffix("") if drive.is_file() else name).as_posix()
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{name}~{n}"
        taken.add(unique)
        names.append(unique)
    return names


def frames_of(drive: Path):
    """(index, BGR frame) of a video or a folder of frames — the frame None where an image of the
    folder cannot be read; raises ValueError when the video cannot be read at all."""
    if drive.is_dir():
        for index, image_path in enumerate(list_images(drive, recursive=False)):
            yield index, load_image(image_path)
        return
    video = cv2.VideoCapture(str(drive))
    try:
        if not video.isOpened():
            raise ValueError(f"{drive}: not a video OpenCV can read")
        index = 0
        while True:
            ok, frame = video.read()
            if not ok:
                break
            yield index, frame
            index += 1
        if index == 0:
            raise ValueError(f"{drive}: no frame could be decoded")
    finally:
        video.release()


def second_view_of(drive: Path, root: Path, views: Path) -> Path:
    """The second camera's recording of `drive`: the same path under `views` as under --input `root`
    (`views` itself when --input is one drive)."""
    return views if drive == root else views / drive.relative_to(root)


def view_frames(view: Path | None):
    """The second camera's frames, then None for ever: past its end, and throughout where there is no
    recording or it cannot be read (the drive keeps its renders, without view pairs)."""
    read = 0
    try:
        if view is not None:
            for _, frame in frames_of(view):
                read += 1
                yield frame
            if read == 0:
                log.warning("no view pairs from the second view %s: no frame in it", view)
    except ValueError as error:
        log.warning("no view pairs from the second view: %s", error)
    while True:
        yield None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train renders", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="a video, a folder of frames, or a folder of either")
    p.add_argument("--out", required=True, help="output folder (the target set)")
    p.add_argument("--every", type=at_least(1), default=10, help="write every N-th frame with a face (default %(default)s)")
    p.add_argument("--size", type=at_least(32), default=128, help="render size in pixels (default %(default)s)")
    p.add_argument("--model", help="bilinear face model (.npz; default: the shipped one)")
    add_turn_pairs_option(p, "e.g. 20 40")
    p.add_argument("--second-view", metavar="DIR", help="a two-camera rig: the second camera's recordings, laid "
                   "out as --input and synchronised frame for frame; a render without a frontal pair gets the "
                   "second view's crop of the same instant as its pair where that view sees the face near-frontal")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv=None) -> int:
    import face
    from tqdm import tqdm

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    drives = find_drives(Path(args.input))
    names = drive_names(drives, Path(args.input))
    out = Path(args.out)
    views = Path(args.second_view) if args.second_view else None
    if views is not None and not views.exists():
        raise SystemExit(f"error: --second-view {views}: no such file or folder")
    try:   # both before the first drive: a model or a folder that fails later has cost the drives read
        stage = face.FaceStage(size=args.size, video=True, model=args.model)
        # The second camera has a stage of its own: its own tracking, the same driver's identity pooled apart.
        view_stage = face.FaceStage(size=args.size, video=True, model=args.model) if views else None
        writable_folder(out, f"--out {out}")
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    counts = {"drives": len(drives), "bad_drives": 0, "bad_frames": 0, "frames": 0, "no_face": 0, "renders": 0,
              "pairs": 0, "view_pairs": 0, "no_second_view": 0, "turned_pairs": 0}
    turns = turn_offsets(args.turn_pairs)
    rows = []
    with contextlib.ExitStack() as stack:
        for a_stage in filter(None, (stage, view_stage)):
            stack.enter_context(a_stage)
        for drive, name in tqdm(list(zip(drives, names)), desc="drives", disable=not args.progress, unit="drive"):
            stage.reset()   # a new driver: fresh tracking and identity
            view_stream = view_frames(None)
            if view_stage is not None:
                view_stage.reset()
                view = second_view_of(drive, Path(args.input), views)
                if view.exists():
                    view_stream = view_frames(view)
                else:
                    counts["no_second_view"] += 1
                    log.warning("no second view of %s (looked for %s): its renders get no view pairs", drive, view)
            with_face = 0
            try:
                for index, frame in frames_of(drive):
                    view_frame = next(view_stream)   # every frame through the view's stage: it tracks the face
                    seen = view_stage(view_frame) if view_frame is not None else None
                    counts["frames"] += 1
                    if frame is None:
                        counts["bad_frames"] += 1
                        log.warning("skipping unreadable frame %d of %s", index, drive)
                        continue
                    result = stage(frame)
                    if not result:
                        counts["no_face"] += 1
                        continue
                    with_face += 1
                    if (with_face - 1) % args.every:
                        continue
                    image = f"f{index:06d}"
                    paired = write_render(out / name, image, result)
                    viewed = bool(not paired and seen and is_frontal(seen))
                    if viewed:   # the second camera faces the head: its crop is the render's real image
                        write_pair(out / name, image, seen.crop)
                    counts["renders"] += 1
                    counts["pairs"] += paired
                    counts["view_pairs"] += viewed
                    rows.append([f"{name}/{image}.png", name, index, round(result.yaw, 2), round(result.pitch, 2),
                                 round(result.roll, 2), int(paired or viewed), 0, int(viewed)])
                    if paired and turns:
                        turned = write_turned(out / name, image, result, stage.renderer, turns)
                        counts["turned_pairs"] += len(turned)
                        rows += [[f"{name}/{t}.png", name, index, round(result.yaw + yaw, 2), round(result.pitch, 2),
                                  round(result.roll, 2), 1, yaw, 0] for yaw, t in zip(turns, turned)]
            except ValueError as error:
                counts["bad_drives"] += 1
                log.warning("skipping drive %s: %s", drive, error)
    if not rows:
        raise SystemExit(f"error: no face found in any frame of {args.input} ({counts['frames']} frames read)")
    with (out / "renders.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "drive", "frame", "yaw", "pitch", "roll", "pair", "turn", "view"])
        writer.writerows(rows)
    print(json.dumps({"out": str(out), **counts}))
    return 0
