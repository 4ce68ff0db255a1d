"""publish_probs: which probabilities the pipeline publishes, from the translated, the render and the
crop path."""
import numpy as np
import pytest

from pipeline.fusion import CROP_YAW, FUSION_WEIGHT, POSE_WEIGHT, PUBLISH_MODES, publish_probs

P_T = np.array([0.6, 0.3, 0.1])
P_R = np.array([0.2, 0.5, 0.3])
P_C = np.array([0.1, 0.2, 0.7])


def test_modes():
    assert PUBLISH_MODES == ("pose", "fusion", "translated", "render", "crop") and CROP_YAW == 20.0
    np.testing.assert_array_equal(publish_probs(P_T, P_R, "translated"), P_T)
    np.testing.assert_array_equal(publish_probs(P_T, P_R, "render"), P_R)
    np.testing.assert_array_equal(publish_probs(P_T, P_R, "crop", p_crop=P_C), P_C)
    # A single-path mode does not need the other paths.
    np.testing.assert_array_equal(publish_probs(P_T, None, "translated"), P_T)
    np.testing.assert_array_equal(publish_probs(None, P_R, "render"), P_R)
    np.testing.assert_array_equal(publish_probs(None, None, "crop", p_crop=P_C), P_C)
    # The other modes ignore what they do not pool.
    np.testing.assert_array_equal(publish_probs(P_T, P_R, "fusion", p_crop=P_C, yaw=0.0),
                                  publish_probs(P_T, P_R, "fusion"))


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


def pose(yaw, weight=0.5, crop_yaw=CROP_YAW, p_t=P_T, p_r=P_R, p_c=P_C):
    return publish_probs(p_t, p_r, "pose", weight, p_crop=p_c, yaw=yaw, crop_yaw=crop_yaw)


def test_pose_at_yaw_0_is_the_crop_alone():
    np.testing.assert_allclose(pose(0.0), P_C, atol=1e-12)
    np.testing.assert_allclose(pose(0, weight=0.9, crop_yaw=10), P_C, atol=1e-12)
    assert pose(0.0).dtype == np.float64


@pytest.mark.parametrize("yaw", [30.0, -30.0, 45.0, -70.0, 180.0])
@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 1.0])
def test_pose_from_crop_yaw_on_is_exactly_the_two_path_fusion(yaw, weight):
    np.testing.assert_array_equal(pose(yaw, weight), publish_probs(P_T, P_R, "fusion", weight))


@pytest.mark.parametrize("yaw, crop_yaw", [(7.5, 30.0), (15.0, 30.0), (22.0, 30.0), (5.0, 10.0)])
def test_pose_in_between_pools_all_three_with_the_crop_weight_falling_with_yaw(yaw, crop_yaw):
    w_crop = 1 - yaw / crop_yaw
    w_t, w_r = (1 - w_crop) * 0.3, (1 - w_crop) * 0.7
    pooled = P_T ** w_t * P_R ** w_r * P_C ** w_crop
    np.testing.assert_allclose(pose(yaw, 0.3, crop_yaw), pooled / pooled.sum(), rtol=1e-12)
    # Negative yaw (the head turned the other way) weighs the crop the same.
    np.testing.assert_array_equal(pose(-yaw, 0.3, crop_yaw), pose(yaw, 0.3, crop_yaw))


def test_each_mode_has_its_own_default_weight():
    """fusion shares evenly; pose (chosen on validation drivers) gives the frontalised share to the
    translation alone, so once the crop's weight is gone it publishes the translated path."""
    assert (FUSION_WEIGHT, POSE_WEIGHT) == (0.5, 1.0)
    np.testing.assert_array_equal(publish_probs(P_T, P_R, "fusion"), publish_probs(P_T, P_R, "fusion", 0.5))
    np.testing.assert_array_equal(publish_probs(P_T, P_R, "pose", p_crop=P_C, yaw=12.0),
                                  publish_probs(P_T, P_R, "pose", 1.0, p_crop=P_C, yaw=12.0))
    np.testing.assert_allclose(publish_probs(P_T, P_R, "pose", p_crop=P_C, yaw=CROP_YAW), P_T, rtol=1e-12)


def test_pose_moves_from_the_crop_to_the_fusion_as_the_head_turns():
    fusion = publish_probs(P_T, P_R, "fusion")
    distance = [np.abs(pose(yaw) - fusion).sum() for yaw in np.linspace(0, CROP_YAW, 7)]
    assert all(a > b for a, b in zip(distance, distance[1:])) and distance[-1] == 0
    assert pose(0).argmax() == 2 and pose(30).argmax() == 1   # the crop's class, then the fusion's


def test_pose_on_a_batch_refuses_a_yaw_per_row_of_the_wrong_length():
    batch = np.stack([P_T, P_R, P_C])
    with pytest.raises(ValueError, match=r"one number or one per distribution, shape \(3,\), got shape \(2,\)"):
        pose([0.0, 5.0], p_t=batch, p_r=batch, p_c=batch)


