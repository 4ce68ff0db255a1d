"""`python -m train synth --out DIR`: synthetic driver data (NIR target and drive, NIR or colour source), deterministic by seed.

Two scenarios (`--scenario`), which differ in the labelled source domain only:
  pose    the source is near-frontal crops from the NIR cabin camera: the only gap between the
          domains is the head pose (the default; the data as it always was)
  camera  the source is near-frontal crops from a visible-light studio camera (colour, studio
          light and backdrop, a consumer camera's tone), like the KDEF / BU-3DFE photos of the
          paper's setting; the same people as in `pose` for the same seed. The target is NIR.

  DIR/source/<expression>/sNNNNN.png   near-frontal 128² face crops (labelled), NIR or colour by
                                        scenario, aligned and masked like the renders (face.crops.face_crop)
  DIR/target/<expression>/tNNNNN.png   face-stage frontal renders of non-frontal frames (labels for
                                        evaluation only): the paper's simulated frontal faces
  NAME.side.png beside every image     its side map
  DIR/target/.../tNNNNN.pair.png       beside a render whose fitted pose is near-frontal (train.renders):
                                        the camera's own crop of that frame, aligned and masked like the
                                        render — the real image the render simulates (`exprada --lambda-pair`)
  DIR/target/.../tNNNNN.pair.png       with --view-pairs, beside every other render too: the face stage's
                                        crop of a second camera facing the head at the same instant (a
                                        two-camera rig's frontal view), aligned and masked like the render
  DIR/target/.../tNNNNN_turn+D.png     with --turn-pairs D: beside a paired render, the render of the
                                        same face turned D° further (rotate and render), paired with
                                        the same crop (train.renders.write_turned)
  DIR/source/.../sNNNNN.as-<expr>.png  with --expression-pairs: the same head, pose and camera in each
                                        other expression (`exprada --mode cgit --lambda-pair`), as KDEF
                                        and BU-3DFE photograph every person in every expression
  DIR/source.csv, DIR/target.csv       path,label,subject,domain per image (subject: the driver,
                                        for splits by person; target labels for evaluation only)
  DIR/drive.mp4, DIR/drive.json        a 640×480 30 fps drive with per-frame ground truth; the
                                        driver-monitoring episodes on request (below)
  DIR/manifest.json                    the scenario, what was asked, what was written, what was
                                        skipped, timings
The drive video and the target domain are the NIR camera's in both scenarios.

The drive's driver-monitoring options (train/synthetic/events.py; all off by default, and then the
drive is as it always was): --blinks-per-minute, --eye-closures, --gaze-shifts-per-minute,
--look-aways, --distractions, --head-sway. With any of them (or --eyeballs) the eyes are drawn as
eyeballs that look around and lids that shut (train/synthetic/eyeballs.py); without, as the texture
paints them, and gaze/camera_gaze are null. Besides the frames' pose and expression, drive.json holds:
  script                     the options the drive was made with (and video_seconds, seed, eyeballs)
  eye_events                 [{kind: blink | closure, start, end}] (seconds)
  gaze_shifts                [{kind: "gaze shift", start, end, gaze_yaw, gaze_pitch}]: eyes only
  look_aways                 [{kind, start, end, yaw, pitch, gaze_yaw, gaze_pitch}]: short head and
                             eye turns off the road, the scripted ones (mirrors, centre console,
                             phone glance) and the head motion's own (kind "glance"); yaw/pitch the
                             head's turn held, gaze_* the eyes' (in the head)
  distractions               [{kind, start, end, yaw, pitch, gaze_yaw, gaze_pitch}]: 3–8 s off the road
and per frame, with a face (else off_road, gaze and camera_gaze are null):
  eyes_closed, eye_event     the blink's or closure's closure 0..1 and kind (the lids also follow
                             the gaze down and up: not counted here)
  gaze                       [yaw, pitch] of the eyes in the head, degrees (null without eyeballs)
  camera_gaze                [yaw, pitch] of the eyes in camera terms: head pose and gaze together,
                             as face.eyes defines it (null without eyeballs)
  gaze_shift                 true during a gaze shift
  look_away, distraction     the kind holding, or null
  off_road                   true while a look-away, glance or distraction holds (its whole span,
                             turning in and out)
Angles follow face.eyes and the head pose: yaw > 0 towards the image's right, pitch > 0 down.
"""
import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from face import bilinear
from face.crops import face_crop
from face.expressions import EXPRESSIONS
from face.imageio import write_image
from face.outputs import writable_folder
from face.ranges import at_least, between
from face.render import Renderer
from face.side_map import side_map
from train.datasets import EXPRESSION_PAIR_SUFFIXES
from train.renders import (add_turn_pairs_option, turn_offsets, write_pair, write_render, write_turned,
                           write_with_side_map)
