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
