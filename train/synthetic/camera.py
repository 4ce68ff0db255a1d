"""The cameras that look at the synthetic drivers, each with its own light and backdrop.

NirCamera, the in-car NIR camera: dark cabin backgrounds, on-axis illuminator fall-off, vignetting,
optics blur and sensor noise, turning a reflectance canvas into an 8-bit grey frame (as BGR).
VisibleCamera, a visible-light studio camera like those of the labelled expression datasets (KDEF,
BU-3DFE): a light backdrop, a soft key light and a fill, a colour (BGR) reflectance canvas, white
balance and a consumer camera's tone curve and sharpening, little noise.

Both have the same contract: `backdrop(rng)` gives the empty canvas (H×W NIR reflectance, or
H×W×3 linear BGR reflectance), `light` is how the scene lights the head (None: the on-axis
illuminator; else a function of unit vertex normals → light per vertex, for
`SceneRenderer.draw(..., light=camera.light)`), and `expose(canvas, face_height)` gives a uint8
BGR frame.
"""
import copy

import cv2
import numpy as np

from train.synthetic.textures import srgb_to_linear


def cabin_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A dark cabin: gradient, headrest, side window, seat belt — float32 reflectance."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0.02, 0.1)
    canvas = base * (0.7 + 0.6 * yy / height) * (0.85 + 0.3 * rng.random())
    canvas = canvas.astype(np.float32)
    side = rng.choice([-1, 1])
    x0 = int(width * (0.78 if side > 0 else 0.0))
    cv2.rectangle(canvas, (x0, 0), (x0 + int(width * 0.22), int(height * rng.uniform(0.3, 0.55))),
                  float(rng.uniform(0.08, 0.45)), -1)  # side window, sometimes sunlit
    cv2.ellipse(canvas, (int(width * rng.uniform(0.45, 0.55)), int(height * 0.35)),
                (int(width * 0.2), int(height * 0.3)), 0, 0, 360, float(base * rng.uniform(1.5, 3.0)), -1)
    if rng.random() < 0.7:  # seat belt across the chest
        a = (int(width * (0.65 if side > 0 else 0.35)), int(height * 0.7))
        b = (int(width * (0.35 if side > 0 else 0.65)), height)
        cv2.line(canvas, a, b, float(rng.uniform(0.1, 0.25)), int(width * 0.05), cv2.LINE_AA)
    return canvas


