"""`python -m train classifier`: the source-domain expression classifier C^s (paper sections 3.2, 4).

    python -m train classifier --data KDEF/ --backbone resnet18 --out runs/cls
    python -m train classifier --data bu3dfe/ --folds 5 --fold 0 --backbone vgg16 \\
        --init-weights vgg_face.pt --init-skip fc8 --out runs/bu_f0
    python -m train classifier --data drivers.csv --augment-with runs/cgit --per-class 1000 --out runs/aug
    python -m train classifier --resume runs/cls                       # continues exactly
    torchrun --nproc_per_node 4 -m train classifier ...                # DDP, one GPU (or CPU) each

The data is split by subject (train/val/test, or k folds) with a seed, and the split is written to
RUN_DIR/split.json (`--split FILE` reuses one); or give the parts yourself with --val-data and
--test-data. A run folder holds checkpoints/last.pt and best.pt (best validation accuracy),
split.json, train.log, metrics.csv/.jsonl, tensorboard/, bad_files.txt, init_weights.json,
augmented/ (CGIT images), test/ (metrics.json, confusion.png) and summary.json.
"""
import argparse
import json
import math
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F

from face.expressions import EXPRESSIONS, NUM_EXPRESSIONS

from . import distributed
from .checkpoint import CheckpointError, checkpoint_path, load_checkpoint, load_state_checked, restore_rng, save_checkpoint
from .classifier_nets import ARCHS, build_classifier, count_parameters, load_init_weights
from .data import ImageDataset, StepBatchSampler, make_loader
from .datasets import Sample, label_counts
from .datasets.face_crops import crop_faces
from .datasets.folder import index_labelled_folder
from .datasets.sources import add_data_arguments, data_options, load_samples, wants_face_crop
from .datasets.splits import apply_split, check_parts_disjoint, make_split, read_split, write_split
from .run_setup import add_run_control_arguments, merge_config, open_run, samples_digest
from .runlog import RunLog, progress, setup_logging, write_json

KIND = "classifier"
MODEL_NAME = "classifier"
SPLIT_FILE = "split.json"
BEST = "best.pt"
# What defines the run: a resumed run must keep these.
LOCKED = ("arch", "image_size", "width", "dropout", "batch_size", "lr", "weight_decay", "optimizer", "balanced", "flip",
          "seed", "epochs", "steps", "data", "val_data", "test_data", "data_options", "val_fraction", "test_fraction",
          "folds", "fold", "split_by_image", "init_weights", "init_skip", "augment_with", "per_class", "augment_from")
# How it runs: free to change on resume.
RUNTIME = ("device", "workers", "log_every", "eval_every", "checkpoint_every", "stop_after", "progress", "eval_batch_size",
           "max_nonfinite")
