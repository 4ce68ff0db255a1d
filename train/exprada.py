"""`python -m train exprada`: train ExprADA (UIT or CGIT) — G^{t→s}, G^{s→t}, D^s, D^t — as in
the paper's sections 3–4, on one CPU, one GPU, or many processes under torchrun.

    python -m train exprada --mode uit --source SRC_DIR --target TGT_DIR --out runs/uit
    python -m train exprada --resume runs/uit                      # continues exactly
    torchrun --nproc_per_node 4 -m train exprada --mode cgit ...   # DDP, one GPU (or CPU) each

CGIT needs a labelled source (one folder per expression, or a dataset layout such as KDEF's: --format);
UIT takes any folders of images.
A run folder holds checkpoints/last.pt, train.log, metrics.csv/.jsonl, tensorboard/, samples/
(PNG grids), bad_files.txt, summary.json and cache/ (side maps computed for images without one).
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F

from engines.contract import CGIT_GENERATOR, UIT_GENERATOR
from face.expressions import EXPRESSIONS, NUM_EXPRESSIONS

from . import distributed
from .data import ImageDataset, SideMaps, StepBatchSampler, generator_input, pairs_of
from .datasets import PAIR_SUFFIX, Sample
from .datasets.face_crops import crop_faces
from .datasets.pairs import has_structural_pairs, with_expression_pairs
from .datasets.sources import add_data_arguments, load_images, load_samples, wants_face_crop
from .exprada_model import ExprADAModel
from .run_setup import add_run_control_arguments
from .trainer import Trainer

# Settings that define what is trained: a resumed run must keep them (else it is not the same run).
LOCKED = ("mode", "stargan", "diffaugment", "condition", "spectral_norm", "class_from_image", "grey", "width", "d_width", "image_size", "num_residual", "skips", "residual", "lambda_sem", "lambda_sem_target",
          "semantic_classifier", "ema", "lambda_pair", "turned_pair_weight",
          "batch_size", "lr", "beta1", "beta2", "lambda_bi",
          "lambda_re", "lambda_cls", "use_bi", "use_re", "flip", "seed", "epochs_constant", "epochs_decay",
          "steps", "source", "target", "data_options")
# Settings of how it runs: free to change on resume.
RUNTIME = ("device", "precision", "channels_last", "compile", "cuda_graph", "workers", "log_every",
           "sample_every", "checkpoint_every", "keep_every", "max_nonfinite", "stop_after", "progress")
DEFAULTS = dict(mode=None, stargan=False, diffaugment=False, condition="bottleneck", spectral_norm=False, class_from_image=False, grey=False, source=None, target=None, data_options={}, width=64, d_width=None, image_size=128, num_residual=6, skips=False,
                residual=False, lambda_sem=0.0, lambda_sem_target=0.0,
                semantic_classifier=None, ema=0.0, lambda_pair=0.0, turned_pair_weight=1.0, batch_size=8,
                lr=1e-4, beta1=0.5, beta2=0.999, lambda_bi=10.0, lambda_re=10.0, lambda_cls=1.0, use_bi=True,
                use_re=True, flip=True, seed=0, epochs_constant=100, epochs_decay=100, steps=None,
                device="auto", precision="fp32", channels_last=False, compile=False, cuda_graph=False, workers=2,
                log_every=50, sample_every=500, checkpoint_every=1000, keep_every=0, max_nonfinite=20,
                stop_after=None, progress=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train exprada", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=None)
    p.add_argument("--mode", choices=("uit", "cgit"), help="uit: unsupervised (the car's); cgit: category-guided")
    p.add_argument("--source", help="source-domain folder (CGIT: one sub-folder per expression, or a dataset "
                   "layout such as KDEF's)")
    p.add_argument("--target", help="target-domain folder (e.g. frontal renders): any folder of images, or a "
                   "dataset layout")
    p.add_argument("--out", help="run folder (new run)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where it stopped")
    g = p.add_argument_group("model and data (paper defaults)")
    g.add_argument("--width", type=int, help="base channels w (paper 64; CPU: 8-16)")
    g.add_argument("--d-width", type=int, help="the discriminators' base width, when not --width (a discriminator "
                   "costs little beside a generator: a wider one is a stronger class head for CGIT)")
    g.add_argument("--image-size", type=int, help="square input size, multiple of 64 (128)")
    g.add_argument("--batch-size", type=int, help="per process (8)")
    g.add_argument("--no-flip", dest="flip", action="store_false", default=None, help="no horizontal-flip augmentation")
    g.add_argument("--seed", type=int)
    g = p.add_argument_group("beyond the paper (off in its configuration; README: what each measured)")
    g.add_argument("--skips", action="store_true", default=None,
                   help="additive encoder→decoder skips in both generators (a deviation from table 1)")
    g.add_argument("--residual", action="store_true", default=None,
                   help="generators predict a correction added to their input, starting as the identity")
    g.add_argument("--lambda-sem", type=float, help="weight of the semantic-consistency term (CyCADA): the frozen "
                   "--semantic-classifier must read a cycled source face's true label (0: off)")
    g.add_argument("--lambda-sem-target", type=float, help="with --lambda-sem: weight of its second part, a translated "
                   "target must keep the classifier's reading of the untranslated one (0: off; only where the "
                   "classifier reads untranslated targets fairly, e.g. the same camera); CGIT: a translation must "
                   "read as the expression asked for")
    g.add_argument("--semantic-classifier", help="classifier run folder or checkpoint for --lambda-sem, or its "
                   "exported program (.pt2, e.g. models/classifier.pt2) where only the exports are kept")
    g.add_argument("--ema", type=float, help="keep an exponential moving average of G^{t→s} with this decay, "
                   "e.g. 0.999 (0: off); exported instead of the live weights")
    g.add_argument("--lambda-pair", type=float, help="weight of the pair term, L1 (0: off). UIT: a target render "
                   "that has the camera's own crop of its frame beside it (NAME.pair.png; train synth and train "
                   "renders write them for near-frontal frames) must translate into that crop (only where the source "
                   "is that camera's faces). CGIT: a target face that has the same head, pose and camera in the asked "
                   "expression (in a KDEF or BU-3DFE target, its own files; in a plain folder, "
                   "NAME.as-<expression>.png beside it, as train synth --expression-pairs writes them) must "
                   "translate into that image")
    g.add_argument("--turned-pair-weight", type=float, help="UIT: a rotate-and-render pair's weight in the pair "
                   "term (NAME_turn±D.png, train synth / train renders --turn-pairs) against a frontal pair's 1 "
                   "(default 1)")
    g.add_argument("--diffaugment", action="store_true", default=None,
                   help="the discriminators see every image, real or fake, through the same random colour change, "
                        "shift and cutout (DiffAugment), so the generator cannot pass codes for real content")
    g.add_argument("--condition", choices=("bottleneck", "input"),
                   help="CGIT: where the expression one-hot enters G^{t→s}: tiled at the bottleneck (table 1, the "
                        "default) or as planes beside the image at full resolution (StarGAN's way)")
    g.add_argument("--spectral-norm", action="store_true", default=None,
                   help="spectral normalisation in both discriminators (SN-GAN): their readings cannot change much "
                        "for a small change of the image, so a faint pattern does not pass D^s's class head")
    g.add_argument("--class-from-image", action="store_true", default=None,
                   help="CGIT: D^s's expression head reads the image alone, its side map blanked (a generator can "
                        "redraw a side map in the asked expression and leave the face as it was)")
    g.add_argument("--grey", action="store_true", default=None,
                   help="both generators draw a grey image (one channel, repeated into three): for runs whose two "
                        "domains are grey (NIR to NIR), where a colour is a code only a discriminator reads")
    g.add_argument("--stargan", action="store_true", default=None,
                   help="CGIT baseline, not ExprADA: StarGAN-like, one conditioned generator trained on the labelled "
                        "source alone with adversarial + classification + its own cycle G(G(x, y), y') (λ_bi); "
                        "no G^{s→t}, no L_re; the target folder is not used")
    g = p.add_argument_group("optimisation (paper defaults)")
    g.add_argument("--lr", type=float, help="Adam learning rate (1e-4)")
    g.add_argument("--beta1", type=float, help="(0.5)")
    g.add_argument("--beta2", type=float, help="(0.999)")
    g.add_argument("--epochs-constant", type=int, help="epochs at the full learning rate (100)")
    g.add_argument("--epochs-decay", type=int, help="epochs of linear decay to zero (100)")
    g.add_argument("--steps", type=int, help="total steps instead of epochs (split constant/decay as the epochs are)")
    g.add_argument("--lambda-bi", type=float, help="(10)")
    g.add_argument("--lambda-re", type=float, help="(10)")
    g.add_argument("--lambda-cls", type=float, help="(1; CGIT only)")
    g.add_argument("--no-bi", dest="use_bi", action="store_false", default=None, help="ablation: drop the bidirectional loss")
    g.add_argument("--no-re", dest="use_re", action="store_false", default=None, help="ablation: drop the reconstruction loss")
    g = p.add_argument_group("how it runs (may change on --resume)")
    add_run_control_arguments(g, DEFAULTS)
    g.add_argument("--precision", choices=("fp32", "bf16"), help="bf16 autocast (GPU fast path)")
    g.add_argument("--channels-last", action="store_true", default=None)
    g.add_argument("--compile", action="store_true", default=None, help="torch.compile the four networks")
    g.add_argument("--cuda-graph", action="store_true", default=None,
                   help="capture the whole step in a CUDA graph (one GPU)")
    g.add_argument("--sample-every", type=int, help=f"steps between PNG sample grids ({DEFAULTS['sample_every']})")
    g.add_argument("--keep-every", type=int, help="also keep a step_N.pt snapshot every N steps (0: never)")
    add_data_arguments(p)
    return p


class ExprADATrainer(Trainer):
    """The four networks (ExprADAModel), the source and target data, and one step of both."""

    KINDS = (UIT_GENERATOR, CGIT_GENERATOR)
    WHAT = "an ExprADA run"
    LOCKED, RUNTIME, DEFAULTS = LOCKED, RUNTIME, DEFAULTS
    PATHS = ("source", "target", "semantic_classifier")
    RANGES = dict(d_width=(1, None), image_size=(64, None), num_residual=(0, None), ema=(0, 0.9999), beta1=(0, 1),
                  beta2=(0, 1), lambda_bi=(0, None), lambda_re=(0, None), lambda_cls=(0, None), lambda_sem=(0, None),
                  lambda_sem_target=(0, None), lambda_pair=(0, None), turned_pair_weight=(0, 1), epochs_constant=(0, None),
                  epochs_decay=(0, None), sample_every=(1, None), keep_every=(0, None))
    COUNTERS = Trainer.COUNTERS + ("empty_batches",)
    CHECKED = "losses or gradients"

    build_parser = staticmethod(build_parser)

    @classmethod
    def check_config(cls, config: dict, new_run: bool) -> None:
        if not config["mode"] or not config["source"] or not config["target"]:
            raise SystemExit("error: a new run needs --mode, --source, --target and --out (or --resume RUN_DIR)")
        if config["stargan"] and config["mode"] != "cgit":
            raise SystemExit("error: --stargan is a CGIT baseline: give --mode cgit")
        if config.get("condition", "bottleneck") != "bottleneck" and config["mode"] != "cgit":
            raise SystemExit("error: --condition places CGIT's expression one-hot: UIT's generators take none")
        if config.get("class_from_image") and config["mode"] != "cgit":
            raise SystemExit("error: --class-from-image is for CGIT's D^s: UIT's discriminators have no expression head")
        if (config.get("lambda_pair") or 0) > 0 and config["stargan"]:
            raise SystemExit("error: --lambda-pair is not part of the --stargan baseline "
                             "(adversarial, class and cycle terms only)")
        if config["image_size"] % 64:
            raise SystemExit(f"error: --image-size must be a multiple of 64 (the discriminator halves it 6 times), "
                             f"got {config['image_size']}")
        if not config["steps"] and config["epochs_constant"] + config["epochs_decay"] < 1:
            raise SystemExit("error: --epochs-constant and --epochs-decay make no step: give one of them, or --steps")

    @classmethod
    def implied_settings(cls, config: dict) -> dict:
        return {"classes": list(EXPRESSIONS)}

    @property
    def cgit(self) -> bool:
        return self.config["mode"] == "cgit"

    @property
    def kind(self) -> str:
        return CGIT_GENERATOR if self.cgit else UIT_GENERATOR

    # ---- data ----------------------------------------------------------------------------
    def build_data(self, saved: dict) -> None:
        c = self.config
        labelled = self.cgit or (c.get("lambda_sem") or 0) > 0  # the semantic term needs y'
        pairs = None
        if (c.get("lambda_pair") or 0) > 0:
            pairs = "expression" if self.cgit else "frontal"
        source = self._load("source", labelled)
        target = self._load("target", False, pairs == "expression")
        self.note_data("source", source, saved)
        self.note_data("target", target, saved)
        side_maps = SideMaps(self.run_dir / "cache")
        if self.ctx.is_main:
            for bad_path, reason in side_maps.prepare(source + target, progress=c["progress"]):
                self.log.warning("no side map for unreadable file %s (%s)", bad_path, reason)
            if side_maps.counts["no_face"]:
                self.log.warning("%d images had no detectable face: their side maps are zero", side_maps.counts["no_face"])
        distributed.barrier(self.ctx)
        if pairs:
            with_pair = sum(any(path is not None for path in pairs_of(sample, pairs)) for sample in target)
            if not with_pair:
                what = ("expression pairs (the same face in another expression: a KDEF or BU-3DFE target's own "
                        "files, or NAME.as-<expression>.png beside the target images, as train synth "
                        "--expression-pairs writes them)" if self.cgit else
                        f"frontal pairs beside the target images (NAME{PAIR_SUFFIX}, as train synth and train renders "
                        "write them)")
                raise SystemExit(f"error: --lambda-pair needs {what}: none in {c['target']}")
            self.log.info("%s pairs: %d of %d target images have one", pairs, with_pair, len(target))
        self.source = ImageDataset(source, c["image_size"], side_maps)
        self.target = ImageDataset(target, c["image_size"], side_maps, pairs=pairs,
                                   turned_pair_weight=c["turned_pair_weight"])
        self.grid_inputs = self._sample_inputs()  # every sample grid shows these same images

    def _load(self, which: str, labelled: bool, expression_pairs: bool = False) -> list[Sample]:
        """The --source or --target samples: a plain folder, or a dataset layout (--format) whose whole
        portraits the face stage crops (as the classifier's are) and whose structure gives each face's
        expression pairs (train.datasets.pairs) when they are asked for."""
        c = self.config
        options = c["data_options"]
        samples, fmt = (load_samples if labelled else load_images)(c[which], options, domain=which)
        if wants_face_crop(fmt, options):
            samples, counts = crop_faces(samples, self.run_dir / "cache", c["image_size"],
                                         progress=c["progress"] and self.ctx.is_main)
            self.log.info("%s face crops: %s", which, counts)
        if expression_pairs and has_structural_pairs(fmt):
            samples = with_expression_pairs(samples, fmt)
        return samples

    def plan_steps(self) -> dict:
        c = self.config
        per_step = c["batch_size"] * self.ctx.world_size
        steps_per_epoch = max(1, math.ceil(max(len(self.source), len(self.target)) / per_step))
        epochs = c["epochs_constant"] + c["epochs_decay"]
        total = c["steps"] or epochs * steps_per_epoch
        return {"steps_per_epoch": steps_per_epoch, "total_steps": int(total),
                "constant_steps": int(round(total * c["epochs_constant"] / max(1, epochs)))}

    def step_batches(self, start: int, count: int):
        def loader(dataset, stream):
            sampler = StepBatchSampler(len(dataset), self.config["batch_size"], **self.sampler_options(stream, start, count))
            return self.loader(dataset, sampler)

        self._row_started = time.perf_counter()
        return zip(loader(self.source, 0), loader(self.target, 1))

    # ---- the networks ----------------------------------------------------------------------
    def build_model(self) -> None:
        # The model reads its schedule's length (constant_steps, total_steps) beside the settings.
        self.model = ExprADAModel({**self.config, **self.run_state}, self.ctx, self.log)
        self.nets = self.model.nets

    def models(self) -> dict:
        return self.model.saved_models()

    def optimizers(self) -> dict:
        return self.model.optimizers()

    def schedulers(self) -> dict:
        return self.model.schedulers()

    def load_weights(self, state: dict) -> None:
        self.model.load(state)

    # ---- the step ------------------------------------------------------------------------
    def wanted_labels(self, step: int, count: int) -> torch.Tensor:
        """CGIT's random target expressions y, from (seed, step, rank) alone: resumes exactly."""
        generator = torch.Generator().manual_seed(hash((self.config["seed"], 7, step, self.ctx.rank)) & (2 ** 63 - 1))
        return torch.randint(NUM_EXPRESSIONS, (count,), generator=generator)

    def _prepare(self, batch) -> torch.Tensor:
        x = generator_input(batch).to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.config["channels_last"] else x

    def _fixed_batch(self, batch) -> dict:
        """A CUDA graph needs a full batch: fill the places of skipped files with repeats."""
        size, n = self.config["batch_size"], batch["size"]
        if n == size:
            return batch
        repeat = torch.arange(size) % n
        return {**batch, **{k: batch[k][repeat] for k in ("image", "side", "label", "index", "pair", "has_pair")
                             if k in batch}}

    def train_step(self, batches) -> str | None:
        source_batch, target_batch = batches
        if self.config["cuda_graph"]:
            source_batch, target_batch = self._fixed_batch(source_batch), self._fixed_batch(target_batch)
        x_s, x_t = self._prepare(source_batch), self._prepare(target_batch)
        y_s = source_batch["label"].to(self.device)
        wanted = self.wanted_labels(self.step, x_t.shape[0])   # drawn on the host: picking pairs needs no sync
        y_wanted = wanted.to(self.device)
        pairs = {}
        if "pair" in target_batch:
            pair, has_pair = target_batch["pair"], target_batch["has_pair"]
            if self.cgit:   # of each face's seven expression pairs, the one in the expression asked for
                rows = torch.arange(len(pair))
                pair, has_pair = pair[rows, wanted], has_pair[rows, wanted]
            pairs = {"pair": pair.to(self.device), "has_pair": has_pair.to(self.device)}
        scalars = self.model.step(x_s, y_s, x_t, y_wanted, **pairs)
        if not bool(scalars["finite"]):  # the step's one host sync
            return f"G {float(scalars['G/total']):.4g}, D {float(scalars['D/total']):.4g}"
        # Summed on the device, read when logged.
        self.tally({k: v.detach().float() for k, v in scalars.items() if k != "finite"})
        return None

    def after_step(self, end: int, updated: bool) -> None:
        c = self.config
        if self.due(c["log_every"], end):
            self.write_row(self._speed())
            self._row_started = time.perf_counter()
        if self.ctx.is_main and self.due(c["sample_every"], end):
            self.sample_grid(self.grid_inputs)
        if self.due(c["checkpoint_every"], end):
            self.save(keep=bool(c["keep_every"]) and self.step % c["keep_every"] == 0)

    def _speed(self) -> dict:
        """This process's pace over the updates since the last row."""
        if not self.summed_steps:
            return {}
        steps_per_s = self.summed_steps / max(time.perf_counter() - self._row_started, 1e-9)
        return {"perf/steps_per_s": steps_per_s,
                "perf/images_per_s": steps_per_s * self.config["batch_size"] * self.ctx.world_size}

    def describe(self, end: int) -> None:
        c, run = self.config, self.run_state
        self.log.info("%s: %d source, %d target images; steps %d→%d of %d (%d per epoch); %s, world %d, %s",
                      c["mode"].upper(), run["source_count"], run["target_count"], self.step, end, self.total_steps,
                      run["steps_per_epoch"], self.device, self.ctx.world_size, self._fast_path_name())

    def _fast_path_name(self) -> str:
        c = self.config
        parts = [c["precision"]] + [name for name in ("channels_last", "compile", "cuda_graph") if c[name]]
        return "+".join(parts)

    def results(self) -> dict:
        return {"mode": self.config["mode"]}

    # ---- what a person looks at ----------------------------------------------------------
    def _sample_inputs(self, count: int = 4) -> dict:
        """A fixed handful of source and target images (first readable ones), for every grid."""
        chosen = {}
        for name, dataset in (("source", self.source), ("target", self.target)):
            items = [dataset[i] for i in range(min(len(dataset), 4 * count))]
            items = [item for item in items if "bad" not in item][:count]
            if items:
                chosen[name] = (torch.stack([torch.cat([it["image"], it["side"]]) for it in items]),
                                torch.tensor([it["label"] for it in items]))
        return chosen

    @torch.no_grad()
    def translate_samples(self, samples: dict) -> dict[str, torch.Tensor]:
        if "source" not in samples or "target" not in samples:
            return {}
        x_s, y_s = (t.to(self.device) for t in samples["source"])
        x_t = samples["target"][0].to(self.device)
        n = min(len(x_s), len(x_t))
        x_s, y_s, x_t = x_s[:n], y_s[:n], x_t[:n]
        wanted = torch.arange(n, device=self.device) % NUM_EXPRESSIONS
        onehot = lambda y: F.one_hot(y, NUM_EXPRESSIONS).float() if self.cgit else None  # noqa: E731
        G_ts, G_st = self.nets["G_ts"], self.nets["G_st"]
        fake_s = torch.cat(G_ts(x_t, onehot(wanted)), 1)
        fake_t = torch.cat(G_st(x_s), 1)
        cycled_t = torch.cat(G_st(fake_s), 1)
        cycled_s = torch.cat(G_ts(fake_t, onehot(y_s.clamp(min=0))), 1)
        rows = {"target": x_t, "t side": x_t[:, 3:], "t->s": fake_s, "t->s side": fake_s[:, 3:], "t->s->t": cycled_t,
                "source": x_s, "s->t": fake_t, "s->t->s": cycled_s}
        return {name: t[:, :3] for name, t in rows.items()}

    def sample_grid(self, samples):
        rows = self.translate_samples(samples)
        if rows:
            self.runlog.image_grid(self.step, rows)


def main(argv=None) -> int:
    return ExprADATrainer.main(argv)