def _pooled_noise(rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
    """One of a pool of noise frames, rolled by a random offset: noise without a full draw per frame."""
    k = rng.integers(len(pool))
    shift = rng.integers(0, 64, size=2)
    return np.roll(pool[k], (int(shift[0]), int(shift[1])), axis=(0, 1))


def with_noise_from(camera, rng: np.random.Generator):
    """The same camera session (NirCamera or VisibleCamera) with its sensor noise drawn from `rng`:
    extra exposures of it (expression pairs) then leave the session's own noise stream, and so every
    other image it takes, as without them."""
    twin = copy.copy(camera)   # shallow: the optics and the noise pool are shared, read only
    twin._rng = rng
    return twin


class NirCamera:
    """Per-session optics and sensor; `expose(canvas, face_height)` gives a uint8 BGR frame."""

    light = None  # the on-axis illuminator: the scene's default lighting

    def __init__(self, rng: np.random.Generator, height: int, width: int, noise_frames: int = 6):
        self.height, self.width = height, width
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        r2 = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) / (0.5 * np.hypot(width, height)) ** 2
        cone = 1.0 / (1.0 + r2 / rng.uniform(0.5, 1.2)) ** 2           # illuminator beam
        vignette = 1.0 - rng.uniform(0.15, 0.4) * r2                    # lens
        self.gain_map = (cone * vignette).astype(np.float32)
        self.strength = float(rng.uniform(0.9, 1.3))
        self.blur = float(rng.uniform(0.5, 1.0))
        self.read_noise = float(rng.uniform(1.0, 3.0))                  # DN
        self.shot = float(rng.uniform(0.15, 0.4))                       # DN per √DN
        self._noise = rng.standard_normal((noise_frames, height, width)).astype(np.float32)
        self._rng = rng

    def backdrop(self, rng: np.random.Generator) -> np.ndarray:
        """The empty cabin (H×W float32 NIR reflectance)."""
        return cabin_background(rng, self.height, self.width)

    def expose(self, canvas: np.ndarray, face_height: float = 200.0, noise: bool = True) -> np.ndarray:
        # Nearer faces (bigger in the frame) catch more of the illuminator's light.
        near = float(np.clip((face_height / 200.0) ** 2, 0.5, 1.8)) ** 0.5
        signal = canvas * self.gain_map * (230.0 * self.strength * near)
        signal = cv2.GaussianBlur(signal, (0, 0), self.blur)
        if noise:
            pattern = _pooled_noise(self._rng, self._noise)
            signal = signal + pattern * np.sqrt(self.read_noise ** 2 + self.shot ** 2 * np.maximum(signal, 0))
        grey = np.clip(signal, 0, 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


# Studio backdrop papers (BGR, sRGB-encoded): light grey, warm white, pale blue-grey, pale beige.
BACKDROPS = ((196, 196, 196), (214, 222, 228), (214, 203, 190), (188, 204, 214))


def studio_backdrop(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A light seamless studio backdrop, brighter behind the sitter: H×W×3 float32 linear BGR."""
    colour = srgb_to_linear(BACKDROPS[rng.integers(len(BACKDROPS))]) * rng.uniform(0.85, 1.05)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width * rng.uniform(0.4, 0.6), height * rng.uniform(0.3, 0.5)
    r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (0.6 * np.hypot(width, height)) ** 2
    glow = (1.0 - rng.uniform(0.2, 0.45) * np.clip(r2, 0.0, 1.0)).astype(np.float32)
    return (glow[..., None] * colour.astype(np.float32)).astype(np.float32)


class StudioLight:
    """A soft key light from the upper front, left or right, a weaker fill from the other side, and
    ambient light; 1 on a surface facing the camera. Called with unit normals (N×3: x right, y up, z
    towards the camera), it gives the light on each."""

    def __init__(self, rng: np.random.Generator):
        side = float(rng.choice([-1.0, 1.0]))
        key = np.array([side * rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.6), 1.0])
        fill = np.array([-side * rng.uniform(0.3, 0.8), rng.uniform(-0.1, 0.2), 1.0])
        self.key, self.fill = key / np.linalg.norm(key), fill / np.linalg.norm(fill)
        self.strength = np.array([rng.uniform(0.55, 0.75), rng.uniform(0.2, 0.35), rng.uniform(0.12, 0.2)])
        self.wrap = float(rng.uniform(0.2, 0.45))  # a large soft source lights past the terminator
        self.scale = 1.0 / float(self._raw(np.array([[0.0, 0.0, 1.0]]))[0])

    def _raw(self, normals: np.ndarray) -> np.ndarray:
        def lambert(direction):
            return np.clip((normals @ direction + self.wrap) / (1.0 + self.wrap), 0.0, None)

        return self.strength[0] * lambert(self.key) + self.strength[1] * lambert(self.fill) + self.strength[2]

    def __call__(self, normals: np.ndarray) -> np.ndarray:
        return self.scale * self._raw(np.asarray(normals, dtype=np.float64))


class VisibleCamera:
    """A visible-light studio camera, per session: studio light and backdrop, white balance, a
    consumer camera's tone curve and sharpening, little noise. `expose(canvas, face_height)` turns
    an H×W×3 linear BGR reflectance canvas (a grey H×W one is taken as neutral) into uint8 BGR."""

    def __init__(self, rng: np.random.Generator, height: int, width: int, noise_frames: int = 2):
        self.height, self.width = height, width
        self.light = StudioLight(rng)
        self.exposure = float(rng.uniform(0.9, 1.15))
        # White balance a little off neutral (B, G, R gains): each camera its own cast.
        self.white_balance = np.array([rng.uniform(0.9, 1.08), 1.0, rng.uniform(0.94, 1.08)], np.float32)
        self.blur = float(rng.uniform(0.3, 0.5))          # good optics, no subsurface scattering
        self.contrast = float(rng.uniform(0.2, 0.45))     # S-curve strength after the sRGB gamma
        self.sharpen = float(rng.uniform(0.3, 0.7))       # in-camera unsharp mask
        self.noise_dn = float(rng.uniform(0.5, 1.5))
        self._noise = rng.standard_normal((noise_frames, height, width, 3)).astype(np.float32)
        self._rng = rng

    def backdrop(self, rng: np.random.Generator) -> np.ndarray:
        """The empty studio (H×W×3 float32 linear BGR reflectance)."""
        return studio_backdrop(rng, self.height, self.width)

    def expose(self, canvas: np.ndarray, face_height: float = 200.0, noise: bool = True) -> np.ndarray:
        """face_height is accepted for the cameras' common contract: studio lights sit far from the
        sitter, so the exposure does not depend on it."""
        linear = canvas if canvas.ndim == 3 else np.repeat(canvas[..., None], 3, axis=2)
        linear = linear.astype(np.float32) * (self.exposure * self.white_balance)
        linear = cv2.GaussianBlur(linear, (0, 0), self.blur)
        y = np.clip(linear, 0.0, 1.0) ** (1 / 2.2)
        y = y + self.contrast * (y * y * (3 - 2 * y) - y)
        y = 255.0 * (y + self.sharpen * (y - cv2.GaussianBlur(y, (0, 0), 1.2)))
        if noise:
            y = y + self.noise_dn * _pooled_noise(self._rng, self._noise)
        return np.clip(y + 0.5, 0, 255).astype(np.uint8)
