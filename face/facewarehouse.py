"""FaceWarehouse (Cao et al. 2014) → a bilinear model, the way its own bilinear model is made.

FaceWarehouse ships, per person, `Tester_N/Blendshape/shape.bs`: int32 n_shapes (46), int32
n_vertices (11510), int32 n_faces (11540), then (n_shapes + 1) × n_vertices × 3 float32 — the
neutral face B0 then 46 expression blendshapes, absolute positions. Stacking the people gives the
identity × expression tensor that `face.bilinear.build` factors by N-mode SVD. FaceWarehouse is
licensed for research only; nothing of it ships with this project.

`load_facewarehouse_core` reads a ready-made core tensor instead: that 150 people × 47 expressions ×
34530 coordinates tensor, N-mode SVD'd over identity and expression and usually truncated to 50 × 25
(never over vertices). FaceWarehouse's own download holds the per-person files; the core tensor files
in use are those written and read by phg1024's reconstruction code, in two layouts — little-endian,
a 12-byte header of three int32 (n_id, n_exp, 3V), then n_id·n_exp·3V numbers:

  float64, `blendshape_core.tensor` (phg1024/MultilinearReconstruction tensor.hpp, Tensor3::Write):
      one n_exp × 3V Eigen column-major matrix per identity component, i.e. C order (n_id, 3V, n_exp);
  float32, `core.bin` (phg1024/PhGLib include/Math/Tensor.hpp, Tensor3<float>::write, read by
      phg1024/MultilinearFaceRecon): row-major, C order (n_id, n_exp, 3V).

The file length (12 + 8N or 12 + 4N bytes) tells which. Coordinates are interleaved x, y, z
(multilinearmodelbuilder.h: entries 3k..3k+2 are vertex k of `shape.bs`). The SVD is not mean-centred
and no mean is stored: a face is core ×₁ w_id ×₂ w_exp, w_id a row of U_id (one per person), w_exp a row
of U_exp (row 0 neutral). Only those factor matrices say where the mean face and the expressions lie;
the builder writes them as `blendshape_u_0.tensor` (U_id, 150 × 50) and `blendshape_u_1.tensor`
(U_exp, 47 × 25): int32 rows, int32 cols, float64 column-major (Tensor2::Write; `read_factor_matrix`).
"""
import os
from pathlib import Path

import numpy as np

from face import bilinear
from face.expressions import NUM_EXPRESSIONS


def read_blendshapes(path) -> np.ndarray:
    """(n_shapes + 1) × V × 3 float32 from one `shape.bs`; ValueError naming the file if malformed."""
    path = Path(path)
    (n_shapes, n_vertices, _), size = _read_header(path, 3, "FaceWarehouse blendshape")
    expected = 12 + (n_shapes + 1) * n_vertices * 3 * 4
    if n_shapes < 0 or n_vertices <= 0 or size != expected:
        raise ValueError(f"{path}: header says {n_shapes} blendshapes + neutral × {n_vertices} vertices "
                         f"({expected} bytes), file has {size} bytes")
    return np.fromfile(path, dtype="<f4", offset=12).reshape(n_shapes + 1, n_vertices, 3)


