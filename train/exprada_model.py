"""ExprADA's four networks, their optimisers and schedules, and one training step.

Apart from the data and the loop (`train/exprada.py`) so the benchmark and the tests drive the
very step the trainer runs. `step(x_s, y_s, x_t, y_wanted)` updates G^{t→s}, G^{s→t}, D^s, D^t
once (eq. 6) and returns its scalars as device tensors; eager, `torch.compile`d or replayed
from a CUDA graph, it is the same code.
"""
import copy
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from engines.contract import CLASSIFIER
from face.expressions import NUM_EXPRESSIONS

from . import distributed
from .checkpoint import load_state_checked
from .diffaugment import Augmented
from .graphed import GraphedStep, lr_as_device_tensor, lr_as_float
from .losses import (LossWeights, discriminator_objective, generator_objective, stargan_discriminator_objective,
                     stargan_generator_objective)
from .networks import NETWORK_NAMES, build_network


def lr_factor(step: int, constant_steps: int, decay_steps: int) -> float:
    """Constant, then linear decay towards zero (paper: 100 + 100 epochs)."""
    if step < constant_steps:
        return 1.0
    return max(0.0, 1.0 - (step - constant_steps + 1) / (decay_steps + 1))


class GeneratorPair(nn.Module):
    """Both generators in one forward (one DDP call per step, and G^{t→s}'s two inputs batched):
    fake_t = G^{s→t}(x^s); [fake_s, cycled_s] = G^{t→s}([x^t, fake_t], [y, y']); cycled_t = G^{s→t}(fake_s).
    Each output is N×6×H×W: image and side map."""

    def __init__(self, G_ts: nn.Module, G_st: nn.Module):
        super().__init__()
        self.G_ts, self.G_st = G_ts, G_st

    def forward(self, x_s, x_t, onehot_wanted=None, onehot_source=None):
        fake_t = torch.cat(self.G_st(x_s), dim=1)
        both = torch.cat([x_t, fake_t], dim=0)
        onehots = None if onehot_wanted is None else torch.cat([onehot_wanted, onehot_source], dim=0)
        fake_s, cycled_s = torch.cat(self.G_ts(both, onehots), dim=1).split([x_t.shape[0], fake_t.shape[0]])
        cycled_t = torch.cat(self.G_st(fake_s), dim=1)
        return fake_s, fake_t, cycled_s, cycled_t


class DiscriminatorPair(nn.Module):
    """D^s on [real source, fake source] and D^t on [real target, fake target], one call each."""

    def __init__(self, D_s: nn.Module, D_t: nn.Module):
        super().__init__()
        self.D_s, self.D_t = D_s, D_t

    def forward(self, x_s, fake_s, x_t, fake_t):
        scores_s, logits_s = self.D_s(torch.cat([x_s, fake_s]))
        scores_t, _ = self.D_t(torch.cat([x_t, fake_t]))
        n_s, n_t = x_s.shape[0], x_t.shape[0]
        return (scores_s[:n_s], scores_s[n_s:], None if logits_s is None else logits_s[:n_s],
                scores_t[:n_t], scores_t[n_t:])


