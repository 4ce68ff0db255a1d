"""Tables 1 and 2 at the paper's size (w=64, 128²), checked on the meta device (no memory, no time)."""
import pytest
import torch

from face.expressions import NUM_EXPRESSIONS
from train.networks import Discriminator, Generator, SubPixelUp, build_network, count_parameters

H = 128


def _shapes(modules, run):
    seen = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[1:]))) for m in modules]
    run()
    for h in hooks:
        h.remove()
    return seen


def _chw(h, c):
    return (c, H // h, H // h)


@pytest.mark.parametrize("classes", [0, NUM_EXPRESSIONS])
def test_generator_stages_match_table_1(classes):
    with torch.device("meta"):
        g = Generator(width=64, num_classes=classes)
        x = torch.zeros(2, 6, H, H)
        y = torch.zeros(2, classes) if classes else None
        stages = list(g.encoder) + list(g.bottleneck) + list(g.decoder) + [g.image_head, g.side_head]
        shapes = _shapes(stages, lambda: g(x, y))
    assert shapes == [
        _chw(1, 64), _chw(2, 128), _chw(4, 256), _chw(8, 512), _chw(16, 1024),  # encoder
        *[_chw(16, 1024)] * 6,  # residual blocks
        _chw(8, 512), _chw(4, 256), _chw(2, 128), _chw(1, 64),  # sub-pixel decoder
        _chw(1, 3), _chw(1, 3)]  # image and side outputs
    assert g.decoder[0].conv.in_channels == 1024 + classes  # the one-hot joins at the bottleneck
    assert [m.kernel_size for m in (g.encoder[0][0], g.encoder[1][0], g.image_head[0], g.side_head[0])] == \
        [(7, 7), (4, 4), (7, 7), (7, 7)]


def test_generator_has_about_150M_parameters():
    with torch.device("meta"):
        uit, cgit = Generator(64), Generator(64, NUM_EXPRESSIONS)
    assert 149.0e6 < count_parameters(uit) < 150.0e6  # table 1 at w=64: 149.5 M
    # the one-hot adds 7 input channels to the first 3×3 sub-pixel conv (4·512 outputs)
    assert count_parameters(cgit) - count_parameters(uit) == NUM_EXPRESSIONS * 4 * 512 * 9


def test_discriminator_stages_match_table_2():
    with torch.device("meta"):
        d = Discriminator(width=64, image_size=H, num_classes=NUM_EXPRESSIONS)
        convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
        shapes = _shapes(convs + [d.adversarial_head, d.class_head], lambda: d(torch.zeros(2, 6, H, H)))
    assert shapes == [_chw(2, 64), _chw(4, 128), _chw(8, 256), _chw(16, 512), _chw(32, 1024), _chw(64, 2048),
                      _chw(64, 1), (NUM_EXPRESSIONS,)]
    assert d.class_head.in_features == 2048 * 2 * 2
    with torch.device("meta"):
        assert build_network({"mode": "uit", "width": 64, "image_size": H}, "D_s").class_head is None
        assert build_network({"mode": "cgit", "width": 64, "image_size": H}, "D_t").class_head is None
        assert build_network({"mode": "cgit", "width": 64, "image_size": H}, "G_st").num_classes == 0


def test_narrow_networks_run_and_stay_in_range():
    torch.manual_seed(0)
    g, d = Generator(4, NUM_EXPRESSIONS), Discriminator(4, 64, NUM_EXPRESSIONS)
    image, side = g(torch.randn(3, 6, 64, 64), torch.eye(NUM_EXPRESSIONS)[:3])
    assert image.shape == side.shape == (3, 3, 64, 64) and image.abs().max() <= 1 and side.abs().max() <= 1
    scores, logits = d(torch.cat([image, side], 1))
    assert scores.shape == (3, 1, 1, 1) and logits.shape == (3, NUM_EXPRESSIONS)
    # the expression changes the output (the condition is used)
    other, _ = g(torch.randn(3, 6, 64, 64).zero_(), torch.eye(NUM_EXPRESSIONS)[3:6])
    same_input, _ = g(torch.zeros(3, 6, 64, 64), torch.eye(NUM_EXPRESSIONS)[:3])
    assert not torch.allclose(other, same_input)


def test_wrong_inputs_are_named():
    g, d = Generator(4, NUM_EXPRESSIONS), Discriminator(4, 64)
    with pytest.raises(ValueError, match="N×6×H×W"):
        g(torch.zeros(1, 3, 64, 64), torch.zeros(1, 7))
    with pytest.raises(ValueError, match="multiples of 16"):
        g(torch.zeros(1, 6, 60, 60), torch.zeros(1, 7))
    with pytest.raises(ValueError, match="needs an N×7 expression"):
        g(torch.zeros(1, 6, 64, 64))
    with pytest.raises(ValueError, match="takes no expression"):
        Generator(4)(torch.zeros(1, 6, 64, 64), torch.zeros(1, 7))
    with pytest.raises(ValueError, match="N×6×64×64"):
        d(torch.zeros(1, 6, 128, 128))
    with pytest.raises(ValueError, match="multiple of 64"):
        Discriminator(4, 96)


def test_sub_pixel_stages_start_without_a_checkerboard():
    """ICNR: at initialisation every 2×2 block a sub-pixel stage writes holds one value per channel."""
    torch.manual_seed(0)
    stage = SubPixelUp(8, 4)
    up = stage.shuffle(stage.conv(torch.randn(2, 8, 5, 5)))
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        assert torch.equal(up[..., dy::2, dx::2], up[..., 0::2, 0::2])
    assert up[..., 0::2, 0::2].std() > 0.1  # and it is not a trivially constant map


# ---- the two deviations from table 1 (flags, off in the paper's configuration) ---------------

def test_a_residual_generator_starts_as_the_identity_and_learns_away_from_it():
    torch.manual_seed(0)
    g = Generator(width=4, skips=True, residual=True, num_residual=1)
    x = torch.rand(2, 6, 64, 64) * 2 - 1
    image, side = g(x)
    assert torch.equal(image, x[:, :3]) and torch.equal(side, x[:, 3:])
    loss = (g(x)[0] - 0.5).abs().mean()
    loss.backward()
    assert g.image_head[0].weight.grad.abs().sum() > 0  # the zero-initialised head does learn
    torch.optim.SGD(g.parameters(), lr=0.1).step()
    assert not torch.equal(g(x)[0], x[:, :3])


def test_skips_keep_table_1_shapes_and_carry_full_resolution_detail():
    torch.manual_seed(0)
    plain, skipped = Generator(width=4, num_residual=1), Generator(width=4, num_residual=1, skips=True)
    skipped.load_state_dict(plain.state_dict())  # the same weights: skips add no parameters
    x = (torch.rand(1, 6, 64, 64) * 2 - 1).requires_grad_(True)
    for g in (plain, skipped):
        assert tuple(g(x)[0].shape) == (1, 3, 64, 64)
    # An output pixel depends on its own neighbourhood far more with the full-resolution skip
    # (without it, everything passes the 1/16 bottleneck and spreads over the face).
    def local_share(g):
        x.grad = None
        g(x)[0][0, :, 32, 32].sum().backward()
        influence = x.grad[0].abs().sum(0)
        return float(influence[29:36, 29:36].sum() / influence.sum())
    assert local_share(skipped) > 2 * local_share(plain)


def test_build_network_reads_the_flags_and_old_configs_build_the_paper_generator():
    old = build_network({"mode": "uit", "width": 4, "image_size": 64, "num_residual": 1}, "G_ts")
    assert not old.skips and not old.residual
    new = build_network({"mode": "cgit", "width": 4, "image_size": 64, "num_residual": 1, "skips": True,
                         "residual": True}, "G_st")
    assert new.skips and new.residual and new.num_classes == 0
    assert set(old.state_dict()) == set(new.state_dict())  # same tensors: old checkpoints load either way


# ---- CGIT's options: where the condition enters, grey output, a Lipschitz discriminator ------

def test_the_condition_at_the_input_reaches_every_pixel_and_keeps_the_signature():
    torch.manual_seed(0)
    g = Generator(width=4, num_classes=NUM_EXPRESSIONS, num_residual=1, skips=True, condition="input")
    assert g.encoder[0][0].in_channels == 6 + NUM_EXPRESSIONS and g.decoder[0].conv.in_channels == 16 * 4
    x = torch.rand(1, 6, 64, 64) * 2 - 1
    y = torch.eye(NUM_EXPRESSIONS)
    a, b = g(x, y[:1])[0], g(x, y[3:4])[0]
    assert (a - b).abs().mean() > 0    # the asked expression changes the output...
    corner = (a - b)[0, :, :8, :8].abs().mean()
    assert corner > 0                  # ...even far from the centre, through the full-resolution path
    with pytest.raises(ValueError, match="condition"):
        Generator(width=4, num_classes=NUM_EXPRESSIONS, condition="everywhere")


def test_a_grey_generator_draws_equal_channels_whatever_it_learned():
    torch.manual_seed(0)
    for residual in (False, True):
        g = Generator(width=4, num_residual=1, residual=residual, grey=True)
        torch.nn.init.normal_(g.image_head[0].weight, std=0.1)   # as if trained: not the identity
        x = torch.rand(2, 6, 64, 64) * 2 - 1
        x[:, 1:3] = x[:, :1]                                     # a grey input
        image, _ = g(x)
        assert tuple(image.shape) == (2, 3, 64, 64)
        assert torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 1], image[:, 2])
        assert not torch.equal(image, x[:, :3])


