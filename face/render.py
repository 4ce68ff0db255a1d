"""Frontal and simulated renders of a fitted face, and face-aligned crops, all in one layout.

The layout places the model's mean face, seen from the front, at the same spot of every S×S
output, so frontal renders, simulated renders, side maps and aligned crops line up pixel for pixel.
"""
import math
from dataclasses import dataclass

import cv2
import numba
import numpy as np
import scipy.sparse

from face.bilinear import BilinearModel
from face.raster import rasterize, rasterize_attributes, visible_vertices

FACE_FILL = 0.86  # the mean face's height as a fraction of the output side
_FLIP_Y = np.array([1.0, -1.0])
LIGHT = np.array([0.0, 0.35, 1.0]) / np.linalg.norm([0.0, 0.35, 1.0])


class Layout:
    """Model frame (y up) → S×S output pixels (y down) for the frontal view."""

    def __init__(self, model: BilinearModel, size: int):
        mean = model.mesh()
        lo, hi = mean.min(axis=0), mean.max(axis=0)
        self.size = size
        self.scale = FACE_FILL * size / float(hi[1] - lo[1])
        self.centre = (lo[:2] + hi[:2]) / 2.0
        self.template = self.project(mean)[0]  # where each vertex of the mean face lands
        self._template_mean = self.template.mean(axis=0)
        self._template_centred = self.template - self._template_mean

    def project(self, vertices: np.ndarray):
        """(V×2 pixel positions, V depths with larger = nearer) of model-frame vertices."""
        xy = (vertices[:, :2] - self.centre) * self.scale * _FLIP_Y + (self.size - 1) / 2.0
        return xy, vertices[:, 2] * self.scale

    def project_aligned(self, vertices: np.ndarray):
        """project(), then scaled and shifted onto the mean face's place (least squares).

        A face's absolute size cannot be told from one camera (a bigger head farther away looks
        the same), so every frontal face is brought to the mean face's size and place, exactly as
        aligned crops are.
        """
        xy, depth = self.project(vertices)
        centred = xy - xy.mean(axis=0)
        k = float((centred * self._template_centred).sum() / max((centred ** 2).sum(), 1e-12))
        return centred * k + self._template_mean, depth * k


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray, incidence) -> np.ndarray:
    """Unit area-weighted normals (counter-clockwise triangles in a y-up frame face +z)."""
    p = vertices[triangles]
    face = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    normals = incidence @ face
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def incidence_matrix(num_vertices: int, triangles: np.ndarray):
    rows = triangles.reshape(-1)
    cols = np.repeat(np.arange(len(triangles)), 3)
    return scipy.sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(num_vertices, len(triangles)))


@dataclass(frozen=True)
class Sampling:
    """What one frontal render was made from: Renderer.render's arguments (the frame, where each
    vertex is seen in it, the posed and the model-frame vertices). Kept to render the same face
    again as if its head were turned (Renderer.turned)."""

    frame: np.ndarray
    texture_xy: np.ndarray
    posed: np.ndarray
    vertices: np.ndarray


