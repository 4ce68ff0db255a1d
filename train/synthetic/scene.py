"""A synthetic driver in a dark cabin, seen by an NIR camera: one grey frame with its ground truth.

The face is the bilinear model's mesh (the driver's identity, the frame's expression) posed and
rasterised with the z-buffer of face.raster, wearing the driver's texture; the head, neck and
cabin are simple shapes behind it. Light comes from an on-axis illuminator, so surfaces facing
the camera are brightest. The eyes are as the texture paints them, or, given a gaze, eyeballs that
look around under lids that shut (train/synthetic/eyeballs.py; NIR only).

On a colour canvas (H×W×3, linear BGR: a VisibleCamera's backdrop) the same driver is drawn as
visible light shows it — their `VisibleLook`: skin tone, redder lips, brows, eyes, hair and clothes
colours — and the light may be given (`draw(..., light=camera.light)`, e.g. a studio's key light).
"""
import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from face.bilinear import BilinearModel
from face.expressions import EXPRESSIONS
from face.fit import camera_to_image, rotation_from_angles
from face.landmarks import INNER_LIPS, UPPER_INNER_LIPS
from face.raster import rasterize, rasterize_attributes
from face.render import Layout, incidence_matrix, vertex_normals
from train.synthetic import eyeballs, textures

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


@dataclass
class VisibleLook:
    """How a driver looks in visible light (linear BGR reflectances): what their NIR look hides."""

    skin: np.ndarray      # 3
    hair: np.ndarray      # 3, also the brows
    clothes: np.ndarray   # 3
    texture: np.ndarray   # ATLAS_SIZE²×3, on the same layout as Driver.texture


@dataclass
class Driver:
    """Who sits in the seat: shape (identity weights), texture, hair and clothes tones (NIR)."""

    w_id: np.ndarray
    texture: np.ndarray
    hair: float
    clothes: float
    skin: float
    look: VisibleLook | None = field(default=None, repr=False)  # made on first use: SceneRenderer.look
    eyes: eyeballs.EyeLook | None = field(default=None, repr=False)  # likewise: SceneRenderer.eye_look


def visible_look(driver: Driver, template_xy: np.ndarray) -> VisibleLook:
    """The driver's visible-light look, a function of the driver alone (seeded by their shape and
    NIR texture): any driver can be seen by a visible-light camera, always with the same colours,
    and no random stream of the NIR data is touched."""
    digest = hashlib.sha256(np.ascontiguousarray(driver.w_id).tobytes() + np.ascontiguousarray(driver.texture).tobytes())
    rng = np.random.default_rng(np.frombuffer(digest.digest(), dtype=np.uint32))

    def pick(palette, jitter, index=None):
        index = rng.integers(len(palette)) if index is None else index
        return textures.srgb_to_linear(palette[index]) * rng.uniform(1 - jitter, 1 + jitter, 3)

    tone = int(rng.integers(len(textures.SKIN_TONES)))
    skin = pick(textures.SKIN_TONES, 0.06, tone)
    # Darker skin, darker hair: black or dark brown from the palette's middle tone on.
    hair = pick(textures.HAIR_COLOURS, 0.1, None if tone < 3 else int(rng.integers(2)))
    iris = pick(textures.IRIS_COLOURS, 0.1, None if tone < 3 else int(rng.integers(2)))  # brown, likewise
    clothes = pick(textures.CLOTHES_COLOURS, 0.1)
    texture = textures.visible_texture(rng, driver.texture, template_xy, skin, hair, iris)
    return VisibleLook(skin=skin.astype(np.float32), hair=hair.astype(np.float32),
                       clothes=clothes.astype(np.float32), texture=texture)


@dataclass
class Pose:
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    cx: float = 320.0       # face centre in the frame, px
    cy: float = 230.0
    height: float = 200.0   # face height (forehead to chin), px


def _colour(value):
    """A drawing colour for cv2: a float for a grey canvas, a tuple for a colour one."""
    return float(value) if np.ndim(value) == 0 else tuple(float(v) for v in value)


