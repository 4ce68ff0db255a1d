"""Which classification the pipeline publishes, from up to three images of each face the classifier
sees: the translated path (the UIT generator's translation of the frontal render), the render path
(the untranslated frontal render) and the crop path (the plain aligned crop of the frame, no
frontalisation). One path alone, the fusion of the first two (the pipeline's default), or the
pose-gated pool of all three. The one definition of how they combine; pure numpy, imports nothing of ours (the
pipeline's classify stage and the benchmarks both use it)."""
from __future__ import annotations

import math

import numpy as np

PATHS = ("translated", "render", "crop")   # the images of a face the classifier can see
PUBLISH_MODES = ("pose", "fusion", "translated", "render", "crop")
FLOOR = 1e-6      # probabilities are clipped here before the log: no path can veto a class outright
FUSION_WEIGHT = 0.5   # fusion: the translated path's share against the render's
# pose: the translated path's share of what the crop leaves, and the |yaw| (degrees) from which the
# crop has no weight left; chosen together on validation drivers (see publish_probs)
POSE_WEIGHT = 1.0
CROP_YAW = 20.0


def default_weight(mode: str) -> float:
    """The translated path's share when none is given: POSE_WEIGHT in `pose`, FUSION_WEIGHT otherwise."""
    return POSE_WEIGHT if mode == "pose" else FUSION_WEIGHT


def check_publish(mode: str, weight: float | None = None, crop_yaw: float = CROP_YAW):
    """Refuse an unknown mode, a weight outside [0, 1] or a crop yaw that is not a positive number of
    degrees, with a one-line ValueError (weight None: the mode's default)."""
    if mode not in PUBLISH_MODES:
        raise ValueError(f"publish mode must be one of {', '.join(PUBLISH_MODES)}, got {mode!r}")
    if weight is None:
        weight = default_weight(mode)
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"fusion weight must be a number in [0, 1], got {weight!r}") from None
    if not 0.0 <= weight <= 1.0:   # also refuses NaN
        raise ValueError(f"fusion weight must be in [0, 1], got {weight}")
    try:
        crop_yaw = float(crop_yaw)
    except (TypeError, ValueError):
        raise ValueError(f"crop yaw must be a positive number of degrees, got {crop_yaw!r}") from None
    if not (crop_yaw > 0.0 and math.isfinite(crop_yaw)):   # also refuses NaN
        raise ValueError(f"crop yaw must be a positive, finite number of degrees, got {crop_yaw}")