def read_obj_triangles(path) -> np.ndarray:
    """0-based triangles of a Wavefront .obj (polygons fanned), e.g. a FaceWarehouse pose mesh."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such .obj file")
    triangles = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.startswith("f "):
            continue
        try:
            corners = [int(token.split("/")[0]) - 1 for token in line.split()[1:]]
        except ValueError:
            raise ValueError(f"{path}:{number}: malformed face line {line!r}") from None
        if len(corners) < 3:
            raise ValueError(f"{path}:{number}: a face needs at least 3 corners, got {len(corners)}")
        triangles += [(corners[0], corners[i], corners[i + 1]) for i in range(1, len(corners) - 1)]
    if not triangles:
        raise ValueError(f"{path}: no faces ('f' lines) found")
    return np.asarray(triangles, dtype=np.int64)


def load_facewarehouse(root, landmark_vertex, expression_rows, triangles=None, n_id: int = 50,
                       n_exp: int = 25, mirror=None) -> bilinear.BilinearModel:
    """Build a model from a FaceWarehouse tree (`root/Tester_*/Blendshape/shape.bs`).

    landmark_vertex: for each of the 478 FaceMesh points, a FaceWarehouse vertex or -1 (FaceWarehouse
    has no MediaPipe correspondence; make one by registering the canonical mesh to its template).
    expression_rows: the seven EXPRESSIONS as indices into FaceWarehouse's 47 shapes (0 = neutral;
    it has no basic-expression prototypes, pick the nearest blendshapes). triangles: default from
    `root/Tester_1/TrainingPose/pose_0.obj`. n_id, n_exp: truncation, as in the FaceWarehouse paper.
    """
    root = Path(root)
    files = sorted(root.glob("Tester_*/Blendshape/shape.bs"), key=lambda p: _tester_number(p.parts[-3]))
    if not files:
        raise ValueError(f"{root}: no Tester_*/Blendshape/shape.bs files (FaceWarehouse layout expected)")
    people = [read_blendshapes(f) for f in files]
    shapes = {p.shape for p in people}
    if len(shapes) != 1:
        raise ValueError(f"{root}: blendshape files disagree in size: {sorted(shapes)}")
    if triangles is None:
        triangles = read_obj_triangles(root / "Tester_1" / "TrainingPose" / "pose_0.obj")
    meshes = np.stack(people)  # I × 47 × V × 3
    v = meshes.shape[2]
    return bilinear.build(meshes, n_id=min(n_id, len(people)), n_exp=min(n_exp, meshes.shape[1]),
                          triangles=triangles, landmark_vertex=landmark_vertex,
                          mirror=np.arange(v) if mirror is None else mirror, expression_rows=expression_rows,
                          description=f"FaceWarehouse bilinear model from {len(people)} people under {root}")


# Bytes per number → (dtype, the file's axes in storage order as indices into the header's (n_id, n_exp, 3V)).
_CORE_LAYOUTS = {8: ("<f8", (0, 2, 1)), 4: ("<f4", (0, 1, 2))}


def read_core_tensor(path) -> np.ndarray:
    """The (3V, n_id, n_exp) float32 core of a FaceWarehouse core tensor file (layouts: module docstring);
    ValueError naming the file and what its header promised if it is truncated, oversized or not one."""
    path = Path(path)
    dims, size = _read_header(path, 3, "FaceWarehouse core tensor")
    n_id, n_exp, n_coords = dims
    if min(dims) <= 0 or n_coords % 3:
        raise ValueError(f"{path}: header (n_id, n_exp, 3V) = ({n_id}, {n_exp}, {n_coords}) is not a core "
                         "tensor's: all must be positive and 3V a multiple of 3")
    count = n_id * n_exp * n_coords
    layout = _CORE_LAYOUTS.get((size - 12) // count) if (size - 12) % count == 0 else None
    if layout is None:
        raise ValueError(f"{path}: header says {n_id} identity × {n_exp} expression × {n_coords} coordinates: "
                         f"expected {12 + 8 * count} bytes (float64) or {12 + 4 * count} bytes (float32), "
                         f"file has {size} bytes")
    dtype, axes = layout
    values = np.fromfile(path, dtype=dtype, offset=12).reshape([dims[a] for a in axes])
    to_model = [axes.index(a) for a in (2, 0, 1)]  # → (3V, n_id, n_exp)
    return np.ascontiguousarray(values.transpose(to_model), dtype=np.float32)


def read_factor_matrix(path) -> np.ndarray:
    """A factor matrix file (`blendshape_u_0.tensor` U_id, `blendshape_u_1.tensor` U_exp): int32 rows,
    int32 cols, rows·cols float64 column-major. Rows are people (or expressions), columns components."""
    path = Path(path)
    (rows, cols), size = _read_header(path, 2, "factor matrix")
    expected = 8 + 8 * rows * cols
    if rows <= 0 or cols <= 0 or size != expected:
        raise ValueError(f"{path}: header says a {rows} × {cols} float64 matrix ({expected} bytes), "
                         f"file has {size} bytes")
    return np.fromfile(path, dtype="<f8", offset=8).reshape(cols, rows).T


def load_facewarehouse_core(path, landmark_vertex, triangles, identity_weights, expression_weights,
                            expression_rows, mirror=None) -> bilinear.BilinearModel:
    """A model from a FaceWarehouse core tensor file, without redoing the SVD.

    triangles: (T, 3) 0-based, or an .obj of the FaceWarehouse mesh (e.g. `Tester_1/Blendshape/shape_0.obj`;
    the core file has no topology). identity_weights: U_id, one row per FaceWarehouse person (n_id
    columns); expression_weights: U_exp, one row per FaceWarehouse expression, row 0 neutral (n_exp
    columns); either as an array or a `read_factor_matrix` file. They give the model its mean identity,
    spreads and expression weights: the core stores no mean. expression_rows, landmark_vertex, mirror:
    as for `load_facewarehouse`.
    """
    core = read_core_tensor(path)
    v, n_id, n_exp = core.shape[0] // 3, core.shape[1], core.shape[2]
    u_id, u_exp = (read_factor_matrix(w) if isinstance(w, (str, os.PathLike)) else np.asarray(w, dtype=np.float64)
                   for w in (identity_weights, expression_weights))
    for name, u, width in (("identity_weights", u_id, n_id), ("expression_weights", u_exp, n_exp)):
        if u.ndim != 2 or u.shape[1] != width or len(u) == 0:
            raise ValueError(f"{path}: {name} must have one row per person/expression and {width} columns "
                             f"(the core's {n_id} × {n_exp} components), got shape {u.shape}")
    rows = list(expression_rows)
    if len(rows) != NUM_EXPRESSIONS or min(rows) < 0 or max(rows) >= len(u_exp):
        raise ValueError(f"{path}: expression_rows must give {NUM_EXPRESSIONS} indices below "
                         f"{len(u_exp)}, got {rows}")
    if isinstance(triangles, (str, os.PathLike)):
        triangles = read_obj_triangles(triangles)
    return bilinear.BilinearModel(
        core=core, triangles=triangles, landmark_vertex=landmark_vertex,
        mirror=np.arange(v) if mirror is None else mirror,
        identity_mean=u_id.mean(axis=0), identity_std=u_id.std(axis=0) + 1e-6,
        expression_weights=u_exp[rows], expression_std=u_exp.std(axis=0) + 1e-6,
        description=f"FaceWarehouse core tensor {Path(path).name}: {n_id} identity × {n_exp} expression "
                    f"components, {v} vertices", source=str(path))


def _read_header(path: Path, count: int, what: str):
    """The `count` little-endian int32 that open a binary file, and the file's size in bytes."""
    if not path.is_file():
        raise ValueError(f"{path}: no such {what} file")
    size = path.stat().st_size
    if size < 4 * count:
        raise ValueError(f"{path}: {size} bytes, too short for the {4 * count}-byte {what} header")
    return [int(x) for x in np.fromfile(path, dtype="<i4", count=count)], size


def _tester_number(name: str) -> int:
    try:
        return int(name.split("_", 1)[1])
    except (IndexError, ValueError):
        return 1 << 30
