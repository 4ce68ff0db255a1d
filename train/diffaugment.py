"""Differentiable augmentation of everything a discriminator sees (DiffAugment, Zhao et al. 2020;
beyond the paper, off in its configuration).

Why: a narrow discriminator trained on a few thousand faces is easy to fool with codes instead of
content. Measured on CGIT (w=8, 64², 1200 steps): the generator drew faint colour tints around the
mouth that D^s's class head read as the asked expression (90 % of its translations "right" by D^s)
while the source classifier read chance (15 %). The same random colour change, shift and cutout
applied to real and fake images alike makes such codes unreliable for D, so only what survives
them — the face's shape and shading — carries the class. Gradients flow through every operation,
so G learns through the augmented D.
"""
import torch
import torch.nn.functional as F
from torch import nn

IMAGE_CHANNELS = 3     # a generator/discriminator input is image (3) + side map (3)
SHIFT = 1 / 8          # translation: up to this share of the side, each way
CUTOUT = 1 / 2         # cutout: a square of this share of the side, zeroed


def _colour(image: torch.Tensor) -> torch.Tensor:
    """Per image: brightness ±0.25 of the range, saturation ×[0, 2], contrast ×[0.5, 1.5] (images in [-1, 1])."""
    n = image.shape[0]
    rand = lambda: torch.rand(n, 1, 1, 1, device=image.device, dtype=image.dtype)  # noqa: E731
    image = image + (rand() - 0.5)
    grey = image.mean(1, keepdim=True)
    image = (image - grey) * (2 * rand()) + grey
    mean = image.mean((1, 2, 3), keepdim=True)
    return (image - mean) * (rand() + 0.5) + mean


def _translate(x: torch.Tensor) -> torch.Tensor:
    """Per image a whole-pixel shift of up to SHIFT of the side, zeros coming in."""
    n, _, h, w = x.shape
    limit = max(1, int(round(h * SHIFT)))
    shifts = torch.randint(-limit, limit + 1, (n, 2), device=x.device)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = -2 * shifts[:, 0].to(x.dtype) / w
    theta[:, 1, 2] = -2 * shifts[:, 1].to(x.dtype) / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _cutout(x: torch.Tensor) -> torch.Tensor:
    """Per image one square of CUTOUT of the side, anywhere (partly outside is fine), set to zero."""
    n, _, h, w = x.shape
    side = int(round(h * CUTOUT))
    cy = torch.randint(0, h, (n, 1, 1), device=x.device)
    cx = torch.randint(0, w, (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy).abs() <= side // 2) & ((xs - cx).abs() <= side // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def diff_augment(x: torch.Tensor) -> torch.Tensor:
    """Colour (image channels only), then the same shift and cutout for image and side map."""
    x = torch.cat([_colour(x[:, :IMAGE_CHANNELS]), x[:, IMAGE_CHANNELS:]], dim=1)
    return _cutout(_translate(x))


class Augmented(nn.Module):
    """A discriminator that sees every input through diff_augment; holds no weights of its own."""

    def __init__(self, discriminator: nn.Module):
        super().__init__()
        self.discriminator = discriminator

    def forward(self, x):
        return self.discriminator(diff_augment(x))
