"""A z-buffer triangle rasteriser in vectorised numpy: which triangle covers each pixel, and where.

Every (triangle, pixel) pair inside the triangles' bounding boxes is enumerated at once, tested
with barycentric coordinates, and the nearest surface per pixel wins. Pixel (row r, column c) has
its centre at x = c, y = r, the convention cv2.remap uses, so maps built from the result sample
exactly where the mesh says.
"""
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Raster:
    """The covered pixels of an H×W image: flat pixel index, covering triangle, barycentric weights
    (N×3) each; and the depth buffer (H×W, -inf where nothing is drawn)."""

    height: int
    width: int
    pixel: np.ndarray
    triangle: np.ndarray
    barycentric: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return np.isfinite(self.depth)

    @property
    def triangle_map(self) -> np.ndarray:
        """H×W index of the covering triangle, -1 for none."""
        out = np.full(self.height * self.width, -1, dtype=np.int32)
        out[self.pixel] = self.triangle
        return out.reshape(self.height, self.width)

    def interpolate(self, vertex_values: np.ndarray, triangles: np.ndarray) -> np.ndarray:
        """Per covered pixel (N×C), the barycentric blend of per-vertex values (V×C)."""
        values = np.asarray(vertex_values, dtype=np.float32).reshape(len(vertex_values), -1)
        corners = triangles[self.triangle]
        b = self.barycentric
        return (b[:, 0:1] * values[corners[:, 0]] + b[:, 1:2] * values[corners[:, 1]]
                + b[:, 2:3] * values[corners[:, 2]])

    def image(self, pixel_values: np.ndarray, fill=0, dtype=np.float32) -> np.ndarray:
        """H×W(×C) image with the covered pixels set to `pixel_values` (N or N×C)."""
        values = np.asarray(pixel_values)
        out = np.full((self.height * self.width,) + values.shape[1:], fill, dtype=dtype)
        out[self.pixel] = values
        return out.reshape((self.height, self.width) + values.shape[1:])


