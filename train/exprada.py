"""`python -m train exprada`: train ExprADA (UIT or CGIT) — G^{t→s}, G^{s→t}, D^s, D^t — as in
the paper's sections 3–4, on one CPU, one GPU, or many processes under torchrun.

    python -m train exprada --mode uit --source SRC_DIR --target TGT_DIR --out runs/uit
    python -m train exprada --resume runs/uit                      # continues exactly
    torchrun --nproc_per_node 4 -m train exprada --mode cgit ...   # DDP, one GPU (or CPU) each

CGIT needs a labelled source (one folder per expression); UIT takes any folders of images.
A run folder holds checkpoints/last.pt, train.log, metrics.csv/.jsonl, tensorboard/, samples/
(PNG grids), bad_files.txt, summary.json and cache/ (side maps computed for images without one).
"""
import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from face.expressions import EXPRESSIONS, NUM_EXPRESSIONS

from . import distributed
from .checkpoint import checkpoint_path, restore_rng, save_checkpoint
from .data import ImageDataset, SideMaps, StepBatchSampler, generator_input, make_loader
from .datasets.folder import index_labelled_folder, index_unlabelled_folder
from .exprada_model import ExprADAModel
from .run_setup import add_run_control_arguments, merge_config, open_run, samples_digest
from .runlog import RunLog, progress, setup_logging, write_json

# Settings that define what is trained: a resumed run must keep them (else it is not the same run).
LOCKED = ("mode", "width", "image_size", "num_residual", "skips", "residual", "lambda_sem", "lambda_sem_target",
          "semantic_classifier", "ema",
          "batch_size", "lr", "beta1", "beta2", "lambda_bi",
          "lambda_re", "lambda_cls", "use_bi", "use_re", "flip", "seed", "epochs_constant", "epochs_decay",
          "steps", "source", "target")
# Settings of how it runs: free to change on resume.
RUNTIME = ("device", "precision", "channels_last", "compile", "cuda_graph", "workers", "log_every",
           "sample_every", "checkpoint_every", "keep_every", "max_nonfinite", "stop_after", "progress")
DEFAULTS = dict(mode=None, source=None, target=None, width=64, image_size=128, num_residual=6, skips=False,
                residual=False, lambda_sem=0.0, lambda_sem_target=0.0,
                semantic_classifier=None, ema=0.0, batch_size=8,
                lr=1e-4, beta1=0.5, beta2=0.999, lambda_bi=10.0, lambda_re=10.0, lambda_cls=1.0, use_bi=True,
                use_re=True, flip=True, seed=0, epochs_constant=100, epochs_decay=100, steps=None,
                device="auto", precision="fp32", channels_last=False, compile=False, cuda_graph=False, workers=2,
                log_every=50, sample_every=500, checkpoint_every=1000, keep_every=0, max_nonfinite=20,
                stop_after=None, progress=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train exprada", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=None)
    p.add_argument("--mode", choices=("uit", "cgit"), help="uit: unsupervised (the car's); cgit: category-guided")
    p.add_argument("--source", help="source-domain folder (CGIT: one sub-folder per expression)")
    p.add_argument("--target", help="target-domain folder (e.g. frontal renders), any layout")
    p.add_argument("--out", help="run folder (new run)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where it stopped")
    g = p.add_argument_group("model and data (paper defaults)")
    g.add_argument("--width", type=int, help="base channels w (paper 64; CPU: 8-16)")
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
                   "classifier reads untranslated targets fairly, e.g. the same camera)")
    g.add_argument("--semantic-classifier", help="classifier run folder or checkpoint for --lambda-sem")
    g.add_argument("--ema", type=float, help="keep an exponential moving average of G^{t→s} with this decay, "
                   "e.g. 0.999 (0: off); exported instead of the live weights")
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
    return p


def resolve_config(args: argparse.Namespace, saved: dict | None) -> dict:
    """Defaults < saved run config < explicit flags; locked settings must match the saved run."""
    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("out", "resume")}
    for key in ("source", "target", "semantic_classifier"):
        if key in given:
            given[key] = str(Path(given[key]).resolve())
    config = merge_config(given, saved, DEFAULTS, LOCKED)
    if not config["mode"] or not config["source"] or not config["target"]:
        raise SystemExit("error: a new run needs --mode, --source, --target and --out (or --resume RUN_DIR)")
    if config["image_size"] % 64:
        raise SystemExit(f"error: --image-size must be a multiple of 64 (the discriminator halves it 6 times), "
                         f"got {config['image_size']}")
    if config["width"] < 1 or config["batch_size"] < 1:
        raise SystemExit("error: --width and --batch-size must be positive")
    config["classes"] = list(EXPRESSIONS)
    return config