def publish_probs(p_translated, p_render, mode: str, weight: float | None = None, *, p_crop=None, yaw=None,
                  crop_yaw: float = CROP_YAW) -> np.ndarray:
    """The published class probabilities (float64, the inputs' shape: one distribution [C] or a batch
    [N, C], classes on the last axis).

    - `translated`, `render`, `crop`: that path's probabilities as they are (the others may be None);
    - `fusion`: log-linear pooling of the translated and the render path, the normalised weighted
      geometric mean exp(w·log p_t + (1−w)·log p_r) / Σ_c exp(...), each probability clipped at 1e-6
      before the log; `weight` w is the translated path's share (1: the translated path alone, 0:
      the render alone, up to the clip; None: FUSION_WEIGHT, 0.5);
    - `pose`: the same pooling of all three paths, the crop's weight set by the head's yaw:
      w_crop = clip(1 − |yaw|/crop_yaw, 0, 1), w_translated = (1 − w_crop)·weight,
      w_render = (1 − w_crop)·(1 − weight) (None: POSE_WEIGHT, 1: the render gets no weight).
      `yaw` (degrees) is a number, or an array [N] for a batch; at |yaw| ≥ crop_yaw this is exactly
      `fusion` with the same weight, at yaw 0 the crop alone (up to the clip).

    Why geometric rather than the arithmetic mean: pooling multiplies the opinions, so a class
    counts only as much as the paths back it. A confident, agreeing pair reinforces: the class both
    favour keeps its weight while what only one path puts elsewhere is discounted ([0.8, 0.2, 0] and
    [0.8, 0, 0.2] pool to ≈ 1.0 on the first class, where the arithmetic mean stays at 0.8; two
    identical distributions pool to themselves). One path's confident error is tempered by the
    other: a class the other path rules out is held down however sure the wrong path is, where the
    arithmetic mean always publishes half of the wrong path's mass. The clip bounds that veto
    (log 1e-6 ≈ −13.8): a saturated softmax on one path cannot silence the other outright, and when
    both paths are saturated on different classes, `weight` decides.

    Why pose-gated: near yaw 0 the aligned crop is exactly the classifier's own domain (its source
    training crops are made the same way, `face.crops.face_crop`) and loses nothing to the frontal
    render's mesh outline and mirrored fill, so it is the better image there; as the head turns, the
    crop shows a foreshortened half face while the frontalised paths still show a whole frontal
    one, so they take over, linearly, until the crop has no weight at `crop_yaw`. POSE_WEIGHT = 1
    and CROP_YAW = 20° were chosen together on validation drivers (synthetic seeds 301–303, the
    shipped models; `python -m benchmarks.publish_choice`: the setting whose worst yaw bin loses
    least to the best single path), never on the held-out test drivers whose figures the README
    reports: there the translation reads turned faces better than the render does, and pooling the
    render in only diluted it. `fusion` keeps an even share: on a drive the two frontalised paths
    err on different frames, and pooled they read more than either (the README's demo figures).
    """
    if weight is None:
        weight = default_weight(mode)
    check_publish(mode, weight, crop_yaw)
    if mode in ("translated", "render", "crop"):
        return _distribution({"translated": p_translated, "render": p_render, "crop": p_crop}[mode], f"p_{mode}")
    p_t, p_r = _distribution(p_translated, "p_translated"), _distribution(p_render, "p_render")
    _same_shape(p_t, "p_translated", p_r, "p_render")
    if mode == "fusion":
        return _pool(p_t, p_r, weight)
    p_c = _distribution(p_crop, "p_crop")
    _same_shape(p_t, "p_translated", p_c, "p_crop")
    return _pool(p_t, p_r, weight, p_c, crop_weight(yaw, float(crop_yaw), p_c.shape[:-1]))


def crop_weight(yaw, crop_yaw: float = CROP_YAW, batch: tuple | None = None) -> np.ndarray:
    """The pose mode's crop weight clip(1 − |yaw|/crop_yaw, 0, 1) (float64, yaw's shape); `batch`:
    the leading shape of the probabilities yaw must match (a number suits any)."""
    if yaw is None:
        raise ValueError("pose mode needs the head yaw (degrees), got yaw=None")
    try:
        yaw = np.asarray(yaw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"yaw must be a number or an array of degrees, got {yaw!r}") from None
    if not np.all(np.isfinite(yaw)):
        raise ValueError("yaw has non-finite values")
    if batch is not None and yaw.ndim and yaw.shape != tuple(batch):
        wanted = f"one number or one per distribution, shape {tuple(batch)}" if batch else "one number"
        raise ValueError(f"yaw must be {wanted}, got shape {yaw.shape}")
    return np.clip(1.0 - np.abs(yaw) / crop_yaw, 0.0, 1.0)


def _pool(p_t, p_r, weight, p_c=None, w_crop=0.0) -> np.ndarray:
    """Log-linear pooling: the crop gets w_crop (None or 0: no crop), the translated and the render
    path share the rest as weight : 1 − weight. w_crop is a number or one value per distribution."""
    w_crop = np.asarray(w_crop, dtype=np.float64)[..., None]   # broadcasts over the class axis
    w = float(weight)
    z = (1.0 - w_crop) * w * _log(p_t) + (1.0 - w_crop) * (1.0 - w) * _log(p_r)
    if p_c is not None:
        z = z + w_crop * _log(p_c)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _log(p) -> np.ndarray:
    return np.log(np.clip(p, FLOOR, 1.0))


def _same_shape(a, a_name, b, b_name):
    if a.shape != b.shape:
        raise ValueError(f"{a_name} and {b_name} must have the same shape, got {a.shape} and {b.shape}")


def _distribution(p, name) -> np.ndarray:
    if p is None:
        raise ValueError(f"{name} is None but the publish mode needs it")
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] == 0:
        raise ValueError(f"{name} must hold class probabilities on its last axis, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} has non-finite values")
    return p