def rasterize(xy: np.ndarray, depth: np.ndarray, triangles: np.ndarray, height: int, width: int,
              cull_backfaces: bool = False) -> Raster:
    """Rasterise triangles given vertex pixel positions `xy` (V×2) and `depth` (V, larger = nearer).

    With `cull_backfaces`, triangles wound clockwise on screen (facing away, for meshes whose front
    faces are counter-clockwise in a y-up frame) are dropped before the depth test.
    """
    xy = np.asarray(xy, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    tri = np.asarray(triangles, dtype=np.int64)
    p0, p1, p2 = xy[tri[:, 0]], xy[tri[:, 1]], xy[tri[:, 2]]
    # Twice the signed area; in image coordinates (y down) a front face has negative area.
    area = (p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p2[:, 0] - p0[:, 0]) * (p1[:, 1] - p0[:, 1])
    keep = np.abs(area) > 1e-9
    if cull_backfaces:
        keep &= area < 0
    x_min = np.ceil(np.minimum(np.minimum(p0[:, 0], p1[:, 0]), p2[:, 0])).clip(0, width)
    x_max = np.floor(np.maximum(np.maximum(p0[:, 0], p1[:, 0]), p2[:, 0])).clip(-1, width - 1)
    y_min = np.ceil(np.minimum(np.minimum(p0[:, 1], p1[:, 1]), p2[:, 1])).clip(0, height)
    y_max = np.floor(np.maximum(np.maximum(p0[:, 1], p1[:, 1]), p2[:, 1])).clip(-1, height - 1)
    box_w = (x_max - x_min + 1).astype(np.int64)
    box_h = (y_max - y_min + 1).astype(np.int64)
    keep &= (box_w > 0) & (box_h > 0)
    ids = np.nonzero(keep)[0]
    if ids.size == 0:
        return Raster(height, width, np.zeros(0, np.int64), np.zeros(0, np.int32),
                      np.zeros((0, 3), np.float32), np.full((height, width), -np.inf, np.float32))

    # Barycentric weights and depth are affine in (x, y) over a triangle (orthographic view):
    # l1 = a1·x + b1·y + c1, l2 likewise, z likewise; precomputed per triangle.
    p0, p1, p2, tri = p0[ids], p1[ids], p2[ids], tri[ids]
    inv = 1.0 / area[ids]
    a1, b1 = (p2[:, 1] - p0[:, 1]) * inv, -(p2[:, 0] - p0[:, 0]) * inv
    a2, b2 = -(p1[:, 1] - p0[:, 1]) * inv, (p1[:, 0] - p0[:, 0]) * inv
    x0, y0 = x_min[ids], y_min[ids]  # coefficients relative to the box corner: small numbers
    c1 = a1 * (x0 - p0[:, 0]) + b1 * (y0 - p0[:, 1])
    c2 = a2 * (x0 - p0[:, 0]) + b2 * (y0 - p0[:, 1])
    z0, z1, z2 = depth[tri[:, 0]], depth[tri[:, 1]], depth[tri[:, 2]]
    az, bz = a1 * (z1 - z0) + a2 * (z2 - z0), b1 * (z1 - z0) + b2 * (z2 - z0)
    cz = z0 + c1 * (z1 - z0) + c2 * (z2 - z0)
    coef = np.stack([a1, b1, c1, a2, b2, c2, az, bz, cz], axis=1).astype(np.float32)

    # Enumerate every pixel of every triangle's bounding box, relative to the box corner.
    bw, bh = box_w[ids], box_h[ids]
    counts = bw * bh
    owner = np.repeat(np.arange(len(ids), dtype=np.int32), counts)
    offset = np.arange(counts.sum(), dtype=np.int32) - np.repeat((np.cumsum(counts) - counts).astype(np.int32), counts)
    dy, dx = np.divmod(offset, bw.astype(np.int32)[owner])
    coef = coef.T.copy()  # 9 × T: one gather per coefficient is cheaper than gathering rows
    fx, fy = dx.astype(np.float32), dy.astype(np.float32)
    l1 = coef[0][owner] * fx + coef[1][owner] * fy + coef[2][owner]
    l2 = coef[3][owner] * fx + coef[4][owner] * fy + coef[5][owner]
    l0 = 1.0 - l1 - l2
    eps = -1e-5
    inside = np.nonzero((l0 >= eps) & (l1 >= eps) & (l2 >= eps))[0]
    owner, fx, fy = owner[inside], fx[inside], fy[inside]
    z = coef[6][owner] * fx + coef[7][owner] * fy + coef[8][owner]

    # Z-buffer: the nearest surface per pixel wins.
    pixel = (y0.astype(np.int64)[owner] + dy[inside]) * width + x0.astype(np.int64)[owner] + dx[inside]
    zbuf = np.full(height * width, -np.inf, dtype=np.float32)
    np.maximum.at(zbuf, pixel, z)
    win = np.nonzero(z >= zbuf[pixel])[0]
    keep = inside[win]
    # Edges may dip to -1e-5: clamp, so that blends of non-negative values stay non-negative.
    bary = np.maximum(np.stack([l0[keep], l1[keep], l2[keep]], axis=1), 0.0)
    return Raster(height, width, pixel[win], ids[owner[win]].astype(np.int32), bary,
                  zbuf.reshape(height, width))


class PixelSet:
    """Covered pixels of an H×W image (flat indices), and how to paint per-pixel values there."""

    def __init__(self, height: int, width: int, pixel: np.ndarray):
        self.height, self.width, self.pixel = height, width, pixel

    def image(self, values, fill=0, dtype=np.float32) -> np.ndarray:
        values = np.asarray(values)
        out = np.full((self.height * self.width,) + values.shape[1:], fill, dtype=dtype)
        out[self.pixel] = values
        return out.reshape((self.height, self.width) + values.shape[1:])


def rasterize_attributes(xy, depth, triangles, height: int, width: int, attributes, step: int = 1,
                         cull_backfaces: bool = True):
    """Per-vertex attributes (V×C) interpolated over the covered pixels: (PixelSet, N×C values).

    step=2 rasterises at half resolution and upsamples the attribute images bilinearly: a quarter
    of the work, and for attributes that are piecewise linear over the mesh (texture coordinates,
    visibility, shading) a difference of a fraction of a pixel inside the surface; its outline is
    the upsampled coverage, good to about a pixel.
    """
    attributes = np.asarray(attributes, dtype=np.float32).reshape(len(attributes), -1)
    if step == 1:
        raster = rasterize(xy, depth, triangles, height, width, cull_backfaces=cull_backfaces)
        return PixelSet(height, width, raster.pixel), raster.interpolate(attributes, triangles)
    small_h, small_w = -(-height // step), -(-width // step)
    # Coarse pixel c covers fine pixels step·c … step·c + step − 1: its centre is step·c + (step − 1)/2.
    coarse = rasterize((np.asarray(xy) - (step - 1) / 2.0) / step, np.asarray(depth) / step, triangles,
                       small_h, small_w, cull_backfaces=cull_backfaces)
    channels = attributes.shape[1]
    grid = np.zeros((small_h * small_w, channels + 1), dtype=np.float32)
    grid[coarse.pixel, :channels] = coarse.interpolate(attributes, triangles)
    grid[coarse.pixel, channels] = 1.0
    grid = grid.reshape(small_h, small_w, channels + 1)
    # Extend the values one pixel past the outline so that upsampling does not pull in zeros.
    spread = cv2.blur(grid, (3, 3))
    outside = grid[..., channels] == 0
    grid[outside, :channels] = (spread[..., :channels] / np.maximum(spread[..., channels:], 1e-6))[outside]
    fine = cv2.resize(grid, (small_w * step, small_h * step), interpolation=cv2.INTER_LINEAR)
    fine = fine[:height, :width].reshape(-1, channels + 1)
    pixel = np.nonzero(fine[:, channels] >= 0.5)[0]
    return PixelSet(height, width, pixel), fine[pixel, :channels]


def visible_vertices(xy: np.ndarray, depth: np.ndarray, triangles: np.ndarray, grid: int = 32,
                     tolerance: float = 0.03) -> np.ndarray:
    """Which vertices are not hidden by nearer surface, by a z-buffer at `grid`² over the mesh's box.

    A coarse grid is enough: it only has to tell the far cheek behind the nose from the near one.
    `tolerance` is a fraction of the mesh's depth range.
    """
    xy = np.asarray(xy, dtype=np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    scale = (grid - 1) / max(float((hi - lo).max()), 1e-9)
    small = (xy - lo) * scale
    z = np.asarray(depth, dtype=np.float64) * scale
    zbuf = rasterize(small, z, triangles, grid, grid).depth
    col = np.clip(np.round(small[:, 0]).astype(int), 0, grid - 1)
    row = np.clip(np.round(small[:, 1]).astype(int), 0, grid - 1)
    span = max(float(z.max() - z.min()), 1e-9)
    return z >= zbuf[row, col] - tolerance * span
