"""ExprADA's objective (eq. 1–6) as pure functions: tensors in, (loss, scalars) out.

Section 4 replaces eq. 1's log-likelihood with a least-squares (LSGAN) loss: the discriminator
pushes real scores to 1 and fake ones to 0, the generator pushes fake scores to 1. The L1 terms
(eq. 4, 5) compare the generators' full 6-channel outputs — image and side map — with their
counterparts, so translation keeps both the face and its landmark geometry.

Scalars are detached floats-as-tensors (no host sync inside a step); the trainer turns them into
numbers when it logs.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """λ of eq. 6 (paper: 10, 10, 1) and the ablation switches of tables 5–6. UIT sets cls=False."""

    bi: float = 10.0
    re: float = 10.0
    cls: float = 1.0
    use_bi: bool = True
    use_re: bool = True
    use_cls: bool = True
    sem: float = 0.0      # semantic consistency (CyCADA; beyond the paper), cycled sources: 0 = off, as in the paper
    sem_target: float = 0.0  # ... and translated targets keep the classifier's reading: 0 = off
    pair: float = 0.0     # frontal or expression pairs (beyond the paper): 0 = off


def paired_l1(translated_t, pair, has_pair):
    """Beyond the paper: where the real image a translation G^{t→s}(x^t) should be is known, the L1
    to it. ‖G^{t→s}(x^t) − pair‖₁ over the image channels of the translations that have one
    (has_pair 1, others 0), mean per pixel; 0 when none has. Two such pairs:
    - UIT: for the target renders of near-frontal frames, the camera's own aligned crop of that
      frame is what the render simulates, pixel for pixel up to the fit — a free pair (no label) of
      the simulated domain and the real one. It teaches the correction a render needs (the outline,
      the fine detail) where it is known, and the generator carries it to the turned faces.
    - CGIT: the same head, pose and camera photographed (or drawn) in the asked expression, as
      KDEF and BU-3DFE hold for every person: the translation to y should be that photograph."""
    weight = has_pair.float().reshape(-1, 1, 1, 1)
    error = (translated_t[:, :3].float() - pair.float()).abs() * weight
    count = weight.sum() * error[0].numel()
    loss = error.sum() / count.clamp(min=1.0)
    return loss, {"pair": loss.detach(), "pairs": weight.sum().detach()}


def semantic_consistency(cycled_s_logits, source_labels, translated_t_logits=None, target_probs=None,
                         target_weight: float = 0.0, wanted_labels=None):
    """Beyond the paper (CyCADA, Hoffman et al. 2018), with the frozen source classifier f:
    - the round trip G^{t→s}(G^{s→t}(x^s)) must still read as x^s's true label: G^{s→t}(x^s) looks like
      the target, so this teaches G^{t→s} to carry target-looking faces into images f reads right,
      from the source labels the method already has;
    - with target_weight > 0, a translated target G^{t→s}(x^t) must read as f reads x^t itself (KL to
      f's soft reading, no target label used): translation may change the look, not the expression.
      Only sound where f already reads untranslated targets fairly (the same camera, another pose);
      across cameras f's reading of x^t is noise, and this term would hold translations to it.
      CGIT (wanted_labels given): instead, a translation G^{t→s}(x^t, y) must read as the asked y."""
    loss = F.cross_entropy(cycled_s_logits.float(), source_labels)
    accuracy = (cycled_s_logits.detach().argmax(1) == source_labels).float().mean()
    scalars = {"sem_s": loss.detach(), "sem_acc": accuracy}
    if target_weight > 0 and wanted_labels is not None:
        asked = F.cross_entropy(translated_t_logits.float(), wanted_labels)
        loss = loss + target_weight * asked
        agree = (translated_t_logits.detach().argmax(1) == wanted_labels).float().mean()
        scalars.update({"sem_t": asked.detach(), "sem_t_agree": agree})
    elif target_weight > 0:
        kl = F.kl_div(F.log_softmax(translated_t_logits.float(), 1), target_probs.float(), reduction="batchmean")
        loss = loss + target_weight * kl
        agree = (translated_t_logits.detach().argmax(1) == target_probs.argmax(1)).float().mean()
        scalars.update({"sem_t": kl.detach(), "sem_t_agree": agree})
    scalars["sem"] = loss.detach()
    return loss, scalars


def lsgan_real(scores: torch.Tensor) -> torch.Tensor:
    return torch.mean((scores.float() - 1.0) ** 2)


def lsgan_fake(scores: torch.Tensor) -> torch.Tensor:
    return torch.mean(scores.float() ** 2)


def adversarial_d(real_scores, fake_scores):
    """Eq. 1, discriminator side (least squares): real → 1, fake → 0."""
    real, fake = lsgan_real(real_scores), lsgan_fake(fake_scores)
    loss = 0.5 * (real + fake)
    return loss, {"real": real.detach(), "fake": fake.detach()}


def adversarial_g(fake_scores):
    """Eq. 1, generator side (least squares): make the discriminator score fakes as real."""
    loss = lsgan_real(fake_scores)
    return loss, {"adv": loss.detach()}


def classification(logits, labels):
    """Eq. 2 (D^s on real source images, true labels y') and eq. 3 (G^{t→s}'s translations, wanted
    labels y): cross-entropy of D^s's expression head."""
    loss = F.cross_entropy(logits.float(), labels)
    accuracy = (logits.detach().argmax(1) == labels).float().mean()
    return loss, {"cls": loss.detach(), "acc": accuracy}


def bidirectional(x_s, x_s_cycled, x_t, x_t_cycled):
    """Eq. 4: ‖G^{t→s}(G^{s→t}(x^s)) − x^s‖₁ + ‖G^{s→t}(G^{t→s}(x^t)) − x^t‖₁ (means over pixels)."""
    source = F.l1_loss(x_s_cycled.float(), x_s.float())
    target = F.l1_loss(x_t_cycled.float(), x_t.float())
    return source + target, {"bi_s": source.detach(), "bi_t": target.detach()}


def reconstruction(x_t, x_t_translated, x_s, x_s_translated):
    """Eq. 5: ‖x^t − G^{t→s}(x^t, y)‖₁ + ‖x^s − G^{s→t}(x^s)‖₁: a translation keeps the face's details."""
    target = F.l1_loss(x_t_translated.float(), x_t.float())
    source = F.l1_loss(x_s_translated.float(), x_s.float())
    return target + source, {"re_t": target.detach(), "re_s": source.detach()}


def generator_objective(*, fake_s_scores, fake_t_scores, x_s, x_t, fake_s, fake_t, cycled_s, cycled_t,
                        fake_s_logits=None, wanted_labels=None, cycled_s_classifier_logits=None, source_labels=None,
                        fake_s_classifier_logits=None, target_classifier_probs=None, pair=None, has_pair=None,
                        weights: LossWeights = LossWeights()):
    """Eq. 6, first line: L_adv^{t→s} + L_adv^{s→t} + λ_bi L_bi + λ_cls L_cls_f + λ_re L_re
    (+ λ_sem L_sem when weights.sem > 0: the frozen classifier's logits on cycled_s with y', and,
    weighted by sem_target / sem, on fake_s with its probabilities on x^t; + λ_pair L_pair when
    weights.pair > 0: fake_s against x^t's pairs (UIT: frontal; CGIT: in the asked expression),
    `pair` N×3×H×W and `has_pair` N).

    fake_s = G^{t→s}(x^t, y), fake_t = G^{s→t}(x^s), cycled_s = G^{t→s}(fake_t, y'),
    cycled_t = G^{s→t}(fake_s); all N×6×H×W (image + side map)."""
    adv_ts, _ = adversarial_g(fake_s_scores)
    adv_st, _ = adversarial_g(fake_t_scores)
    total = adv_ts + adv_st
    scalars = {"G/adv_ts": adv_ts.detach(), "G/adv_st": adv_st.detach()}
    if weights.use_bi:
        bi, parts = bidirectional(x_s, cycled_s, x_t, cycled_t)
        total = total + weights.bi * bi
        scalars.update({"G/bi": bi.detach(), **{f"G/{k}": v for k, v in parts.items()}})
    if weights.use_re:
        re, parts = reconstruction(x_t, fake_s, x_s, fake_t)
        total = total + weights.re * re
        scalars.update({"G/re": re.detach(), **{f"G/{k}": v for k, v in parts.items()}})
    if weights.use_cls:
        if fake_s_logits is None or wanted_labels is None:
            raise ValueError("the classification term needs D^s's logits on translations and the wanted labels")
        cls, parts = classification(fake_s_logits, wanted_labels)
        total = total + weights.cls * cls
        scalars.update({"G/cls_f": cls.detach(), "G/cls_f_acc": parts["acc"]})
    if weights.sem > 0:
        if cycled_s_classifier_logits is None or source_labels is None:
            raise ValueError("the semantic term needs the classifier's logits on cycled source images and their labels")
        sem, parts = semantic_consistency(cycled_s_classifier_logits, source_labels, fake_s_classifier_logits,
                                          target_classifier_probs, weights.sem_target / weights.sem,
                                          wanted_labels if weights.use_cls else None)
        total = total + weights.sem * sem
        scalars.update({f"G/{k}": v for k, v in parts.items()})
    if weights.pair > 0:
        if pair is None or has_pair is None:
            raise ValueError("the pair term needs the target's pairs and which of them it has")
        pair_loss, parts = paired_l1(fake_s, pair, has_pair)
        total = total + weights.pair * pair_loss
        scalars.update({f"G/{k}": v for k, v in parts.items()})
    scalars["G/total"] = total.detach()
    return total, scalars


def discriminator_objective(*, real_s_scores, fake_s_scores, real_t_scores, fake_t_scores,
                            real_s_logits=None, real_labels=None, weights: LossWeights = LossWeights()):
    """Eq. 6, second line: the discriminators' side of both adversarial terms + λ_cls L_cls_r."""
    adv_s, parts_s = adversarial_d(real_s_scores, fake_s_scores)
    adv_t, parts_t = adversarial_d(real_t_scores, fake_t_scores)
    total = adv_s + adv_t
    scalars = {"D/adv_s": adv_s.detach(), "D/adv_t": adv_t.detach(),
               "D/s_real": parts_s["real"], "D/s_fake": parts_s["fake"],
               "D/t_real": parts_t["real"], "D/t_fake": parts_t["fake"]}
    if weights.use_cls:
        if real_s_logits is None or real_labels is None:
            raise ValueError("the classification term needs D^s's logits on real source images and their labels")
        cls, parts = classification(real_s_logits, real_labels)
        total = total + weights.cls * cls
        scalars.update({"D/cls_r": cls.detach(), "D/cls_r_acc": parts["acc"]})
    scalars["D/total"] = total.detach()
    return total, scalars


def stargan_generator_objective(*, fake_scores, fake_logits, wanted_labels, x, cycled, weights: LossWeights):
    """The StarGAN-like baseline (Choi et al. 2018; not ExprADA, table 5's comparison): one conditioned
    generator G, fake = G(x^s, y), cycled = G(fake, y'): L_adv + λ_cls L_cls_f + λ_bi ‖cycled − x^s‖₁ —
    its own cycle, told the source label y'; no second generator and no L_re."""
    adv, _ = adversarial_g(fake_scores)
    cls, parts = classification(fake_logits, wanted_labels)
    cycle = F.l1_loss(cycled.float(), x.float())
    total = adv + weights.cls * cls + weights.bi * cycle
    return total, {"G/adv_ts": adv.detach(), "G/cls_f": cls.detach(), "G/cls_f_acc": parts["acc"],
                   "G/cycle": cycle.detach(), "G/total": total.detach()}


def stargan_discriminator_objective(*, real_scores, fake_scores, real_logits, real_labels, weights: LossWeights):
    """The StarGAN-like baseline's D^s: the adversarial term and λ_cls L_cls_r on real source images."""
    adv, parts = adversarial_d(real_scores, fake_scores)
    cls, cls_parts = classification(real_logits, real_labels)
    total = adv + weights.cls * cls
    return total, {"D/adv_s": adv.detach(), "D/s_real": parts["real"], "D/s_fake": parts["fake"],
                   "D/cls_r": cls.detach(), "D/cls_r_acc": cls_parts["acc"], "D/total": total.detach()}