def _set_requires_grad(modules, flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


def _grad_norm(parameters) -> torch.Tensor:
    grads = [p.grad for p in parameters if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())


class ExprADAModel:
    """config keys used: mode, stargan, diffaugment, width, image_size, num_residual, skips, residual, lr, beta1, beta2,
    lambda_* (lambda_sem, lambda_sem_target with semantic_classifier; lambda_pair), ema, use_bi, use_re, seed,
    constant_steps, total_steps, precision, channels_last, compile, cuda_graph."""

    def __init__(self, config: dict, ctx: distributed.Context, logger=None):
        c = self.config = config
        self.ctx, self.device, self.log = ctx, ctx.device, logger
        self.cgit = c["mode"] == "cgit"
        self.weights = LossWeights(bi=c["lambda_bi"], re=c["lambda_re"], cls=c["lambda_cls"],
                                   use_bi=c["use_bi"], use_re=c["use_re"], use_cls=self.cgit,
                                   sem=float(c.get("lambda_sem") or 0.0),
                                   sem_target=float(c.get("lambda_sem_target") or 0.0),
                                   pair=float(c.get("lambda_pair") or 0.0))
        self.classifier = self._frozen_classifier(c.get("semantic_classifier")) if self.weights.sem > 0 else None
        self.stargan = bool(c.get("stargan"))
        if self.stargan and ctx.distributed:
            raise SystemExit("error: the --stargan baseline runs in one process")
        if c["cuda_graph"] and (self.device.type != "cuda" or ctx.distributed):
            raise SystemExit("error: --cuda-graph needs one CUDA GPU in a single process")
        torch.manual_seed(c["seed"])  # same initial weights on every process and every rerun
        self.nets = {name: build_network(c, name).to(self.device) for name in NETWORK_NAMES}
        if c["channels_last"]:
            for net in self.nets.values():
                net.to(memory_format=torch.channels_last)
        # An exponential moving average of G^{t→s}'s weights (beyond the paper; 0 = off): a GAN's
        # generator wanders from step to step, its average translates more steadily. It is what
        # load_model and export pick when present.
        self.ema_decay = float(c.get("ema") or 0.0)
        self.G_ts_ema = copy.deepcopy(self.nets["G_ts"]).requires_grad_(False) if self.ema_decay > 0 else None
        # Fused Adam: one kernel per step instead of ~15 ms of small ones (measured on an H100), and its
        # found_inf lets a non-finite step be skipped without a host sync.
        adam = dict(lr=c["lr"], betas=(c["beta1"], c["beta2"]), fused=self.device.type in ("cpu", "cuda") or None,
                    capturable=bool(c["cuda_graph"]))
        self.opt_G = torch.optim.Adam([p for n in ("G_ts", "G_st") for p in self.nets[n].parameters()], **adam)
        self.opt_D = torch.optim.Adam([p for n in ("D_s", "D_t") for p in self.nets[n].parameters()], **adam)

        def schedule(step):
            return lr_factor(step, c["constant_steps"], c["total_steps"] - c["constant_steps"])

        self.sched_G = torch.optim.lr_scheduler.LambdaLR(self.opt_G, schedule)
        self.sched_D = torch.optim.lr_scheduler.LambdaLR(self.opt_D, schedule)
        run = {name: torch.compile(net, dynamic=False) if c["compile"] else net for name, net in self.nets.items()}
        if c.get("diffaugment"):   # every D input, real or fake, through the same random augmentations
            run["D_s"], run["D_t"] = Augmented(run["D_s"]), Augmented(run["D_t"])
        self.D_plain = (run["D_s"], run["D_t"])  # frozen use inside the generator step: no DDP hooks
        self.gen_pair = distributed.wrap(GeneratorPair(run["G_ts"], run["G_st"]), ctx)
        self.disc_pair = distributed.wrap(DiscriminatorPair(run["D_s"], run["D_t"]), ctx)
        self._graphed = None

    def _frozen_classifier(self, path):
        """The source classifier C^s for the semantic term: frozen, in eval mode, never saved here."""
        from .checkpoint import exported_classifier, load_model

        if not path:
            raise SystemExit("error: --lambda-sem needs --semantic-classifier (a classifier run, checkpoint or .pt2)")
        if str(path).endswith(".pt2"):
            net = exported_classifier(path)
        else:
            net, _, _ = load_model(path, expect=CLASSIFIER, needed_by="--semantic-classifier")
        for p in net.parameters():
            p.requires_grad_(False)
        return net.to(self.device)   # in eval mode: load_model's; an exported program's graph is the eval one

    def _classify(self, images6):
        size = self.classifier.image_size
        image = images6[:, :3]
        if image.shape[-1] != size:
            image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return self.classifier(image.contiguous())[0]

    # ---- state ---------------------------------------------------------------------------
    def saved_models(self) -> dict:
        """What a checkpoint holds: the four networks, and G_ts_ema when averaging."""
        return {**self.nets, **({"G_ts_ema": self.G_ts_ema} if self.G_ts_ema is not None else {})}

    def load(self, state: dict) -> None:
        for name, net in self.saved_models().items():
            load_state_checked(net, state["models"][name], f"{state['path']} model {name}")
        for opt, sched, key in ((self.opt_G, self.sched_G, "G"), (self.opt_D, self.sched_D, "D")):
            opt.load_state_dict(state["optimizers"][key])
            lr_as_float(opt)
            sched.load_state_dict(state["schedulers"][key])

    def optimizers(self) -> dict:
        return {"G": self.opt_G, "D": self.opt_D}

    def schedulers(self) -> dict:
        return {"G": self.sched_G, "D": self.sched_D}

    def advance_schedule(self) -> None:
        self.sched_G.step()
        self.sched_D.step()

    # ---- one step ------------------------------------------------------------------------
    def _autocast(self):
        if self.config["precision"] == "bf16":
            # autocast's weight-cast cache must be off while a CUDA graph is captured
            return torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=not self.config["cuda_graph"])
        return nullcontext()

    def step_tensors(self, x_s, y_s, x_t, y_wanted, pair=None, has_pair=None) -> dict[str, torch.Tensor]:
        """One ExprADA update of all four networks; no host synchronisation (CUDA-graph safe).
        A step whose losses or gradients are not finite changes nothing (fused Adam's found_inf).
        pair, has_pair: x_t's pairs (N×3×H×W; UIT: frontal, CGIT: in the asked y) and which it has (N),
        for λ_pair."""
        if self.stargan:
            return self._finish_step(*self._stargan_losses(x_s, y_s, y_wanted))
        onehot_wanted = F.one_hot(y_wanted, NUM_EXPRESSIONS).float() if self.cgit else None
        onehot_source = F.one_hot(y_s, NUM_EXPRESSIONS).float() if self.cgit else None
        D_s, D_t = self.D_plain
        # Generators (eq. 6, first line), discriminators frozen.
        _set_requires_grad((D_s, D_t), False)
        with self._autocast():
            fake_s, fake_t, cycled_s, cycled_t = self.gen_pair(x_s, x_t, onehot_wanted, onehot_source)
            fake_s_scores, fake_s_logits = D_s(fake_s)
            fake_t_scores, _ = D_t(fake_t)
            semantic = {}
            if self.classifier is not None:
                semantic = dict(cycled_s_classifier_logits=self._classify(cycled_s), source_labels=y_s)
                if self.weights.sem_target > 0 and self.cgit:   # the translation must read as the asked y
                    semantic.update(fake_s_classifier_logits=self._classify(fake_s))
                elif self.weights.sem_target > 0:
                    with torch.no_grad():
                        target_reading = F.softmax(self._classify(x_t).float(), 1)
                    semantic.update(fake_s_classifier_logits=self._classify(fake_s), target_classifier_probs=target_reading)
        g_loss, scalars = generator_objective(
            fake_s_scores=fake_s_scores, fake_t_scores=fake_t_scores, x_s=x_s, x_t=x_t, fake_s=fake_s,
            fake_t=fake_t, cycled_s=cycled_s, cycled_t=cycled_t, fake_s_logits=fake_s_logits,
            wanted_labels=y_wanted if self.cgit else None, pair=pair, has_pair=has_pair, weights=self.weights,
            **semantic)
        g_loss.backward()
        # Discriminators (eq. 6, second line) on the same, detached, translations.
        _set_requires_grad((D_s, D_t), True)
        with self._autocast():
            real_s, fake_s_d, real_s_logits, real_t, fake_t_d = self.disc_pair(x_s, fake_s.detach(), x_t, fake_t.detach())
        d_loss, d_scalars = discriminator_objective(
            real_s_scores=real_s, fake_s_scores=fake_s_d, real_t_scores=real_t, fake_t_scores=fake_t_d,
            real_s_logits=real_s_logits, real_labels=y_s if self.cgit else None, weights=self.weights)
        d_loss.backward()
        scalars.update(d_scalars)
        return self._finish_step(g_loss, d_loss, scalars)

    def _stargan_losses(self, x_s, y_s, y_wanted):
        """The StarGAN-like baseline's losses (G^{t→s} and D^s only, on the labelled source; the
        target batch is not used), backpropagated; G^{s→t} and D^t stay as initialised."""
        G, D_s = self.nets["G_ts"], self.D_plain[0]
        n = min(x_s.shape[0], y_wanted.shape[0])   # y_wanted is drawn for the target batch
        x_s, y_s, y_wanted = x_s[:n], y_s[:n], y_wanted[:n]
        _set_requires_grad((D_s,), False)
        with self._autocast():
            fake = torch.cat(G(x_s, F.one_hot(y_wanted, NUM_EXPRESSIONS).float()), dim=1)
            cycled = torch.cat(G(fake, F.one_hot(y_s, NUM_EXPRESSIONS).float()), dim=1)
            fake_scores, fake_logits = D_s(fake)
        g_loss, scalars = stargan_generator_objective(fake_scores=fake_scores, fake_logits=fake_logits,
                                                      wanted_labels=y_wanted, x=x_s, cycled=cycled, weights=self.weights)
        g_loss.backward()
        _set_requires_grad((D_s,), True)
        with self._autocast():
            scores, logits = D_s(torch.cat([x_s, fake.detach()]))
        d_loss, d_scalars = stargan_discriminator_objective(real_scores=scores[:n], fake_scores=scores[n:],
                                                            real_logits=logits[:n], real_labels=y_s, weights=self.weights)
        d_loss.backward()
        scalars.update(d_scalars)
        return g_loss, d_loss, scalars

    def _finish_step(self, g_loss, d_loss, scalars):
        """The optimiser steps after both losses were backpropagated: skipped when anything is not finite."""
        g_norm = _grad_norm(self.opt_G.param_groups[0]["params"])
        d_norm = _grad_norm(self.opt_D.param_groups[0]["params"])
        finite = torch.isfinite(g_norm) & torch.isfinite(d_norm) & torch.isfinite(g_loss) & torch.isfinite(d_loss)
        skip = (~finite).float()
        for opt in (self.opt_G, self.opt_D):
            opt.found_inf = skip  # read by fused Adam: a non-finite step updates nothing
            opt.step()
            opt.zero_grad(set_to_none=not self.config["cuda_graph"])
        if self.G_ts_ema is not None:
            self._update_ema(finite)
        scalars.update({"G/grad_norm": g_norm.detach(), "D/grad_norm": d_norm.detach(), "finite": finite})
        return scalars

    @torch.no_grad()
    def _update_ema(self, finite):
        """ema += (1 − decay)·(G − ema), with no host sync; a skipped (non-finite) step moves nothing."""
        ema, live = list(self.G_ts_ema.parameters()), list(self.nets["G_ts"].parameters())
        delta = torch._foreach_sub(live, ema)
        torch._foreach_mul_(delta, (1.0 - self.ema_decay) * finite.float())
        torch._foreach_add_(ema, delta)

    def step(self, x_s, y_s, x_t, y_wanted, pair=None, has_pair=None) -> dict[str, torch.Tensor]:
        """step_tensors, eagerly or (with cuda_graph) replayed from a graph captured on first use."""
        inputs = {"x_s": x_s, "y_s": y_s, "x_t": x_t, "y_wanted": y_wanted,
                  **({"pair": pair, "has_pair": has_pair} if pair is not None else {})}
        if not self.config["cuda_graph"]:
            return self.step_tensors(**inputs)
        if self._graphed is None:
            for opt in (self.opt_G, self.opt_D):
                lr_as_device_tensor(opt, self.device)
            if self.log:
                self.log.info("capturing the training step in a CUDA graph")
            static = {name: value.clone() for name, value in inputs.items()}
            self._graphed = GraphedStep(self.step_tensors, static, self.saved_models().values(), (self.opt_G, self.opt_D))
        return self._graphed(**inputs)