class DriverFactory:
    """Random drivers and expressions for one model, deterministic given the generator."""

    def __init__(self, model: BilinearModel):
        self.model = model
        self.atlas_layout = Layout(model, textures.ATLAS_SIZE)

    def driver(self, rng: np.random.Generator) -> Driver:
        m = self.model
        w_id = m.identity_mean + m.identity_std * rng.standard_normal(m.num_identity).astype(np.float32)
        texture = textures.driver_texture(rng, self.atlas_layout.template)
        return Driver(w_id=w_id, texture=texture, hair=float(rng.uniform(0.08, 0.55)),
                      clothes=float(rng.uniform(0.05, 0.4)), skin=float(np.median(texture)))

    def expression(self, rng: np.random.Generator, label: int, intensity=None) -> np.ndarray:
        """Expression weights: the label's direction at a random intensity, a little of the others."""
        m = self.model
        neutral = m.neutral
        t = rng.uniform(0.75, 1.25) if intensity is None else intensity
        w = neutral + t * (m.expression_weights[label] - neutral)
        for other in range(len(EXPRESSIONS)):
            if other != label:
                w = w + rng.uniform(0.0, 0.12) * (m.expression_weights[other] - neutral)
        return (w + 0.03 * m.expression_std * rng.standard_normal(m.num_expression)).astype(np.float32)


def _ellipsoid(centre, radii, rings: int, segments: int):
    """A closed lat-long ellipsoid: (vertices, counter-clockwise-from-outside triangles)."""
    theta = np.linspace(0.0, np.pi, rings + 1)[:, None]          # from the top down
    phi = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)[None, :]
    unit = np.stack([np.sin(theta) * np.sin(phi), np.cos(theta) + 0 * phi, np.sin(theta) * np.cos(phi)], axis=-1)
    vertices = (unit * np.asarray(radii) + np.asarray(centre)).reshape(-1, 3)
    triangles = []
    for r in range(rings):
        for k in range(segments):
            a, b = r * segments + k, r * segments + (k + 1) % segments
            c, d = a + segments, b + segments
            triangles += [(a, c, b), (b, c, d)]
    return vertices, np.array(triangles, dtype=np.int64)


def head_shell():
    """The skull, hair and ears that the face mesh lacks (cm, model frame), so that a turned head
    still has a head's outline: an ellipsoid around the face and two flat ones for the ears.
    (vertices, triangles, hair weight per vertex in [0, 1])."""
    parts = [_ellipsoid((0.0, 1.5, -6.0), (8.0, 11.0, 10.0), 18, 32)]
    for side in (-1.0, 1.0):
        parts.append(_ellipsoid((side * 8.0, 0.3, -7.0), (0.9, 3.0, 1.7), 8, 12))
    vertices = np.concatenate([v for v, _ in parts])
    offsets = np.cumsum([0] + [len(v) for v, _ in parts[:-1]])
    triangles = np.concatenate([t + o for (_, t), o in zip(parts, offsets)])
    y, z = vertices[:, 1], vertices[:, 2]
    hair = np.clip(np.maximum((y - 4.0) / 3.0, (-z - 9.0) / 3.0), 0.0, 1.0)
    hair[len(parts[0][0]):] = 0.0  # ears are skin
    return vertices, triangles, hair


