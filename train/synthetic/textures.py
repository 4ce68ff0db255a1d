"""Face textures for synthetic drivers, from public-domain photos read from installed packages.

Each photo's face is unwrapped by the face stage onto the model's frontal layout (an "atlas": the
texture as the mean face would wear it), in NIR-like grey. A driver's texture mixes the atlases
and varies them (tone, gamma, blotches, brow and stubble darkness, mirror). Nothing is committed:
the photos are read at generation time.
  - skimage.data.astronaut(): Eileen Collins, NASA, public domain.
  - matplotlib sample_data/grace_hopper.jpg: Grace Hopper, US Navy, public domain.
"""
from functools import lru_cache

import cv2
import numpy as np

ATLAS_SIZE = 256


def _photo_astronaut():
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def _photo_grace_hopper():
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


PHOTOS = {"astronaut": _photo_astronaut, "grace_hopper": _photo_grace_hopper}


def nir_grey(bgr: np.ndarray) -> np.ndarray:
    """Colour → NIR-like grey in [0, 1]: skin reflects NIR like red light, and scatters it (softer)."""
    b, g, r = cv2.split(bgr.astype(np.float32) / 255.0)
    grey = 0.05 * b + 0.25 * g + 0.7 * r
    return 0.6 * grey + 0.4 * cv2.GaussianBlur(grey, (0, 0), 1.5)


@lru_cache(maxsize=1)
def base_atlases(model_source: str = "default") -> tuple:
    """(atlas, coverage) per photo: ATLAS_SIZE² float32 grey on the mean face's frontal layout."""
    import face
    from face import bilinear

    model = bilinear.load(None if model_source == "default" else model_source)
    stage = face.FaceStage(size=ATLAS_SIZE, video=False, model=model)
    out = []
    try:
        for name, read in PHOTOS.items():
            photo = read()
            landmarks, _ = stage.detector(photo)
            if landmarks is None:
                raise RuntimeError(f"no face found in the texture photo {name}")
            fit = stage.fitter(landmarks, pool_identity=False)
            texture_xy = landmarks[:model.num_vertices, :2].astype(np.float64)
            atlas, visibility, _, _ = stage.renderer.render(photo, texture_xy, fit.posed(), model.mesh(),
                                                            better_side=True)
            grey, covered = nir_grey(atlas), (visibility > 0).astype(np.float32)
            # Where the photo showed the face only at a grazing angle (the sides, towards the ears)
            # its pixels are smeared: use the local mean tone there instead.
            weight = cv2.GaussianBlur(np.clip((visibility - 0.15) / 0.35, 0.0, 1.0), (0, 0), 3)
            local = cv2.GaussianBlur(grey * covered, (0, 0), 12) / np.maximum(cv2.GaussianBlur(covered, (0, 0), 12), 1e-3)
            out.append((weight * grey + (1.0 - weight) * local, covered))
    finally:
        stage.close()
    return tuple(out)


def _smooth_noise(rng, size, sigma):
    noise = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma)
    return noise / max(float(noise.std()), 1e-6)


def driver_texture(rng: np.random.Generator, template_xy: np.ndarray) -> np.ndarray:
    """A driver's own texture: ATLAS_SIZE² float32 grey in [0, 1] on the mean face's layout.

    template_xy: V×2 atlas positions of the mesh vertices (for brow and beard regions).
    """
    atlases = base_atlases()
    weights = rng.dirichlet(np.full(len(atlases), 0.7))
    atlas = sum(w * a for w, (a, _) in zip(weights, atlases))
    coverage = np.clip(sum(c for _, c in atlases), 0, 1)
    if rng.random() < 0.5:
        atlas = atlas[:, ::-1]  # the layout is symmetric: a mirrored face is another plausible face
    atlas = atlas / max(float(np.percentile(atlas[coverage > 0], 60)), 1e-3)  # skin tone near 1
    atlas = np.clip(atlas, 0, 1.6) ** rng.uniform(0.75, 1.3) * rng.uniform(0.55, 0.85)
    atlas *= 1.0 + 0.06 * _smooth_noise(rng, ATLAS_SIZE, 18) + 0.03 * _smooth_noise(rng, ATLAS_SIZE, 3)
    yy, xx = np.mgrid[0:ATLAS_SIZE, 0:ATLAS_SIZE].astype(np.float32)
    # Brows: darker or lighter (NIR shows light brows faintly).
    brow = np.zeros_like(atlas)
    for v in (63, 105, 66, 107, 293, 334, 296, 336):  # not the tails, at the face's edge
        x, y = template_xy[v]
        brow = np.maximum(brow, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (ATLAS_SIZE / 60) ** 2)))
    atlas *= 1.0 - brow * rng.uniform(-0.15, 0.45)
    # Stubble or beard on some drivers: darker, noisy lower face below the mouth corners' line.
    if rng.random() < 0.3:
        chin_top = template_xy[[61, 291], 1].mean() - ATLAS_SIZE * 0.02
        lower = np.clip((yy - chin_top) / (ATLAS_SIZE * 0.05), 0, 1)
        lips = np.exp(-((xx - template_xy[0, 0]) ** 2 / (2 * (ATLAS_SIZE * 0.09) ** 2)
                        + (yy - template_xy[[0, 17], 1].mean()) ** 2 / (2 * (ATLAS_SIZE * 0.035) ** 2)))
        grain = 0.75 + 0.25 * rng.random(atlas.shape).astype(np.float32)
        atlas *= 1.0 - lower * (1 - lips) * rng.uniform(0.2, 0.6) * grain
    return np.clip(atlas * coverage + (1 - coverage) * float(np.median(atlas[coverage > 0])), 0, 1).astype(np.float32)