DEFAULTS = dict(arch=None, data=None, val_data=None, test_data=None, data_options={}, split=None, val_fraction=0.1,
                test_fraction=0.2, folds=None, fold=None, split_by_image=False, image_size=128, width=16,
                dropout=None, batch_size=32, lr=1e-4, weight_decay=5e-4, optimizer="adam", balanced=False, flip=True,
                seed=0, epochs=30, steps=None, init_weights=None, init_skip="", augment_with=None, per_class=0,
                augment_from=None, device="auto", workers=2, log_every=20, eval_every=0, checkpoint_every=500,
                stop_after=None, progress=True, eval_batch_size=64, max_nonfinite=20)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train classifier", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=None)
    p.add_argument("--data", help="labelled data: folder tree, CSV, KDEF, BU-3DFE or MMI root (see --format)")
    p.add_argument("--backbone", dest="arch", choices=ARCHS, help="vgg16 (VGG-Face), resnet50, resnet18, small (CPU)")
    p.add_argument("--out", help="run folder (new run)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where it stopped")
    add_data_arguments(p)
    g = p.add_argument_group("split (by subject)")
    g.add_argument("--val-data", help="validation data given apart (same format); then no split is drawn")
    g.add_argument("--test-data", help="test data given apart (same format)")
    g.add_argument("--split", help="reuse a split file (split.json of another run)")
    g.add_argument("--val-fraction", type=float, help="share of subjects for validation (0.1)")
    g.add_argument("--test-fraction", type=float, help="share of subjects for the test (0.2)")
    g.add_argument("--folds", type=int, help="k-fold over subjects (paper 5.4.2: 5); with --fold")
    g.add_argument("--fold", type=int, help="which fold is the test part, 0..k-1")
    g.add_argument("--split-by-image", action="store_true", default=None,
                   help="allow images without a subject (NOT subject-independent)")
    g = p.add_argument_group("model")
    g.add_argument("--image-size", type=int, help="square input size, multiple of 32 (128)")
    g.add_argument("--width", type=int, help="small backbone's base width (16); other backbones are fixed")
    g.add_argument("--dropout", type=float, help="before the class layer (vgg16 0.5, small 0.3, resnets 0)")
    g.add_argument("--init-weights", help="pretrained tensors to start from (state_dict .pt/.pth, loaded by name)")
    g.add_argument("--init-skip", help="comma list of tensor-name prefixes not to load (e.g. fc8, fc)")
    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=int, help="per process (32)")
    g.add_argument("--epochs", type=int, help="(30)")
    g.add_argument("--steps", type=int, help="total steps instead of epochs")
    g.add_argument("--lr", type=float, help="(1e-4), cosine decay to 0")
    g.add_argument("--weight-decay", type=float, help="(5e-4)")
    g.add_argument("--optimizer", choices=("adam", "sgd"), help="adam (default) or sgd with momentum 0.9")
    g.add_argument("--balanced", action="store_true", default=None,
                   help="class-balanced sampling (each class drawn equally often)")
    g.add_argument("--no-flip", dest="flip", action="store_false", default=None, help="no horizontal flips")
    g.add_argument("--seed", type=int)
    g = p.add_argument_group("CGIT data augmentation (paper table 3)")
    g.add_argument("--augment-with", metavar="CKPT", help="a CGIT checkpoint (kind exprada-cgit) or its run folder")
    g.add_argument("--per-class", type=int, help="images to generate per expression")
    g.add_argument("--augment-from", help="images the generator translates (default: the CGIT run's target folder)")
    g = p.add_argument_group("how it runs (may change on --resume)")
    add_run_control_arguments(g, DEFAULTS)
    g.add_argument("--eval-every", type=int, help="steps between validations (0: once an epoch)")
    g.add_argument("--eval-batch-size", type=int, help=f"({DEFAULTS['eval_batch_size']})")
    return p


def resolve_config(args: argparse.Namespace, saved: dict | None) -> dict:
    """Defaults < saved run config < explicit flags; locked settings must match the saved run."""
    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("out", "resume")}
    options = data_options(args)
    for key in list(given):
        if key in options:
            del given[key]
    if options:
        given["data_options"] = options
    for key in ("data", "val_data", "test_data", "split", "init_weights", "augment_with", "augment_from"):
        if key in given:
            given[key] = str(Path(given[key]).resolve())
    config = merge_config(given, saved, DEFAULTS, LOCKED)
    if saved is None and (not config["data"] or not config["arch"]):
        raise SystemExit("error: a new run needs --data, --backbone and --out (or --resume RUN_DIR)")
    if config["image_size"] % 32 or config["image_size"] < 32:
        raise SystemExit(f"error: --image-size must be a multiple of 32 and >= 32, got {config['image_size']}")
    if config["batch_size"] < 1 or (config["width"] or 1) < 1:
        raise SystemExit("error: --batch-size and --width must be positive")
    if bool(config["augment_with"]) != bool(config["per_class"]):
        raise SystemExit("error: --augment-with CKPT and --per-class N go together")
    if (config["folds"] is None) != (config["fold"] is None):
        raise SystemExit("error: --folds K and --fold I go together")
    if config["arch"] != "small":
        config["width"] = None  # only the small backbone has a width; the others are fixed architectures
    config["num_classes"] = NUM_EXPRESSIONS
    config["classes"] = list(EXPRESSIONS)
    return config


# ---- data ---------------------------------------------------------------------------------------

