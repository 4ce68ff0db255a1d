"""Small networks with the project's signatures, for tests that must not wait on training code.

Generator: forward(x6, expression_onehot=None) → (image, side_map), table-1 shaped (Conv+IN+ReLU
encoder, residual bottleneck, sub-pixel decoder, two tanh heads). Classifier: forward(x) → (logits,
embedding).
"""
import torch
from torch import nn


def _block(cin, cout, kernel, stride, padding):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding),
                         nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(_block(channels, channels, 3, 1, 1),
                                  nn.Conv2d(channels, channels, 3, 1, 1), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x):
        return x + self.body(x)


class TinyGenerator(nn.Module):
    def __init__(self, width=8, downs=2, residuals=2, n_classes=0):
        super().__init__()
        self.n_classes = n_classes
        layers, channels = [_block(6, width, 7, 1, 3)], width
        for _ in range(downs):
            layers.append(_block(channels, channels * 2, 4, 2, 1))
            channels *= 2
        layers += [_Residual(channels) for _ in range(residuals)]
        self.encoder = nn.Sequential(*layers)
        ups, cin = [], channels + n_classes
        for _ in range(downs):
            ups += [nn.Conv2d(cin, (channels // 2) * 4, 3, 1, 1), nn.PixelShuffle(2),
                    nn.InstanceNorm2d(channels // 2, affine=True), nn.ReLU(inplace=True)]
            channels //= 2
            cin = channels
        self.decoder = nn.Sequential(*ups)
        self.image_head = nn.Sequential(nn.Conv2d(width, 3, 7, 1, 3), nn.Tanh())
        self.side_head = nn.Sequential(nn.Conv2d(width, 3, 7, 1, 3), nn.Tanh())

    def forward(self, x, expression_onehot=None):
        h = self.encoder(x)
        if self.n_classes:
            h = torch.cat([h, expression_onehot[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])], 1)
        h = self.decoder(h)
        return self.image_head(h), self.side_head(h)


class TinyClassifier(nn.Module):
    def __init__(self, width=8, n_classes=7, embedding=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, 2, 1), nn.BatchNorm2d(width * 2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width * 2, embedding), nn.ReLU())
        self.head = nn.Linear(embedding, n_classes)

    def forward(self, x):
        embedding = self.features(x)
        return self.head(embedding), embedding


def seeded(module, seed=0):
    """Deterministic weights, made non-trivial so parity tests see real activations."""
    torch.manual_seed(seed)
    for p in module.parameters():
        torch.nn.init.normal_(p, 0.0, 0.2) if p.dim() == 1 else None
    return module.eval()