def test_pose_on_a_batch_takes_one_yaw_per_row():
    batch_t, batch_r, batch_c = np.stack([P_T, P_R, P_C, P_T]), np.stack([P_R, P_C, P_T, P_R]), \
        np.stack([P_C, P_T, P_R, P_C])
    yaw = np.array([0.0, -12.0, 40.0, 12.0])
    pooled = pose(yaw, 0.4, p_t=batch_t, p_r=batch_r, p_c=batch_c)
    assert pooled.shape == (4, 3)
    for row in range(4):
        np.testing.assert_allclose(pooled[row], pose(yaw[row], 0.4, p_t=batch_t[row], p_r=batch_r[row],
                                                     p_c=batch_c[row]), rtol=1e-12)
    # A yaw list works like an array; one number applies to every row.
    np.testing.assert_array_equal(pose(list(yaw), 0.4, p_t=batch_t, p_r=batch_r, p_c=batch_c), pooled)
    np.testing.assert_allclose(pose(12.0, 0.4, p_t=batch_t, p_r=batch_r, p_c=batch_c)[3], pooled[3], rtol=1e-12)
    # An empty batch stays empty.
    assert pose(np.zeros(0), p_t=np.zeros((0, 3)), p_r=np.zeros((0, 3)), p_c=np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"yaw": None}, "pose mode needs the head yaw (degrees), got yaw=None"),
    ({"yaw": 0.0, "p_crop": None}, "p_crop is None but the publish mode needs it"),
    ({"yaw": float("nan"), "p_crop": P_C}, "yaw has non-finite values"),
    ({"yaw": "left", "p_crop": P_C}, "yaw must be a number or an array of degrees, got 'left'"),
    ({"yaw": [0.0, 5.0], "p_crop": P_C}, "yaw must be one number, got shape (2,)"),
    ({"yaw": [0.0, 5.0], "p_crop": np.stack([P_C] * 3)}, "p_translated and p_crop must have the same shape"),
    ({"yaw": 0.0, "p_crop": P_C[:2]}, "p_translated and p_crop must have the same shape, got (3,) and (2,)"),
    ({"yaw": 0.0, "p_crop": P_C, "crop_yaw": 0}, "crop yaw must be a positive, finite number of degrees, got 0.0"),
    ({"yaw": 0.0, "p_crop": P_C, "crop_yaw": -5}, "crop yaw must be a positive, finite number of degrees, got -5.0"),
    ({"yaw": 0.0, "p_crop": P_C, "crop_yaw": float("nan")}, "crop yaw must be a positive, finite number of degrees"),
    ({"yaw": 0.0, "p_crop": P_C, "crop_yaw": float("inf")}, "crop yaw must be a positive, finite number of degrees"),
    ({"yaw": 0.0, "p_crop": P_C, "crop_yaw": "wide"}, "crop yaw must be a positive number of degrees, got 'wide'"),
])
def test_pose_refuses_bad_input_with_one_clear_line(kwargs, message):
    kwargs.setdefault("p_crop", P_C)
    with pytest.raises(ValueError) as error:
        publish_probs(P_T, P_R, "pose", **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)
    # crop_yaw is checked in every mode (one check for the whole configuration).
    if "crop_yaw" in kwargs:
        with pytest.raises(ValueError, match="crop yaw must be"):
            publish_probs(P_T, P_R, "fusion", crop_yaw=kwargs["crop_yaw"])


@pytest.mark.parametrize("args, message", [
    ((P_T, P_R, "average"), "publish mode must be one of pose, fusion, translated, render, crop, got 'average'"),
    ((P_T, P_R, "fusion", 1.5), "fusion weight must be in [0, 1], got 1.5"),
    ((P_T, P_R, "fusion", -0.1), "fusion weight must be in [0, 1], got -0.1"),
    ((P_T, P_R, "fusion", float("nan")), "fusion weight must be in [0, 1], got nan"),
    ((P_T, P_R, "translated", 2.0), "fusion weight must be in [0, 1], got 2.0"),
    ((P_T, P_R[:2], "fusion"), "must have the same shape, got (3,) and (2,)"),
    ((P_T, None, "fusion"), "p_render is None but the publish mode needs it"),
    ((None, P_R, "translated"), "p_translated is None but the publish mode needs it"),
    ((P_T, P_R, "crop"), "p_crop is None but the publish mode needs it"),
    ((P_T, np.array([np.nan, 0.5, 0.5]), "fusion"), "p_render has non-finite values"),
])
def test_bad_input_is_refused_with_one_clear_line(args, message):
    with pytest.raises(ValueError) as error:
        publish_probs(*args)
    assert message in str(error.value) and "\n" not in str(error.value)
