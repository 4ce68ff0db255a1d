"""Which images a classifier step draws: every image equally often (StepBatchSampler), every class
equally often (`--balanced`), and, for a set grown by augmentation, a fixed share of every batch from
the labelled images themselves (`--real-share`)."""
import torch

from face.expressions import NUM_EXPRESSIONS

from .data import StepBatchSampler


class WeightedStepBatchSampler(StepBatchSampler):
    """Every position draws an image with probability proportional to its weight, from (seed, step,
    rank) alone, so a resumed or multi-process run draws what a straight run draws."""

    def __init__(self, weights: torch.Tensor, batch_size: int, **kwargs):
        super().__init__(len(weights), batch_size, **kwargs)
        self.weights = weights

    def batch_for_step(self, step: int) -> list:
        generator = torch.Generator().manual_seed(hash((int(self.seed), 11, int(step), int(self.rank))) & (2 ** 63 - 1))
        picks = torch.multinomial(self.weights, self.batch_size, replacement=True, generator=generator).tolist()
        flips = (torch.rand(self.batch_size, generator=generator) < 0.5).tolist()
        crops = torch.rand(self.batch_size, 3, generator=generator).tolist() if self.crop else [None] * self.batch_size
        return [self._key(i, bool(f), c) for i, f, c in zip(picks, flips, crops)]


class BalancedStepBatchSampler(WeightedStepBatchSampler):
    """Class-balanced batches: every position draws a class uniformly, then an image of it."""

    def __init__(self, labels: list[int], batch_size: int, **kwargs):
        super().__init__(_balanced_weights(torch.tensor(labels)), batch_size, **kwargs)


def _balanced_weights(labels: torch.Tensor) -> torch.Tensor:
    counts = torch.bincount(labels, minlength=NUM_EXPRESSIONS).double()
    return 1.0 / counts[labels]


def real_share_weights(labels: list[int], added: list[bool], real_share: float, balanced: bool) -> torch.Tensor:
    """Weights that draw the labelled images (`added` False) for `real_share` of every batch and the
    added ones for the rest, each part class-balanced or not. Pooled, a few labelled images among
    thousands of added ones would be drawn almost never, and the augmentation would replace the set
    it is meant to grow."""
    labels, added = torch.tensor(labels), torch.tensor(added, dtype=torch.bool)
    weights = torch.zeros(len(labels), dtype=torch.double)
    for part, share in ((~added, real_share), (added, 1.0 - real_share)):
        if not part.any():
            continue
        within = _balanced_weights(labels[part]) if balanced else torch.ones(int(part.sum()), dtype=torch.double)
        weights[part] = share * within / within.sum()
    return weights


def step_sampler(labels: list[int], batch_size: int, balanced: bool, *, added: list[bool] | None = None,
                 real_share: float | None = None, **options) -> StepBatchSampler:
    """The sampler for `labels`' images; `options` are StepBatchSampler's keyword arguments. With
    `real_share`, the images flagged in `added` (augmentation) fill only the rest of each batch."""
    if real_share is not None and added is not None and any(added):
        return WeightedStepBatchSampler(real_share_weights(labels, added, real_share, balanced), batch_size, **options)
    if balanced:
        return BalancedStepBatchSampler(labels, batch_size, **options)
    return StepBatchSampler(len(labels), batch_size, **options)
