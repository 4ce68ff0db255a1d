"""The ExprADA networks of tables 1 and 2, with the base width `w` as a parameter (paper: 64).

Both generators share one architecture (table 1): a 6-channel input (image + 3-channel landmark
side map), an encoder to 16w channels at 1/16 resolution, six residual blocks, a decoder of four
sub-pixel convolutions, and two 7×7 tanh heads (image, side map). The CGIT generator G^{t→s}
takes a one-hot expression, tiled and concatenated at the bottleneck (1024 + n_y channels into
the first decoder stage); UIT's generators and CGIT's G^{s→t} take none.

Two deviations from table 1, each a flag and off in the paper's configuration (measured in the
README): `skips` adds each encoder stage's features to the decoder stage of the same resolution
(U-Net-like, additive so the widths stay table 1's), and `residual` makes both heads predict a
correction added to the input (image and side map) instead of the whole output, starting at zero:
a residual generator starts as the identity, so translation cannot cost accuracy before it has
learned something. Without them, the table-1 generator at the CPU widths (w=8–16) squeezes a face
through a 1/16-resolution bottleneck and re-draws it, losing the fine detail that carries the
expression.

Where the CGIT condition enters is a third option: table 1 tiles the one-hot at the bottleneck
(`condition="bottleneck"`, the default); `condition="input"` concatenates it as seven constant planes
beside the image and side map at full resolution, as StarGAN does, so the first convolution can
already act on the mouth and brows where they are, and a skip path carries the condition too.

`grey=True` makes the image head draw one channel, repeated into the three: for runs whose domains
are both grey (NIR to NIR, as the pose scenario and the expression-transfer benchmark), where any
colour a generator draws is a code that only a discriminator can read (measured: CGIT's first
translations passed D^s's class head with faint red and blue tints at the mouth).

The discriminator (table 2) sees image + side map: six 4×4 stride-2 convolutions with leaky
ReLU, a 3×3 convolution giving a patch map of real/fake scores, and, for D^s in CGIT, a fully
connected expression head over the flattened last features. `spectral_norm` (beyond the paper;
SN-GAN, Miyato et al. 2018) bounds each layer's Lipschitz constant, so neither head can change its
reading much for a small change of the image: a generator cannot pass D^s's class head with a faint
pattern, it has to change the face. `class_from_image` (beyond the paper) gives the expression head
the image alone, the side map blanked: a side map is a drawing of the landmarks, which a generator
can redraw in the asked expression while leaving the face as it was (measured: with grey output, the
CGIT generator passed D^s's class head 100 % of the time that way, the reader at chance).
"""
import torch
from torch import nn

from face.expressions import NUM_EXPRESSIONS

IN_CHANNELS = 6  # image (3) + side map (3)
CONDITIONS = ("bottleneck", "input")
GENERATOR_DOWNSAMPLING = 16
DISCRIMINATOR_DOWNSAMPLING = 64
LEAKY_SLOPE = 0.01


def conv_in_relu(c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    # No conv bias: instance norm removes any per-channel constant right after.
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.InstanceNorm2d(c_out, affine=True), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))): two 3×3 convolutions at the bottleneck width."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_in_relu(channels, channels, 3, 1, 1),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x):
        return x + self.body(x)


