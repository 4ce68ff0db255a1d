"""FaceWarehouse core tensor files: both layouts in use load into the model convention; bad files are
clear errors.

The writers below follow the C++ that writes these files (see face/facewarehouse.py), not our reader:
a Tensor3(l identities, m expressions, n coordinates) t(i, j, k) written per identity layer, as an Eigen
column-major m × n matrix of doubles (`blendshape_core.tensor`) or row by row in floats (`core.bin`).
"""
import numpy as np
import pytest

from face import bilinear, facewarehouse

N_PEOPLE, N_EXPR, V = 4, 3, 5  # all different, so a swapped axis cannot go unnoticed
ROWS = [1, 2, 1, 2, 1, 2, 0]  # the seven EXPRESSIONS → FaceWarehouse expressions; neutral is 0


def _write_eigen_core(path, t):
    with open(path, "wb") as f:
        f.write(np.array(t.shape, "<i4").tobytes())
        for layer in t:
            f.write(np.asarray(layer, "<f8").tobytes(order="F"))


def _write_rowmajor_core(path, t):
    with open(path, "wb") as f:
        f.write(np.array(t.shape, "<i4").tobytes())
        for layer in t:
            for row in layer:
                f.write(np.asarray(row, "<f4").tobytes())


def _write_factor(path, u):
    path.write_bytes(np.array(u.shape, "<i4").tobytes() + np.asarray(u, "<f8").tobytes(order="F"))


def _faces_and_core(n_id, n_exp):
    """Meshes D (people × expressions × V × 3) and the builder's uncentred, truncated N-mode SVD of the
    tensor t(i, j, 3k + c) = D[i, j, k, c]: core t(a, b, k) and the factors U_id, U_exp."""
    rng = np.random.default_rng(7)
    meshes = 10.0 + rng.standard_normal((N_PEOPLE, N_EXPR, V, 3))  # absolute positions, far from 0
    t = meshes.reshape(N_PEOPLE, N_EXPR, 3 * V)
    u_id = np.linalg.svd(t.reshape(N_PEOPLE, -1), full_matrices=False)[0][:, :n_id]
    u_exp = np.linalg.svd(t.transpose(1, 0, 2).reshape(N_EXPR, -1), full_matrices=False)[0][:, :n_exp]
    core = np.einsum("ijk,ia,jb->abk", t, u_id, u_exp)
    return meshes, core, u_id, u_exp


def _load(path, u_id, u_exp, triangles=((0, 1, 2), (2, 3, 4)), rows=ROWS):
    return facewarehouse.load_facewarehouse_core(path, landmark_vertex=np.arange(V), triangles=np.array(triangles),
                                                 identity_weights=u_id, expression_weights=u_exp,
                                                 expression_rows=rows)


@pytest.mark.parametrize("write, atol", [(_write_eigen_core, 1e-4), (_write_rowmajor_core, 1e-4)])
def test_full_core_reproduces_every_face(tmp_path, write, atol):
    meshes, core, u_id, u_exp = _faces_and_core(N_PEOPLE, N_EXPR)
    write(tmp_path / "core", core)
    model = _load(tmp_path / "core", u_id, u_exp)
    assert model.core.shape == (3 * V, N_PEOPLE, N_EXPR)
    for person in range(N_PEOPLE):
        for expression in range(N_EXPR):
            assert np.allclose(model.mesh(u_id[person], u_exp[expression]), meshes[person, expression], atol=atol)
    # No mean is stored: the mean face comes from the mean identity weights, at the neutral row.
    assert np.allclose(model.mesh(), meshes[:, 0].mean(axis=0), atol=atol)
    assert np.allclose(model.expression_weights, u_exp[ROWS])


@pytest.mark.parametrize("write", [_write_eigen_core, _write_rowmajor_core])
def test_truncated_core_is_the_expected_contraction(tmp_path, write):
    _, core, u_id, u_exp = _faces_and_core(3, 2)
    write(tmp_path / "blendshape_core.tensor", core)
    model = _load(tmp_path / "blendshape_core.tensor", u_id, u_exp)
    w_id, w_exp = np.array([0.3, -1.2, 0.7]), np.array([1.5, -0.4])
    expected = np.einsum("abk,a,b->k", core, w_id, w_exp).reshape(V, 3)  # C ×_id w_id ×_exp w_exp
    assert np.allclose(model.mesh(w_id, w_exp), expected, atol=1e-4)
    assert "3 identity × 2 expression" in model.description


