"""FaceWarehouse (Cao et al. 2014) → a bilinear model, the way its own bilinear model is made.

FaceWarehouse ships, per person, `Tester_N/Blendshape/shape.bs`: int32 n_shapes (46), int32
n_vertices (11510), int32 n_faces (11540), then (n_shapes + 1) × n_vertices × 3 float32 — the
neutral face B0 then 46 expression blendshapes, absolute positions. Stacking the people gives the
identity × expression tensor that `face.bilinear.build` factors by N-mode SVD. FaceWarehouse is
licensed for research only; nothing of it ships with this project.
"""
from pathlib import Path

import numpy as np

from face import bilinear


def read_blendshapes(path) -> np.ndarray:
    """(n_shapes + 1) × V × 3 float32 from one `shape.bs`; ValueError naming the file if malformed."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    if raw is None:
        raise ValueError(f"{path}: no such FaceWarehouse blendshape file")
    if raw.size < 12:
        raise ValueError(f"{path}: {raw.size} bytes, too short for the 12-byte shape.bs header")
    n_shapes, n_vertices, n_faces = (int(x) for x in raw[:12].view(np.int32))
    expected = 12 + (n_shapes + 1) * n_vertices * 3 * 4
    if n_shapes < 0 or n_vertices <= 0 or raw.size != expected:
        raise ValueError(f"{path}: header says {n_shapes} blendshapes + neutral × {n_vertices} vertices "
                         f"({expected} bytes), file has {raw.size} bytes")
    return raw[12:].view(np.float32).reshape(n_shapes + 1, n_vertices, 3).copy()


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


def _tester_number(name: str) -> int:
    try:
        return int(name.split("_", 1)[1])
    except (IndexError, ValueError):
        return 1 << 30
