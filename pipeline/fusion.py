"""Which classification the pipeline publishes: the translated path (classifier on the UIT
generator's translation), the render path (the same classifier on the untranslated frontal render),
or a fusion of both. The one definition of how the two combine; pure numpy, imports nothing of ours
(the pipeline's classify stage and the benchmarks both use it)."""
from __future__ import annotations

import numpy as np

PUBLISH_MODES = ("fusion", "translated", "render")
FLOOR = 1e-6   # probabilities are clipped here before the log: no path can veto a class outright


def check_publish(mode: str, weight: float = 0.5):
    """Refuse an unknown mode or a weight outside [0, 1] with a one-line ValueError."""
    if mode not in PUBLISH_MODES:
        raise ValueError(f"publish mode must be one of {', '.join(PUBLISH_MODES)}, got {mode!r}")
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"fusion weight must be a number in [0, 1], got {weight!r}") from None
    if not 0.0 <= weight <= 1.0:   # also refuses NaN
        raise ValueError(f"fusion weight must be in [0, 1], got {weight}")


def publish_probs(p_translated, p_render, mode: str, weight: float = 0.5) -> np.ndarray:
    """The published class probabilities (float64, the inputs' shape: one distribution [C] or a batch
    [N, C], classes on the last axis).

    - `translated`: p_translated (p_render may be None);
    - `render`: p_render (p_translated may be None);
    - `fusion`: log-linear pooling, the normalised weighted geometric mean
      exp(w·log p_t + (1−w)·log p_r) / Σ_c exp(...), each probability clipped at 1e-6 before the log;
      `weight` w is the translated path's share (1: the translated path alone, 0: the render alone,
      up to the clip).

    Why geometric rather than the arithmetic mean: pooling multiplies the two opinions, so a class
    counts only as much as both paths back it. A confident, agreeing pair reinforces: the class both
    favour keeps its weight while what only one path puts elsewhere is discounted ([0.8, 0.2, 0] and
    [0.8, 0, 0.2] pool to ≈ 1.0 on the first class, where the arithmetic mean stays at 0.8; two
    identical distributions pool to themselves). One path's confident error is tempered by the
    other: a class the other path rules out is held down however sure the wrong path is, where the
    arithmetic mean always publishes half of the wrong path's mass. The clip bounds that veto
    (log 1e-6 ≈ −13.8): a saturated softmax on one path cannot silence the other outright, and when
    both paths are saturated on different classes, `weight` decides.
    """
    check_publish(mode, weight)
    if mode == "translated":
        return _distribution(p_translated, "p_translated")
    if mode == "render":
        return _distribution(p_render, "p_render")
    p_t, p_r = _distribution(p_translated, "p_translated"), _distribution(p_render, "p_render")
    if p_t.shape != p_r.shape:
        raise ValueError(f"p_translated and p_render must have the same shape, got {p_t.shape} and {p_r.shape}")
    w = float(weight)
    z = w * np.log(np.clip(p_t, FLOOR, 1.0)) + (1.0 - w) * np.log(np.clip(p_r, FLOOR, 1.0))
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _distribution(p, name) -> np.ndarray:
    if p is None:
        raise ValueError(f"{name} is None but the publish mode needs it")
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] == 0:
        raise ValueError(f"{name} must hold class probabilities on its last axis, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} has non-finite values")
    return p