from train.synthetic import eyeballs as eyeball_model
from train.synthetic import events
from train.synthetic import video as drive
from train.synthetic.camera import NirCamera, VisibleCamera, cabin_background, with_noise_from
from train.synthetic.scene import DriverFactory, Pose, SceneRenderer

FRAME_W, FRAME_H, FPS = 640, 480, 30
SOURCE_POSE = dict(yaw=10.0, pitch=8.0, roll=5.0)     # near-frontal: ± these
TARGET_POSE = dict(yaw=60.0, pitch=20.0, roll=10.0)   # the car's view: ± these
MAX_TRIES = 4  # per target image: a new pose when the face stage finds no face
SCENARIOS = {  # name: what its labelled source domain is (the target is the NIR one in both)
    "pose": "the source is near-frontal crops from the NIR cabin camera, so the domains differ in head "
            "pose only (default)",
    "camera": "the source is near-frontal crops from a visible-light studio camera (colour, studio light, "
              "a consumer camera's tone: like KDEF/BU-3DFE photos), the paper's setting",
}


class SynthWriter:
    def __init__(self, out: Path, seed: int = 0, size: int = 128, drivers: int = 8, model=None,
                 scenario: str = "pose", blinks_per_minute: float = 0.0, eye_closures: int = 0,
                 look_aways: int = 0, gaze_shifts_per_minute: float = 0.0, distractions: int = 0,
                 head_sway: float = 1.0, eyeballs: bool | None = None, target_yaw: float = TARGET_POSE["yaw"],
                 expression_pairs: bool = False, turn_pairs=(), view_pairs: bool = False):
        """The drive options: see the module's docstring. eyeballs: draw the eyes as eyeballs that
        look around (None: when any drive option is not its default). target_yaw: the target images'
        head yaw is drawn from ± this many degrees. expression_pairs: beside each source image, the
        same head, pose and camera in each other expression. turn_pairs: degrees; beside each paired
        target render, its renders turned that much further either way (train.renders.write_turned).
        view_pairs: beside each target render without a frontal pair, the crop of a second camera facing
        the head at the same instant."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
        self.out = Path(out)
        self.size = size
        self.scenario = scenario
        self.target_pose = dict(TARGET_POSE, yaw=float(target_yaw))
        self.model = model if model is not None else bilinear.load()
        self.factory = DriverFactory(self.model)
        self.scene = SceneRenderer(self.model)
        self.renderer = Renderer(self.model, size)
        self.seed = seed
        self.script = dict(blinks_per_minute=blinks_per_minute, eye_closures=eye_closures, look_aways=look_aways,
                           gaze_shifts_per_minute=gaze_shifts_per_minute, distractions=distractions,
                           head_sway=head_sway)
        if eyeballs is None:
            eyeballs = any(value != (1.0 if name == "head_sway" else 0) for name, value in self.script.items())
        self.script["eyeballs"] = bool(eyeballs)
        streams = np.random.SeedSequence(seed).spawn(9)  # spawned in order: each stream as it always was
        self.rng = {name: np.random.default_rng(s) for name, s in
                    zip(("source", "target", "video", "source_drivers", "target_drivers", "source_cameras",
                         "drive_events", "expression_pairs", "view_pairs"), streams)}
        self.expression_pairs = bool(expression_pairs)
        self.turns = turn_offsets(turn_pairs)
        self.view_pairs = bool(view_pairs)
        # Different people in the two domains, as with two datasets.
        self.drivers = {domain: [self._session(self.rng[f"{domain}_drivers"]) for _ in range(drivers)]
                        for domain in ("source", "target")}
        if scenario == "camera":
            # The same people as in the pose scenario, each before a camera of its own stream (their
            # NIR cameras are still drawn above, so that the people do not change with the scenario).
            self.drivers["source"] = [(driver, self.source_camera(self.rng["source_cameras"]))
                                      for driver, _ in self.drivers["source"]]
        self.counts = {"source": 0, "source_expression_pairs": 0, "target": 0, "target_no_face": 0, "target_pairs": 0,
                       "target_view_pairs": 0, "target_turned_pairs": 0, "video_frames": 0}

    def _session(self, rng):
        return self.factory.driver(rng), NirCamera(rng, FRAME_H, FRAME_W)

    def source_camera(self, rng: np.random.Generator):
        """A camera session for the source domain, made from `rng`: the NIR camera (pose scenario)
        or the visible-light studio camera (camera scenario)."""
        if self.scenario == "camera":
            return VisibleCamera(rng, FRAME_H, FRAME_W)
        return NirCamera(rng, FRAME_H, FRAME_W)

    def _exposed(self, rng, driver, camera, w_exp, pose: Pose):
        """One frame before `camera` (its backdrop, its light) and the ground truth. w_exp:
        expression weights, or a function rng → weights, drawn after the backdrop."""
        canvas = camera.backdrop(rng)
        w_exp = w_exp(rng) if callable(w_exp) else w_exp
        truth = self.scene.draw(canvas, driver, w_exp, pose, light=camera.light)
        return camera.expose(canvas, pose.height), dict(truth, w_exp=w_exp)

    def _frame(self, rng, driver, camera, label, pose: Pose):
        return self._exposed(rng, driver, camera, self._expression_of(label), pose)

    def _expression_of(self, label: int):
        """Expression weights for `label`, drawn from the rng a frame is made with (after its backdrop,
        the order the data has always been drawn in)."""
        return lambda rng: self.factory.expression(rng, label)

    def source_crop(self, rng: np.random.Generator, driver, camera, w_exp, pose: Pose):
        """(crop, side map): the source-domain image of `driver` with expression weights `w_exp` at
        `pose`, before `camera` (a NirCamera or a VisibleCamera; source_camera makes the scenario's
        kind), aligned and masked like the frontal renders
        (face.crops.face_crop); both size×size×3 uint8. Random draws (backdrop, noise) from `rng`.
        w_exp may also be a function rng → weights, called after the backdrop is drawn."""
        frame, truth = self._exposed(rng, driver, camera, w_exp, pose)
        crop, crop_landmarks = face_crop(self.renderer, frame, _with_iris(truth["landmarks"]))
        return crop, side_map(crop_landmarks, self.size)

    def target_frame(self, rng: np.random.Generator, driver, camera: NirCamera, w_exp, pose: Pose):
        """(frame, truth): a 640×480 uint8 BGR frame of `driver` in the cabin before the NIR `camera`,
        and its ground truth (`landmarks` 468×2 frame px, `box`, and `w_exp`, the expression weights
        drawn) — what write_target gives the face stage. Random draws from `rng`; w_exp as in source_crop."""
        if not isinstance(camera, NirCamera):
            raise TypeError(f"target frames come from the NIR camera: got a {type(camera).__name__}")
        return self._exposed(rng, driver, camera, w_exp, pose)

    @staticmethod
    def _random_pose(rng, spread) -> Pose:
        return Pose(yaw=float(rng.uniform(-1, 1) * spread["yaw"]), pitch=float(rng.uniform(-1, 1) * spread["pitch"]),
                    roll=float(rng.uniform(-1, 1) * spread["roll"]), cx=float(rng.uniform(280, 360)),
                    cy=float(rng.uniform(200, 260)), height=float(rng.uniform(170, 240)))

    def write_source(self, per_class: int, progress=True):
        rng, records = self.rng["source"], []
        jobs = [(label, i) for label in range(len(EXPRESSIONS)) for i in range(per_class)]
        for label, i in tqdm(jobs, desc="source", disable=not progress, unit="img"):
            d = int(rng.integers(len(self.drivers["source"])))
            driver, camera = self.drivers["source"][d]
            pose = self._random_pose(rng, SOURCE_POSE)
            crop, side = self.source_crop(rng, driver, camera, self._expression_of(label), pose)
            name = f"s{self.counts['source']:05d}"
            folder = self.out / "source" / EXPRESSIONS[label]
            write_with_side_map(folder, name, crop, side)
            self.counts["source"] += 1
            if self.expression_pairs:   # from a stream of their own: the source images stay as without them
                pairs_rng = self.rng["expression_pairs"]
                pairs_camera = with_noise_from(camera, pairs_rng)
                for other in range(len(EXPRESSIONS)):
                    if other != label:
                        pair, _ = self.source_crop(pairs_rng, driver, pairs_camera, self._expression_of(other), pose)
                        write_image(folder / f"{name}{EXPRESSION_PAIR_SUFFIXES[EXPRESSIONS[other]]}", pair)
                        self.counts["source_expression_pairs"] += 1
            records.append({"image": f"source/{EXPRESSIONS[label]}/{name}.png", "label": label, "driver": d,
                            **_pose_dict(pose)})
        return records

    def write_target(self, per_class: int, progress=True):
        import face

        rng, records = self.rng["target"], []
        jobs = [(label, i) for label in range(len(EXPRESSIONS)) for i in range(per_class)]
        with face.FaceStage(size=self.size, video=False, model=self.model) as stage:
            for label, i in tqdm(jobs, desc="target", disable=not progress, unit="img"):
                d = int(rng.integers(len(self.drivers["target"])))
                driver, camera = self.drivers["target"][d]
                for _ in range(MAX_TRIES):
                    pose = self._random_pose(rng, self.target_pose)
                    frame, truth = self.target_frame(rng, driver, camera, self._expression_of(label), pose)
                    result = stage(frame)
                    if result:
                        break
                    self.counts["target_no_face"] += 1
                else:
                    continue
                name, folder = f"t{self.counts['target']:05d}", self.out / "target" / EXPRESSIONS[label]
                paired = write_render(folder, name, result)
                self.counts["target_pairs"] += paired
                self.counts["target"] += 1
                viewed = (self.view_pairs and not paired
                          and self._write_view_pair(stage, folder, name, driver, camera,
                                                    truth["w_exp"], pose))
                self.counts["target_view_pairs"] += viewed
                records.append({"image": f"target/{EXPRESSIONS[label]}/{name}.png", "label": label, "driver": d,
                                **_pose_dict(pose), "fitted": {"yaw": result.yaw, "pitch": result.pitch,
                                                               "roll": result.roll}, "pair": paired,
                                "view_pair": viewed})
                if paired and self.turns:   # drawn from no stream: the rest of the set is as without them
                    turned = write_turned(folder, name, result, stage.renderer, self.turns)
                    self.counts["target_turned_pairs"] += len(turned)
                    records += [{"image": f"target/{EXPRESSIONS[label]}/{t}.png", "label": label, "driver": d,
                                 **_pose_dict(pose), "turn": yaw, "pair": True} for yaw, t in zip(self.turns, turned)]
        return records

    def _write_view_pair(self, stage, folder: Path, name: str, driver, camera: NirCamera, w_exp, pose: Pose) -> bool:
        """A second camera of the same cabin facing the head at the same instant (the same face, the
        same expression, the head where it is): the face stage's crop of its frame, written as the pair
        of the render `name`, the pair a two-camera rig gives a turned face's render. From a stream of its own (backdrop,
        noise), so that the rest of the set is as without. Returns whether the stage found the face."""
        rng = self.rng["view_pairs"]
        frame, _ = self._exposed(rng, driver, with_noise_from(camera, rng), w_exp,
                                 Pose(cx=pose.cx, cy=pose.cy, height=pose.height))
        view = stage(frame)
        if view:
            write_pair(folder, name, view.crop)
        return bool(view)

    def _schedule(self, seconds: float, segments, motion) -> dict:
        """The drive's episodes (train/synthetic/events.py) from their own stream, so that the drive
        is otherwise as without them; the eye events drawn first as they always were. Scripted
        off-road episodes keep clear of the no-face moments and of the head motion's own glances;
        the long distractions are placed before the look-aways, which keep their distance."""
        rng, script = self.rng["drive_events"], self.script
        no_face = [events.Event("no face", s.start, s.end) for s in segments if s.label is None]
        glances = [g for g in motion.glance_events(eyes=script["eyeballs"]) if g.start < seconds]
        eye_events = events.eye_events(rng, seconds, script["blinks_per_minute"], script["eye_closures"])
        clear = ((no_face, events.CLEAR_S), (glances, events.CLEAR_S))
        distractions = events.distractions(rng, seconds, script["distractions"], clear)
        look_aways = events.look_aways(rng, seconds, script["look_aways"],
                                       (*clear, (distractions, events.DISTRACTION_GAP_S)))
        gaze_shifts = events.gaze_shifts(rng, seconds, script["gaze_shifts_per_minute"],
                                         (*clear, (look_aways + distractions, 0.5)))
        return dict(eye_events=eye_events, look_aways=look_aways, glances=glances, distractions=distractions,
                    gaze_shifts=gaze_shifts)

    def write_video(self, seconds: float, progress=True):
        rng = self.rng["video"]
        driver, camera = self._session(rng)
        background = cabin_background(rng, FRAME_H, FRAME_W)
        segments = drive.timeline(rng, seconds)
        motion = drive.HeadMotion(rng, seconds, FRAME_W, FRAME_H, sway=self.script["head_sway"])
        plan = self._schedule(seconds, segments, motion)
        turns = sorted(plan["look_aways"] + plan["distractions"], key=lambda e: e.start)  # scripted head turns
        with_eyes = sorted(turns + plan["glances"] + plan["gaze_shifts"], key=lambda e: e.start)
        path = self.out / "drive.mp4"
        self.out.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (FRAME_W, FRAME_H))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {path} (mp4v)")
        frames, previous = [], self.model.neutral.copy()
        targets = {id(s): (self.factory.expression(rng, s.label) if s.label is not None else None) for s in segments}
        n = int(round(seconds * FPS))
        seg_index = 0
        try:
            for i in tqdm(range(n), desc="drive.mp4", disable=not progress, unit="frame"):
                t = i / FPS
                while seg_index + 1 < len(segments) and t >= segments[seg_index].end:
                    if segments[seg_index].label is not None:
                        previous = targets[id(segments[seg_index])]
                    seg_index += 1
                segment = segments[seg_index]
                canvas = background.copy()
                yaw, pitch, _ = events.head_turn(t, turns)
                pose = motion.pose(t, (yaw, pitch))
                record = {"frame": i, "time": round(t, 4), "face": segment.label is not None}
                if segment.label is None:
                    if segment.reason == "camera covered":
                        canvas *= 0.05
                    record.update(expression=None, label=-1, reason=segment.reason, off_road=None, gaze=None,
                                  camera_gaze=None)
                else:
                    a = drive.blend_weight(t, segment)
                    w_exp = (1 - a) * previous + a * targets[id(segment)]
                    closed, eye_event = events.eyes_closed(t, plan["eye_events"])
                    gaze = events.eye_gaze(t, with_eyes) if self.script["eyeballs"] else None
                    truth = self.scene.draw(canvas, driver, w_exp, pose, eyes_closed=closed, gaze=gaze)
                    label = segment.label
                    look_away = events.active(t, plan["look_aways"]) or events.active(t, plan["glances"])
                    distraction = events.active(t, plan["distractions"])
                    record.update(expression=EXPRESSIONS[label], label=label, transition=a < 1.0,
                                  box=[round(v, 1) for v in truth["box"]], **_pose_dict(pose),
                                  eyes_closed=round(closed, 3), eye_event=eye_event,
                                  look_away=look_away and look_away.kind, distraction=distraction and distraction.kind,
                                  gaze_shift=events.active(t, plan["gaze_shifts"]) is not None,
                                  off_road=bool(look_away or distraction), **_gaze_dict(gaze, pose))
                writer.write(camera.expose(canvas, pose.height))
                frames.append(record)
        finally:
            writer.release()
        self.counts["video_frames"] = n
        meta = {"video": "drive.mp4", "fps": FPS, "width": FRAME_W, "height": FRAME_H, "frames": frames,
                "classes": list(EXPRESSIONS),
                "segments": [{"start": s.start, "end": s.end, "expression": None if s.label is None else EXPRESSIONS[s.label],
                              "reason": s.reason} for s in segments],
                "script": {**self.script, "video_seconds": seconds, "seed": self.seed},
                "eye_events": [_event_dict(e) for e in plan["eye_events"]],
                "gaze_shifts": [_event_dict(e, head=False) for e in plan["gaze_shifts"]],
                "look_aways": [_event_dict(e, head=True) for e in
                               sorted(plan["look_aways"] + plan["glances"], key=lambda e: e.start)],
                "distractions": [_event_dict(e, head=True) for e in plan["distractions"]]}
        (self.out / "drive.json").write_text(json.dumps(meta))
        return meta


def write_csv(path: Path, records, domain: str):
    """The image list as `path,label,subject,domain` (train.datasets.csv_list reads it)."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["path", "label", "subject", "domain"])
        for r in records:
            out.writerow([r["image"], EXPRESSIONS[r["label"]], f"{domain}-driver{r['driver']:02d}", domain])


