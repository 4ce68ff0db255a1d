"""The NIR cabin camera: dark cabin backgrounds, on-axis illuminator fall-off, vignetting, optics
blur and sensor noise, turning a reflectance canvas into an 8-bit grey frame (as BGR)."""
import cv2
import numpy as np


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


class NirCamera:
    """Per-session optics and sensor; `expose(canvas, face_height)` gives a uint8 BGR frame."""

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
        # A pool of noise frames, reused with random offsets: noise without a full draw per frame.
        self._noise = rng.standard_normal((noise_frames, height, width)).astype(np.float32)
        self._rng = rng

    def expose(self, canvas: np.ndarray, face_height: float = 200.0, noise: bool = True) -> np.ndarray:
        # Nearer faces (bigger in the frame) catch more of the illuminator's light.
        near = float(np.clip((face_height / 200.0) ** 2, 0.5, 1.8)) ** 0.5
        signal = canvas * self.gain_map * (230.0 * self.strength * near)
        signal = cv2.GaussianBlur(signal, (0, 0), self.blur)
        if noise:
            k = self._rng.integers(len(self._noise))
            shift = self._rng.integers(0, 64, size=2)
            pattern = np.roll(self._noise[k], (int(shift[0]), int(shift[1])), axis=(0, 1))
            signal = signal + pattern * np.sqrt(self.read_noise ** 2 + self.shot ** 2 * np.maximum(signal, 0))
        grey = np.clip(signal, 0, 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