def test_spectral_norm_bounds_how_far_a_small_change_moves_the_discriminator():
    torch.manual_seed(0)
    plain, bounded = Discriminator(4, 64, NUM_EXPRESSIONS), Discriminator(4, 64, NUM_EXPRESSIONS, spectral_norm=True)
    for _ in range(3):   # power iteration settles on each layer's top singular value
        bounded(torch.rand(2, 6, 64, 64))
    bounded.eval()
    x = torch.rand(4, 6, 64, 64) * 2 - 1
    delta = torch.randn_like(x)
    delta = 0.01 * delta / delta.flatten(1).norm(dim=1)[:, None, None, None]
    for net in (plain, bounded):
        assert net(x)[1].shape == (4, NUM_EXPRESSIONS)
    moved = (bounded(x + delta)[1] - bounded(x)[1]).norm(dim=1)
    # every layer 1-Lipschitz (leaky ReLU too): the logits move at most as far as the input did
    assert (moved <= 0.01 * 1.05).all()


def test_build_network_reads_the_cgit_options():
    config = {"mode": "cgit", "width": 4, "image_size": 64, "num_residual": 1, "condition": "input",
              "grey": True, "spectral_norm": True}
    g = build_network(config, "G_ts")
    assert g.condition == "input" and g.grey and g.num_classes == NUM_EXPRESSIONS
    g_st = build_network(config, "G_st")
    assert g_st.num_classes == 0 and g_st.grey   # G^{s→t} takes no expression, draws grey too
    assert build_network(config, "D_s").spectral_norm and build_network(config, "D_t").spectral_norm
    old = build_network({"mode": "cgit", "width": 4, "image_size": 64, "num_residual": 1}, "G_ts")
    assert old.condition == "bottleneck" and not old.grey


def test_an_expression_head_that_reads_the_image_alone_ignores_the_side_map():
    torch.manual_seed(0)
    d = Discriminator(4, 64, NUM_EXPRESSIONS, class_from_image=True)
    x = torch.rand(2, 6, 64, 64) * 2 - 1
    redrawn = x.clone()
    redrawn[:, 3:] = torch.rand(2, 3, 64, 64)          # another side map, the same face
    scores, logits = d(x)
    scores_redrawn, logits_redrawn = d(redrawn)
    assert torch.equal(logits, logits_redrawn)         # the expression is read from the face
    assert not torch.equal(scores, scores_redrawn)     # real/fake still sees the side map
    other = x.clone()
    other[:, :3] = -x[:, :3]
    assert not torch.equal(d(other)[1], logits)
    assert Discriminator(4, 64, 0, class_from_image=True).class_from_image is False   # D^t has no head
