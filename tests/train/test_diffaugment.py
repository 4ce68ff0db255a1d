"""DiffAugment: what the discriminators see is changed at random, the same way for image and side map,
and the generator still gets gradients through it."""
import torch

from train.diffaugment import Augmented, diff_augment


def test_it_changes_every_image_keeps_shapes_and_passes_gradients():
    torch.manual_seed(0)
    x = (torch.rand(6, 6, 64, 64) * 2 - 1).requires_grad_(True)
    y = diff_augment(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert all(not torch.allclose(y[i], x[i]) for i in range(len(x)))
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_image_and_side_map_move_together():
    torch.manual_seed(1)
    image = torch.zeros(4, 3, 64, 64)
    image[:, :, 20:30, 30:40] = 1.0            # one bright block, in the image and in its side map
    y = diff_augment(torch.cat([image, image], dim=1))
    side = y[:, 3:]
    for i in range(len(y)):
        where_side = side[i, 0] > 0.5
        where_image = y[i, :3].mean(0) > y[i, :3].mean() + 0.2
        assert torch.equal(where_side, where_image), i   # the same shift and cutout on both


def test_augmented_wraps_without_weights_of_its_own():
    inner = torch.nn.Conv2d(6, 1, 3)
    wrapped = Augmented(inner)
    assert list(wrapped.parameters()) == list(inner.parameters())
    assert wrapped(torch.zeros(2, 6, 16, 16)).shape == (2, 1, 14, 14)