class SubPixelUp(nn.Module):
    """Sub-pixel convolution (3×3 conv to 4·c_out, pixel shuffle ×2) + IN + ReLU: doubles H and W.

    ICNR initialisation (Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution"):
    the four filters that become one output channel's 2×2 sub-pixels start equal, so the stage
    starts as a conv + nearest-neighbour upsampling instead of stamping a checkerboard that the
    GAN must then unlearn."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, 4 * c_out, 3, 1, 1, bias=False)
        with torch.no_grad():  # PixelShuffle takes channel c·4 + k to sub-pixel k of channel c
            self.conv.weight.copy_(self.conv.weight[::4].repeat_interleave(4, dim=0))
        self.shuffle = nn.PixelShuffle(2)
        self.norm = nn.InstanceNorm2d(c_out, affine=True)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.norm(self.shuffle(self.conv(x))))


class Generator(nn.Module):
    """Table 1. forward(x6, expression_onehot=None) -> (image, side_map), both in [-1, 1].
    `skips`, `residual`, `condition` and `grey`: the deviations described in the module docstring."""

    def __init__(self, width: int = 64, num_classes: int = 0, num_residual: int = 6, skips: bool = False,
                 residual: bool = False, condition: str = "bottleneck", grey: bool = False):
        super().__init__()
        if width < 1 or num_classes < 0:
            raise ValueError(f"generator width must be >= 1 and num_classes >= 0, got {width}, {num_classes}")
        if condition not in CONDITIONS:
            raise ValueError(f"condition {condition!r}; expected one of {CONDITIONS}")
        self.width, self.num_classes, self.skips, self.residual = width, num_classes, bool(skips), bool(residual)
        self.condition, self.grey = condition, bool(grey)
        w = width
        at_input, at_bottleneck = (num_classes, 0) if condition == "input" else (0, num_classes)
        self.encoder = nn.Sequential(
            conv_in_relu(IN_CHANNELS + at_input, w, 7, 1, 3),
            conv_in_relu(w, 2 * w, 4, 2, 1),
            conv_in_relu(2 * w, 4 * w, 4, 2, 1),
            conv_in_relu(4 * w, 8 * w, 4, 2, 1),
            conv_in_relu(8 * w, 16 * w, 4, 2, 1))
        self.bottleneck = nn.Sequential(*(ResidualBlock(16 * w) for _ in range(num_residual)))
        self.decoder = nn.Sequential(
            SubPixelUp(16 * w + at_bottleneck, 8 * w),
            SubPixelUp(8 * w, 4 * w),
            SubPixelUp(4 * w, 2 * w),
            SubPixelUp(2 * w, w))
        self.image_head = nn.Sequential(nn.Conv2d(w, 1 if self.grey else 3, 7, 1, 3), nn.Tanh())
        self.side_head = nn.Sequential(nn.Conv2d(w, 3, 7, 1, 3), nn.Tanh())
        if self.residual:  # corrections start at zero: the generator starts as the identity
            for head in (self.image_head, self.side_head):
                nn.init.zeros_(head[0].weight)
                nn.init.zeros_(head[0].bias)

    def check_input(self, x, expression_onehot):
        if x.dim() != 4 or x.shape[1] != IN_CHANNELS:
            raise ValueError(f"generator input must be N×{IN_CHANNELS}×H×W (image + side map), got {tuple(x.shape)}")
        if x.shape[2] % GENERATOR_DOWNSAMPLING or x.shape[3] % GENERATOR_DOWNSAMPLING:
            raise ValueError(f"generator input H and W must be multiples of {GENERATOR_DOWNSAMPLING}, got {tuple(x.shape[2:])}")
        if self.num_classes and expression_onehot is None:
            raise ValueError(f"this generator is conditioned: it needs an N×{self.num_classes} expression one-hot")
        if not self.num_classes and expression_onehot is not None:
            raise ValueError("this generator is unconditioned (UIT): it takes no expression")
        if self.num_classes and tuple(expression_onehot.shape) != (x.shape[0], self.num_classes):
            raise ValueError(f"expression one-hot must be {(x.shape[0], self.num_classes)}, got {tuple(expression_onehot.shape)}")

    def forward(self, x, expression_onehot=None):
        self.check_input(x, expression_onehot)
        h, skips = x, []
        if self.num_classes and self.condition == "input":
            h = torch.cat([h, self._planes(expression_onehot, h)], dim=1)
        for stage in self.encoder:
            h = stage(h)
            skips.append(h)
        h = self.bottleneck(h)
        if self.num_classes and self.condition == "bottleneck":
            h = torch.cat([h, self._planes(expression_onehot, h)], dim=1)
        for stage, skip in zip(self.decoder, reversed(skips[:-1])):  # decoder i meets encoder 3−i: same H, W, C
            h = stage(h) + skip if self.skips else stage(h)
        image, side = self.image_head(h), self.side_head(h)
        if self.grey:
            image = image.expand(-1, 3, -1, -1)
        if self.residual:
            image = (x[:, :3] + image).clamp(-1.0, 1.0)
            side = (x[:, 3:] + side).clamp(-1.0, 1.0)
        return image, side

    @staticmethod
    def _planes(onehot, like):
        """The one-hot tiled to N×n_y×H×W, H and W those of `like`."""
        return onehot.to(like.dtype)[:, :, None, None].expand(-1, -1, like.shape[2], like.shape[3])


class Discriminator(nn.Module):
    """Table 2. forward(x6) -> (patch scores N×1×H/64×W/64, class logits N×m or None)."""

    def __init__(self, width: int = 64, image_size: int = 128, num_classes: int = 0, spectral_norm: bool = False,
                 class_from_image: bool = False):
        super().__init__()
        if image_size % DISCRIMINATOR_DOWNSAMPLING:
            raise ValueError(f"discriminator image size must be a multiple of {DISCRIMINATOR_DOWNSAMPLING}, got {image_size}")
        self.width, self.image_size, self.num_classes = width, image_size, num_classes
        layers, c_in = [], IN_CHANNELS
        for i in range(6):
            c_out = width * 2 ** i
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE, inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.adversarial_head = nn.Conv2d(c_in, 1, 3, 1, 1, bias=False)
        side = image_size // DISCRIMINATOR_DOWNSAMPLING
        self.class_head = nn.Linear(c_in * side * side, num_classes) if num_classes else None
        self.spectral_norm = bool(spectral_norm)
        self.class_from_image = bool(class_from_image) and self.class_head is not None
        if self.spectral_norm:
            for layer in [*self.features, self.adversarial_head, self.class_head]:
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    nn.utils.parametrizations.spectral_norm(layer)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != IN_CHANNELS or tuple(x.shape[2:]) != (self.image_size, self.image_size):
            raise ValueError(f"discriminator input must be N×{IN_CHANNELS}×{self.image_size}×{self.image_size}, got {tuple(x.shape)}")
        if self.class_from_image:   # one pass over both: as given (real/fake), side map blanked (expression)
            n = x.shape[0]
            blank = torch.cat([x[:, :3], torch.full_like(x[:, 3:], -1.0)], dim=1)   # -1: a black side map
            h = self.features(torch.cat([x, blank]))
            return self.adversarial_head(h[:n]), self.class_head(h[n:].flatten(1))
        h = self.features(x)
        scores = self.adversarial_head(h)
        return scores, (self.class_head(h.flatten(1)) if self.class_head is not None else None)


# ---- the four networks of a run, from its config --------------------------------------------

NETWORK_NAMES = ("G_ts", "G_st", "D_s", "D_t")


def build_network(config: dict, name: str) -> nn.Module:
    """One of G_ts (target→source; conditioned in CGIT; G_ts_ema its weight average), G_st, D_s (class head in CGIT), D_t,
    from a run config holding mode, width, image_size (and num_residual, skips, residual, grey, condition, d_width,
    spectral_norm, class_from_image)."""
    mode, width, size = config["mode"], int(config["width"]), int(config["image_size"])
    if mode not in ("uit", "cgit"):
        raise ValueError(f"mode {mode!r}; expected 'uit' or 'cgit'")
    classes = NUM_EXPRESSIONS if mode == "cgit" else 0
    shape = dict(num_residual=int(config.get("num_residual", 6)), skips=bool(config.get("skips", False)),
                 residual=bool(config.get("residual", False)), grey=bool(config.get("grey", False)))
    if name in ("G_ts", "G_ts_ema"):  # the EMA copy is G_ts averaged over steps
        return Generator(width, classes, condition=config.get("condition") or "bottleneck", **shape)
    if name == "G_st":
        return Generator(width, 0, **shape)
    d_width = int(config.get("d_width") or width)   # the discriminators' own width, when set
    sn = bool(config.get("spectral_norm", False))
    if name == "D_s":
        return Discriminator(d_width, size, classes, sn, bool(config.get("class_from_image", False)))
    if name == "D_t":
        return Discriminator(d_width, size, 0, sn)
    raise ValueError(f"unknown network {name!r}; expected one of {NETWORK_NAMES}")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
