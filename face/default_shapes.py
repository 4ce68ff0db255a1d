"""Procedural identity and expression deformations of the MediaPipe canonical face (units: cm,
x to the image's right, y up, z towards the viewer), from which the default bilinear model is built.

Each deformation is a smooth displacement field written from facial anatomy — no scans involved.
Expressions are composed from action-unit-like primitives after the EMFACS prototypes
(happiness AU6+12+25, sadness AU1+4+15+17, surprise AU1+2+5+26, fear AU1+2+4+5+20+26,
anger AU4+5+7+23, disgust AU9+10+15+4); the primitives themselves (some one-sided) are extra
expression samples, so the fitted expression space also covers mixed and asymmetric faces.
"""
import numpy as np

from face.expressions import EXPRESSIONS

# Canonical-mesh anchor points (x, y) in cm.
EYE_CENTRES = np.array([[-3.15, 2.62], [3.15, 2.62]])
UPPER_LIDS = np.array([[-3.18, 2.96], [3.18, 2.96]])
LOWER_LIDS = np.array([[-3.18, 2.29], [3.18, 2.29]])
INNER_BROWS = np.array([[-1.6, 4.95], [1.6, 4.95]])
OUTER_BROWS = np.array([[-4.7, 4.75], [4.7, 4.75]])
MID_BROWS = np.array([[-3.0, 5.05], [3.0, 5.05]])
MOUTH_CORNERS = np.array([[-2.46, -4.34], [2.46, -4.34]])
CHEEKS = np.array([[-3.4, -0.9], [3.4, -0.9]])
NOSE_SIDES = np.array([[-1.2, 0.2], [1.2, 0.2]])
MOUTH_LINE_Y = -4.27  # between the inner lips
JAW_PIVOT = np.array([0.0, 0.5, -6.0])


def _gauss(points, centre, sigma):
    d2 = ((points[:, :2] - np.asarray(centre)[None, :]) ** 2).sum(axis=1)
    return np.exp(-d2 / (2.0 * sigma ** 2))


def _sides(points, centres, sigma, sides=(0, 1)):
    return sum(_gauss(points, centres[s], sigma) for s in sides)


def _smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def lower_jaw_weight(points):
    """1 on the lower lip and jaw, 0 above the mouth opening, fading out towards the ears."""
    x, y = points[:, 0], points[:, 1]
    below = 1.0 / (1.0 + np.exp(-(MOUTH_LINE_Y - y) / 0.12))
    lateral = _smoothstep((7.2 - np.abs(x)) / 4.0)
    # Beside the mouth the jaw boundary runs up and out towards the ear.
    line = MOUTH_LINE_Y + 2.5 * _smoothstep((np.abs(x) - 2.6) / 4.0)
    beside = 1.0 / (1.0 + np.exp(-(line - y) / 0.6))
    return np.where(np.abs(x) < 2.6, below, np.maximum(below * lateral, beside * lateral * 0.8))


def _field(points, dx=0.0, dy=0.0, dz=0.0):
    out = np.zeros_like(points)
    out[:, 0], out[:, 1], out[:, 2] = dx, dy, dz
    return out


# ---- identity -----------------------------------------------------------------------------

