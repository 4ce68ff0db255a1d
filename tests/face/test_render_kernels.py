"""The compiled render kernels against the OpenCV and numpy operations they replaced: the renders the
models were trained on must not move by a bit."""
import cv2
import numpy as np
import pytest

from face import bilinear
from face.raster import rasterize, rasterize_attributes
from face.render import Layout, Renderer


def upsampled_with_opencv(xy, depth, triangles, height, width, attributes, step):
    """rasterize_attributes(step > 1) as written before it was compiled: a 3×3 box blur extends the
    values past the outline, cv2.resize upsamples, coverage ≥ ½ is kept."""
    small_h, small_w = -(-height // step), -(-width // step)
    coarse = rasterize((np.asarray(xy) - (step - 1) / 2.0) / step, np.asarray(depth) / step, triangles,
                       small_h, small_w, cull_backfaces=True)
    channels = attributes.shape[1]
    grid = np.zeros((small_h * small_w, channels + 1), dtype=np.float32)
    grid[coarse.pixel, :channels] = coarse.interpolate(attributes, triangles)
    grid[coarse.pixel, channels] = 1.0
    grid = grid.reshape(small_h, small_w, channels + 1)
    spread = cv2.blur(grid, (3, 3))
    outside = grid[..., channels] == 0
    grid[outside, :channels] = (spread[..., :channels] / np.maximum(spread[..., channels:], 1e-6))[outside]
    fine = cv2.resize(grid, (small_w * step, small_h * step), interpolation=cv2.INTER_LINEAR)
    fine = fine[:height, :width].reshape(-1, channels + 1)
    pixel = np.nonzero(fine[:, channels] >= 0.5)[0]
    return pixel, fine[pixel, :channels]


@pytest.fixture(scope="module")
def model():
    return bilinear.load()


@pytest.mark.parametrize("height, width", [(128, 128), (97, 131)])
@pytest.mark.parametrize("shift", [(0, 0), (-50, 30), (70, -60), (400, 0)])   # cut by the edges; off the image
def test_upsampled_attributes_equal_opencvs(model, height, width, shift):
    layout, triangles = Layout(model, 128), model.triangles.astype(np.int64)
    rng = np.random.default_rng(3)
    for _ in range(4):
        xy, depth = layout.project_aligned(model.mesh() + rng.normal(0, 0.2, model.mesh().shape))
        xy = xy * np.array([width / 128, height / 128]) + np.array(shift)
        attributes = rng.normal(size=(len(xy), 7)).astype(np.float32)
        pixels, values = rasterize_attributes(xy, depth, triangles, height, width, attributes, step=2)
        pixel, expected = upsampled_with_opencv(xy, depth, triangles, height, width, attributes, 2)
        assert np.array_equal(pixels.pixel, pixel) and np.array_equal(values, expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])   # float32: the fit's meshes
def test_frontal_render_equals_the_numpy_composition(model, dtype):
    """A turned face (mirrored fill in use) rendered by Renderer.render against the same attributes
    composed with numpy as before: frontal, visibility and shade alike, bit for bit."""
    renderer = Renderer(model, 128)
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    frame = cv2.GaussianBlur(frame, (0, 0), 3)
    vertices = model.mesh().astype(dtype)
    angle = np.radians(35.0)
    turn = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    posed = (vertices @ turn.T) * np.array([60.0, -60.0, -60.0]) + np.array([160.0, 120.0, 0.0])
    for better_side in (False, True):
        frontal, visibility, simulated, _ = renderer.render(frame, posed[:, :2].copy(), posed, vertices,
                                                            better_side=better_side)
        expected = numpy_render(renderer, frame, posed, vertices, better_side)
        assert np.array_equal(frontal, expected[0]) and np.array_equal(visibility, expected[1])
        assert np.array_equal(simulated, expected[2])
        assert (visibility[visibility > 0] < 0.99).any()   # part of the face came from the mirror


def numpy_visibility(renderer, posed, frame_shape, texture_xy, true_area):
    """Renderer's vertex visibility as numpy and two sparse products did it."""
    from face.raster import visible_vertices

    q = texture_xy[renderer.triangles]
    seen_area = -0.5 * ((q[:, 1, 0] - q[:, 0, 0]) * (q[:, 2, 1] - q[:, 0, 1])
                        - (q[:, 2, 0] - q[:, 0, 0]) * (q[:, 1, 1] - q[:, 0, 1]))
    cosine_tri = seen_area / np.maximum(true_area, 1e-9)
    cosine = (renderer.incidence @ (cosine_tri * true_area)) / np.maximum(renderer.incidence @ true_area, 1e-9)
    facing = np.clip((cosine - 0.25) / 0.4, 0.0, 1.0)
    folded = int((cosine_tri < 0).sum()) > len(renderer.triangles) // 20
    unhidden = visible_vertices(posed[:, :2], -posed[:, 2], renderer.triangles) if folded else True
    h, w = frame_shape[:2]
    inside = ((texture_xy[:, 0] >= 0) & (texture_xy[:, 0] <= w - 1) & (texture_xy[:, 1] >= 0)
              & (texture_xy[:, 1] <= h - 1))
    return (facing * unhidden * inside).astype(np.float64)


def numpy_render(renderer, frame, posed, vertices, better_side):
    """Renderer.render as numpy did it: the surface terms with sparse products, a remap, a blend,
    three scatters."""
    from face.render import LIGHT, _prefilter, _sample, _scale2

    triangles = renderer.triangles
    frontal_xy, depth = renderer.layout.project_aligned(vertices)
    p = vertices[triangles]
    face_normals = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    true_area = 0.5 * np.linalg.norm(face_normals, axis=1) * _scale2(posed, vertices)
    texture_xy = posed[:, :2].copy()
    vis = numpy_visibility(renderer, posed, frame.shape, texture_xy, true_area)
    small, texture_xy = _prefilter(frame, texture_xy, renderer.layout.scale, vertices)
    normals = renderer.incidence @ face_normals
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    shade = 0.2 + 0.8 * np.clip(normals @ LIGHT, 0.0, 1.0)
    m = renderer.mirror
    attributes = np.column_stack([texture_xy, texture_xy[m], vis, vis[m], shade]).astype(np.float32)
    pixels, values = rasterize_attributes(frontal_xy, depth, triangles, renderer.size, renderer.size, attributes,
                                          step=renderer.raster_step)
    vd, vm, shade_px = values[:, 4], values[:, 5], values[:, 6]
    alpha = np.clip(4.0 * (vd - vm) + 0.5 if better_side else 2.0 * vd - vm + 0.5, 0.0, 1.0)
    mirrored = np.nonzero(alpha < 1.0)[0]
    samples = _sample(small, np.concatenate([values[:, 0:2], values[mirrored, 2:4]]))
    colour = samples[:len(values)]
    a = alpha[mirrored, None]
    colour[mirrored] = a * colour[mirrored] + (1.0 - a) * samples[len(values):]
    frontal = pixels.image(colour.round().astype(np.uint8), dtype=np.uint8)
    seen = alpha * vd + (1.0 - alpha) * vm if better_side else vd
    visibility = pixels.image(np.clip(seen, 0.0, 1.0))
    grey = pixels.image((shade_px * 235.0).round().astype(np.uint8), dtype=np.uint8)
    return frontal, visibility, cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
