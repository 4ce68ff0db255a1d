"""publish_probs: which probabilities the pipeline publishes, from the translated and the render path."""
import numpy as np
import pytest

from pipeline.fusion import PUBLISH_MODES, publish_probs

P_T = np.array([0.6, 0.3, 0.1])
P_R = np.array([0.2, 0.5, 0.3])


def test_modes():
    assert PUBLISH_MODES == ("fusion", "translated", "render")
    np.testing.assert_array_equal(publish_probs(P_T, P_R, "translated"), P_T)
    np.testing.assert_array_equal(publish_probs(P_T, P_R, "render"), P_R)
    # A single-path mode does not need the other path.
    np.testing.assert_array_equal(publish_probs(P_T, None, "translated"), P_T)
    np.testing.assert_array_equal(publish_probs(None, P_R, "render"), P_R)


def test_fusion_is_the_normalised_weighted_geometric_mean():
    for w in (0.0, 0.3, 0.5, 1.0):
        pooled = P_T ** w * P_R ** (1 - w)
        np.testing.assert_allclose(publish_probs(P_T, P_R, "fusion", w), pooled / pooled.sum(), rtol=1e-12)
    assert publish_probs(P_T, P_R, "fusion").dtype == np.float64
    # The ends of the weight are the single paths (up to the 1e-6 clip).
    np.testing.assert_allclose(publish_probs(P_T, P_R, "fusion", 1.0), P_T, atol=1e-12)
    np.testing.assert_allclose(publish_probs(P_T, P_R, "fusion", 0.0), P_R, atol=1e-12)


def test_fusion_of_agreeing_paths_reinforces_their_class():
    a, b = np.array([0.8, 0.2, 0.0]), np.array([0.8, 0.0, 0.2])
    fused = publish_probs(a, b, "fusion")
    assert fused.argmax() == 0 and fused[0] > 0.99 and fused[0] > (a + b)[0] / 2
    np.testing.assert_allclose(publish_probs(a, a, "fusion"), a, atol=1e-5)   # one opinion twice: itself


def test_fusion_of_disagreeing_paths_sits_between_them():
    a, b = np.array([0.7, 0.2, 0.1]), np.array([0.2, 0.7, 0.1])
    fused = publish_probs(a, b, "fusion")
    assert abs(fused[0] - fused[1]) < 1e-12 and fused[2] < fused[0] and abs(fused.sum() - 1) < 1e-12
    assert publish_probs(a, b, "fusion", 0.7).argmax() == 0 and publish_probs(a, b, "fusion", 0.3).argmax() == 1


def test_a_confident_wrong_path_is_tempered_by_the_other():
    truth = 1
    wrong = np.array([0.9, 0.1, 0.0])          # the translated path, sure of class 0
    right = np.array([0.001, 0.5, 0.499])      # the render rules class 0 out
    fused = publish_probs(wrong, right, "fusion")
    assert fused.argmax() == truth and fused[0] < 0.2
    assert ((wrong + right) / 2).argmax() == 0   # the arithmetic mean would have published the error
    # A saturated wrong path cannot silence the other outright: the clip bounds its veto.
    saturated = np.array([1.0, 0.0, 0.0])
    assert publish_probs(saturated, np.array([1e-9, 1.0, 0.0]), "fusion", 0.4).argmax() == 1


def test_batches_pool_row_by_row():
    batch_t, batch_r = np.stack([P_T, P_R]), np.stack([P_R, P_T])
    fused = publish_probs(batch_t, batch_r, "fusion", 0.25)
    assert fused.shape == (2, 3)
    for row in range(2):
        np.testing.assert_allclose(fused[row], publish_probs(batch_t[row], batch_r[row], "fusion", 0.25))


@pytest.mark.parametrize("args, message", [
    ((P_T, P_R, "average"), "publish mode must be one of fusion, translated, render, got 'average'"),
    ((P_T, P_R, "fusion", 1.5), "fusion weight must be in [0, 1], got 1.5"),
    ((P_T, P_R, "fusion", -0.1), "fusion weight must be in [0, 1], got -0.1"),
    ((P_T, P_R, "fusion", float("nan")), "fusion weight must be in [0, 1], got nan"),
    ((P_T, P_R, "translated", 2.0), "fusion weight must be in [0, 1], got 2.0"),
    ((P_T, P_R[:2], "fusion"), "must have the same shape, got (3,) and (2,)"),
    ((P_T, None, "fusion"), "p_render is None but the publish mode needs it"),
    ((None, P_R, "translated"), "p_translated is None but the publish mode needs it"),
    ((P_T, np.array([np.nan, 0.5, 0.5]), "fusion"), "p_render has non-finite values"),
])
def test_bad_input_is_refused_with_one_clear_line(args, message):
    with pytest.raises(ValueError) as error:
        publish_probs(*args)
    assert message in str(error.value) and "\n" not in str(error.value)
