"""The fast path's pieces: what runs on CPU is checked here; the CUDA graph test needs a GPU."""
import pytest
import torch

from face.expressions import NUM_EXPRESSIONS
from train.distributed import Context
from train.exprada import DEFAULTS
from train.exprada_model import ExprADAModel


def _model(device="cpu", **options):
    config = {**DEFAULTS, "mode": "cgit", "width": 4, "image_size": 64, "constant_steps": 100, "total_steps": 200,
              **options}
    return ExprADAModel(config, Context(device=torch.device(device)))


def _batch(device="cpu", n=2):
    g = torch.Generator().manual_seed(1)
    x_s, x_t = (torch.rand(n, 6, 64, 64, generator=g) * 2 - 1 for _ in range(2))
    y_s, y = (torch.randint(NUM_EXPRESSIONS, (n,), generator=g) for _ in range(2))
    return [t.to(device) for t in (x_s, y_s, x_t, y)]


def test_bf16_channels_last_step_matches_fp32_losses_on_cpu():
    reference = _model().step(*_batch())
    fast_model = _model(precision="bf16", channels_last=True)
    x_s, y_s, x_t, y = _batch()
    fast = fast_model.step(x_s.contiguous(memory_format=torch.channels_last), y_s,
                           x_t.contiguous(memory_format=torch.channels_last), y)
    assert bool(fast["finite"])
    for key in ("G/adv_ts", "G/bi", "G/re", "G/cls_f", "D/adv_s", "D/cls_r"):
        assert float(fast[key]) == pytest.approx(float(reference[key]), rel=0.05), key
    assert fast_model.nets["G_ts"].encoder[0][0].weight.is_contiguous(memory_format=torch.channels_last)


def test_cuda_graph_is_refused_without_a_gpu_or_with_many_processes():
    with pytest.raises(SystemExit, match="one CUDA GPU in a single process"):
        _model(cuda_graph=True)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_graphed_step_trains_like_the_eager_step():
    torch.backends.cudnn.deterministic = True
    eager, graphed = _model("cuda"), _model("cuda", cuda_graph=True)
    batches = [_batch("cuda") for _ in range(3)]
    for batch in batches:
        a = eager.step(*batch)
        b = graphed.step(*batch)
        assert float(a["G/total"]) == pytest.approx(float(b["G/total"]), rel=1e-3)
        eager.advance_schedule()
        graphed.advance_schedule()
    for name in eager.nets:
        for (key, p), q in zip(eager.nets[name].state_dict().items(), graphed.nets[name].state_dict().values()):
            assert torch.allclose(p, q, rtol=1e-3, atol=1e-5), f"{name}.{key}"
    poisoned = [t.clone() for t in batches[0]]
    poisoned[0][0, 0, 0, 0] = float("nan")
    before = graphed.nets["G_ts"].encoder[0][0].weight.clone()
    assert not bool(graphed.step(*poisoned)["finite"])
    assert torch.equal(before, graphed.nets["G_ts"].encoder[0][0].weight)  # skipped on the GPU