def test_factor_files_and_obj_topology(tmp_path):
    meshes, core, u_id, u_exp = _faces_and_core(N_PEOPLE, N_EXPR)
    _write_eigen_core(tmp_path / "blendshape_core.tensor", core)
    _write_factor(tmp_path / "blendshape_u_0.tensor", u_id)
    _write_factor(tmp_path / "blendshape_u_1.tensor", u_exp)
    assert np.array_equal(facewarehouse.read_factor_matrix(tmp_path / "blendshape_u_0.tensor"), u_id)
    (tmp_path / "shape_0.obj").write_text("v 0 0 0\n" * V + "f 1/1 2/2 3/3 4/4\nf 4 5 1\n")
    model = facewarehouse.load_facewarehouse_core(
        tmp_path / "blendshape_core.tensor", landmark_vertex=np.arange(V), triangles=tmp_path / "shape_0.obj",
        identity_weights=tmp_path / "blendshape_u_0.tensor",
        expression_weights=str(tmp_path / "blendshape_u_1.tensor"), expression_rows=ROWS)
    assert model.triangles.tolist() == [[0, 1, 2], [0, 2, 3], [3, 4, 0]]
    assert np.allclose(model.mesh(u_id[2], u_exp[1]), meshes[2, 1], atol=1e-4)


def _header(*dims):
    return np.array(dims, "<i4").tobytes()


@pytest.mark.parametrize("content, message", [
    (_header(3, 2, 15) + b"\0" * (3 * 2 * 15 * 8 - 8), r"expected 732 bytes \(float64\) or 372 bytes \(float32\), "
                                                       r"file has 724 bytes"),  # truncated
    (_header(3, 2, 15) + b"\0" * (3 * 2 * 15 * 8 + 4), "file has 736 bytes"),  # oversized
    (_header(-1, 25, 34530) + b"\0" * 64, r"header \(n_id, n_exp, 3V\) = \(-1, 25, 34530\) is not a core"),
    (_header(50, 25, 34531) + b"\0" * 64, "3V a multiple of 3"),
    (b"# not a tensor, a text file\n", r"= \(1869488163, 543236212, 1936614772\) is not a core tensor"),
    (b"\1\0\0", "3 bytes, too short for the 12-byte"),
])
def test_malformed_core_files(tmp_path, content, message):
    bad = tmp_path / "core.bin"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        facewarehouse.read_core_tensor(bad)
    assert str(bad) in str(error.value)


def test_bad_arguments_and_files(tmp_path):
    _, core, u_id, u_exp = _faces_and_core(3, 2)
    path = tmp_path / "core.bin"
    _write_rowmajor_core(path, core)
    with pytest.raises(ValueError, match="no such FaceWarehouse core tensor file"):
        _load(tmp_path / "missing.bin", u_id, u_exp)
    with pytest.raises(ValueError, match=r"identity_weights must have .* 3 columns .* got shape \(4, 2\)"):
        _load(path, u_id[:, :2], u_exp)
    with pytest.raises(ValueError, match="expression_rows must give 7 indices below 3"):
        _load(path, u_id, u_exp, rows=[0, 1, 2, 3, 0, 1, 2])
    with pytest.raises(ValueError, match="triangle indices"):
        _load(path, u_id, u_exp, triangles=[(0, 1, V)])
    short = tmp_path / "blendshape_u_0.tensor"
    short.write_bytes(_header(150, 50) + b"\0" * 80)
    with pytest.raises(ValueError, match=r"header says a 150 × 50 float64 matrix \(60008 bytes\), file has 88"):
        facewarehouse.read_factor_matrix(short)
    for name in ("blendshape_core.tensor", "core.bin"):
        with pytest.raises(ValueError, match="load_facewarehouse_core"):
            bilinear.load(tmp_path / name)