def load_parts(config: dict, run_dir: Path, logger, is_main: bool = True) -> dict[str, list[Sample]]:
    """train/val/test samples: parts given apart, a split file, or a fresh seeded subject split
    (written to RUN_DIR/split.json, which a resumed run reads back)."""
    options = config["data_options"]
    samples, fmt = load_samples(config["data"], options)
    config["data_format"] = fmt
    split_file = run_dir / SPLIT_FILE
    if config["val_data"] or config["test_data"]:
        parts = {"train": samples, "val": [], "test": []}
        for part in ("val", "test"):
            if config[f"{part}_data"]:
                parts[part] = load_samples(config[f"{part}_data"], options)[0]
        check_parts_disjoint(parts)
    else:
        if split_file.is_file():
            split = read_split(split_file)
        elif config.get("split"):
            split = read_split(config["split"])
        else:
            split = make_split(samples, val_fraction=config["val_fraction"], test_fraction=config["test_fraction"],
                               seed=config["seed"], k=config["folds"], fold=config["fold"],
                               by_image=bool(config["split_by_image"]))
        parts = apply_split(samples, split, str(split_file if split_file.is_file() else config.get("split") or "split"))
        if is_main and not split_file.is_file():
            write_split(split_file, split)
        logger.info("split by subject: %s", ", ".join(f"{k} {len(v)} subjects" for k, v in split["subjects"].items()))
    if wants_face_crop(fmt, options):
        for part in parts:
            if parts[part]:
                parts[part], counts = crop_faces(parts[part], run_dir / "cache", config["image_size"],
                                                 progress=config["progress"] and is_main)
                logger.info("%s face crops: %s", part, counts)
    return parts


def _find_cgit_inputs(config: dict, cgit_config: dict) -> Path:
    source = config["augment_from"] or cgit_config.get("target")
    if not source or not Path(source).is_dir():
        raise SystemExit(f"error: no images for the CGIT generator to translate: the CGIT run's target folder "
                         f"{source!r} is not here; give --augment-from DIR")
    return Path(source)


@torch.no_grad()
def generate_augmentation(config: dict, run_dir: Path, classes: list[int], device, logger) -> Path:
    """RUN_DIR/augmented/<expression>/*.png: `per_class` CGIT translations per training class, of
    the inputs in a seeded order (cycled when there are fewer inputs). Kept across resumes: a
    manifest says what was made, and a finished set is reused."""
    from tqdm import tqdm

    from .checkpoint import load_model
    from .data import SideMaps, read_generator_batch
    from .datasets.folder import index_unlabelled_folder
    from .translate import to_expression, write_png

    out = run_dir / "augmented"
    generator, cgit_config, kind = load_model(config["augment_with"], "G_ts")
    if kind != "exprada-cgit":
        raise CheckpointError(f"{config['augment_with']}: a {kind} checkpoint; augmentation needs a CGIT generator "
                              f"(python -m train exprada --mode cgit)")
    inputs = index_unlabelled_folder(_find_cgit_inputs(config, cgit_config), domain="cgit-input")
    manifest = {"checkpoint": config["augment_with"], "per_class": config["per_class"], "seed": config["seed"],
                "classes": [EXPRESSIONS[k] for k in classes], "inputs": samples_digest(inputs)}
    manifest_path = out / "manifest.json"
    if manifest_path.is_file() and json.loads(manifest_path.read_text()) == manifest:
        logger.info("CGIT augmentation already made: %s", out)
        return out
    if out.exists():
        shutil.rmtree(out)
    generator = generator.to(device)
    size = int(cgit_config["image_size"])
    dataset = ImageDataset(inputs, size, SideMaps(run_dir / "cache"))
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(config["seed"])).tolist()
    batch_size, bad = 16, set()
    bar = tqdm(total=config["per_class"] * len(classes), desc="CGIT augmentation", unit="img",
               disable=not config["progress"])
    cursor = 0
    for label in classes:
        (out / EXPRESSIONS[label]).mkdir(parents=True, exist_ok=True)
        made = 0
        while made < config["per_class"]:
            keys = []  # the next inputs in the seeded order, unreadable ones passed over
            while len(keys) < min(batch_size, config["per_class"] - made):
                if len(bad) == len(inputs):
                    raise ValueError(f"no readable input image for the CGIT generator under {inputs[0].path.parent}")
                key = order[cursor % len(order)]
                cursor += 1
                if str(inputs[key].path) not in bad:
                    keys.append(key)
            x, batch = read_generator_batch(dataset, keys, device, logger, "CGIT augmentation: ")
            bad.update(path for path, _ in batch["bad"])
            if x is None:
                continue
            for image in to_expression(generator, x, label):
                write_png(out / EXPRESSIONS[label] / f"cgit_{made:06d}.png", image)
                made += 1
                bar.update(1)
    bar.close()
    write_json(manifest_path, manifest)
    logger.info("CGIT augmentation: %d images per class for %s from %d inputs (%d unreadable)",
                config["per_class"], ", ".join(EXPRESSIONS[k] for k in classes), len(inputs), len(bad))
    return out


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


