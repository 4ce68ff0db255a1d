"""A z-buffer triangle rasteriser (a numba-compiled loop): which triangle covers each pixel, and where.

Every pixel centre inside a triangle's bounding box is tested with barycentric coordinates, and the
nearest surface per pixel wins. Pixel (row r, column c) has its centre at x = c, y = r, the
convention cv2.remap uses, so maps built from the result sample exactly where the mesh says.
"""
from dataclasses import dataclass

import cv2
import numba
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
        values = np.ascontiguousarray(vertex_values, dtype=np.float32).reshape(len(vertex_values), -1)
        return _interpolate_kernel(self.triangle, self.barycentric, np.ascontiguousarray(triangles, dtype=np.int64),
                                   values)

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
    xy = np.ascontiguousarray(xy, dtype=np.float64)
    depth = np.ascontiguousarray(depth, dtype=np.float64)
    tri = np.ascontiguousarray(triangles, dtype=np.int64)
    zbuf, owner, bary = _rasterize_kernel(xy, depth, tri, int(height), int(width), bool(cull_backfaces))
    pixel = np.flatnonzero(owner >= 0)
    return Raster(height, width, pixel, owner[pixel], bary[pixel], zbuf.reshape(height, width))


@numba.njit(cache=True, nogil=True)
def _rasterize_kernel(xy, depth, tri, height, width, cull):
    """The z-buffer loop, compiled (numba): every pixel centre inside each triangle's bounding box is
    tested with barycentric coordinates; the nearest surface wins, the later triangle on a tie.

    Written out by hand because no installed library rasterises a mesh with per-pixel triangle ids
    and barycentrics on the CPU (OpenCV fills polygons one call per triangle; 900 calls a frame).
    Barycentrics and depth are affine in (x, y) over a triangle (orthographic view): precomputed per
    triangle relative to its box corner, then evaluated in float32 as numpy would.
    """
    n = height * width
    zbuf = np.full(n, -np.inf, dtype=np.float32)
    owner = np.full(n, -1, dtype=np.int32)
    bary = np.empty((n, 3), dtype=np.float32)   # read only where `owner` says a triangle wrote it
    eps = np.float32(-1e-5)
    one = np.float32(1.0)
    for t in range(tri.shape[0]):
        i0, i1, i2 = tri[t, 0], tri[t, 1], tri[t, 2]
        p0x, p0y, p1x, p1y, p2x, p2y = xy[i0, 0], xy[i0, 1], xy[i1, 0], xy[i1, 1], xy[i2, 0], xy[i2, 1]
        # Twice the signed area; in image coordinates (y down) a front face has negative area.
        area = (p1x - p0x) * (p2y - p0y) - (p2x - p0x) * (p1y - p0y)
        if abs(area) <= 1e-9 or (cull and area >= 0):
            continue
        x_min = min(max(np.ceil(min(p0x, p1x, p2x)), 0.0), width)
        x_max = min(max(np.floor(max(p0x, p1x, p2x)), -1.0), width - 1.0)
        y_min = min(max(np.ceil(min(p0y, p1y, p2y)), 0.0), height)
        y_max = min(max(np.floor(max(p0y, p1y, p2y)), -1.0), height - 1.0)
        box_w, box_h = int(x_max - x_min + 1), int(y_max - y_min + 1)
        if box_w <= 0 or box_h <= 0:
            continue
        inv = 1.0 / area
        a1, b1 = (p2y - p0y) * inv, -(p2x - p0x) * inv
        a2, b2 = -(p1y - p0y) * inv, (p1x - p0x) * inv
        c1 = a1 * (x_min - p0x) + b1 * (y_min - p0y)
        c2 = a2 * (x_min - p0x) + b2 * (y_min - p0y)
        z0, z1, z2 = depth[i0], depth[i1], depth[i2]
        az, bz = a1 * (z1 - z0) + a2 * (z2 - z0), b1 * (z1 - z0) + b2 * (z2 - z0)
        cz = z0 + c1 * (z1 - z0) + c2 * (z2 - z0)
        a1f, b1f, c1f = np.float32(a1), np.float32(b1), np.float32(c1)
        a2f, b2f, c2f = np.float32(a2), np.float32(b2), np.float32(c2)
        azf, bzf, czf = np.float32(az), np.float32(bz), np.float32(cz)
        x0, y0 = int(x_min), int(y_min)
        for dy in range(box_h):
            fy = np.float32(dy)
            row = (y0 + dy) * width + x0
            for dx in range(box_w):
                fx = np.float32(dx)
                l1 = a1f * fx + b1f * fy + c1f
                l2 = a2f * fx + b2f * fy + c2f
                l0 = one - l1 - l2
                if l0 >= eps and l1 >= eps and l2 >= eps:
                    z = azf * fx + bzf * fy + czf
                    p = row + dx
                    if z >= zbuf[p]:
                        zbuf[p] = z
                        owner[p] = t
                        # Edges may dip to -1e-5: clamp, so that blends of non-negative values stay non-negative.
                        bary[p, 0] = max(l0, np.float32(0.0))
                        bary[p, 1] = max(l1, np.float32(0.0))
                        bary[p, 2] = max(l2, np.float32(0.0))
    return zbuf, owner, bary


