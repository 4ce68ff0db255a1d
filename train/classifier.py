"""`python -m train classifier`: the source-domain expression classifier C^s (paper sections 3.2, 4).

    python -m train classifier --data KDEF/ --backbone resnet18 --out runs/cls
    python -m train classifier --data bu3dfe/ --folds 5 --fold 0 --backbone vgg16 \\
        --init-weights vgg_face.pt --init-skip fc8 --out runs/bu_f0
    python -m train classifier --data drivers.csv --augment-with runs/cgit --per-class 1000 --real-share 0.5 --out runs/aug
        # add --augment-judge runs/small: only the CGIT images that classifier reads as their class;
        # add --augment-flips-crops: each CGIT image flipped and cropped as the baseline's copies are
    python -m train classifier --data runs/paired --augment-pairs --per-class 1000 --real-share 0.5 --out runs/aug
        # the faces' expression pairs (`train warp-pairs --out runs/paired`) as the added images
    python -m train classifier --resume runs/cls                       # continues exactly
    torchrun --nproc_per_node 4 -m train classifier ...                # DDP, one GPU (or CPU) each

The data is split by subject (train/val/test, or k folds) with a seed, and the split is written to
RUN_DIR/split.json (`--split FILE` reuses one); or give the parts yourself with --val-data and
--test-data. A run folder holds checkpoints/last.pt and best.pt (best validation accuracy),
split.json, train.log, metrics.csv/.jsonl, tensorboard/, bad_files.txt, init_weights.json,
augmented/ (the added images; judged.json with --augment-judge), test/ (metrics.json, confusion.png) and summary.json.
"""
import argparse
import math

import torch
import torch.nn.functional as F

from engines.contract import CLASSIFIER
from face.expressions import EXPRESSIONS, NUM_EXPRESSIONS

from . import distributed
from .cgit_augment import generate_augmentation, generate_flips_crops, generate_pair_copies
from .checkpoint import checkpoint_path, load_checkpoint, load_state_checked
from .classifier_nets import ARCHS, build_classifier, count_parameters, load_init_weights
from .data import ImageDataset
from .datasets import Sample, label_counts
from .datasets.face_crops import crop_faces
from .datasets.folder import index_labelled_folder
from .datasets.sources import add_data_arguments, load_samples, wants_face_crop
from .datasets.splits import check_parts_disjoint, run_split
from .run_setup import add_run_control_arguments
from .runlog import write_json
from .sampling import step_sampler
from .trainer import BEST, Trainer

SPLIT_FILE = "split.json"
ADDED = "augmented"  # the domain of the images augmentation adds to the training part
# What defines the run: a resumed run must keep these.
LOCKED = ("arch", "image_size", "width", "dropout", "batch_size", "lr", "weight_decay", "optimizer", "balanced", "flip", "crop",
          "seed", "epochs", "steps", "data", "val_data", "test_data", "data_options", "val_fraction", "test_fraction",
          "folds", "fold", "split_by_image", "init_weights", "init_skip", "augment_with", "augment_flips_crops", "augment_pairs", "per_class", "augment_from", "augment_judge", "real_share")
# How it runs: free to change on resume.
RUNTIME = ("device", "workers", "log_every", "eval_every", "checkpoint_every", "stop_after", "progress", "eval_batch_size",
           "max_nonfinite")
