import pytest
import torch

from train.losses import (LossWeights, adversarial_d, adversarial_g, bidirectional, classification,
                          discriminator_objective, generator_objective, paired_l1, reconstruction)


def test_least_squares_adversarial_terms():
    ones, zeros = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    assert adversarial_d(ones, zeros)[0].item() == 0.0  # perfect discriminator
    assert adversarial_d(zeros, ones)[0].item() == 1.0  # 0.5·(1 + 1)
    assert adversarial_g(ones)[0].item() == 0.0 and adversarial_g(zeros)[0].item() == 1.0
    assert adversarial_g(torch.full((1, 1, 1, 1), 0.5))[0].item() == pytest.approx(0.25)


def test_classification_is_cross_entropy_with_accuracy():
    logits = torch.tensor([[10.0, 0.0], [0.0, 10.0]])
    loss, scalars = classification(logits, torch.tensor([0, 0]))
    assert loss.item() == pytest.approx(5.0, abs=1e-3) and scalars["acc"].item() == 0.5


def test_l1_terms_are_mean_absolute_differences():
    a, b = torch.zeros(1, 6, 4, 4), torch.full((1, 6, 4, 4), 0.5)
    loss, parts = bidirectional(a, b, a, a)
    assert loss.item() == 0.5 and parts["bi_s"].item() == 0.5 and parts["bi_t"].item() == 0.0
    loss, parts = reconstruction(a, a, a, -b)
    assert loss.item() == 0.5 and parts["re_s"].item() == 0.5


def _g_inputs(x):
    return dict(fake_s_scores=torch.ones(2, 1, 1, 1), fake_t_scores=torch.zeros(2, 1, 1, 1), x_s=x, x_t=x,
                fake_s=x + 0.1, fake_t=x, cycled_s=x + 0.2, cycled_t=x)


def test_generator_objective_weights_and_ablations():
    x = torch.zeros(2, 6, 4, 4)
    uit = LossWeights(use_cls=False)
    total, s = generator_objective(**_g_inputs(x), weights=uit)
    # adv: 0 (t→s fooled D^s) + 1 (s→t did not); λ_bi·0.2 + λ_re·0.1
    assert total.item() == pytest.approx(1 + 10 * 0.2 + 10 * 0.1)
    assert "G/cls_f" not in s and s["G/bi"].item() == pytest.approx(0.2)
    no_bi = generator_objective(**_g_inputs(x), weights=LossWeights(use_cls=False, use_bi=False))
    no_re = generator_objective(**_g_inputs(x), weights=LossWeights(use_cls=False, use_re=False))
    assert no_bi[0].item() == pytest.approx(2.0) and "G/bi" not in no_bi[1]
    assert no_re[0].item() == pytest.approx(3.0) and "G/re" not in no_re[1]
    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    cgit, s = generator_objective(**_g_inputs(x), fake_s_logits=logits, wanted_labels=torch.tensor([0, 1]),
                                  weights=LossWeights(cls=2.0))
    assert cgit.item() == pytest.approx(4.0 + 2.0 * torch.log(torch.tensor(2.0)).item())
    with pytest.raises(ValueError, match="wanted labels"):
        generator_objective(**_g_inputs(x))


def test_discriminator_objective():
    ones, zeros = torch.ones(2, 1, 1, 1), torch.zeros(2, 1, 1, 1)
    total, s = discriminator_objective(real_s_scores=ones, fake_s_scores=zeros, real_t_scores=zeros,
                                       fake_t_scores=ones, weights=LossWeights(use_cls=False))
    assert total.item() == 1.0 and s["D/adv_s"].item() == 0.0 and s["D/adv_t"].item() == 1.0
    with pytest.raises(ValueError, match="real source images"):
        discriminator_objective(real_s_scores=ones, fake_s_scores=zeros, real_t_scores=zeros, fake_t_scores=ones)


