"""Expression warps: a face crop redrawn with another expression's geometry (beyond the paper).

The face stage fits the bilinear model to a crop (identity, expression, pose); the warp swaps the
fitted expression for the asked one's and moves every pixel of the face with its mesh (a
piecewise-affine warp over the mesh's triangles, the opened mouth a dark cavity). The person, the
light and the camera stay; only the geometry of the expression changes.

What the asked expression's geometry is comes from the labelled images themselves: the mean of the
fitted expression weights of each class (`ExpressionMeans`). So a single labelled image per person —
the paper's setting for CGIT, no person photographed in every expression — gives each image six
pseudo pairs, one per other expression (`train warp-pairs`), for CGIT's pair term
(`exprada --mode cgit --lambda-pair`). The warp moves shape only: wrinkles, teeth and the shading
of a changed surface are for the generator to learn (its adversarial and class terms).
"""
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from face import bilinear
from face.crops import CropFitter
from face.expressions import EXPRESSIONS, NUM_EXPRESSIONS
from face.landmarks import INNER_LIPS
from face.raster import rasterize_attributes

CAVITY = 0.12   # an opened mouth's inside, as a share of the face's median brightness


@dataclass(frozen=True)
class CropShape:
    """The bilinear fit of one crop: identity and expression weights, where each vertex is seen in the
    crop enlarged (`CropFitter.enlarged`), and the similarity that poses model-frame vertices there
    ([V×3, 1] @ pose → V×3, z nearer-smaller)."""

    w_id: np.ndarray
    w_exp: np.ndarray
    texture_xy: np.ndarray
    pose: np.ndarray


class ExpressionWarp:
    """`warp = ExpressionWarp(model)`; `shape = warp.fit(crop)` (None when no face is found);
    `warp(crop, shape, w_exp)` → the crop with that expression's geometry (same size and type), drawn
    at the fitter's enlarged size and brought back."""

    def __init__(self, model):
        self.model = model
        self.fitter = CropFitter(model)
        cavity = np.zeros(model.num_vertices, np.float32)   # 1 on the mouth's opening: the mesh spans it
        cavity[list(INNER_LIPS)] = 1.0
        self._cavity = cavity

    def fit(self, crop: np.ndarray) -> CropShape | None:
        result = self.fitter(crop)
        if not result:
            return None
        sampling = result.sampling
        vertices = np.asarray(sampling.vertices, np.float64)
        posed = np.asarray(sampling.posed, np.float64)
        # The fit poses the mesh by a similarity (face.fit.Fit.posed), so this least-squares solve is exact:
        # it carries any other expression's vertices into the same place.
        homogeneous = np.column_stack([vertices, np.ones(len(vertices))])
        pose, *_ = np.linalg.lstsq(homogeneous, posed, rcond=None)
        # Everything from here on in the enlarged crop's pixels, where the warp draws.
        offset = self.fitter.offset(crop)
        pose[3] -= np.append(offset, 0.0)
        return CropShape(w_id=np.asarray(result.identity_weights, np.float64),
                         w_exp=np.asarray(result.expression_weights, np.float64),
                         texture_xy=np.asarray(sampling.texture_xy, np.float64) - offset, pose=pose)

    def __call__(self, crop: np.ndarray, shape: CropShape, w_exp: np.ndarray) -> np.ndarray:
        big = self.fitter.enlarged(crop)
        vertices = self.model.mesh(shape.w_id, np.asarray(w_exp, np.float64)).astype(np.float64)
        posed = np.column_stack([vertices, np.ones(len(vertices))]) @ shape.pose
        h, w = big.shape[:2]
        attributes = np.column_stack([shape.texture_xy, self._cavity])
        pixels, values = rasterize_attributes(posed[:, :2], -posed[:, 2], self.model.triangles, h, w, attributes,
                                              cull_backfaces=False)
        out = np.zeros_like(big)
        if pixels.pixel.size:
            where = pixels.image(values[:, :2], fill=-1.0).astype(np.float32)
            moved = cv2.remap(big, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            flat, face = out.reshape(h * w, -1), moved.reshape(h * w, -1)[pixels.pixel]
            flat[pixels.pixel] = face
            cavity = pixels.pixel[values[:, 2] > 0.97]
            flat[cavity] = np.round(CAVITY * np.median(face, axis=0)).astype(out.dtype)
        return cv2.resize(out, crop.shape[1::-1], interpolation=cv2.INTER_AREA)

    def close(self):
        self.fitter.close()


class ExpressionMeans:
    """Each expression's geometry: the mean fitted expression weights of the labelled images of that class."""

    def __init__(self, num_expression: int):
        self.sums = np.zeros((NUM_EXPRESSIONS, num_expression))
        self.counts = np.zeros(NUM_EXPRESSIONS, np.int64)

    def add(self, label: int, w_exp: np.ndarray) -> None:
        self.sums[label] += w_exp
        self.counts[label] += 1

    def means(self) -> np.ndarray:
        missing = [EXPRESSIONS[k] for k in np.nonzero(self.counts == 0)[0]]
        if missing:
            raise ValueError(f"no fitted face of {', '.join(missing)}: every expression needs labelled images "
                             "to give its geometry")
        return self.sums / self.counts[:, None]


def load_targets(path) -> tuple[np.ndarray, bilinear.BilinearModel]:
    """(7 × E targets, the bilinear model they belong to) from `train warp-pairs`' expressions.json."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        targets = np.asarray(record["targets"], dtype=np.float64)
        names = record["expressions"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a train warp-pairs expressions.json ({error})") from None
    if list(names) != list(EXPRESSIONS) or targets.ndim != 2 or len(targets) != NUM_EXPRESSIONS:
        raise ValueError(f"{path}: its targets are not one per expression in {', '.join(EXPRESSIONS)}")
    model = bilinear.load(record.get("model_path"))
    if targets.shape[1] != model.num_expression:
        raise ValueError(f"{path}: {targets.shape[1]} expression weights, its model has {model.num_expression}")
    return targets, model
