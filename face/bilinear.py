"""The bilinear identity × expression face model (Vlasic et al. 2005): a mesh is C ×₂ w_id ×₃ w_exp.

`build` makes a model from registered meshes by N-mode SVD; `load`/`save` read and write the
project's `.npz`; `face.facewarehouse.load_facewarehouse` builds one from FaceWarehouse's
per-person blendshape files and `load_facewarehouse_core` from a FaceWarehouse core tensor file.
Every model is checked on the way in: a malformed or inconsistent file is a ValueError that says
what is wrong.

The `.npz` holds (V vertices, T triangles, L landmarks):
  core                (3V, n_id, n_exp) float32   vertex coordinates interleaved x, y, z
  triangles           (T, 3) int                  counter-clockwise seen from the front (y up, z to viewer)
  landmark_vertex     (L,) int                    mesh vertex of each detector landmark, -1 for none
  mirror              (V,) int                    left/right mirror partner of each vertex
  identity_mean       (n_id,)                     mean identity weights; identity_std the spread
  expression_weights  (7, n_exp)                  weights of the seven expressions, in EXPRESSIONS order
  expression_std      (n_exp,)                    spread of expression weights (the fit's prior)
  description         str                         where the model came from
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from face.expressions import EXPRESSIONS, NUM_EXPRESSIONS

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "data" / "default_bilinear.npz"


@dataclass
class BilinearModel:
    core: np.ndarray
    triangles: np.ndarray
    landmark_vertex: np.ndarray
    mirror: np.ndarray
    identity_mean: np.ndarray
    identity_std: np.ndarray
    expression_weights: np.ndarray
    expression_std: np.ndarray
    description: str = ""
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self):
        self.core = np.ascontiguousarray(self.core, dtype=np.float32)
        self.triangles = np.ascontiguousarray(self.triangles, dtype=np.int32)
        self.landmark_vertex = np.asarray(self.landmark_vertex, dtype=np.int64)
        self.mirror = np.asarray(self.mirror, dtype=np.int64)
        for name in ("identity_mean", "identity_std", "expression_weights", "expression_std"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float32))
        validate(self)

    @property
    def num_vertices(self) -> int:
        return self.core.shape[0] // 3

    @property
    def num_identity(self) -> int:
        return self.core.shape[1]

    @property
    def num_expression(self) -> int:
        return self.core.shape[2]

    @property
    def neutral(self) -> np.ndarray:
        return self.expression_weights[EXPRESSIONS.index("neutral")]

    def mesh(self, w_id=None, w_exp=None) -> np.ndarray:
        """V×3 vertices for identity and expression weights (default: mean identity, neutral)."""
        w_id = self.identity_mean if w_id is None else np.asarray(w_id, dtype=np.float32)
        w_exp = self.neutral if w_exp is None else np.asarray(w_exp, dtype=np.float32)
        return np.einsum("kij,i,j->k", self.core, w_id, w_exp).reshape(-1, 3)


def validate(model: BilinearModel) -> None:
    """ValueError naming the first inconsistency (sizes, index ranges, non-finite numbers)."""
    where = model.source
    core = model.core
    if core.ndim != 3 or core.shape[0] % 3 or min(core.shape) == 0:
        raise ValueError(f"{where}: core must be (3V, n_id, n_exp) with 3V divisible by 3, got {core.shape}")
    if not np.isfinite(core).all():
        raise ValueError(f"{where}: core holds NaN or infinite values")
    v, n_id, n_exp = core.shape[0] // 3, core.shape[1], core.shape[2]
    tri = model.triangles
    if tri.ndim != 2 or tri.shape[1] != 3 or len(tri) == 0:
        raise ValueError(f"{where}: triangles must be (T, 3), got {tri.shape}")
    if tri.min() < 0 or tri.max() >= v:
        raise ValueError(f"{where}: triangle indices must lie in [0, {v}), got [{tri.min()}, {tri.max()}]")
    lv = model.landmark_vertex
    if lv.ndim != 1 or len(lv) == 0 or lv.min() < -1 or lv.max() >= v:
        raise ValueError(f"{where}: landmark_vertex must be 1-D with values in [-1, {v}), "
                         f"got shape {lv.shape}, range [{lv.min() if lv.size else '-'}, {lv.max() if lv.size else '-'}]")
    if model.mirror.shape != (v,) or model.mirror.min() < 0 or model.mirror.max() >= v:
        raise ValueError(f"{where}: mirror must be ({v},) with values in [0, {v}), got {model.mirror.shape}")
    expected = {"identity_mean": (n_id,), "identity_std": (n_id,),
                "expression_weights": (NUM_EXPRESSIONS, n_exp), "expression_std": (n_exp,)}
    for name, shape in expected.items():
        got = getattr(model, name).shape
        if got != shape:
            raise ValueError(f"{where}: {name} must be {shape} for a core of {core.shape}, got {got}")


def save(model: BilinearModel, path) -> None:
    np.savez_compressed(
        path, core=model.core, triangles=model.triangles, landmark_vertex=model.landmark_vertex,
        mirror=model.mirror, identity_mean=model.identity_mean, identity_std=model.identity_std,
        expression_weights=model.expression_weights, expression_std=model.expression_std,
        description=np.array(model.description))


def load(path=None) -> BilinearModel:
    """The project's `.npz` model (the shipped default when `path` is None)."""
    path = Path(path) if path is not None else DEFAULT_MODEL_PATH
    if path.suffix == ".bs":
        raise ValueError(f"{path}: FaceWarehouse data; build a model from it with "
                         "face.facewarehouse.load_facewarehouse(root, landmark_vertex=..., expression_rows=...)")
    if path.suffix in (".bin", ".tensor"):
        raise ValueError(f"{path}: a FaceWarehouse core tensor? It needs its factors and topology: "
                         "face.facewarehouse.load_facewarehouse_core(path, landmark_vertex=..., triangles=..., "
                         "identity_weights=..., expression_weights=..., expression_rows=...)")
    if not path.is_file():
        raise ValueError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as data:   # an object array would unpickle, and may run code
            arrays = {name: data[name] for name in data.files}
    except Exception as error:  # zip/npy errors come in many types; name the file either way
        raise ValueError(f"{path}: not a readable .npz model ({error})") from None
    required = ("core", "triangles", "landmark_vertex", "mirror", "identity_mean", "identity_std",
                "expression_weights", "expression_std")
    missing = [name for name in required if name not in arrays]
    if missing:
        raise ValueError(f"{path}: model is missing {', '.join(missing)}")
    description = str(arrays["description"]) if "description" in arrays else ""
    return BilinearModel(**{name: arrays[name] for name in required}, description=description,
                         source=str(path))


