"""The bilinear model: N-mode SVD recovers known factors; files are checked on the way in."""
import numpy as np
import pytest

from face import bilinear, facewarehouse
from face.expressions import EXPRESSIONS


def _orthonormal(rng, rows, cols):
    q, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q


def _projector(u):
    return u @ np.linalg.pinv(u)


def test_n_mode_svd_recovers_known_factors():
    rng = np.random.default_rng(0)
    v3, n_ident, n_expr, r_id, r_exp = 60, 9, 7, 4, 3
    a, b = _orthonormal(rng, n_ident, r_id), _orthonormal(rng, n_expr, r_exp)
    core = rng.standard_normal((v3, r_id, r_exp))
    data = np.einsum("kab,ia,eb->kie", core, a, b)
    got_core, u_id, u_exp = bilinear.n_mode_svd(data, r_id, r_exp)
    # The factor subspaces are the true ones (factors are defined up to a rotation within them)...
    assert np.allclose(_projector(u_id), _projector(a), atol=1e-8)
    assert np.allclose(_projector(u_exp), _projector(b), atol=1e-8)
    # ...and core ×₂ U_id ×₃ U_exp gives every mesh back.
    assert np.allclose(np.einsum("kab,ia,eb->kie", got_core, u_id, u_exp), data, atol=1e-8)


def test_truncation_keeps_the_strongest_components():
    rng = np.random.default_rng(1)
    a, b = _orthonormal(rng, 8, 3), _orthonormal(rng, 6, 2)
    core = rng.standard_normal((30, 3, 2))
    core[:, 2, :] *= 1e-3  # a weak third identity component
    data = np.einsum("kab,ia,eb->kie", core, a, b)
    _, u_id, _ = bilinear.n_mode_svd(data, 2, 2)
    kept = _projector(u_id)
    assert np.linalg.norm(kept @ a[:, 2]) < 1e-2                 # the weak direction is dropped
    assert np.allclose(kept @ a[:, :2], a[:, :2], atol=1e-2)     # the strong ones are kept


def _tiny_model(v=5):
    rng = np.random.default_rng(2)
    meshes = rng.standard_normal((4, 9, v, 3))
    triangles = np.array([[0, 1, 2], [2, 3, 4]])
    return bilinear.build(meshes, n_id=3, n_exp=9, triangles=triangles, landmark_vertex=np.arange(v),
                          mirror=np.arange(v)), meshes


def test_build_reproduces_the_meshes_and_its_expression_rows():
    model, meshes = _tiny_model()
    # Without truncation of the expression mode, each basic expression's weights give its meshes
    # back for identities in the kept identity subspace; check the mean identity's projection.
    data = meshes.reshape(4, 9, -1).transpose(2, 0, 1)
    core, u_id, u_exp = bilinear.n_mode_svd(data, 3, 9)
    assert np.allclose(model.core, core.astype(np.float32), atol=1e-5)
    assert np.allclose(model.expression_weights, u_exp[:7], atol=1e-6)


def test_save_load_round_trip(tmp_path):
    model, _ = _tiny_model()
    bilinear.save(model, tmp_path / "m.npz")
    again = bilinear.load(tmp_path / "m.npz")
    assert np.array_equal(again.core, model.core) and np.array_equal(again.triangles, model.triangles)
    assert np.allclose(again.mesh(), model.mesh())


def test_default_model_is_consistent(default_model):
    m = default_model
    assert m.num_vertices == 468 and len(m.triangles) == 898
    assert m.landmark_vertex.shape == (478,) and (m.landmark_vertex[468:] == -1).all()
    assert np.array_equal(m.mirror[m.mirror], np.arange(468))  # mirroring twice is the identity
    mean = m.mesh()
    assert np.allclose(mean[m.mirror] * [-1, 1, 1], mean, atol=0.05)  # the mean face is symmetric
    assert m.expression_weights.shape == (len(EXPRESSIONS), m.num_expression)
    assert "Apache-2.0" in m.description


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(triangles=np.array([[0, 1, 99]])), "triangle indices"),
    (lambda a: a.update(expression_weights=a["expression_weights"][:5]), "expression_weights"),
    (lambda a: a.update(core=a["core"][:-1]), "core must be"),
    (lambda a: a.update(landmark_vertex=np.array([0, 7])), "landmark_vertex"),
    (lambda a: a.pop("mirror"), "missing mirror"),
    (lambda a: a["core"].__setitem__((0, 0, 0), np.nan), "NaN"),
])
def test_malformed_model_files_are_named(tmp_path, change, message):
    model, _ = _tiny_model()
    arrays = dict(core=model.core.copy(), triangles=model.triangles, landmark_vertex=model.landmark_vertex,
                  mirror=model.mirror, identity_mean=model.identity_mean, identity_std=model.identity_std,
                  expression_weights=model.expression_weights, expression_std=model.expression_std)
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as info:
        bilinear.load(path)
    assert "bad.npz" in str(info.value)