@numba.njit(cache=True, nogil=True)
def _interpolate_kernel(triangle, bary, tri, values):
    """out[i] = the barycentric blend of `values` at pixel i's triangle corners (float32, summed in
    numpy's order: one pass instead of six gathers of N×C arrays)."""
    out = np.empty((triangle.shape[0], values.shape[1]), dtype=np.float32)
    for i in range(triangle.shape[0]):
        t = triangle[i]
        c0, c1, c2 = tri[t, 0], tri[t, 1], tri[t, 2]
        b0, b1, b2 = bary[i, 0], bary[i, 1], bary[i, 2]
        for c in range(values.shape[1]):
            out[i, c] = b0 * values[c0, c] + b1 * values[c1, c] + b2 * values[c2, c]
    return out


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
    tri = np.ascontiguousarray(triangles, dtype=np.int64)
    _, owner, bary = _rasterize_kernel(
        np.ascontiguousarray((np.asarray(xy) - (step - 1) / 2.0) / step, dtype=np.float64),
        np.ascontiguousarray(np.asarray(depth) / step, dtype=np.float64), tri, small_h, small_w, bool(cull_backfaces))
    grid = _coverage_grid(owner, bary, tri, attributes)
    pixel, values = _upsample_kernel(grid.reshape(small_h, small_w, attributes.shape[1] + 1), step, height, width)
    return PixelSet(height, width, pixel), values


@numba.njit(cache=True, nogil=True)
def _coverage_grid(owner, bary, tri, values):
    """Per pixel of a raster (flat): the covering triangle's barycentric blend of `values` (V×C, as
    _interpolate_kernel blends) and a last channel 1; zeros where nothing is drawn. One pass instead of
    listing the covered pixels, gathering their triangles and weights, blending and scattering back."""
    channels = values.shape[1]
    grid = np.zeros((owner.shape[0], channels + 1), dtype=np.float32)
    for p in range(owner.shape[0]):
        t = owner[p]
        if t < 0:
            continue
        c0, c1, c2 = tri[t, 0], tri[t, 1], tri[t, 2]
        b0, b1, b2 = bary[p, 0], bary[p, 1], bary[p, 2]
        for c in range(channels):
            grid[p, c] = b0 * values[c0, c] + b1 * values[c1, c] + b2 * values[c2, c]
        grid[p, channels] = 1.0
    return grid