def identity_fields(points):
    """Named unit identity deformations with the spread (std of the coefficient) each gets."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    lower = _smoothstep((-2.0 - y) / 5.0)
    nose = _gauss(points, (0.0, -0.3), 1.3) * _smoothstep((z - 4.5) / 2.0)
    eyes = _sides(points, EYE_CENTRES, 1.0)
    mouth = _gauss(points, (0.0, MOUTH_LINE_Y), 1.4)
    fields = {
        "width": (_field(points, dx=x), 0.06),
        "height": (_field(points, dy=y), 0.05),
        "depth": (_field(points, dz=z - z.mean()), 0.08),
        "jaw_width": (_field(points, dx=x * lower), 0.08),
        "chin_length": (_field(points, dy=np.minimum(y + 2.0, 0.0)), 0.08),
        "forehead_height": (_field(points, dy=np.maximum(y - 4.0, 0.0)), 0.12),
        "nose_length": (_field(points, dy=-nose), 0.25),
        "nose_protrusion": (_field(points, dz=nose), 0.3),
        "nose_width": (_field(points, dx=x * _gauss(points, (0.0, -0.6), 1.1)), 0.12),
        "eye_spacing": (_field(points, dx=np.sign(x) * eyes), 0.15),
        "eye_size": (_eye_scale_field(points), 0.12),
        "mouth_width": (_field(points, dx=x * mouth), 0.1),
        "lip_thickness": (_field(points, dy=(y - MOUTH_LINE_Y) * _gauss(points, (0.0, MOUTH_LINE_Y), 0.9)), 0.2),
        "cheek_fullness": (_field(points, dz=_sides(points, CHEEKS + [0, -1.0], 1.6)), 0.3),
        "brow_height": (_field(points, dy=_sides(points, MID_BROWS, 1.3)), 0.2),
        "chin_protrusion": (_field(points, dz=_gauss(points, (0.0, -8.4), 1.6)), 0.3),
        "eye_depth": (_field(points, dz=-eyes), 0.2),
    }
    return fields


def _eye_scale_field(points):
    out = np.zeros_like(points)
    for c in EYE_CENTRES:
        w = _gauss(points, c, 0.8)[:, None]
        out[:, :2] += (points[:, :2] - c) * w
    return out


def random_identity(points, rng, fields=None):
    """A random identity: the canonical shape plus random amounts of every identity field."""
    fields = identity_fields(points) if fields is None else fields
    shape = points.copy()
    coefficients = {}
    for name, (field, spread) in fields.items():
        a = rng.normal(0.0, spread)
        coefficients[name] = a
        shape = shape + a * field
    return shape, coefficients


# ---- expression ---------------------------------------------------------------------------

def expression_primitives(points):
    """Named action-unit-like displacement fields (cm) on the canonical face."""
    jaw = lower_jaw_weight(points)
    upper_lip = (1.0 - jaw) * _gauss(points, (0.0, -3.7), 1.0)
    lower_lip = jaw * _gauss(points, (0.0, -4.9), 0.9)

    def corner(side, dx, dy, dz, sigma=0.95):
        w = _gauss(points, MOUTH_CORNERS[side], sigma)
        return _field(points, dx=np.sign(MOUTH_CORNERS[side][0]) * dx * w, dy=dy * w, dz=dz * w)

    def lids(side, upper_dy, lower_dy):
        return _field(points, dy=upper_dy * _gauss(points, UPPER_LIDS[side], 0.42)
                      + lower_dy * _gauss(points, LOWER_LIDS[side], 0.38))

    def jaw_open(angle_deg):
        a = np.radians(angle_deg)
        rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])  # chin down and back
        moved = (points - JAW_PIVOT) @ rot.T + JAW_PIVOT
        return (moved - points) * jaw[:, None]

    p = {}
    for side, tag in ((0, "r"), (1, "l")):
        p[f"smile_{tag}"] = (corner(side, 0.6, 0.85, -0.35)
                             + _field(points, dy=0.3 * _gauss(points, CHEEKS[side], 1.2))
                             + lids(side, 0.0, 0.12))
        p[f"corner_down_{tag}"] = corner(side, 0.15, -0.8, 0.0)
        p[f"stretch_{tag}"] = corner(side, 0.8, -0.15, -0.2, sigma=1.1)
        p[f"inner_brow_up_{tag}"] = _field(points, dy=0.8 * _gauss(points, INNER_BROWS[side], 0.8))
        p[f"outer_brow_up_{tag}"] = _field(points, dy=0.7 * _gauss(points, OUTER_BROWS[side], 1.0))
        brow = _gauss(points, MID_BROWS[side], 1.2) + 0.6 * _gauss(points, INNER_BROWS[side], 0.7)
        p[f"brow_down_{tag}"] = _field(points, dx=-np.sign(MID_BROWS[side][0]) * 0.35 * brow, dy=-0.6 * brow)
        p[f"lid_up_{tag}"] = lids(side, 0.35, -0.1)
        p[f"lid_tight_{tag}"] = lids(side, -0.3, 0.16)
        p[f"blink_{tag}"] = lids(side, -0.62, 0.05)
        p[f"cheek_up_{tag}"] = _field(points, dy=0.32 * _gauss(points, CHEEKS[side], 1.3)) + lids(side, 0.0, 0.15)
    p["jaw_open"] = jaw_open(11.0)
    p["nose_wrinkle"] = (_field(points, dy=0.4 * _sides(points, NOSE_SIDES, 0.8))
                         + _field(points, dy=-0.15 * _sides(points, INNER_BROWS, 0.7)))
    p["upper_lip_up"] = _field(points, dy=0.55 * upper_lip)
    p["lip_press"] = _field(points, dy=-0.16 * upper_lip + 0.2 * lower_lip, dz=-0.1 * (upper_lip + lower_lip))
    p["chin_raise"] = _field(points, dy=0.25 * jaw * _gauss(points, (0.0, -6.0), 1.5))
    return p


def _both(p, name, amount=1.0):
    return amount * (p[f"{name}_r"] + p[f"{name}_l"])


def basic_expressions(p):
    """The seven expressions (EXPRESSIONS order) as displacement fields built from primitives."""
    fields = {
        "anger": _both(p, "brow_down") + _both(p, "lid_up", 0.4) + _both(p, "lid_tight") + p["lip_press"]
        + 0.3 * p["nose_wrinkle"],
        "disgust": p["nose_wrinkle"] * 1.3 + p["upper_lip_up"] + _both(p, "corner_down", 0.5)
        + _both(p, "brow_down", 0.4) + _both(p, "cheek_up", 0.5) + 0.15 * p["jaw_open"],
        "fear": _both(p, "inner_brow_up") + _both(p, "outer_brow_up", 0.6) + _both(p, "brow_down", 0.3)
        + _both(p, "lid_up") + _both(p, "stretch") + 0.45 * p["jaw_open"],
        "happiness": _both(p, "smile") + _both(p, "cheek_up") + 0.3 * p["jaw_open"],
        "sadness": _both(p, "inner_brow_up") + _both(p, "brow_down", 0.35) + _both(p, "corner_down")
        + p["chin_raise"] + _both(p, "lid_tight", 0.3),
        "surprise": _both(p, "inner_brow_up") + _both(p, "outer_brow_up") + _both(p, "lid_up")
        + 1.0 * p["jaw_open"],
        "neutral": np.zeros_like(p["jaw_open"]),
    }
    return [fields[name] for name in EXPRESSIONS]
