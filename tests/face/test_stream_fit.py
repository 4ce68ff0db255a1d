"""face.stream_fit's small symmetric solve: numpy's answer where the matrix is positive definite, a
plain refusal where it is not (the stream's fit and the pose's std lean on both)."""
import numpy as np
import pytest

from face.stream_fit import _map_estimate, spd_solve


@pytest.mark.parametrize("n, columns", [(7, None), (7, 4), (26, None), (18, 3)])
def test_a_positive_definite_system_is_solved_as_numpy_solves_it(n, columns):
    rng = np.random.default_rng(n)
    a = rng.normal(size=(n, n))
    matrix = a @ a.T + n * np.eye(n)
    rhs = rng.normal(size=n if columns is None else (n, columns))
    x, ok = spd_solve(matrix, rhs)
    assert ok and x.shape == rhs.shape
    assert np.allclose(x, np.linalg.solve(matrix, rhs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("matrix", [
    np.diag([1.0, 0.0, 1.0]),                        # singular
    np.array([[1.0, 2.0], [2.0, 1.0]]),             # indefinite
    np.array([[np.nan, 0.0], [0.0, 1.0]]),          # not finite
])
def test_a_matrix_that_is_not_positive_definite_is_refused(matrix):
    _, ok = spd_solve(matrix, np.ones(len(matrix)))
    assert not ok


def test_a_map_estimate_that_cannot_be_solved_is_the_priors_mean():
    mean, reg = np.array([0.5, -1.0]), np.array([0.1, 0.1])
    assert np.array_equal(_map_estimate(np.full((2, 2), np.nan), np.zeros(2), mean, reg), mean)
    normal, rhs = np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([1.0, 2.0])
    want = np.linalg.solve(normal + np.diag(reg), rhs + reg * mean)
    assert np.allclose(_map_estimate(normal, rhs, mean, reg), want, rtol=1e-12)