def test_unreadable_model_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        bilinear.load(junk)
    with pytest.raises(ValueError, match="no such model"):
        bilinear.load(tmp_path / "missing.npz")


class RunsCode:
    """Unpickling this creates `marker`: the payload of a crafted model file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def test_a_model_file_with_a_pickled_object_array_is_refused_without_unpickling_it(tmp_path):
    model, _ = _tiny_model()
    marker, path = tmp_path / "code_ran", tmp_path / "crafted.npz"
    bilinear.save(model, path)
    with np.load(path) as data:
        arrays = dict(data)
    np.savez(path, **arrays, extra=np.array([RunsCode(marker)], dtype=object))
    with pytest.raises(ValueError, match=r"crafted.npz: not a readable .npz model \(Object arrays cannot be loaded "
                                         r"when allow_pickle=False\)"):
        bilinear.load(path)
    assert not marker.exists()
    with np.load(path, allow_pickle=True) as data:   # what allow_pickle=False keeps out
        data["extra"]
    assert marker.exists()


def _write_shape_bs(path, shapes):
    path.parent.mkdir(parents=True, exist_ok=True)
    n_shapes, v = shapes.shape[0] - 1, shapes.shape[1]
    path.write_bytes(np.array([n_shapes, v, 3], np.int32).tobytes() + shapes.astype(np.float32).tobytes())


def test_facewarehouse_tree_builds_a_model(tmp_path):
    rng = np.random.default_rng(3)
    v = 6
    for person in range(1, 4):
        _write_shape_bs(tmp_path / f"Tester_{person}" / "Blendshape" / "shape.bs", rng.standard_normal((8, v, 3)))
    obj = tmp_path / "Tester_1" / "TrainingPose" / "pose_0.obj"
    obj.parent.mkdir(parents=True)
    obj.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in rng.standard_normal((v, 3))) +
                   "f 1/1 2/2 3/3 4/4\nf 4 5 6\n")
    model = facewarehouse.load_facewarehouse(tmp_path, landmark_vertex=np.arange(v),
                                             expression_rows=[1, 2, 3, 4, 5, 6, 0], n_exp=8)
    assert model.core.shape == (3 * v, 3, 8)
    assert model.triangles.tolist() == [[0, 1, 2], [0, 2, 3], [3, 4, 5]]
    # Every person's every shape is reproduced (nothing truncated).
    first = facewarehouse.read_blendshapes(tmp_path / "Tester_1" / "Blendshape" / "shape.bs")
    data = np.stack([facewarehouse.read_blendshapes(tmp_path / f"Tester_{i}" / "Blendshape" / "shape.bs")
                     for i in (1, 2, 3)]).reshape(3, 8, -1).transpose(2, 0, 1)
    _, u_id, u_exp = bilinear.n_mode_svd(data.astype(np.float64), 3, 8)
    assert np.allclose(model.mesh(u_id[0], u_exp[0]), first[0], atol=1e-4)


def test_facewarehouse_bad_files(tmp_path):
    bad = tmp_path / "Tester_1" / "Blendshape" / "shape.bs"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(np.array([46, 11510, 11540], np.int32).tobytes() + b"\0" * 100)
    with pytest.raises(ValueError, match="header says 46 blendshapes"):
        facewarehouse.read_blendshapes(bad)
    with pytest.raises(ValueError, match="no Tester_"):
        facewarehouse.load_facewarehouse(tmp_path / "nothing", np.arange(3), list(range(7)))


def test_building_the_default_model_into_an_unwritable_place_is_refused_before_the_build(capsys):
    from face.build_default_model import main

    with pytest.raises(SystemExit) as stop:   # was: a traceback at the save, after the build
        main(["--out", "/proc/model.npz", "--pyfeat", "/nowhere"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith("error: --out /proc/model.npz: cannot write in /proc: "
                                                              "No such file or directory")