class Renderer:
    """Frontal renders of fitted faces. `raster_step=2` rasterises at half resolution and upsamples
    the (piecewise-linear, so smooth) sampling maps: a quarter of the rasterising work for maps
    that differ by a fraction of a pixel inside the face; 1 rasterises every output pixel."""

    def __init__(self, model: BilinearModel, size: int = 128, raster_step: int = 2):
        if raster_step not in (1, 2) or size % raster_step:
            raise ValueError(f"raster_step must be 1 or 2 and divide the size {size}, got {raster_step}")
        self.model = model
        self.size = size
        self.raster_step = raster_step
        self.layout = Layout(model, size)
        self.triangles = model.triangles.astype(np.int64)
        self.incidence = incidence_matrix(model.num_vertices, self.triangles)
        self.mirror = model.mirror
        # The detector points with a mesh vertex, and where the layout puts those vertices (alignment).
        self._aligned_landmarks = np.nonzero(model.landmark_vertex >= 0)[0]
        self._aligned_template = self.layout.template[model.landmark_vertex[self._aligned_landmarks]].astype(np.float32)

    def warm_up(self):
        """Render the mean face once: the compiled kernels load (about 0.2 s, from numba's cache) now,
        not on a live stream's first frame."""
        mean = self.model.mesh().astype(np.float64)
        posed = mean * np.array([100.0, -100.0, -100.0]) + np.array([64.0, 64.0, 0.0])
        self.render(np.zeros((128, 128, 3), np.uint8), posed[:, :2].copy(), posed, mean)

    def frontal_raster(self, vertices: np.ndarray):
        xy, depth = self.layout.project_aligned(vertices)
        return xy, rasterize(xy, depth, self.triangles, self.size, self.size, cull_backfaces=True)

    def render(self, frame: np.ndarray, texture_xy: np.ndarray, posed: np.ndarray, vertices: np.ndarray,
               better_side: bool = False):
        """Frontal render, visibility, simulated render and frontal vertex positions of one fit.

        texture_xy: V×2 where each vertex is seen in the frame; posed: V×3 vertices in frame pixels
        (z nearer-smaller), for visibility; vertices: V×3 model-frame shape, rendered frontally.
        Parts hidden in the frame are filled from their mirror partners; with `better_side`, every
        pixel comes from whichever side the frame shows more squarely, and the visibility returned
        is that side's (for texture atlases).
        Returns (frontal S×S×3 uint8, visibility S×S float32, simulated S×S×3 uint8, V×2 positions).
        """
        frontal_xy, depth = self.layout.project_aligned(vertices)
        # One compiled pass over the triangles (model frame): each vertex's foreshortening cosine as the
        # frame shows its texture (true areas from the model scaled to the frame) and its shade.
        real = vertices.dtype.type  # the kernel's arithmetic in the mesh's precision, as numpy's was
        cosine, folded, shade = _surface_terms(vertices, texture_xy, self.triangles, real(_scale2(posed, vertices)),
                                               real(1e-9), LIGHT)
        vis = self._visibility(cosine, folded, posed, frame.shape, texture_xy)
        frame, texture_xy = _prefilter(frame, texture_xy, self.layout.scale, vertices)
        m = self.mirror
        attributes = np.column_stack([texture_xy, texture_xy[m], vis, vis[m], shade]).astype(np.float32)
        raster, values = rasterize_attributes(frontal_xy, depth, self.triangles, self.size, self.size,
                                              attributes, step=self.raster_step)
        # One remap over the covered pixels only: direct samples, then the mirrored ones needed.
        alpha, mirrored, points = _blend_plan(values, better_side, _REMAP_WIDTH)
        samples = _remap(frame, points, len(values) + len(mirrored))
        frontal, visibility, simulated = _compose(raster.pixel, values, alpha, samples, mirrored, better_side,
                                                  self.size * self.size)
        s = self.size
        return (frontal.reshape((s, s) + samples.shape[1:]), visibility.reshape(s, s),
                simulated.reshape(s, s, 3), frontal_xy)

    def turned(self, sampling: Sampling, yaw: float) -> np.ndarray:
        """The frontal render this face would give if the head were turned `yaw` degrees further
        (rotate and render, after Zhou et al., CVPR 2020): the fitted mesh, textured from its frame,
        is turned about its centre and drawn into the frame as the camera would see it — its light
        half ambient, half from an illuminator at the camera, so the turned-away side darkens — and that
        image is rendered frontally again, with what the turn hides filled from the mirror side and
        the foreshortened side resampled, as the render of a truly turned head is. For a near-frontal
        frame its own crop is then the real image of this render too (`train synth --turn-pairs`).
        Not simulated: the fit's own error on a turned head. Returns S×S×3 uint8."""
        posed, frame = np.asarray(sampling.posed, np.float64), sampling.frame
        angle = math.radians(yaw)
        c, s = math.cos(angle), math.sin(angle)
        centre = posed.mean(axis=0)
        # About the frame's vertical axis: x and z (z nearer-smaller) turn, y stays.
        turned = (posed - centre) @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]) + centre
        lit = [np.clip(-vertex_normals(p, self.triangles, self.incidence)[:, 2], 0.0, 1.0) for p in (posed, turned)]
        # Light: as much ambient as from an illuminator at the camera (the cosine to it): of the mixes
        # tried on synthetic training drivers, the one whose turned renders came nearest the renders of
        # their heads really turned (mean |difference| at ±30°: 9.0-9.8 grey levels; an ambient of 0.15
        # to the illuminator's 1: 11.7-12.4; no change of light: 15.4-17.6). The cap keeps parts that were grazing in
        # the frame from glaring.
        gain = np.minimum((1.0 + lit[1]) / (1.0 + lit[0]), 1.2)
        h, w = frame.shape[:2]
        raster, values = rasterize_attributes(turned[:, :2], -turned[:, 2], self.triangles, h, w,
                                              np.column_stack([sampling.texture_xy, gain]), cull_backfaces=False)
        pixels = _sample(frame, values[:, :2]) * values[:, 2:3]
        image = frame.reshape(h * w, -1).copy()
        image[raster.pixel] = np.clip(pixels, 0, 255).round().astype(frame.dtype)
        frontal, _, _, _ = self.render(image.reshape(frame.shape), turned[:, :2].copy(), turned, sampling.vertices)
        return frontal

    def _visibility(self, cosine, folded, posed, frame_shape, seen_xy):
        """Per vertex in [0, 1]: not hidden (z-buffer), facing the camera, inside the frame, from
        _surface_terms' foreshortening cosines and folded-triangle count.

        Facing is measured as foreshortening: a triangle's area where the texture is seen over its
        true area (its normal's cosine towards the camera). Measured on the detected landmarks it
        also catches what the fitted pose gets wrong (a detector that under-reads a turned head
        still squeezes the far cheek).
        """
        facing = np.clip((cosine - 0.25) / 0.4, 0.0, 1.0)
        # Without folds (back-facing triangles) a projected mesh cannot hide itself. Below ~20° of
        # turn (5 % of the triangles folded, at the nose's side and the outline) what the folds hide
        # is a sliver that foreshortening already marks: the z-buffer is paid for only beyond.
        unhidden = (visible_vertices(posed[:, :2], -posed[:, 2], self.triangles)
                    if folded > len(self.triangles) // 20 else True)
        h, w = frame_shape[:2]
        inside = (seen_xy[:, 0] >= 0) & (seen_xy[:, 0] <= w - 1) & (seen_xy[:, 1] >= 0) & (seen_xy[:, 1] <= h - 1)
        return (facing * unhidden * inside).astype(np.float64)

    def simulated(self, vertices: np.ndarray) -> np.ndarray:
        """The mesh shaded without texture (Gouraud, light from the camera), frontal: S×S×3 uint8."""
        _, raster = self.frontal_raster(vertices)
        normals = vertex_normals(vertices, self.triangles, self.incidence)
        shade = 0.2 + 0.8 * np.clip(normals @ LIGHT, 0.0, 1.0)
        grey = raster.image((raster.interpolate(shade, self.triangles)[:, 0] * 235.0).round(), dtype=np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)

    def alignment(self, landmarks_xy: np.ndarray) -> np.ndarray:
        """2×3 similarity taking frame pixels to the layout, fitted to the landmarks (robustly)."""
        source = np.asarray(landmarks_xy, dtype=np.float32)[self._aligned_landmarks, :2]
        matrix, _ = cv2.estimateAffinePartial2D(source, self._aligned_template, method=cv2.LMEDS)
        if matrix is None:
            raise ValueError("cannot align: landmarks are degenerate")
        return matrix

    def aligned_crop(self, frame: np.ndarray, landmarks_xy: np.ndarray) -> np.ndarray:
        """S×S crop of the frame, similarity-aligned so the face lands where the layout puts it."""
        return cv2.warpAffine(frame, self.alignment(landmarks_xy), (self.size, self.size),
                              flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)


def _scale2(posed, vertices):
    """Squared scale between model-frame vertices and the same vertices posed (a similarity)."""
    a = posed - posed.mean(axis=0)
    b = vertices - vertices.mean(axis=0)
    return float((a ** 2).sum() / max((b ** 2).sum(), 1e-12))


_REMAP_WIDTH = 256   # remap takes at most 32767 rows or columns: points go as a block of rows this wide


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples (N×C float32) of an image at N points (x, y); 0 outside it."""
    n = len(points)
    block = np.full((-(-n // _REMAP_WIDTH) * _REMAP_WIDTH, 2), -1.0, dtype=np.float32)
    block[:n] = points
    return _remap(image, block, n).astype(np.float32)


def _remap(image: np.ndarray, block: np.ndarray, n: int) -> np.ndarray:
    """Bilinear samples (n×C, the image's type) at the first n points of a block of points (a
    multiple of _REMAP_WIDTH long, the rest outside the image)."""
    out = cv2.remap(image, block.reshape(-1, _REMAP_WIDTH, 2), None, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT)
    return out.reshape(len(block), -1)[:n]


@numba.njit(cache=True, nogil=True)
def _blend_plan(values, better_side, width):
    """From the covered pixels' attributes (N × 7: the frame position seen directly, its mirror
    partner's, the two visibilities, the shade): each pixel's weight on its own side `alpha` — the
    frame's own pixel is kept while at least half visible, the mirror takes over below (with
    `better_side`, whichever side was seen more squarely) —, the pixels that need their mirror
    (alpha < 1, ascending), and the points to sample: the N direct ones, then those pixels' mirrored
    ones, as a block `width` wide padded with (-1, -1). Compiled: one pass instead of a clip, a
    search, a gather and a concatenation, in numpy's float32 arithmetic."""
    n = values.shape[0]
    alpha = np.empty(n, dtype=np.float32)
    zero, one = np.float32(0.0), np.float32(1.0)
    count = 0
    for i in range(n):
        vd, vm = values[i, 4], values[i, 5]
        if better_side:
            a = np.float32(4.0) * (vd - vm) + np.float32(0.5)
        else:
            a = np.float32(2.0) * vd - vm + np.float32(0.5)
        a = min(max(a, zero), one)
        alpha[i] = a
        count += a < one
    mirrored = np.empty(count, dtype=np.int64)
    points = np.full(((n + count + width - 1) // width * width, 2), np.float32(-1.0), dtype=np.float32)
    j = 0
    for i in range(n):
        points[i, 0], points[i, 1] = values[i, 0], values[i, 1]
        if alpha[i] < one:
            mirrored[j] = i
            points[n + j, 0], points[n + j, 1] = values[i, 2], values[i, 3]
            j += 1
    return alpha, mirrored, points


@numba.njit(cache=True, nogil=True)
def _surface_terms(vertices, seen_xy, triangles, area_scale2, tiny, light):
    """Per vertex, from its triangles: the foreshortening cosine (each triangle's area as seen in
    `seen_xy` over its true area — its model-frame area times `area_scale2`, at least `tiny` — averaged
    by true area) and the Gouraud shade (0.2 + 0.8·cos to `light` of the area-weighted normal); and how
    many triangles are seen folded (back-facing). Compiled: one pass instead of a dozen numpy passes
    and two sparse products, each value rounded and summed as numpy did (the normals and true areas
    in the mesh's precision: `area_scale2` and `tiny` come in its type)."""
    n, count = vertices.shape[0], triangles.shape[0]
    normal = np.zeros((n, 3))
    seen_sum = np.zeros(n)
    area_sum = np.zeros(n)
    folded = 0
    for t in range(count):
        a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        ux, uy, uz = vertices[b, 0] - vertices[a, 0], vertices[b, 1] - vertices[a, 1], vertices[b, 2] - vertices[a, 2]
        vx, vy, vz = vertices[c, 0] - vertices[a, 0], vertices[c, 1] - vertices[a, 1], vertices[c, 2] - vertices[a, 2]
        nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
        true_area = np.sqrt(nx * nx + ny * ny + nz * nz) * area_scale2 * 0.5  # halving is exact
        # Front faces run clockwise on screen (y down): their signed area is negative.
        seen_area = -0.5 * ((seen_xy[b, 0] - seen_xy[a, 0]) * (seen_xy[c, 1] - seen_xy[a, 1])
                            - (seen_xy[c, 0] - seen_xy[a, 0]) * (seen_xy[b, 1] - seen_xy[a, 1]))
        cosine = seen_area / max(true_area, tiny)
        folded += cosine < 0
        for corner in (a, b, c):
            normal[corner, 0] += nx
            normal[corner, 1] += ny
            normal[corner, 2] += nz
            seen_sum[corner] += cosine * true_area
            area_sum[corner] += true_area
    cosine = np.empty(n)
    shade = np.empty(n)
    for i in range(n):
        cosine[i] = seen_sum[i] / max(area_sum[i], 1e-9)
        length = max(np.sqrt(normal[i, 0] ** 2 + normal[i, 1] ** 2 + normal[i, 2] ** 2), 1e-12)
        lit = (normal[i, 0] / length * light[0] + normal[i, 1] / length * light[1]) + normal[i, 2] / length * light[2]
        shade[i] = 0.2 + 0.8 * min(max(lit, 0.0), 1.0)
    return cosine, folded, shade


@numba.njit(cache=True, nogil=True)
def _extent(points):
    """(min x, min y, max x, max y) of N×2+ points: one compiled pass, not four numpy reductions."""
    x0, y0, x1, y1 = points[0, 0], points[0, 1], points[0, 0], points[0, 1]
    for i in range(1, points.shape[0]):
        x0, x1 = min(x0, points[i, 0]), max(x1, points[i, 0])
        y0, y1 = min(y0, points[i, 1]), max(y1, points[i, 1])
    return x0, y0, x1, y1


@numba.njit(cache=True, nogil=True)
def _compose(pixel, values, alpha, samples, mirrored, better_side, count):
    """The frontal render's images (flat, `count` pixels, 0 outside the face) from the covered pixels'
    attributes (N × 7: the frame position seen directly, its mirror partner's, the two visibilities,
    the shade), their blend weights `alpha`, and the frame's samples (its own type, read as float32):
    N direct ones, then one for each pixel listed in `mirrored` (ascending: those with alpha < 1).
    Returns (frontal colour, visibility, shade as grey BGR). Compiled: one pass instead of a blend,
    three scatters of N-row arrays and a grey-to-BGR conversion, with numpy's float32 arithmetic and
    rounding, so the renders are what they were."""
    n, channels = pixel.shape[0], samples.shape[1]
    frontal = np.zeros((count, channels), dtype=np.uint8)
    visibility = np.zeros(count, dtype=np.float32)
    grey = np.zeros((count, 3), dtype=np.uint8)
    one = np.float32(1.0)
    j = 0
    for i in range(n):
        a = alpha[i]
        blend = j < mirrored.shape[0] and mirrored[j] == i
        p = pixel[i]
        for k in range(channels):
            colour = np.float32(samples[i, k])
            if blend:
                colour = a * colour + (one - a) * np.float32(samples[n + j, k])
            frontal[p, k] = np.uint8(np.rint(colour))
        j += blend
        # Seen directly (low where mirrored in); for atlases, how well the side used was seen.
        seen = a * values[i, 4] + (one - a) * values[i, 5] if better_side else values[i, 4]
        visibility[p] = min(max(seen, np.float32(0.0)), one)
        shade = np.uint8(np.rint(values[i, 6] * np.float32(235.0)))
        grey[p, 0], grey[p, 1], grey[p, 2] = shade, shade, shade   # as BGR
    return frontal, visibility, grey


def _prefilter(frame, texture_xy, out_scale, vertices):
    """Halve a face more than twice the output's size (pyramid steps, cheap) so that sampling it
    does not alias; returns the smaller image and the texture positions in it."""
    x0, y0, x1, y1 = _extent(texture_xy)
    vx0, vy0, vx1, vy1 = _extent(vertices)
    span, target_span = max(x1 - x0, y1 - y0), max(vx1 - vx0, vy1 - vy0) * out_scale
    halvings = int(math.floor(math.log2(max(span / max(target_span, 1e-6), 1.0))))
    if halvings < 1:
        return frame, texture_xy
    lo = (max(int(math.floor(x0 - 4)), 0), max(int(math.floor(y0 - 4)), 0))
    hi = (min(int(math.ceil(x1 + 4)), frame.shape[1]), min(int(math.ceil(y1 + 4)), frame.shape[0]))
    if hi[0] <= lo[0] + 4 or hi[1] <= lo[1] + 4:
        return frame, texture_xy
    small = frame[lo[1]:hi[1], lo[0]:hi[0]]
    xy = texture_xy - np.array(lo, dtype=np.float64)
    for _ in range(halvings):
        if min(small.shape[:2]) < 8:
            break
        small = cv2.pyrDown(small)
        xy = (xy + 0.5) / 2.0 - 0.5  # pixel centres: x_half + 0.5 = (x + 0.5) / 2
    return small, xy