def _with_iris(landmarks468):
    out = np.zeros((478, 2), np.float32)
    out[:468] = landmarks468
    out[468:] = landmarks468[:10]  # unused by the alignment (no vertex), any finite values
    return out


def _event_dict(event: events.Event, head: bool | None = None) -> dict:
    """kind, start, end; with head=True the head's and eyes' angles held, with head=False the eyes'."""
    out = {"kind": event.kind, "start": round(event.start, 4), "end": round(event.end, 4)}
    if head:
        out.update(yaw=round(event.yaw, 2), pitch=round(event.pitch, 2))
    if head is not None:
        out.update(gaze_yaw=round(event.gaze_yaw, 2), gaze_pitch=round(event.gaze_pitch, 2))
    return out


def _gaze_dict(gaze, pose: Pose) -> dict:
    """A frame's gaze truth: eye in head and in camera terms, [yaw, pitch] degrees (None: no eyeballs)."""
    if gaze is None:
        return {"gaze": None, "camera_gaze": None}
    camera = eyeball_model.camera_gaze((pose.yaw, pose.pitch, pose.roll), gaze)
    return {"gaze": [round(float(v), 2) + 0.0 for v in gaze], "camera_gaze": [round(v, 2) + 0.0 for v in camera]}  # no -0.0