# ---- the trainer --------------------------------------------------------------------------------

class ClassifierTrainer:
    def __init__(self, config: dict, run_dir: Path, ctx: distributed.Context, logger, state: dict | None = None):
        self.config, self.run_dir, self.ctx, self.log = config, Path(run_dir), ctx, logger
        self.device = ctx.device
        self._build_data(state)
        torch.manual_seed(config["seed"])
        self.net = build_classifier(config).to(self.device)
        if state is None and config["init_weights"] and ctx.is_main:
            skip = [s.strip() for s in config["init_skip"].split(",")]
            report = load_init_weights(self.net, config["init_weights"], skip)
            write_json(self.run_dir / "init_weights.json", report)
            logger.info("init weights %s: %d tensors matched, %d skipped on purpose, %d left at initialisation, "
                        "%d in the file unused (list: init_weights.json)", config["init_weights"],
                        len(report["matched"]), len(report["skipped"]), len(report["missing"]), len(report["unused"]))
        self.model = distributed.wrap(self.net, ctx)  # DDP starts every process from the main one's weights
        if config["optimizer"] == "sgd":
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config["lr"], momentum=0.9,
                                             weight_decay=config["weight_decay"])
        else:
            self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
        total = config["total_steps"]
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)))
        self.step, self.best = 0, {"val_accuracy": -1.0, "step": 0}
        self.counters = {"bad_files": 0, "skipped_steps": 0, "nonfinite_steps": 0}
        if state is not None:
            self._load(state)
        self.runlog = RunLog(self.run_dir, enabled=ctx.is_main, start_step=self.step)

    def _build_data(self, state):
        c = self.config
        parts = load_parts(c, self.run_dir, self.log, self.ctx.is_main)
        train = parts["train"]
        train_classes = sorted({s.label for s in train})
        if c["augment_with"]:
            if self.ctx.is_main:
                generate_augmentation(c, self.run_dir, train_classes, self.device, self.log)
            distributed.barrier(self.ctx)
            train = train + index_labelled_folder(self.run_dir / "augmented", domain="cgit")
        for name, samples in (("train", train), ("val", parts["val"]), ("test", parts["test"])):
            digest = samples_digest(samples)
            saved = (state or {}).get("config", {}).get(f"{name}_digest")
            if saved and saved != digest:
                self.log.warning("%s data changed since the run started (%d images now): the resumed run will not "
                                 "repeat the original exactly", name, len(samples))
            c[f"{name}_count"], c[f"{name}_digest"] = len(samples), digest
            c[f"{name}_classes"] = label_counts(samples)
        missing = [EXPRESSIONS[k] for k in sorted({s.label for s in parts["val"] + parts["test"]}) if k not in train_classes]
        if missing:
            self.log.warning("classes in the val/test data but not in training: %s", ", ".join(missing))
        self.train_set = ImageDataset(train, c["image_size"])
        self.val_samples, self.test_samples = parts["val"], parts["test"]
        if "total_steps" not in c:  # fixed at the start of a run, kept on resume
            c["steps_per_epoch"] = max(1, math.ceil(len(train) / (c["batch_size"] * self.ctx.world_size)))
            c["total_steps"] = int(c["steps"] or c["epochs"] * c["steps_per_epoch"])

    def _loader(self, start: int, count: int):
        c = self.config
        common = dict(seed=c["seed"], stream=0, rank=self.ctx.rank, world_size=self.ctx.world_size,
                      start_step=start, num_steps=count, flip=c["flip"])
        if c["balanced"]:
            sampler = BalancedStepBatchSampler([s.label for s in self.train_set.samples], c["batch_size"], **common)
        else:
            sampler = StepBatchSampler(len(self.train_set), c["batch_size"], **common)
        loader = make_loader(self.train_set, sampler, c["workers"], pin_memory=self.device.type == "cuda")
        # Workers' seeds come from this generator, not the global RNG (dropout's): resume stays exact.
        loader.generator = torch.Generator().manual_seed(c["seed"])
        return loader

    def _load(self, state):
        load_state_checked(self.net, state["models"][MODEL_NAME], f"{state['path']} model {MODEL_NAME!r}")
        self.optimizer.load_state_dict(state["optimizers"][MODEL_NAME])
        self.scheduler.load_state_dict(state["schedulers"][MODEL_NAME])
        self.step = int(state["step"])
        extra = state.get("extra", {})
        self.counters.update({k: int(v) for k, v in extra.get("counters", {}).items()})
        self.best.update({k: float(v) if k == "val_accuracy" else int(v) for k, v in extra.get("best", {}).items()})
        restore_rng(state["rng"])

    def save(self, best: bool = False) -> bool:
        """Write last.pt (and best.pt); never over finite weights with non-finite ones."""
        if not self.ctx.is_main:
            return False
        if not all(torch.isfinite(t).all() for t in self.net.state_dict().values() if t.is_floating_point()):
            self.log.error("step %d: the weights or batch-norm statistics are no longer finite; not overwriting %s",
                           self.step, checkpoint_path(self.run_dir))
            return False
        stored = {k: v for k, v in self.config.items() if k not in RUNTIME}
        stored["runtime"] = {k: self.config[k] for k in RUNTIME}
        path = save_checkpoint(checkpoint_path(self.run_dir), kind=KIND, config=stored, models={MODEL_NAME: self.net},
                               optimizers={MODEL_NAME: self.optimizer}, schedulers={MODEL_NAME: self.scheduler},
                               step=self.step, epoch=self.step // self.config["steps_per_epoch"],
                               extra={"counters": dict(self.counters), "best": dict(self.best)})
        if best:
            shutil.copyfile(path, path.with_name(BEST))
        return True

    def _count_bad(self, batch):
        self.counters["bad_files"] += self.runlog.count_bad(batch, self.log, self.ctx.is_main)

    def train(self) -> dict:
        c = self.config
        end = min(c["total_steps"], c["stop_after"] or c["total_steps"])
        eval_every = c["eval_every"] or c["steps_per_epoch"]
        if self.step >= end:
            self.log.info("nothing to do: the run is at step %d of %d", self.step, end)
            return self.finish()
        self.log.info("%s (%d parameters): %d train, %d val, %d test images; steps %d→%d of %d (%d per epoch); %s, "
                      "world %d%s", c["arch"], count_parameters(self.net), c["train_count"], c["val_count"],
                      c["test_count"], self.step, end, c["total_steps"], c["steps_per_epoch"], self.device,
                      self.ctx.world_size, ", class-balanced" if c["balanced"] else "")
        bar = progress(end, self.step, enabled=self.ctx.is_main and c["progress"])
        sums = {"loss": 0.0, "correct": 0.0, "seen": 0.0, "steps": 0}
        nonfinite_run = 0
        self.model.train()
        try:
            for batch in self._loader(self.step, end - self.step):
                self._count_bad(batch)
                empty = batch["size"] == 0
                if distributed.any_process(empty, self.ctx) if self.ctx.distributed else empty:
                    self.counters["skipped_steps"] += 1
                    self.log.warning("step %d: no readable image in a batch; step skipped", self.step)
                    self._advance(bar)
                    continue
                x = batch["image"].to(self.device, non_blocking=True)
                y = batch["label"].to(self.device, non_blocking=True)
                logits, _ = self.model(x)
                loss = F.cross_entropy(logits, y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                # Gradients are all-reduced under DDP, so every process reaches the same verdict.
                grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), float("inf"))
                if not torch.isfinite(grad_norm):
                    nonfinite_run = self._skip_nonfinite(nonfinite_run + 1, float(loss.detach()), bar)
                    continue
                nonfinite_run = 0
                self.optimizer.step()
                sums["loss"] += float(loss.detach())
                sums["correct"] += float((logits.detach().argmax(1) == y).sum())
                sums["seen"] += float(y.numel())
                sums["steps"] += 1
                self._advance(bar)
                if self.step % c["log_every"] == 0 or self.step == end:
                    self._log_train(sums)
                    sums = {"loss": 0.0, "correct": 0.0, "seen": 0.0, "steps": 0}
                improved = False
                if self.val_samples and (self.step % eval_every == 0 or self.step == end):
                    improved = self.validate()
                if improved or self.step % c["checkpoint_every"] == 0 or self.step == end:
                    self.save(best=improved)
        except KeyboardInterrupt:
            self.log.warning("interrupted at step %d: saving a checkpoint to resume from", self.step)
            self.save()
            raise
        finally:
            bar.close()
        return self.finish()

    def _skip_nonfinite(self, in_a_row: int, loss: float, bar) -> int:
        """Skip an update whose gradients are not finite; stop, keeping the last finite weights,
        after `max_nonfinite` in a row."""
        self.counters["nonfinite_steps"] += 1
        self.counters["skipped_steps"] += 1
        self.log.warning("step %d: non-finite gradients (loss %.4g); update skipped (%d in a row)", self.step, loss, in_a_row)
        if in_a_row >= self.config["max_nonfinite"]:
            saved = self.save()
            raise FloatingPointError(f"training diverged: {in_a_row} steps in a row with non-finite gradients (up to "
                                     f"step {self.step}); {checkpoint_path(self.run_dir)} holds the last finite "
                                     f"weights{'' if saved else ' saved before'} — try a lower --lr")
        self._advance(bar)
        return in_a_row

    def _advance(self, bar):
        self.step += 1
        self.scheduler.step()
        bar.update(1)

    def _log_train(self, sums):
        values = {}
        if sums["steps"]:
            values = {"train/loss": sums["loss"] / sums["steps"], "train/accuracy": sums["correct"] / max(sums["seen"], 1)}
        values = distributed.mean_over_processes(values, self.ctx)
        values.update({f"count/{k}": distributed.sum_over_processes(v, self.ctx) for k, v in self.counters.items()})
        values["lr"] = float(self.scheduler.get_last_lr()[0])
        self.runlog.scalars(self.step, values)

    def validate(self) -> bool:
        """Score the validation part (main process); True when it is the best so far."""
        improved = False
        if self.ctx.is_main:
            from .evaluate import classify_samples
            result = classify_samples(self.net, self.val_samples, self.config["image_size"], self.device,
                                      self.config["eval_batch_size"], logger=self.log, runlog=self.runlog)
            self.net.train()
            figures = result["figures"]
            self.runlog.scalars(self.step, {"val/accuracy": figures["accuracy"], "val/macro_f1": figures["macro_f1"]})
            improved = figures["accuracy"] > self.best["val_accuracy"]
            if improved:
                self.best = {"val_accuracy": figures["accuracy"], "step": self.step}
        distributed.barrier(self.ctx)
        return improved

    def finish(self) -> dict:
        """Test figures (best checkpoint when there is a validation part, else the last weights),
        summary.json."""
        self.runlog.close()
        counters = {k: distributed.sum_over_processes(v, self.ctx) for k, v in self.counters.items()}
        summary = {"step": self.step, "total_steps": self.config["total_steps"], "arch": self.config["arch"],
                   "checkpoint": str(checkpoint_path(self.run_dir)), "world_size": self.ctx.world_size,
                   "best": self.best, **counters}
        if self.ctx.distributed:
            summary["replicas_agree"] = distributed.replicas_agree([self.net], self.ctx)
        done = self.step >= self.config["total_steps"]
        if self.ctx.is_main and self.test_samples and done:
            from .evaluate import classify_samples, write_figures
            best_path = checkpoint_path(self.run_dir).with_name(BEST)
            net = self.net
            if best_path.is_file():
                net = build_classifier(self.config).to(self.device)
                load_state_checked(net, load_checkpoint(best_path)["models"][MODEL_NAME], str(best_path))
                summary["test_checkpoint"] = str(best_path)
            result = classify_samples(net, self.test_samples, self.config["image_size"], self.device,
                                      self.config["eval_batch_size"], logger=self.log)
            write_figures(result, self.run_dir / "test", title=f"{self.config['arch']} test")
            summary["test"] = {k: result["figures"][k] for k in ("accuracy", "macro_f1", "per_class_accuracy", "images")}
            self.log.info("test: accuracy %.1f %%, macro F1 %.3f on %d images (%s)", 100 * result["figures"]["accuracy"],
                          result["figures"]["macro_f1"], result["figures"]["images"], self.run_dir / "test")
        if self.ctx.is_main:
            write_json(self.run_dir / "summary.json", summary)
        return summary


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    run_dir, state, saved = open_run(args.out, args.resume, (KIND,), "a classifier run")
    config = resolve_config(args, saved)
    ctx = distributed.setup(config["device"])
    logger = setup_logging(run_dir, ctx.is_main)
    try:
        trainer = ClassifierTrainer(config, run_dir, ctx, logger, state)
        summary = trainer.train()
        logger.info("done: %s", {k: v for k, v in summary.items() if k != "test"})
    finally:
        distributed.cleanup()
    return 0