class SceneRenderer:
    def __init__(self, model: BilinearModel):
        self.model = model
        self.triangles = model.triangles.astype(np.int64)
        self.incidence = incidence_matrix(model.num_vertices, self.triangles)
        self.uv = Layout(model, textures.ATLAS_SIZE).template.astype(np.float32)
        height = model.mesh()[:, 1]
        self.mean_height = float(height.max() - height.min())
        self.inner_lip = np.zeros(model.num_vertices, np.float32)
        self.inner_lip[list(INNER_LIPS)] = 1.0
        self.upper_lip = np.zeros(model.num_vertices, np.float32)
        self.upper_lip[list(UPPER_INNER_LIPS)] = 1.0
        self.shell, self.shell_triangles, self.shell_hair = head_shell()
        self.shell_incidence = incidence_matrix(len(self.shell), self.shell_triangles)
        self.eyelids = eyeballs.lid_weights(model.mesh().astype(np.float64))

    def mesh(self, w_id, w_exp, eyes_closed=0.0) -> np.ndarray:
        """V×3 model vertices (cm) with the eyelids closed by `eyes_closed`: 0 open as the
        expression has them, 1 shut (the whole upper lid on the lower one, the skin above
        following); one value or (right, left)."""
        return eyeballs.close_lids(self.model.mesh(w_id, w_exp).astype(np.float64), self.eyelids, eyes_closed)

    def posed(self, w_id, w_exp, pose: Pose, vertices=None) -> np.ndarray:
        """V×3 vertices in frame pixels (x, y down, z nearer-smaller)."""
        vertices = self.model.mesh(w_id, w_exp).astype(np.float64) if vertices is None else vertices
        scale = pose.height / self.mean_height
        camera = scale * vertices @ rotation_from_angles(pose.yaw, pose.pitch, pose.roll).T
        return camera_to_image(camera) + np.array([pose.cx, pose.cy, 0.0])

    def look(self, driver: Driver) -> VisibleLook:
        """The driver's visible-light look (made on first use and kept on the driver)."""
        if driver.look is None:
            driver.look = visible_look(driver, self.uv)
        return driver.look

    def eye_look(self, driver: Driver) -> eyeballs.EyeLook:
        """The driver's moving-eye look (made on first use and kept on the driver)."""
        if driver.eyes is None:
            driver.eyes = eyeballs.eye_look(driver.texture, driver.skin, self.uv)
        return driver.eyes

    def draw(self, canvas: np.ndarray, driver: Driver, w_exp, pose: Pose, shading: bool = True,
             light=None, eyes_closed=0.0, gaze=None) -> dict:
        """Draw head, neck and face into `canvas` (reflectance × light, in place): H×W float32 NIR,
        the driver's grey texture; or H×W×3 float32 linear BGR, the driver's visible look.
        light: None for the on-axis illuminator, or a function of unit vertex normals (N×3: x right,
        y up, z towards the camera) → light per vertex (a camera's `light`).
        eyes_closed: how far the eyelids are shut, as in `mesh`.
        gaze: None, the eyes as the texture paints them (the data as it always was); or (yaw, pitch)
        eye in head, degrees: eyeballs looking that way (train/synthetic/eyeballs.py), the upper
        lids following them up and down; NIR only.

        Returns ground truth: 468×2 landmarks (frame px), box, and whether the face is drawn.
        """
        if gaze is not None:  # the upper lids follow the eyes up and down
            eyes_closed = eyeballs.lid_closure(eyes_closed, gaze[1])
        vertices = self.mesh(driver.w_id, w_exp, eyes_closed)
        posed = self.posed(None, None, pose, vertices=vertices)
        eyes = None
        if gaze is not None:
            if canvas.ndim != 2:
                raise ValueError("eyeballs (gaze) are drawn on NIR canvases only")
            # Each eyeball's centre and iris centre, posed like the mesh (frame px).
            centres = eyeballs.EyeDrawer.centres(vertices)
            irises = centres + eyeballs.LIMBUS_CM * eyeballs.gaze_vector(*gaze)
            eyes = (self.posed(None, None, pose, vertices=centres), self.posed(None, None, pose, vertices=irises),
                    pose.height / self.mean_height)
        self._draw_head(canvas, driver, posed, pose, light)
        self._draw_face(canvas, driver, posed, shading, light, eyes)
        lo, hi = posed[:, :2].min(axis=0), posed[:, :2].max(axis=0)
        return {"landmarks": posed[:, :2].astype(np.float32), "box": [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]}

    def _draw_head(self, canvas, driver, posed, pose, light=None):
        if canvas.ndim == 3:
            look = self.look(driver)
            skin, hair, clothes = look.skin, look.hair, look.clothes
        else:
            skin, hair, clothes = driver.skin, driver.hair, driver.clothes
        oval = posed[list(FACE_OVAL), :2]
        lo, hi = oval.min(axis=0), oval.max(axis=0)
        w, h = hi - lo
        roll = np.radians(pose.roll)
        up = np.array([np.sin(roll), -np.cos(roll)])  # the head's up direction on screen
        # Neck and shoulders first, then the hair/skull around the face's outline.
        chin = posed[152, :2]
        across = np.array([-up[1], up[0]]) * 0.3 * w
        neck = np.array([chin + across - 0.1 * h * up, chin - across - 0.1 * h * up,
                         chin - 1.1 * across - 0.9 * h * up, chin + 1.1 * across - 0.9 * h * up])
        cv2.fillConvexPoly(canvas, np.round(neck * 16).astype(np.int32), _colour(skin * 0.5), cv2.LINE_AA, 4)
        cv2.ellipse(canvas, (int(chin[0]), int(chin[1] + 1.0 * h)), (int(1.4 * w), int(0.5 * h)), 0, 0, 360,
                    _colour(clothes), -1, cv2.LINE_AA)
        shell = self.posed(None, None, pose, vertices=self.shell)
        hair_weight = self.shell_hair[:, None]
        tone = hair * hair_weight + 0.8 * skin * (1.0 - hair_weight)   # V×1 (NIR) or V×3 (colour)
        self._paint(canvas, shell, self.shell_triangles, self.shell_incidence, tone, shading=True, light=light)

    def _paint(self, canvas, posed, triangles, incidence, tone, shading, step: int = 2, light=None):
        """Rasterise a posed mesh with per-vertex tone (V×C, C the canvas's channels; lit from the
        camera, or by `light`) into the canvas, at 1/step resolution and upsampled: the head shell
        is smooth, and large."""
        h, w = canvas.shape[:2]
        lo = np.maximum(np.floor(posed[:, :2].min(axis=0)).astype(int) - 1, 0)
        hi = np.minimum(np.ceil(posed[:, :2].max(axis=0)).astype(int) + 2, [w, h])
        if (hi - lo <= 2 * step).any():
            return
        size = (hi - lo + step - 1) // step
        raster = rasterize((posed[:, :2] - lo - (step - 1) / 2.0) / step, -posed[:, 2] / step, triangles,
                           int(size[1]), int(size[0]), cull_backfaces=True)
        if raster.pixel.size == 0:
            return
        normals = vertex_normals(posed * np.array([1.0, -1.0, -1.0]), triangles, incidence)
        if not shading:
            lit = np.ones(len(posed))
        elif light is None:
            lit = 0.3 + 0.7 * np.clip(normals[:, 2], 0.0, 1.0) ** 0.7
        else:
            lit = light(normals)
        value = raster.interpolate(np.asarray(tone).reshape(len(posed), -1) * lit[:, None], triangles)
        small = np.concatenate([raster.image(value), raster.image(np.ones(len(value)))[..., None]], axis=-1)
        big = cv2.resize(small, (int(size[0]) * step, int(size[1]) * step), interpolation=cv2.INTER_LINEAR)
        big = big[:hi[1] - lo[1], :hi[0] - lo[0]]
        colour, cover = big[..., :-1], big[..., -1]
        if canvas.ndim == 2:
            colour = colour[..., 0]
        else:
            cover = cover[..., None]
        region = canvas[lo[1]:hi[1], lo[0]:hi[0]]
        # Soft edge: blend by coverage; the value is premultiplied by coverage after upsampling.
        region[:] = region * (1.0 - cover) + colour

    def _draw_face(self, canvas, driver, posed, shading, light=None, eyes=None):
        """eyes: None, or (posed eyeball centres, posed iris centres, px per cm) to draw eyeballs in
        the lid openings."""
        h, w = canvas.shape[:2]
        lo = np.floor(posed[:, :2].min(axis=0)).astype(int) - 1
        hi = np.ceil(posed[:, :2].max(axis=0)).astype(int) + 2
        lo, hi = np.maximum(lo, 0), np.minimum(hi, [w, h])
        if (hi - lo <= 1).any():
            return
        camera = posed * np.array([1.0, -1.0, -1.0])
        normals = vertex_normals(camera, self.triangles, self.incidence)
        # Per vertex: how squarely it faces the on-axis illuminator, or the given light on it.
        facing = np.clip(normals[:, 2], 0.0, 1.0) if light is None else light(normals)
        attributes = np.column_stack([self.uv, facing, self.upper_lip, self.inner_lip])
        if eyes is not None:  # and where the lid openings are
            attributes = np.column_stack([attributes, eyeballs.EyeDrawer.openings(len(posed))])
        # Half-resolution rasterisation: the texture is still sampled at full resolution.
        pixels, values = rasterize_attributes(posed[:, :2] - lo, -posed[:, 2], self.triangles, int(hi[1] - lo[1]),
                                              int(hi[0] - lo[0]), attributes, step=2)
        if pixels.pixel.size == 0:
            return
        texture = None if eyes is None else self.eye_look(driver).texture
        flat = self._albedo(driver, pixels, values, colour=canvas.ndim == 3, texture=texture)
        if not shading:
            lit = 1.0
        elif light is None:
            lit = 0.3 + 0.7 * np.clip(values[:, 2], 0.0, 1.0) ** 0.7
        else:
            lit = values[:, 2]
        if eyes is not None:
            flat, lit = self._eyeballs(driver, pixels, values[:, 5:7], lo, eyes, flat, lit)
        channels = canvas.shape[2:]
        region = canvas[lo[1]:hi[1], lo[0]:hi[0]].reshape(-1, *channels)
        region[pixels.pixel] = flat * (np.reshape(lit, (-1, 1)) if channels else lit)
        canvas[lo[1]:hi[1], lo[0]:hi[0]] = region.reshape(hi[1] - lo[1], hi[0] - lo[0], *channels)

    def _eyeballs(self, driver, pixels, openings, lo, eyes, flat, lit):
        """(albedo, light) with the eyeballs in the lid openings (where every corner of the
        triangle is on the eye's contour): there the eyeball's own shading replaces the mesh's."""
        centres, irises, scale = eyes
        flat, lit = flat.copy(), np.broadcast_to(lit, flat.shape).astype(np.float64)
        xy = np.column_stack([pixels.pixel % pixels.width, pixels.pixel // pixels.width]) + lo
        for k in range(2):
            inside = openings[:, k] > 0.97
            if inside.any():
                flat[inside] = eyeballs.EyeDrawer.shade(xy[inside], centres[k], irises[k], scale, self.eye_look(driver))
                lit[inside] = 1.0
        return flat, lit

    def _albedo(self, driver, pixels, values, colour: bool = False, texture=None):
        """Texture at the interpolated atlas positions; the mouth's opening a dark cavity with
        teeth showing under the upper lip (where every corner is on the inner lip contour).
        colour: the driver's visible look (N×3 linear BGR) rather than their NIR texture (N);
        texture: another NIR texture to wear (the moving-eye look's)."""
        if texture is None:
            texture = self.look(driver).texture if colour else driver.texture
        albedo = cv2.remap(texture, pixels.image(values[:, :2], fill=-1.0), None, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        flat = albedo.reshape(-1, *texture.shape[2:])[pixels.pixel]
        mouth = values[:, 4] > 0.97
        if colour:
            teeth = values[:, 3:4] > 0.55
            inside = np.where(teeth, np.float32(textures.TEETH), np.float32(textures.MOUTH_CAVITY))
            return np.where(mouth[:, None], inside, flat)
        return np.where(mouth, np.where(values[:, 3] > 0.55, 0.55 * driver.skin, 0.06), flat)

    def frontal_truth(self, driver: Driver, w_exp, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """The driver's face rendered directly in the face stage's frontal layout, unshaded: the
        ground truth a frontal render of an unshaded frame should reach. (grey S×S float32, mask)."""
        layout = Layout(self.model, size)
        vertices = self.model.mesh(driver.w_id, w_exp)
        xy, depth = layout.project_aligned(vertices)
        attributes = np.column_stack([self.uv, np.zeros(len(xy)), self.upper_lip, self.inner_lip])
        pixels, values = rasterize_attributes(xy, depth, self.triangles, size, size, attributes)
        truth = pixels.image(self._albedo(driver, pixels, values))
        return truth, pixels.image(np.ones(len(values), bool), dtype=bool)
