"""The face stage: one frame in, a FaceResult (or a NoFace saying why) out — never an exception."""
from dataclasses import dataclass, field

import numpy as np

from face import bilinear
from face.crops import face_crop
from face.eyes import EyeState, eye_state
from face.fit import Fitter
from face.imageio import to_bgr8
from face.landmarks import LandmarkDetector
from face.render import Renderer, Sampling
from face.side_map import side_map

MIN_FRAME_SIDE = 32   # below this mediapipe cannot find a face; say so instead of trying
MIN_FACE_SIDE = 12    # px between the extreme landmarks
TEXTURE_FROM_LANDMARKS = 0.25  # texture positions: this much detected landmark, the rest fitted mesh


@dataclass
class NoFace:
    """No usable face in the frame; `reason` says why (no face found, bad frame, face too small…)."""

    reason: str

    def __bool__(self):
        return False


@dataclass
class FaceResult:
    """One driver face. Pixel quantities are in the input frame; images are S×S in the layout.

    box: (x0, y0, x1, y1) around the landmarks; landmarks: 478×2; yaw/pitch/roll: degrees (see
    face.fit); frontal: the frame's texture rendered frontally (BGR uint8); simulated: the fitted
    mesh shaded, frontal; side_map: landmark heatmap of the frontal face; visibility: S×S float32
    in [0, 1], how directly the frame showed each frontal pixel (low where hidden parts were filled
    from the mirrored side, 0 outside the face); fit_residual: RMS
    landmark error of the fit over the inter-ocular distance; crop: the frame itself aligned to the
    same layout and blacked out beyond the face oval (BGR uint8, `face.crops.face_crop` of the image
    the render samples: no frontalisation, exactly how the classifier's source training crops are
    made — the pipeline's crop path); eyes: openness and gaze (face.eyes.EyeState), None when the
    eyes are degenerate; pose_std: (yaw_std, pitch_std, roll_std), degrees, the standard deviation of
    this frame's yaw, pitch and roll (face.fit's pose solve, calibrated on rendered drivers of known
    pose; 180 where the pose is undetermined); sampling: what the frontal render was made from
    (face.render.Sampling, for Renderer.turned).
    """

    box: tuple
    landmarks: np.ndarray
    yaw: float
    pitch: float
    roll: float
    frontal: np.ndarray
    simulated: np.ndarray
    side_map: np.ndarray
    visibility: np.ndarray
    fit_residual: float
    crop: np.ndarray
    faces_found: int = 1
    landmarks_3d: np.ndarray = field(default=None, repr=False)
    expression_weights: np.ndarray = field(default=None, repr=False)
    identity_weights: np.ndarray = field(default=None, repr=False)
    frontal_landmarks: np.ndarray = field(default=None, repr=False)
    eyes: EyeState | None = None
    pose_std: tuple = (float("nan"), float("nan"), float("nan"))
    sampling: Sampling | None = field(default=None, repr=False)

    def __bool__(self):
        return True


def one_blas_thread():
    """The fit's linear algebra is small (normal equations of the model's few dozen weights): BLAS
    worker threads only spin on it and take the cores from FaceMesh and the other stages. Measured
    (cProfile, 140 demo frames, 2 cores with two other busy processes): the fit took 31 ms a frame
    with OpenBLAS's 2 threads, 2 ms with 1. Process-wide, as BLAS pools are (threadpoolctl)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=1, user_api="blas")


class FaceStage:
    """`FaceStage(size=128, video=True, model=None)(frame)` → FaceResult | NoFace.

    video=True tracks landmarks across frames and pools the identity over them (one driver;
    `reset()` between drivers or unrelated images); video=False treats every frame alone.
    model: a BilinearModel, a path to one, or None for the shipped default.
    """

    def __init__(self, size: int = 128, video: bool = True, model=None, max_faces: int | None = None):
        if isinstance(model, bilinear.BilinearModel):
            self.model = model
        else:
            self.model = bilinear.load(model)
        self.size = int(size)
        self.video = video
        one_blas_thread()
        self.detector = LandmarkDetector(video=video, max_faces=max_faces)
        self.fitter = Fitter(self.model)
        self.fitter.warm_up()
        self.renderer = Renderer(self.model, self.size)
        self.renderer.warm_up()

    def __call__(self, frame) -> FaceResult | NoFace:
        try:
            image = to_bgr8(frame)
        except (ValueError, TypeError) as error:
            return NoFace(f"bad frame: {error}")
        if min(image.shape[:2]) < MIN_FRAME_SIDE:
            return NoFace(f"frame too small: {image.shape[1]}x{image.shape[0]}, need at least "
                          f"{MIN_FRAME_SIDE} px a side")
        landmarks, count = self.detector(image)
        if landmarks is None:
            return NoFace("no face found")
        lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
        if (hi - lo).max() < MIN_FACE_SIDE:
            return NoFace(f"face too small: {(hi - lo).max():.0f} px")
        return self._describe(image, landmarks, count, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])))

    def _describe(self, image, landmarks, count, box) -> FaceResult | NoFace:
        try:
            crop, _ = face_crop(self.renderer, image, landmarks)   # one warpAffine + the oval mask
        except ValueError as error:   # landmarks too degenerate to align
            return NoFace(f"face crop failed: {error}")
        try:
            fit = self.fitter(landmarks, pool_identity=self.video)
        except ValueError as error:   # landmarks the fit refuses (a detector's NaN): no result for this frame
            return NoFace(f"fit failed: {error}")
        posed = fit.posed()
        texture_xy = posed[:, :2].copy()
        seen, vertex = self.fitter.landmarks, self.fitter.vertices  # detector points with a mesh vertex, and those vertices
        # Sample the texture mostly where the fitted mesh projects, a little towards the detected
        # points: the detector follows the image, the model keeps its jitter and odd points in check
        # (on synthetic drivers the projection alone beats the halfway point used before).
        texture_xy[vertex] = (TEXTURE_FROM_LANDMARKS * landmarks[seen, :2]
                              + (1.0 - TEXTURE_FROM_LANDMARKS) * texture_xy[vertex])
        frontal, visibility, simulated, frontal_xy = self.renderer.render(image, texture_xy, posed, fit.vertices)
        frontal_landmarks = np.full((len(self.model.landmark_vertex), 2), np.nan, dtype=np.float32)
        frontal_landmarks[seen] = frontal_xy[vertex]
        yaw, pitch, roll = fit.angles
        return FaceResult(
            box=box, landmarks=landmarks[:, :2].copy(), yaw=yaw, pitch=pitch, roll=roll,
            frontal=frontal, simulated=simulated, side_map=side_map(frontal_landmarks, self.size),
            visibility=visibility, fit_residual=fit.residual, crop=crop, faces_found=count, landmarks_3d=landmarks,
            expression_weights=fit.w_exp, identity_weights=fit.w_id, frontal_landmarks=frontal_landmarks,
            eyes=eye_state(landmarks, yaw, pitch, roll), pose_std=fit.angles_std,
            sampling=Sampling(image, texture_xy, posed, fit.vertices))

    def reset(self):
        """Start over: a new driver's identity and, in video mode, a fresh tracker."""
        self.fitter.reset()
        if self.video:
            self.detector.reset()

    def close(self):
        self.detector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