def build(meshes: np.ndarray, n_id: int, n_exp: int, triangles, landmark_vertex, mirror,
          expression_rows=None, description: str = "") -> BilinearModel:
    """A model from registered meshes `meshes` (I identities × E expressions × V × 3) by N-mode SVD.

    The data tensor D (3V × I × E) is factored as core ×₂ U_id ×₃ U_exp with U_id, U_exp the leading
    left singular vectors of its mode-2 and mode-3 unfoldings, truncated to n_id and n_exp
    (vertex mode kept whole). Row i of U_id is identity i's weights, row e of U_exp expression e's.
    `expression_rows` gives, for each of the seven EXPRESSIONS, its index among the E expressions
    (default: the first seven, in EXPRESSIONS order).
    """
    meshes = np.asarray(meshes, dtype=np.float64)
    if meshes.ndim != 4 or meshes.shape[3] != 3:
        raise ValueError(f"meshes must be (identities, expressions, V, 3), got {meshes.shape}")
    n_ident, n_expr, v, _ = meshes.shape
    if not (1 <= n_id <= n_ident and 1 <= n_exp <= n_expr):
        raise ValueError(f"truncation n_id={n_id}, n_exp={n_exp} must lie within the data's "
                         f"{n_ident} identities × {n_expr} expressions")
    rows = list(range(NUM_EXPRESSIONS)) if expression_rows is None else list(expression_rows)
    if len(rows) != NUM_EXPRESSIONS or min(rows) < 0 or max(rows) >= n_expr:
        raise ValueError(f"expression_rows must give {NUM_EXPRESSIONS} indices below {n_expr}, got {rows}")
    data = meshes.reshape(n_ident, n_expr, 3 * v).transpose(2, 0, 1)  # 3V × I × E
    core, u_id, u_exp = n_mode_svd(data, n_id, n_exp)
    exp_weights = u_exp[rows]
    return BilinearModel(
        core=core, triangles=triangles, landmark_vertex=landmark_vertex, mirror=mirror,
        identity_mean=u_id.mean(axis=0), identity_std=u_id.std(axis=0) + 1e-6,
        expression_weights=exp_weights, expression_std=u_exp.std(axis=0) + 1e-6,
        description=description)


def n_mode_svd(data: np.ndarray, n_id: int, n_exp: int):
    """Truncated N-mode SVD of a (3V × I × E) tensor over its identity and expression modes:
    (core 3V × n_id × n_exp, U_id I × n_id, U_exp E × n_exp) with data ≈ core ×₂ U_id ×₃ U_exp.
    Component signs are fixed so that each column's mean is positive (SVD leaves them free)."""
    n_ident, n_expr = data.shape[1], data.shape[2]
    u_id = _leading_left_vectors(data.transpose(1, 0, 2).reshape(n_ident, -1), n_id)
    u_exp = _leading_left_vectors(data.transpose(2, 0, 1).reshape(n_expr, -1), n_exp)
    u_id = u_id * np.where(u_id.mean(axis=0) < 0, -1.0, 1.0)
    u_exp = u_exp * np.where(u_exp.mean(axis=0) < 0, -1.0, 1.0)
    core = np.einsum("kie,ia,eb->kab", data, u_id, u_exp)
    return core, u_id, u_exp


def _leading_left_vectors(matrix: np.ndarray, k: int) -> np.ndarray:
    u, _, _ = np.linalg.svd(matrix, full_matrices=False)
    return u[:, :k]
