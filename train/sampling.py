"""Which images a classifier step draws: every image equally often (StepBatchSampler), or every
class equally often (BalancedStepBatchSampler, `--balanced`)."""
import torch

from face.expressions import NUM_EXPRESSIONS

from .data import StepBatchSampler


class BalancedStepBatchSampler(StepBatchSampler):
    """Class-balanced batches: every position draws a class uniformly, then an image of it, from
    (seed, step, rank) alone, so a resumed or multi-process run draws what a straight run draws."""

    def __init__(self, labels: list[int], batch_size: int, **kwargs):
        super().__init__(len(labels), batch_size, **kwargs)
        labels = torch.tensor(labels)
        counts = torch.bincount(labels, minlength=NUM_EXPRESSIONS).double()
        self.weights = 1.0 / counts[labels]

    def batch_for_step(self, step: int) -> list:
        generator = torch.Generator().manual_seed(hash((int(self.seed), 11, int(step), int(self.rank))) & (2 ** 63 - 1))
        picks = torch.multinomial(self.weights, self.batch_size, replacement=True, generator=generator).tolist()
        flips = (torch.rand(self.batch_size, generator=generator) < 0.5).tolist()
        return [(i, bool(f) and self.flip) for i, f in zip(picks, flips)]


def step_sampler(labels: list[int], batch_size: int, balanced: bool, **options) -> StepBatchSampler:
    """The sampler for `labels`' images; `options` are StepBatchSampler's keyword arguments."""
    if balanced:
        return BalancedStepBatchSampler(labels, batch_size, **options)
    return StepBatchSampler(len(labels), batch_size, **options)