def _pose_dict(pose: Pose) -> dict:
    return {"yaw": round(pose.yaw, 2), "pitch": round(pose.pitch, 2), "roll": round(pose.roll, 2)}


def main(argv=None) -> int:
    drive_doc = __doc__[__doc__.index("The drive's driver-monitoring options"):]  # what drive.json holds
    parser = argparse.ArgumentParser(prog="python -m train synth", description=__doc__.splitlines()[0],
                                     epilog=drive_doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-class", type=at_least(0), default=60, help="source images per expression")
    parser.add_argument("--target-per-class", type=at_least(0), default=None, help="target images per expression "
                        "(default: as --per-class)")
    parser.add_argument("--video-seconds", type=at_least(0, float), default=60.0, help="length of drive.mp4; 0 for none")
    parser.add_argument("--drivers", type=at_least(1), default=8, help="distinct drivers per domain")
    parser.add_argument("--size", type=at_least(16), default=128)
    parser.add_argument("--scenario", choices=tuple(SCENARIOS), default="pose",
                        help="; ".join(f"{name}: {text}" for name, text in SCENARIOS.items())
                        + ". In both the target and drive.mp4 are NIR.")
    parser.add_argument("--target-yaw", type=between(0, 90), default=TARGET_POSE["yaw"], metavar="DEG",
                        help="target images: head yaw drawn from ± this many degrees (default %(default)s; "
                             "the demo drive's head is within ±20° 95 %% of the time)")
    parser.add_argument("--blinks-per-minute", type=at_least(0, float), default=0.0, help="drive.mp4: blinks "
                        "(100–400 ms) at about this rate, e.g. 15; default none")
    parser.add_argument("--eye-closures", type=at_least(0), default=0, help="drive.mp4: this many long (drowsy) "
                        "eye closures of 0.5–2 s")
    parser.add_argument("--gaze-shifts-per-minute", type=at_least(0, float), default=0.0, help="drive.mp4: eye-only "
                        "glances within the road scene (±5–15° yaw, ±3–8° pitch, held 0.3–2 s) at about this "
                        "rate; default none")
    parser.add_argument("--look-aways", type=at_least(0), default=0, help="drive.mp4: this many short head-and-eye "
                        "turns off the road (a mirror, the centre console, a phone glance; 0.5–2.5 s)")
    parser.add_argument("--distractions", type=at_least(0), default=0, help="drive.mp4: this many long off-road "
                        "episodes (phone, centre console, side window, passenger; 3–8 s), ≥4 s apart")
    parser.add_argument("--head-sway", type=at_least(0, float), default=1.0, help="drive.mp4: scales the head's own slow "
                        "sways and side glances (1: as always; an attentive driver ≈0.3–0.4; 0: a still "
                        "head, no glances)")
    parser.add_argument("--eyeballs", action="store_true", help="drive.mp4: eyes that look around and lids "
                        "that shut even with no other drive option (on with any of them)")
    parser.add_argument("--expression-pairs", action="store_true", help="beside each source image, the same head, "
                        "pose and camera in each of the six other expressions (NAME.as-<expression>.png): the pairs "
                        "of `exprada --mode cgit --lambda-pair`; the source images are the same as without")
    add_turn_pairs_option(parser, "the rest of the set is the same as without")
    parser.add_argument("--view-pairs", action="store_true", help="beside every target render without a frontal "
                        "pair, NAME.pair.png from a second camera facing the head at the same instant (a two-camera "
                        "rig's frontal view; `exprada --lambda-pair`); the rest of the set is the same as without")
    parser.add_argument("--fleet", type=at_least(0), default=0, metavar="N",
                        help="write N drives instead, for a fleet evaluation (python -m pipeline.fleet OUT): "
                             "OUT/drive_SEED/drive.mp4 (+ drive.json) for SEED = --seed, --seed + 1, …, each "
                             "--video-seconds long, new people and cameras each, no source or target images")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.fleet and args.video_seconds == 0:
        parser.error("--fleet N writes drives: give --video-seconds above 0")
    if args.size % 2:   # the renderer rasterises at half the size
        parser.error(f"--size must be an even number of pixels, got {args.size}")
    try:
        writable_folder(args.out, f"--out {args.out}")
    except ValueError as error:
        parser.error(str(error))
    target_per_class = args.per_class if args.target_per_class is None else args.target_per_class
    if args.fleet:
        for seed in range(args.seed, args.seed + args.fleet):
            write(args, args.out / f"drive_{seed}", seed, 0, 0)
        return 0
    write(args, args.out, args.seed, args.per_class, target_per_class)
    return 0


def write(args, out: Path, seed: int, per_class: int, target_per_class: int) -> None:
    """One output folder: source and target images, drive.mp4, the CSVs and manifest.json."""
    progress = not args.no_progress
    timings = {}
    start = time.perf_counter()
    writer = SynthWriter(out, seed=seed, size=args.size, drivers=args.drivers, scenario=args.scenario,
                         blinks_per_minute=args.blinks_per_minute, eye_closures=args.eye_closures,
                         look_aways=args.look_aways, gaze_shifts_per_minute=args.gaze_shifts_per_minute,
                         distractions=args.distractions, head_sway=args.head_sway,
                         eyeballs=True if args.eyeballs else None, target_yaw=args.target_yaw,
                         expression_pairs=args.expression_pairs, turn_pairs=args.turn_pairs,
                         view_pairs=args.view_pairs)
    timings["setup_s"] = time.perf_counter() - start
    manifest = {"scenario": args.scenario, "seed": seed, "size": args.size, "classes": list(EXPRESSIONS),
                "drivers_per_domain": args.drivers, "target_pose": writer.target_pose, "drive_events": writer.script,
                "expression_pairs": writer.expression_pairs, "turn_pairs": list(writer.turns),
                "view_pairs": writer.view_pairs}
    for part, call in (("source", lambda: writer.write_source(per_class, progress)),
                       ("target", lambda: writer.write_target(target_per_class, progress))):
        t = time.perf_counter()
        manifest[part] = call()
        timings[f"{part}_s"] = time.perf_counter() - t
    if args.video_seconds > 0:
        t = time.perf_counter()
        writer.write_video(args.video_seconds, progress)
        timings["video_s"] = time.perf_counter() - t
    for part in ("source", "target"):
        write_csv(out / f"{part}.csv", manifest[part], part)
    timings = {k: round(v, 2) for k, v in timings.items()}
    manifest.update(counts=writer.counts, timings=timings)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(json.dumps({"out": str(out), **writer.counts, **timings}))