def test_the_semantic_term_is_the_classifiers_cross_entropy_on_cycled_sources_and_is_off_by_default():
    import torch.nn.functional as F
    from train.losses import LossWeights, generator_objective

    torch.manual_seed(0)
    x = torch.rand(2, 6, 8, 8)
    common = dict(fake_s_scores=torch.ones(2, 1, 1, 1), fake_t_scores=torch.ones(2, 1, 1, 1), x_s=x, x_t=x,
                  fake_s=x, fake_t=x, cycled_s=x, cycled_t=x)
    plain = LossWeights(use_cls=False)
    total, scalars = generator_objective(**common, weights=plain)
    assert "G/sem" not in scalars and float(total) == 0.0
    logits, labels = torch.randn(2, 7), torch.tensor([1, 4])
    weights = LossWeights(use_cls=False, sem=2.0)
    total, scalars = generator_objective(**common, cycled_s_classifier_logits=logits, source_labels=labels,
                                         weights=weights)
    assert torch.isclose(total, 2.0 * F.cross_entropy(logits, labels))
    assert "G/sem_acc" in scalars
    with pytest.raises(ValueError, match="semantic term needs"):
        generator_objective(**common, weights=weights)


def test_the_semantic_target_part_is_a_kl_to_the_untranslated_reading_weighted_apart():
    import torch.nn.functional as F
    from train.losses import semantic_consistency

    torch.manual_seed(0)
    cycled, labels = torch.randn(3, 7), torch.tensor([0, 2, 6])
    translated, reading = torch.randn(3, 7), F.softmax(torch.randn(3, 7), 1)
    source_only, scalars = semantic_consistency(cycled, labels)
    assert torch.isclose(source_only, F.cross_entropy(cycled, labels)) and "sem_t" not in scalars
    both, scalars = semantic_consistency(cycled, labels, translated, reading, target_weight=0.5)
    kl = F.kl_div(F.log_softmax(translated, 1), reading, reduction="batchmean")
    assert torch.isclose(both, source_only + 0.5 * kl) and float(scalars["sem_t"]) >= 0
    same, _ = semantic_consistency(cycled, labels, translated, F.softmax(translated, 1), target_weight=1.0)
    assert torch.isclose(same, source_only, atol=1e-6)  # reading kept: no target cost


def test_the_paired_l1_term_is_l1_over_the_images_of_renders_with_a_pair_only():
    translated = torch.zeros(3, 6, 4, 4)
    translated[:, 3:] = 5.0                        # the side map is not compared
    pair = torch.full((3, 3, 4, 4), 0.5)
    pair[2] = 9.0                                  # the third render has no pair: its (zero) slot is ignored
    loss, parts = paired_l1(translated, pair, torch.tensor([1.0, 1.0, 0.0]))
    assert loss.item() == pytest.approx(0.5) and parts["pairs"].item() == 2
    translated[0, :3] = 0.5                        # one of the two paired translations now matches its crop
    assert paired_l1(translated, pair, torch.tensor([1.0, 1.0, 0.0]))[0].item() == pytest.approx(0.25)
    assert paired_l1(translated, pair, torch.zeros(3))[0].item() == 0.0   # no pair in the batch: no term
    x = torch.zeros(3, 6, 4, 4)
    inputs = dict(fake_s_scores=torch.ones(3, 1, 1, 1), fake_t_scores=torch.ones(3, 1, 1, 1), x_s=x, x_t=x,
                  fake_s=x, fake_t=x, cycled_s=x, cycled_t=x)
    off, s_off = generator_objective(**inputs, weights=LossWeights(use_cls=False))
    on, s_on = generator_objective(**inputs, pair=torch.full((3, 3, 4, 4), 0.5), has_pair=torch.ones(3),
                                   weights=LossWeights(use_cls=False, pair=4.0))
    assert off.item() == 0.0 and "G/pair" not in s_off
    assert on.item() == pytest.approx(4 * 0.5) and s_on["G/pair"].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="pair term needs"):
        generator_objective(**inputs, weights=LossWeights(use_cls=False, pair=1.0))