DEFAULTS = dict(arch=None, data=None, val_data=None, test_data=None, data_options={}, split=None, val_fraction=0.1,
                test_fraction=0.2, folds=None, fold=None, split_by_image=False, image_size=128, width=16,
                dropout=None, batch_size=32, lr=1e-4, weight_decay=5e-4, optimizer="adam", balanced=False, flip=True,
                crop=False, seed=0, epochs=30, steps=None, init_weights=None, init_skip="", augment_with=None, augment_flips_crops=False,
                augment_pairs=False, per_class=0, augment_from=None, augment_judge=None, real_share=None, device="auto", workers=2, log_every=20, eval_every=0, checkpoint_every=500,
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
    g.add_argument("--crop", action="store_true", default=None,
                   help="random square crops of 80–100 %% of the side, scaled back, on the fly (beside the flips)")
    g.add_argument("--seed", type=int)
    g = p.add_argument_group("CGIT data augmentation (paper table 3)")
    g.add_argument("--augment-with", metavar="CKPT", help="a CGIT checkpoint (kind cgit_generator) or its run folder")
    g.add_argument("--augment-flips-crops", action="store_true", default=None,
                   help="the baseline: --per-class N flipped and randomly cropped copies of the labelled training "
                        "images per expression; with --augment-with, the CGIT images flipped and cropped so")
    g.add_argument("--augment-pairs", action="store_true", default=None,
                   help="add the training faces' expression pairs (NAME.as-<expression>.png beside each image, as "
                        "`train warp-pairs` writes them) to the classes they show; with --augment-flips-crops each "
                        "flipped and cropped")
    g.add_argument("--per-class", type=int, help="images to generate per expression")
    g.add_argument("--augment-from", help="images the generator translates (default: the CGIT run's target folder)")
    g.add_argument("--augment-judge", metavar="CLASSIFIER",
                   help="keep only the CGIT images this classifier (checkpoint or run folder; e.g. one trained on the "
                        "labelled set alone) reads as the class they were made for")
    g.add_argument("--real-share", type=float, metavar="F",
                   help="draw the labelled images for this share of every batch and the added ones for the rest "
                        "(default: one pool, every image alike, so thousands of added images crowd out the labelled ones)")
    g = p.add_argument_group("how it runs (may change on --resume)")
    add_run_control_arguments(g, DEFAULTS)
    g.add_argument("--eval-every", type=int, help="steps between validations (0: once an epoch)")
    g.add_argument("--eval-batch-size", type=int, help=f"({DEFAULTS['eval_batch_size']})")
    return p


class ClassifierTrainer(Trainer):
    """One backbone and its optimiser, the split labelled data, validation and the test figures."""

    KINDS = (CLASSIFIER,)
    WHAT = "a classifier run"
    MODEL_NAME = "classifier"
    LOCKED, RUNTIME, DEFAULTS = LOCKED, RUNTIME, DEFAULTS
    PATHS = ("data", "val_data", "test_data", "split", "init_weights", "augment_with", "augment_from", "augment_judge")
    RANGES = dict(dropout=(0, 1), weight_decay=(0, None), epochs=(1, None), val_fraction=(0, 1), test_fraction=(0, 1),
                  folds=(2, None), fold=(0, None), per_class=(0, None), eval_every=(0, None), eval_batch_size=(1, None),
                  real_share=(0, 1))

    build_parser = staticmethod(build_parser)

    @classmethod
    def check_config(cls, config: dict, new_run: bool) -> None:
        if new_run and (not config["data"] or not config["arch"]):
            raise SystemExit("error: a new run needs --data, --backbone and --out (or --resume RUN_DIR)")
        if config["image_size"] % 32 or config["image_size"] < 32:
            raise SystemExit(f"error: --image-size must be a multiple of 32 and >= 32, got {config['image_size']}")
        augmenting = bool(config["augment_with"] or config["augment_flips_crops"] or config["augment_pairs"])
        if augmenting != bool(config["per_class"]):
            raise SystemExit("error: --augment-with CKPT (or --augment-pairs, or --augment-flips-crops) and --per-class N "
                             "go together")
        if config["augment_with"] and config["augment_pairs"]:
            raise SystemExit("error: --augment-with CKPT and --augment-pairs each say what the added images are: give one")
        if config["augment_judge"] and not config["augment_with"]:
            raise SystemExit("error: --augment-judge sorts CGIT images: give it with --augment-with CKPT")
        if config["real_share"] is not None and not augmenting:
            raise SystemExit("error: --real-share is a share of each batch left to the labelled images: give it with "
                             "--augment-with, --augment-pairs or --augment-flips-crops")
        if (config["folds"] is None) != (config["fold"] is None):
            raise SystemExit("error: --folds K and --fold I go together")

    @classmethod
    def implied_settings(cls, config: dict) -> dict:
        implied = {"num_classes": NUM_EXPRESSIONS, "classes": list(EXPRESSIONS)}
        if config["arch"] != "small":
            implied["width"] = None  # only the small backbone has a width; the others are fixed architectures
        return implied

    def __init__(self, *args, **kwargs):
        self.best = {"val_accuracy": -1.0, "step": 0}  # the best validation so far, kept in best.pt
        super().__init__(*args, **kwargs)

    # ---- data ----------------------------------------------------------------------------
    def _load_parts(self) -> dict[str, list[Sample]]:
        """train/val/test samples: parts given apart, or split by subject (see run_split)."""
        c = self.config
        options = c["data_options"]
        samples, fmt = load_samples(c["data"], options)
        self.run_state["data_format"] = fmt
        if c["val_data"] or c["test_data"]:
            parts = {"train": samples, "val": [], "test": []}
            for part in ("val", "test"):
                if c[f"{part}_data"]:
                    parts[part] = load_samples(c[f"{part}_data"], options)[0]
            check_parts_disjoint(parts)
        else:
            parts, split = run_split(samples, self.run_dir / SPLIT_FILE, reuse=c.get("split"), write=self.ctx.is_main,
                                     val_fraction=c["val_fraction"], test_fraction=c["test_fraction"], seed=c["seed"],
                                     k=c["folds"], fold=c["fold"], by_image=bool(c["split_by_image"]))
            self.log.info("split by subject: %s", ", ".join(f"{k} {len(v)} subjects" for k, v in split["subjects"].items()))
        if wants_face_crop(fmt, options):
            for part in parts:
                if parts[part]:
                    parts[part], counts = crop_faces(parts[part], self.run_dir / "cache", c["image_size"],
                                                     progress=c["progress"] and self.ctx.is_main)
                    self.log.info("%s face crops: %s", part, counts)
        return parts

    def build_data(self, saved: dict) -> None:
        c = self.config
        parts = self._load_parts()
        train = parts["train"]
        train_classes = sorted({s.label for s in train})
        if c["augment_with"] or c["augment_flips_crops"] or c["augment_pairs"]:
            if self.ctx.is_main and c["augment_with"]:
                generate_augmentation(self.run_dir, train_classes, checkpoint=c["augment_with"],
                                      per_class=c["per_class"], seed=c["seed"], inputs=c["augment_from"],
                                      judge=c["augment_judge"], flips_crops=bool(c["augment_flips_crops"]),
                                      device=self.device, logger=self.log, progress=c["progress"])
            elif self.ctx.is_main and c["augment_pairs"]:
                generate_pair_copies(self.run_dir, train, per_class=c["per_class"], seed=c["seed"], size=c["image_size"],
                                     flips_crops=bool(c["augment_flips_crops"]), logger=self.log)
            elif self.ctx.is_main:
                generate_flips_crops(self.run_dir, train, per_class=c["per_class"], seed=c["seed"],
                                     size=c["image_size"], logger=self.log)
            distributed.barrier(self.ctx)
            train = train + index_labelled_folder(self.run_dir / "augmented", domain=ADDED)
        for name, samples in (("train", train), ("val", parts["val"]), ("test", parts["test"])):
            self.note_data(name, samples, saved)
            self.run_state[f"{name}_classes"] = label_counts(samples)
        missing = [EXPRESSIONS[k] for k in sorted({s.label for s in parts["val"] + parts["test"]}) if k not in train_classes]
        if missing:
            self.log.warning("classes in the val/test data but not in training: %s", ", ".join(missing))
        self.train_set = ImageDataset(train, c["image_size"])
        self.val_samples, self.test_samples = parts["val"], parts["test"]

    def plan_steps(self) -> dict:
        c = self.config
        steps_per_epoch = max(1, math.ceil(len(self.train_set) / (c["batch_size"] * self.ctx.world_size)))
        return {"steps_per_epoch": steps_per_epoch, "total_steps": int(c["steps"] or c["epochs"] * steps_per_epoch)}

    def step_batches(self, start: int, count: int):
        samples = self.train_set.samples
        sampler = step_sampler([s.label for s in samples], self.config["batch_size"], self.config["balanced"],
                               added=[s.domain == ADDED for s in samples], real_share=self.config["real_share"],
                               **self.sampler_options(0, start, count))
        return ((batch,) for batch in self.loader(self.train_set, sampler))

    # ---- the network ---------------------------------------------------------------------
    def build_model(self) -> None:
        c = self.config
        torch.manual_seed(c["seed"])
        self.net = build_classifier(c).to(self.device)
        if c["init_weights"] and not self.resumed and self.ctx.is_main:
            skip = [s.strip() for s in c["init_skip"].split(",")]
            report = load_init_weights(self.net, c["init_weights"], skip)
            write_json(self.run_dir / "init_weights.json", report)
            self.log.info("init weights %s: %d tensors matched, %d skipped on purpose, %d left at initialisation, "
                          "%d in the file unused (list: init_weights.json)", c["init_weights"], len(report["matched"]),
                          len(report["skipped"]), len(report["missing"]), len(report["unused"]))
        self.model = distributed.wrap(self.net, self.ctx)  # DDP starts every process from the main one's weights
        if c["optimizer"] == "sgd":
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=c["lr"], momentum=0.9,
                                             weight_decay=c["weight_decay"])
        else:
            self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        total = self.total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)))

    def models(self) -> dict:
        return {self.MODEL_NAME: self.net}

    def optimizers(self) -> dict:
        return {self.MODEL_NAME: self.optimizer}

    def schedulers(self) -> dict:
        return {self.MODEL_NAME: self.scheduler}

    def extra_state(self) -> dict:
        return {"best": dict(self.best)}

    def load_extra(self, extra: dict) -> None:
        self.best.update({k: float(v) if k == "val_accuracy" else int(v) for k, v in extra.get("best", {}).items()})

    def can_save(self) -> bool:
        """Never over finite weights with non-finite ones (a non-finite forward spoils the batch-norm
        statistics even when its update is skipped)."""
        if all(torch.isfinite(t).all() for t in self.net.state_dict().values() if t.is_floating_point()):
            return True
        self.log.error("step %d: the weights or batch-norm statistics are no longer finite; not overwriting %s",
                       self.step, checkpoint_path(self.run_dir))
        return False

    # ---- the step ------------------------------------------------------------------------
    def describe(self, end: int) -> None:
        c, run = self.config, self.run_state
        self.log.info("%s (%d parameters): %d train, %d val, %d test images; steps %d→%d of %d (%d per epoch); %s, "
                      "world %d%s", c["arch"], count_parameters(self.net), run["train_count"], run["val_count"],
                      run["test_count"], self.step, end, self.total_steps, run["steps_per_epoch"], self.device,
                      self.ctx.world_size, ", class-balanced" if c["balanced"] else "")

    def train_step(self, batches) -> str | None:
        (batch,) = batches
        x = batch["image"].to(self.device, non_blocking=True)
        y = batch["label"].to(self.device, non_blocking=True)
        logits, _ = self.model(x)
        loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # Gradients are all-reduced under DDP, so every process reaches the same verdict.
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), float("inf"))
        if not torch.isfinite(grad_norm):
            return f"loss {float(loss.detach()):.4g}"
        self.optimizer.step()
        self.tally({"loss": float(loss.detach()), "correct": float((logits.detach().argmax(1) == y).sum()),
                    "seen": float(y.numel())})
        return None

    def figures(self, sums: dict, steps: int) -> dict:
        return {"train/loss": sums["loss"] / steps, "train/accuracy": sums["correct"] / max(sums["seen"], 1)}

    def after_step(self, end: int, updated: bool) -> None:
        if not updated:
            return  # a skipped update leaves nothing new to log, score or save
        c = self.config
        if self.due(c["log_every"], end):
            self.write_row()
        improved = False
        if self.val_samples and self.due(c["eval_every"] or self.run_state["steps_per_epoch"], end):
            improved = self.validate()
        if improved or self.due(c["checkpoint_every"], end):
            self.save(best=improved)

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

    # ---- the end -------------------------------------------------------------------------
    def results(self) -> dict:
        """The test figures (of best.pt when there is a validation part, else of the last weights)."""
        results = {"arch": self.config["arch"], "best": self.best}
        if not (self.ctx.is_main and self.test_samples and self.step >= self.total_steps):
            return results
        from .evaluate import classify_samples, write_figures
        best_path = checkpoint_path(self.run_dir).with_name(BEST)
        net = self.net
        if best_path.is_file():
            net = build_classifier(self.config).to(self.device)
            load_state_checked(net, load_checkpoint(best_path)["models"][self.MODEL_NAME], str(best_path))
            results["test_checkpoint"] = str(best_path)
        result = classify_samples(net, self.test_samples, self.config["image_size"], self.device,
                                  self.config["eval_batch_size"], logger=self.log)
        figures = result["figures"]
        write_figures(result, self.run_dir / "test", title=f"{self.config['arch']} test")
        results["test"] = {k: figures[k] for k in ("accuracy", "macro_f1", "per_class_accuracy", "images")}
        self.log.info("test: accuracy %.1f %%, macro F1 %.3f on %d images (%s)", 100 * figures["accuracy"],
                      figures["macro_f1"], figures["images"], self.run_dir / "test")
        return results


def main(argv=None) -> int:
    return ClassifierTrainer.main(argv)