class ExprADATrainer:
    """The four networks, their optimisers and schedules, and the training loop."""

    def __init__(self, config: dict, run_dir: Path, ctx: distributed.Context, logger, state: dict | None = None):
        self.config, self.run_dir, self.ctx, self.log = config, Path(run_dir), ctx, logger
        self.device = ctx.device
        self.cgit = config["mode"] == "cgit"
        self._build_data(state)
        self.model = ExprADAModel(config, ctx, logger)
        self.nets = self.model.nets
        self.step, self.counters = 0, {"bad_files": 0, "skipped_steps": 0, "nonfinite_steps": 0, "empty_batches": 0}
        if state is not None:
            self._load(state)
        self.runlog = RunLog(self.run_dir, enabled=ctx.is_main, start_step=self.step)

    # ---- data ----------------------------------------------------------------------------
    def _build_data(self, state):
        c = self.config
        labelled = self.cgit or (c.get("lambda_sem") or 0) > 0  # the semantic term needs y'
        source = (index_labelled_folder if labelled else index_unlabelled_folder)(c["source"], domain="source")
        target = index_unlabelled_folder(c["target"], domain="target")
        for name, samples in (("source", source), ("target", target)):
            digest = samples_digest(samples)
            saved = (state or {}).get("config", {}).get(f"{name}_digest")
            if saved and saved != digest:
                self.log.warning("%s folder changed since the run started (%d images now): the resumed run "
                                 "will not repeat the original exactly", name, len(samples))
            c[f"{name}_count"], c[f"{name}_digest"] = len(samples), digest
        side_maps = SideMaps(self.run_dir / "cache")
        if self.ctx.is_main:
            for bad_path, reason in side_maps.prepare(source + target, progress=c["progress"]):
                self.log.warning("no side map for unreadable file %s (%s)", bad_path, reason)
            if side_maps.counts["no_face"]:
                self.log.warning("%d images had no detectable face: their side maps are zero", side_maps.counts["no_face"])
        distributed.barrier(self.ctx)
        self.source = ImageDataset(source, c["image_size"], side_maps)
        self.target = ImageDataset(target, c["image_size"], side_maps)
        per_step = c["batch_size"] * self.ctx.world_size
        if "total_steps" not in c:  # fixed at the start of a run, kept on resume
            c["steps_per_epoch"] = max(1, math.ceil(max(len(source), len(target)) / per_step))
            epochs = c["epochs_constant"] + c["epochs_decay"]
            total = c["steps"] or epochs * c["steps_per_epoch"]
            c["total_steps"] = int(total)
            c["constant_steps"] = int(round(total * c["epochs_constant"] / max(1, epochs)))

    def _loader(self, dataset, stream: int, start: int, count: int):
        sampler = StepBatchSampler(len(dataset), self.config["batch_size"], seed=self.config["seed"], stream=stream,
                                   rank=self.ctx.rank, world_size=self.ctx.world_size, start_step=start,
                                   num_steps=count, flip=self.config["flip"])
        return make_loader(dataset, sampler, self.config["workers"], pin_memory=self.device.type == "cuda")

    def _load(self, state):
        self.model.load(state)
        self.step = int(state["step"])
        self.counters.update({k: int(v) for k, v in state.get("extra", {}).get("counters", {}).items()})
        restore_rng(state["rng"])

    def save(self, keep: bool = False):
        if not self.ctx.is_main:
            return
        kind = "exprada-cgit" if self.cgit else "exprada-uit"
        stored = {k: v for k, v in self.config.items() if k not in RUNTIME}
        stored["runtime"] = {k: self.config[k] for k in RUNTIME}
        paths = [checkpoint_path(self.run_dir)] + ([checkpoint_path(self.run_dir, self.step)] if keep else [])
        for path in paths:
            save_checkpoint(path, kind=kind, config=stored, models=self.model.saved_models(),
                            optimizers=self.model.optimizers(), schedulers=self.model.schedulers(), step=self.step,
                            epoch=self.step // self.config["steps_per_epoch"], extra={"counters": dict(self.counters)})

    # ---- the loop ------------------------------------------------------------------------
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
        return {**batch, **{k: batch[k][repeat] for k in ("image", "side", "label", "index")}}

    def _count_bad(self, batch):
        self.counters["bad_files"] += self.runlog.count_bad(batch, self.log, self.ctx.is_main)

    def train(self) -> dict:
        c = self.config
        end = min(c["total_steps"], c["stop_after"] or c["total_steps"])
        if self.step >= end:
            self.log.info("nothing to do: the run is at step %d of %d", self.step, end)
            return self.summary()
        self.log.info("%s: %d source, %d target images; steps %d→%d of %d (%d per epoch); %s, world %d, %s",
                      c["mode"].upper(), c["source_count"], c["target_count"], self.step, end, c["total_steps"],
                      c["steps_per_epoch"], self.device, self.ctx.world_size, self._fast_path_name())
        sample_batches = self._sample_inputs()
        source_loader = self._loader(self.source, 0, self.step, end - self.step)
        target_loader = self._loader(self.target, 1, self.step, end - self.step)
        bar = progress(end, self.step, enabled=self.ctx.is_main and c["progress"])
        nonfinite_run, logged, started, steps_timed = 0, {}, time.perf_counter(), 0
        try:
            for source_batch, target_batch in zip(source_loader, target_loader):
                self._count_bad(source_batch)
                self._count_bad(target_batch)
                empty = source_batch["size"] == 0 or target_batch["size"] == 0
                if distributed.any_process(empty, self.ctx) if self.ctx.distributed else empty:
                    self.counters["empty_batches"] += 1
                    self.counters["skipped_steps"] += 1
                    self.log.warning("step %d: no readable image in a batch; step skipped", self.step)
                    self._advance(bar)
                    continue
                if c["cuda_graph"]:
                    source_batch, target_batch = self._fixed_batch(source_batch), self._fixed_batch(target_batch)
                x_s, x_t = self._prepare(source_batch), self._prepare(target_batch)
                y_s = source_batch["label"].to(self.device)
                y_wanted = self.wanted_labels(self.step, x_t.shape[0]).to(self.device)
                scalars = self.model.step(x_s, y_s, x_t, y_wanted)
                if bool(scalars["finite"]):  # the step's one host sync
                    nonfinite_run = 0
                    for k, v in scalars.items():  # summed on the device, read when logged
                        if k != "finite":
                            logged[k] = logged.get(k, 0.0) + v.detach().float()
                    steps_timed += 1
                else:
                    nonfinite_run += 1
                    self.counters["nonfinite_steps"] += 1
                    self.counters["skipped_steps"] += 1
                    self.log.warning("step %d: non-finite loss or gradients (G %.4g, D %.4g); update skipped (%d in a row)",
                                     self.step, float(scalars["G/total"]), float(scalars["D/total"]), nonfinite_run)
                    if nonfinite_run >= c["max_nonfinite"]:
                        self.save()
                        raise FloatingPointError(
                            f"training diverged: {nonfinite_run} steps in a row with non-finite losses or gradients "
                            f"(up to step {self.step}); last checkpoint {checkpoint_path(self.run_dir)} holds the last "
                            f"finite weights — try a lower --lr")
                self._advance(bar)
                if self.step % c["log_every"] == 0 or self.step == end:
                    self._log_scalars(logged, steps_timed, time.perf_counter() - started)
                    logged, started, steps_timed = {}, time.perf_counter(), 0
                if self.ctx.is_main and (self.step % c["sample_every"] == 0 or self.step == end):
                    self.sample_grid(sample_batches)
                if self.step % c["checkpoint_every"] == 0 or self.step == end:
                    self.save(keep=bool(c["keep_every"]) and self.step % c["keep_every"] == 0)
        except KeyboardInterrupt:
            self.log.warning("interrupted at step %d: saving a checkpoint to resume from", self.step)
            self.save()
            raise
        finally:
            bar.close()
            self.runlog.close()
        return self.summary()

    def _advance(self, bar):
        self.step += 1
        self.model.advance_schedule()
        bar.update(1)

    def _log_scalars(self, logged: dict, steps: int, seconds: float):
        values = {k: float(v) / steps for k, v in logged.items()} if steps else {}
        values = distributed.mean_over_processes(values, self.ctx)
        counters = {k: distributed.sum_over_processes(v, self.ctx) for k, v in self.counters.items()}
        values.update({f"count/{k}": v for k, v in counters.items()})
        values["lr"] = float(self.model.sched_G.get_last_lr()[0])
        if steps:
            values["perf/steps_per_s"] = steps / max(seconds, 1e-9)
            values["perf/images_per_s"] = values["perf/steps_per_s"] * self.config["batch_size"] * self.ctx.world_size
        self.runlog.scalars(self.step, values)

    def _fast_path_name(self) -> str:
        c = self.config
        parts = [c["precision"]] + [name for name in ("channels_last", "compile", "cuda_graph") if c[name]]
        return "+".join(parts)

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

    def summary(self) -> dict:
        counters = {k: distributed.sum_over_processes(v, self.ctx) for k, v in self.counters.items()}
        result = {"step": self.step, "total_steps": self.config["total_steps"], "mode": self.config["mode"],
                  "checkpoint": str(checkpoint_path(self.run_dir)), "world_size": self.ctx.world_size, **counters}
        if self.ctx.distributed:
            result["replicas_agree"] = distributed.replicas_agree(self.nets.values(), self.ctx)
            if not result["replicas_agree"]:
                self.log.error("the processes' weights differ: data-parallel replicas went out of step")
        if self.ctx.is_main:
            write_json(self.run_dir / "summary.json", result)
        return result


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    run_dir, state, saved = open_run(args.out, args.resume, ("exprada-uit", "exprada-cgit"), "an ExprADA run")
    config = resolve_config(args, saved)
    ctx = distributed.setup(config["device"])
    logger = setup_logging(run_dir, ctx.is_main)
    finished = False
    try:
        trainer = ExprADATrainer(config, run_dir, ctx, logger, state)
        summary = trainer.train()
        logger.info("done: %s", summary)
        finished = True
    finally:
        distributed.cleanup(wait=finished)
    return 0