# --- The visible-light look (the camera scenario's source domain) ---------------------------------
# Colours are sRGB-encoded BGR triples, made linear reflectances with srgb_to_linear.
SKIN_TONES = ((170, 196, 240), (140, 174, 226), (112, 148, 204), (92, 128, 182), (70, 104, 152),
              (52, 78, 118), (40, 56, 86))                  # very light … very dark
HAIR_COLOURS = ((22, 25, 30), (30, 42, 62), (45, 70, 105), (95, 140, 180), (140, 145, 150))  # black … grey
IRIS_COLOURS = ((20, 40, 70), (30, 60, 95), (140, 110, 75), (80, 110, 90))  # dark brown, brown, blue, hazel
CLOTHES_COLOURS = ((40, 30, 25), (110, 60, 30), (40, 40, 150), (200, 200, 200), (60, 110, 60), (120, 120, 120))
TEETH = (0.52, 0.6, 0.64)                 # linear BGR
MOUTH_CAVITY = (0.012, 0.012, 0.035)
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
EYES = ((33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
        (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249))
BROWS = ((70, 63, 105, 66, 107, 55, 65, 52, 53, 46), (300, 293, 334, 296, 336, 285, 295, 282, 283, 276))
CHEEKS = (50, 280)


def srgb_to_linear(bgr) -> np.ndarray:
    """8-bit sRGB-encoded colours (…×3) → linear reflectance in [0, 1] (gamma 2.2)."""
    return (np.asarray(bgr, dtype=np.float64) / 255.0) ** 2.2


def _region(template_xy, ring, sigma: float, grow: int = 0) -> np.ndarray:
    """A soft mask (ATLAS_SIZE² float32 in [0, 1]) of the polygon through the given vertices, grown
    by about grow/2 atlas pixels."""
    mask = np.zeros((ATLAS_SIZE, ATLAS_SIZE), np.float32)
    outline = [np.round(template_xy[list(ring)] * 16).astype(np.int32)]
    cv2.fillPoly(mask, outline, 1.0, cv2.LINE_AA, shift=4)
    if grow:
        cv2.polylines(mask, outline, True, 1.0, grow, cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def visible_texture(rng: np.random.Generator, grey: np.ndarray, template_xy: np.ndarray, skin, hair,
                    iris) -> np.ndarray:
    """The driver's texture as visible light shows it: ATLAS_SIZE²×3 float32 linear BGR reflectance.

    grey: the driver's NIR texture (driver_texture); its detail is kept, with more contrast (visible
    light is not softened by scattering under the skin), tinted to the skin tone `skin` (linear
    BGR). What NIR hides comes back: lips redder and darker than the skin, brows and lashes of the
    hair's colour, eyes with a dark iris and pupil on a light sclera, a little colour on the cheeks.
    """
    skin, hair, iris = (np.asarray(c, np.float32) for c in (skin, hair, iris))
    yy, xx = np.mgrid[0:ATLAS_SIZE, 0:ATLAS_SIZE].astype(np.float32)
    detail = np.clip(grey / max(float(np.median(grey)), 1e-3), 0.0, 1.6) ** 1.4  # the skin near 1
    colour = detail[..., None] * skin
    for v in CHEEKS:  # blood under the skin: a little redder
        x, y = template_xy[v]
        blush = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (ATLAS_SIZE / 14) ** 2)) * rng.uniform(0.3, 0.8)
        colour *= 1.0 + blush[..., None] * np.array([-0.08, -0.05, 0.06], np.float32)
    lips = _region(template_xy, LIPS_OUTER, 1.5)[..., None]
    lip_colour = detail[..., None] * skin * np.array([0.52, 0.44, 0.82], np.float32) * rng.uniform(0.75, 0.95)
    colour = colour * (1 - lips) + lip_colour * lips
    grain = 0.75 + 0.25 * rng.random((ATLAS_SIZE, ATLAS_SIZE)).astype(np.float32)  # hairs, not paint
    brow_colour = np.minimum(hair * rng.uniform(0.35, 0.6), 0.6 * skin)  # brows darker than the hair
    for ring in BROWS:
        brow = (_region(template_xy, ring, 1.5, grow=4) * rng.uniform(0.75, 0.95) * grain)[..., None]
        colour = colour * (1 - brow) + brow_colour * brow
    for ring in EYES:
        points = template_xy[list(ring)]
        eye = _region(template_xy, ring, 0.8)[..., None]
        centre = points.mean(axis=0)
        width = float(np.ptp(points[:, 0]))
        r = np.hypot(xx - centre[0], yy - (centre[1] - 0.06 * width))
        iris_r = 0.2 * width
        iris_mask = np.clip(iris_r + 0.5 - r, 0.0, 1.0)[..., None]
        pupil = np.clip(0.4 * iris_r + 0.5 - r, 0.0, 1.0)[..., None]
        rim = np.clip(r / iris_r, 0.0, 1.0)[..., None] ** 3      # a darker limbal ring
        iris_colour = iris * (1.0 - 0.5 * rim)
        sclera = np.array([0.55, 0.56, 0.62], np.float32) * (0.8 + 0.2 * detail[..., None])
        inside = sclera * (1 - iris_mask) + (iris_colour * (1 - pupil) + 0.01 * pupil) * iris_mask
        colour = colour * (1 - eye) + inside * eye
        lashes = np.zeros((ATLAS_SIZE, ATLAS_SIZE), np.float32)   # the upper lid's edge
        cv2.polylines(lashes, [np.round(points[:9] * 16).astype(np.int32)], False, 1.0, 3, cv2.LINE_AA, shift=4)
        lashes = cv2.GaussianBlur(lashes, (0, 0), 0.8)[..., None] * 0.8
        colour = colour * (1 - lashes) + brow_colour * lashes
    return np.clip(colour, 0.0, 1.0).astype(np.float32)