@numba.njit(cache=True, nogil=True)
def _upsample_kernel(grid, step, height, width):
    """Coarse attribute images (last channel: coverage) → the fine pixels whose upsampled coverage
    is at least ½, and their values: first the values are extended one pixel past the outline (a
    3×3 box mean of the covered neighbours) so that upsampling does not pull in zeros, then bilinear
    upsampling by `step` (pixel centres aligned, edges clamped: OpenCV's INTER_LINEAR resize).
    Compiled: on a 64² face this was a blur, a resize and four masked copies of 8-channel images.

    Only the covered box grown by one coarse pixel is worked on: beyond it the extended values are
    zeros (no covered neighbour), and a fine pixel whose coverage reaches ½ has a covered tap, so
    both its taps lie in that box — the same pixels and values as the whole image gives."""
    small_h, small_w, planes = grid.shape
    channels = planes - 1
    r0, r1, c0, c1 = small_h, -1, small_w, -1
    for r in range(small_h):
        for c in range(small_w):
            if grid[r, c, channels] != 0:
                r0, r1, c0, c1 = min(r0, r), max(r1, r), min(c0, c), max(c1, c)
    if r1 < 0:
        return np.empty(0, dtype=np.int64), np.empty((0, channels), dtype=np.float32)
    r0, r1, c0, c1 = max(r0 - 1, 0), min(r1 + 1, small_h - 1), max(c0 - 1, 0), min(c1 + 1, small_w - 1)
    extended = grid.copy()
    total = np.empty(planes, dtype=np.float64)   # OpenCV's box filter sums float32 images in doubles
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            if grid[r, c, channels] != 0:
                continue
            # A 3×3 box with OpenCV's default border (reflect-101): the coverage-weighted mean; none
            # of it where no neighbour is covered (the values there are zeros, as the mean would be).
            near = False
            for dr in range(-1, 2):
                for dc in range(-1, 2):
                    rr, cc = r + dr, c + dc
                    near |= 0 <= rr < small_h and 0 <= cc < small_w and grid[rr, cc, channels] != 0
            if not near:
                continue
            for k in range(planes):
                total[k] = 0.0
            for dr in range(-1, 2):
                rr = r + dr
                rr = -rr if rr < 0 else (2 * small_h - 2 - rr if rr >= small_h else rr)
                for dc in range(-1, 2):
                    cc = c + dc
                    cc = -cc if cc < 0 else (2 * small_w - 2 - cc if cc >= small_w else cc)
                    for k in range(planes):
                        total[k] += grid[rr, cc, k]
            cover = max(np.float32(total[channels] * (1.0 / 9.0)), np.float32(1e-6))
            for k in range(channels):
                extended[r, c, k] = np.float32(total[k] * (1.0 / 9.0)) / cover
    # The fine rows and columns whose two taps both lie in the box.
    x0s, x1s, wxs = _linear_taps(width, small_w, step)
    y0s, y1s, wys = _linear_taps(height, small_h, step)
    xa, xb = _inside(x0s, x1s, c0, c1)
    ya, yb = _inside(y0s, y1s, r0, r1)
    # Separable, as OpenCV resizes: each coarse row upsampled along x, then pairs of rows blended.
    rows = np.empty((r1 - r0 + 1, max(xb - xa, 0), planes), dtype=np.float32)
    for r in range(r0, r1 + 1):
        for x in range(xa, xb):
            a, b = x0s[x], x1s[x]
            wx = wxs[x]
            for k in range(planes):
                rows[r - r0, x - xa, k] = (np.float32(1.0) - wx) * extended[r, a, k] + wx * extended[r, b, k]
    pixel = np.empty(max(yb - ya, 0) * max(xb - xa, 0), dtype=np.int64)
    values = np.empty((pixel.shape[0], channels), dtype=np.float32)
    count = 0
    for y in range(ya, yb):
        top, bottom, wy = rows[y0s[y] - r0], rows[y1s[y] - r0], wys[y]
        for x in range(xa, xb):
            i = x - xa
            if (np.float32(1.0) - wy) * top[i, channels] + wy * bottom[i, channels] < 0.5:
                continue
            for k in range(channels):
                values[count, k] = (np.float32(1.0) - wy) * top[i, k] + wy * bottom[i, k]
            pixel[count] = y * width + x
            count += 1
    return pixel[:count], values[:count]


@numba.njit(cache=True, nogil=True)
def _inside(first, second, lo, hi):
    """[a, b): the run of positions whose taps `first` and `second` (both non-decreasing) lie in
    [lo, hi]."""
    a = 0
    while a < first.shape[0] and first[a] < lo:
        a += 1
    b = a
    while b < first.shape[0] and second[b] <= hi:
        b += 1
    return a, b


@numba.njit(cache=True, nogil=True)
def _linear_taps(size, small, step):
    """For each of `size` output positions upsampled by `step` from `small`: the two source indices
    and the second one's weight (pixel centres aligned; clamped at the edges, as OpenCV does)."""
    first = np.empty(size, dtype=np.int64)
    second = np.empty(size, dtype=np.int64)
    weight = np.empty(size, dtype=np.float32)
    for i in range(size):
        source = (i + 0.5) / step - 0.5
        i0 = int(np.floor(source))
        w = source - i0
        if i0 < 0:
            i0, w = 0, 0.0
        if i0 >= small - 1:
            i0, w = small - 1, 0.0
        first[i], second[i], weight[i] = i0, min(i0 + 1, small - 1), w
    return first, second, weight


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
