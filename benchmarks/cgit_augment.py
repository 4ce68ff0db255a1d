"""CGIT data augmentation as the paper's table 3 measures it: `python -m benchmarks.cgit_augment`, one JSON line.

A small labelled source set (`--labelled-per-class`, drawn anew per training seed from `--source`)
trains the source classifier in several ways (arms), every one for the same number of steps (but see `--added-passes`):
  none           the small set alone (horizontal flips on the fly, as always)
  flips_crops N  + N plain flipped and cropped copies per class (the baseline augmentation)
  cgit N         + N CGIT images per class: a CGIT generator, trained on the small set (labelled
                 source) and the unlabelled `--target` faces (the simulated renders: new people),
                 translates those faces into each expression
  cgit_judged N  (with `--kinds ... cgit_judged`) the same generator's images, only those that the `none`
                 classifier of the first count (the small set alone) reads as the class they were made
                 for (`train classifier --augment-judge`): the label noise sorted out with no new label;
                 `cgit_judged_kept` is the share of a class's images it kept, and
                 `cgit_judged_distinct_per_class` how many different ones, at the largest count
  cgit_flips_crops N  (with `--kinds ... cgit_flips_crops`) the same generator's images, each flipped and
                 cropped as the flips_crops copies are (`train classifier --augment-with CKPT
                 --augment-flips-crops`): what CGIT adds on top of the plain augmentation
  warp N         (with `--kinds ... warp`) + N expression warp pairs per class: the small set's own faces,
                 each warped by the face stage into the six other expressions (`train warp-pairs`, then
                 `train classifier --augment-pairs`); no generator, no unlabelled faces (beyond the paper)
With `--cgit-lambda-pair L` each CGIT is trained with expression pairs (beyond the paper): the target renders, each
warped into the seven classes by the small set's own geometry (`train warp-pairs --unlabelled --targets`).
With `--cgit-lambda-sem L` each CGIT is also trained with the frozen classifier's term (CyCADA; beyond the paper): the
frozen classifier is that replicate's own `none` classifier of the first count (the small set alone, trained without
crops, so that one generator serves both protocols), so no label beyond the small set's is used.
for N in `--counts` (paper: 1K, 2K, 5K). With `--crop` every classifier, `none` too, trains with random crops
on the fly (`train classifier --crop`): what an augmentation adds on top of the usual jitter. The added images fill half of every batch and the small set
the other half (`--real-share`, the classifier's flag; `--real-share pooled`: one pool, in which the
few labelled images are drawn almost never). At a fixed step count a classifier draws only so many
added images (600 steps of 32, half of them added: 1,371 per class), so past that count more images
cannot change anything; `--added-passes P` trains the arms of count N long enough for every added
image to be drawn P times on average, and then `none` is trained at each of those lengths too
(`none N`: the same steps as the arms it is paired with). The classifiers are tested on source-domain faces of
held-out drivers (`--heldout-seeds`, one per training seed, drawn by `train synth`). Every row is
mean ± std over the replicates (training seed i with held-out seed i), and each arm's paired
difference with `none` per replicate. With `--reader CLASSIFIER` (one no generator was trained against),
each replicate's CGIT images at the first count are also read by it (every count is made by the same
generator from the same inputs): the share read as the class they were made for says how true the added
labels are (`cgit_read_as_asked`). The generator is deterministic, so a class holds at most as many
different CGIT images as it translates faces: `--target`'s, or `--cgit-inputs DIR` (`cgit_inputs`;
`cgit_distinct_per_class` per count).

Everything runs through the project's own commands (`train synth`, `train exprada --mode cgit`,
`train classifier`), each in its own run folder under OUT: a rerun skips what is finished and
resumes what is not. Writes OUT/table3_real<share>[_passes<P>][_w<W>][_cls<L>][_pair<L>][_sem<L>][_inputs-…][_judged][_cgitcrops][_warp][_crop].json
and .png (OUT/table3.json and .png when pooled; _w, _cls, _pair and _sem name a CGIT other than the recipe's,
`--cgit-width` / `--cgit-lambda-cls` / `--cgit-lambda-pair` / `--cgit-lambda-sem`).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.cli import exit_status
from benchmarks.paper_table4 import mean_std
from face.expressions import EXPRESSIONS
from face.outputs import writable_folder
from face.ranges import Range, at_least
from train.cgit_augment import INPUT_DOMAIN
from train.classifier import DEFAULTS as CLASSIFIER_DEFAULTS
from train.datasets import SIDE_MAP_SUFFIX
from train.datasets.folder import index_labelled_folder, index_unlabelled_folder
from train.eval_plots import pyplot, save

# The CGIT recipe: the paper's losses (eq. 1–6, its λs) with the levers the UIT benchmark kept
# (skips, residual output, EMA) and the four that make CGIT transfer here (the one-hot at the input,
# grey output, spectral norm, an expression head that reads the image alone); the README's CGIT
# section says what each measured. Width and λ_cls are `--cgit-width` / `--cgit-lambda-cls`.
CGIT_FLAGS = ["--image-size", "64", "--lr", "2e-4", "--skips", "--residual", "--ema", "0.99",
              "--condition", "input", "--grey", "--spectral-norm", "--class-from-image"]
# the CPU width; the paper's λ_cls; no pairs; no frozen classifier's term
CGIT_DEFAULTS = dict(width=8, lambda_cls=1.0, lambda_pair=0.0, lambda_sem=0.0)
POOLED = "pooled"
SHARE = Range(0, 1)
CLASSIFIER_FLAGS = ["--backbone", "small", "--image-size", "64", "--balanced", "--split-by-image",
                    "--val-fraction", "0", "--test-fraction", "0"]


def run_command(args: list[str], log: Path) -> None:
    """One project command in its own process (as a user runs it), its output in LOG."""
    with log.open("a") as out:
        done = subprocess.run([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode:
        raise SystemExit(f"error: `python -m {' '.join(args[:2])} …` failed (exit {done.returncode}); see {log}")


def finished(run: Path) -> bool:
    """The run's summary says it reached its last step (an interrupted run writes one too)."""
    path = run / "summary.json"
    if not path.is_file():
        return False
    summary = json.loads(path.read_text())
    return summary["step"] >= summary["total_steps"]


def train_run(run: Path, new_args: list[str], log: Path) -> bool:
    """A trainer's run: skipped when finished (False), resumed when started, else begun."""
    if finished(run):
        return False
    if (run / "checkpoints" / "last.pt").is_file():
        run_command([new_args[0], new_args[1], "--resume", str(run), "--no-progress"], log)
    else:
        run_command([*new_args, "--out", str(run), "--no-progress"], log)
    return True


def small_labelled_set(source: Path, out: Path, per_class: int, seed: int) -> Path:
    """OUT: `per_class` images per expression from SOURCE, drawn by `seed`, linked (with their side maps)."""
    if (out / "done").is_file():
        return out
    samples = index_labelled_folder(source, domain="source")
    rng = np.random.default_rng(seed)
    for label in sorted({s.label for s in samples}):
        members = [s for s in samples if s.label == label]
        if len(members) < per_class:
            raise SystemExit(f"error: {source} has {len(members)} {EXPRESSIONS[label]} images, fewer than "
                             f"--labelled-per-class {per_class}")
        folder = out / EXPRESSIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        for k in rng.choice(len(members), per_class, replace=False):
            path = members[int(k)].path
            for src in (path, path.with_name(path.stem + SIDE_MAP_SUFFIX)):
                if src.is_file() and not (folder / src.name).exists():
                    (folder / src.name).symlink_to(src.resolve())
    (out / "done").write_text("")
    return out


def real_share(text: str):
    """`--real-share`: a share between 0 and 1, or `pooled`."""
    if text == POOLED:
        return POOLED
    try:
        why = SHARE.refusal(share := float(text))
    except ValueError:
        why = f"must be a number, got {text!r}"
    if why:
        raise argparse.ArgumentTypeError(f"{why} (or {POOLED!r})")
    return share


def share_suffix(share) -> str:
    """Run folders and outputs of a held share are named apart; the pooled ones keep the plain names."""
    return "" if share == POOLED else f"_real{share:g}"


def arm_steps(args, count: int) -> int:
    """Classifier steps of the arms that add COUNT images per class: `--classifier-steps`, or with
    `--added-passes P` enough for every added image to be drawn P times on average (never fewer)."""
    if not args.added_passes:
        return args.classifier_steps
    added_per_batch = CLASSIFIER_DEFAULTS["batch_size"] * (1.0 - args.real_share)
    return max(args.classifier_steps, math.ceil(args.added_passes * count * len(EXPRESSIONS) / added_per_batch))


KINDS = ("flips_crops", "cgit", "cgit_judged", "cgit_flips_crops", "warp")   # the augmentations an arm can add (`--kinds`)
CGIT_KINDS = ("cgit", "cgit_judged", "cgit_flips_crops")


def arms_of(args) -> list[str]:
    """The table's rows: `none` (one per count when the counts train for different lengths), then the
    arms of each of `--kinds` per count."""
    nones = [f"none {n}" for n in args.counts] if args.added_passes else ["none"]
    return [*nones, *(f"{kind} {n}" for kind in args.kinds for n in args.counts)]


def classifier_run(out: Path, seed: int, arm: str, args) -> Path:
    """The run folder of an arm ("none", "none N" or "KIND N") for training seed `seed`."""
    kind, _, n = arm.partition(" ")
    name = f"classifier_s{seed}_{kind}"
    if kind != "none":
        name += n + share_suffix(args.real_share) + (cgit_tag(args) + inputs_tag(args) if kind in CGIT_KINDS else "")
    name += "_crop" if args.crop else ""
    return out / (f"{name}_steps{arm_steps(args, int(n)) if n else args.classifier_steps}" if args.added_passes else name)


def none_run(out: Path, seed: int, args) -> Path:
    """The run folder of the `none` arm paired with the first count: the classifier of the small set alone."""
    return classifier_run(out, seed, first_none(args), args)


def first_none(args) -> str:
    """The arm of the small set alone that is paired with the first count."""
    return f"none {args.counts[0]}" if args.added_passes else "none"


def semantic_args(args) -> argparse.Namespace:
    """The settings of the classifier the frozen-classifier term reads: the first count's `none`, never cropped."""
    return argparse.Namespace(**{**vars(args), "crop": False})


def cgit_flags(args) -> list[str]:
    return [*CGIT_FLAGS, "--width", str(args.cgit_width), "--lambda-cls", f"{args.cgit_lambda_cls:g}",
            *(["--lambda-pair", f"{args.cgit_lambda_pair:g}"] if args.cgit_lambda_pair else []),
            *(["--lambda-sem", f"{args.cgit_lambda_sem:g}", "--lambda-sem-target", f"{args.cgit_lambda_sem:g}"]
              if args.cgit_lambda_sem else [])]


# Each CGIT setting the benchmark can change: its key in CGIT_DEFAULTS (and `--cgit-<key>`), its name on the
# chart, its tag in run folders and outputs.
CGIT_SETTINGS = (("width", "width", "_w"), ("lambda_cls", "λ_cls", "_cls"), ("lambda_pair", "λ_pair", "_pair"),
                 ("lambda_sem", "λ_sem", "_sem"))


def changed_cgit_settings(args) -> list[tuple[str, str, float]]:
    """(chart name, tag, value) of every CGIT setting that differs from the recipe's."""
    return [(name, tag, value) for key, name, tag in CGIT_SETTINGS
            if (value := getattr(args, f"cgit_{key}")) != CGIT_DEFAULTS[key]]


def cgit_tag(args) -> str:
    """Runs of a CGIT other than the recipe's are named apart (the recipe's keep the plain names)."""
    return "".join(f"{tag}{value:g}" for _, tag, value in changed_cgit_settings(args))


def cgit_label(args) -> str:
    """The chart's name for the CGIT arms: "CGIT", with what differs from the recipe's in brackets."""
    changed = [f"{name} {value:g}" for name, _, value in changed_cgit_settings(args)]
    return "CGIT" + (f" ({', '.join(changed)})" if changed else "")


def inputs_tag(args) -> str:
    """CGIT arms that translate other faces than their generator's own target (`--cgit-inputs`) are named
    apart, by the folder's last two parts (`cache/synth64_more/target` → `_inputs-synth64_more-target`)."""
    return "" if args.cgit_inputs is None else "_inputs-" + "-".join(Path(args.cgit_inputs).resolve().parts[-2:])


def output_name(args) -> str:
    return (f"table3{share_suffix(args.real_share)}" + (f"_passes{args.added_passes:g}" if args.added_passes else "")
            + cgit_tag(args) + inputs_tag(args) + ("_judged" if "cgit_judged" in args.kinds else "")
            + ("_cgitcrops" if "cgit_flips_crops" in args.kinds else "") + ("_warp" if "warp" in args.kinds else "")
            + ("_crop" if args.crop else ""))


def test_accuracy(run: Path) -> float:
    summary = json.loads((run / "summary.json").read_text())
    return float(summary["test"]["accuracy"])


def read_as_asked(reader: str, run: Path, log: Path) -> float:
    """The share of a CGIT arm's generated images (RUN/augmented/<class>/) that READER, a classifier no
    generator was trained against, reads as the class they were made for: how true their labels are."""
    out = run.parent / f"read_{run.name}"
    if not (out / "metrics.json").is_file():
        run_command(["train", "evaluate", "--classifier", reader, "--data", str(run / "augmented"), "--out", str(out),
                     "--no-tsne", "--no-progress"], log)
    return float(json.loads((out / "metrics.json").read_text())["accuracy"]["mean"])


def run(args) -> dict:
    out = writable_folder(args.out, f"--out {args.out}")
    log = out / "commands.log"
    started = time.perf_counter()
    arms = arms_of(args)
    accuracy = {arm: [] for arm in arms}
    # per replicate: the share of its images the reader reads as asked (the cropped ones are not the generator's own)
    read = {kind: [] for kind in ("cgit", "cgit_judged")}
    kept = []   # per replicate: the share of a class's CGIT images the judge kept (mean over classes)
    kept_per_class = []   # per replicate: the distinct images each class kept
    cgit_seconds = []
    warp_pairs = []   # per replicate: how many faces of the small set the warp paired (expressions.json)
    uses_cgit = any(kind in CGIT_KINDS for kind in args.kinds)
    translate = ["--augment-from", args.cgit_inputs] if args.cgit_inputs else []   # default: the CGIT's target
    inputs = None
    if uses_cgit:   # the faces are counted first, so that a wrong folder costs nothing
        faces = {folder: len(index_unlabelled_folder(folder, domain=INPUT_DOMAIN))
                 for folder in (args.target, args.cgit_inputs) if folder}
        inputs = faces[args.cgit_inputs or args.target]
    for seed, heldout in zip(args.seeds, args.heldout_seeds):
        test = out / f"heldout_{heldout}"
        if not (test / "manifest.json").is_file():
            run_command(["train", "synth", "--out", str(test), "--seed", str(heldout), "--per-class",
                         str(args.test_per_class), "--target-per-class", "0", "--video-seconds", "0",
                         "--drivers", str(args.test_drivers), "--size", "64", "--no-progress"], log)
        small = small_labelled_set(Path(args.source), out / f"labelled_s{seed}", args.labelled_per_class, seed)
        warped = out / f"labelled_s{seed}_warp"   # the small set again, its warp pairs beside each face
        if "warp" in args.kinds or (uses_cgit and args.cgit_lambda_pair):
            if not (warped / "expressions.json").is_file():
                run_command(["train", "warp-pairs", "--data", str(small), "--out", str(warped), "--seed", str(seed),
                             "--no-progress"], log)
            warp_pairs.append(json.loads((warped / "expressions.json").read_text())["counts"])
        cgit = out / f"cgit_s{seed}{cgit_tag(args)}"
        common = ["train", "classifier", "--test-data", str(test / "source"), "--seed", str(seed), *CLASSIFIER_FLAGS]

        def train_arm(arm: str, settings) -> Path:
            kind, _, n = arm.partition(" ")
            steps = arm_steps(settings, int(n)) if n else settings.classifier_steps
            extra = {"none": [], "flips_crops": ["--augment-flips-crops", "--per-class", n],
                     "cgit": ["--augment-with", str(cgit), *translate, "--per-class", n],
                     "cgit_judged": ["--augment-with", str(cgit), *translate, "--per-class", n,
                                     "--augment-judge", str(none_run(out, seed, settings))],
                     "cgit_flips_crops": ["--augment-with", str(cgit), *translate, "--augment-flips-crops",
                                          "--per-class", n],
                     "warp": ["--augment-pairs", "--per-class", n]}[kind]
            extra += ["--data", str(warped if kind == "warp" else small)]
            if kind != "none" and share_suffix(settings.real_share):
                extra += ["--real-share", str(settings.real_share)]
            run_dir = classifier_run(out, seed, arm, settings)
            train_run(run_dir, [*common, "--steps", str(steps), *extra, *(["--crop"] if settings.crop else [])], log)
            return run_dir

        if uses_cgit:
            target = args.target
            if args.cgit_lambda_pair:   # the renders, each with its warps into the seven classes of this small set
                target = out / f"target_s{seed}_warp"
                if not (target / "expressions.json").is_file():
                    run_command(["train", "warp-pairs", "--data", args.target, "--unlabelled", "--targets",
                                 str(warped / "expressions.json"), "--out", str(target), "--no-progress"], log)
            semantic = []
            if args.cgit_lambda_sem:   # the frozen classifier: the small set's own, trained first
                semantic = ["--semantic-classifier", str(train_arm(first_none(args), semantic_args(args)))]
            t0 = time.perf_counter()
            trained = train_run(cgit, ["train", "exprada", "--mode", "cgit", "--source", str(small), "--target",
                                       str(target), "--steps", str(args.cgit_steps), "--seed", str(seed),
                                       *cgit_flags(args), *semantic], log)
            cgit_seconds.append(round(time.perf_counter() - t0, 1) if trained else None)   # None: reused, not timed
        for arm in arms:
            kind, _, n = arm.partition(" ")
            run_dir = train_arm(arm, args)
            accuracy[arm].append(test_accuracy(run_dir))
            if args.reader and kind in read and int(n) == args.counts[0]:
                read[kind].append(read_as_asked(args.reader, run_dir, log))
            if kind == "cgit_judged" and int(n) == args.counts[-1]:   # the largest count: most inputs tried
                judged = json.loads((run_dir / "augmented" / "judged.json").read_text())
                kept.append(np.mean([c["kept"] / c["tried"] for c in judged.values()]))
                kept_per_class.append({name: c["kept"] for name, c in judged.items()})
    table = {arm: mean_std(values) for arm, values in accuracy.items()}

    def baseline(arm: str) -> str:
        return f"none {arm.partition(' ')[2]}" if args.added_passes else "none"

    paired = {f"{arm} - {baseline(arm)}": mean_std(np.subtract(accuracy[arm], accuracy[baseline(arm)]))
              for arm in arms if not arm.startswith("none")}
    result = {"benchmark": "cgit_augment", "seeds": args.seeds, "heldout_seeds": args.heldout_seeds,
              "labelled_per_class": args.labelled_per_class, "counts": args.counts, "cgit_steps": args.cgit_steps,
              "cgit_width": args.cgit_width, "cgit_lambda_cls": args.cgit_lambda_cls,
              "cgit_lambda_pair": args.cgit_lambda_pair, "cgit_lambda_sem": args.cgit_lambda_sem,
              "classifier_steps": args.classifier_steps, "real_share": args.real_share,
              "added_passes": args.added_passes, "steps": {n: arm_steps(args, n) for n in args.counts},
              "source": str(args.source), "target": str(args.target), "cgit_inputs_from": args.cgit_inputs or args.target,
              "cgit_inputs": inputs,
              "cgit_distinct_per_class": {n: min(n, inputs) for n in args.counts} if uses_cgit else None,
              "accuracy": table, "paired": paired,
              "cgit_read_as_asked": mean_std(read["cgit"]) if read["cgit"] else None,
              "cgit_judged_read_as_asked": mean_std(read["cgit_judged"]) if read["cgit_judged"] else None,
              "cgit_judged_kept": mean_std(kept) if kept else None,
              "cgit_judged_distinct_per_class": kept_per_class or None,
              "cgit_training_seconds": cgit_seconds, "warp_pairs": warp_pairs or None,
              "seconds": round(time.perf_counter() - started, 1)}
    name = output_name(args)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    chart(table, args.counts, out / f"{name}.png", f"{args.labelled_per_class} labelled per class, seeds {args.seeds},\n"
          f"labelled share of a batch: {args.real_share}"
          + (f", {args.added_passes:g} passes over the added images" if args.added_passes else "")
          + (",\nevery classifier with random crops on the fly" if args.crop else ""), cgit_label(args))
    return result


def chart(table: dict, counts, path: Path, title: str, cgit: str = "CGIT"):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    if "none" in table:
        none = table["none"]
        ax.axhline(none["mean"], color="grey", linestyle="--", label=f"no augmentation {none['mean']:.1f}")
    kinds = [kind for kind in ("none", *KINDS) if f"{kind} {counts[0]}" in table]
    for kind in kinds:
        means = [table[f"{kind} {n}"]["mean"] for n in counts]
        stds = [table[f"{kind} {n}"]["std"] for n in counts]
        label = {"none": "no augmentation (same steps)", "flips_crops": "flips and crops", "cgit": cgit,
                 "cgit_judged": f"{cgit}, judged", "cgit_flips_crops": f"{cgit}, flipped and cropped",
                 "warp": "expression warp pairs"}[kind]
        ax.errorbar(counts, means, yerr=stds, marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.minorticks_off()   # the log axis' own minor labels (3×10³ …) beside the counts only clutter it
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.set_xlabel("added images per class")
    ax.set_ylabel("held-out accuracy % (mean ± std)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(plt, fig, path, dpi=120)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks.cgit_augment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="cache/synth64/source",
                   help="labelled source folder the small sets are drawn from (default: %(default)s)")
    p.add_argument("--target", default="cache/synth64/target",
                   help="unlabelled faces CGIT trains on and translates (default: %(default)s)")
    p.add_argument("--labelled-per-class", type=at_least(1), default=20, help="(default: %(default)s)")
    p.add_argument("--counts", type=at_least(1), nargs="+", default=[1000, 2000, 5000],
                   help="added images per class (default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9], help="training seeds (default: %(default)s)")
    p.add_argument("--heldout-seeds", type=int, nargs="+", default=[101, 102, 103],
                   help="held-out driver seeds, one per training seed (default: %(default)s)")
    p.add_argument("--test-per-class", type=at_least(1), default=40, help="held-out faces per class (default: %(default)s)")
    p.add_argument("--test-drivers", type=at_least(1), default=8, help="(default: %(default)s)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=["flips_crops", "cgit"],
                   help="the augmentations to compare with none (default: %(default)s)")
    p.add_argument("--cgit-steps", type=at_least(1), default=1200, help="(default: %(default)s)")
    p.add_argument("--cgit-width", type=at_least(1), default=CGIT_DEFAULTS["width"],
                   help="the CGIT generator's base width (default: %(default)s)")
    p.add_argument("--cgit-lambda-cls", type=at_least(0, float), default=CGIT_DEFAULTS["lambda_cls"],
                   help="the CGIT's class term weight λ_cls (default: the paper's %(default)s)")
    p.add_argument("--cgit-lambda-pair", type=at_least(0, float), default=CGIT_DEFAULTS["lambda_pair"],
                   help="train each CGIT with expression pairs at this weight (0: none, the paper's): the unlabelled "
                        "renders warped into the seven classes by the geometry of that replicate's small set (`train "
                        "warp-pairs --unlabelled --targets`; beyond the paper) (default: %(default)s)")
    p.add_argument("--cgit-lambda-sem", type=at_least(0, float), default=CGIT_DEFAULTS["lambda_sem"],
                   help="train each CGIT with the frozen classifier's term at this weight (both parts; 0: off, the "
                        "paper's), the frozen classifier being that replicate's own `none` classifier of the first count, "
                        "trained without crops (CyCADA; beyond the paper) (default: %(default)s)")
    p.add_argument("--cgit-inputs", default=None, metavar="DIR",
                   help="unlabelled faces the CGIT arms translate (`train classifier --augment-from`; default: "
                        "--target, the faces each CGIT trained on): more faces than a count asks for make every image "
                        "of that count a different one; the CGIT arms' runs and the output named apart")
    p.add_argument("--classifier-steps", type=at_least(1), default=600,
                   help="steps of every classifier, whatever its data (default: %(default)s)")
    p.add_argument("--real-share", type=real_share, default=0.5,
                   help="share of every batch drawn from the labelled images in the augmented arms, or "
                        f"{POOLED!r} (default: %(default)s)")
    p.add_argument("--added-passes", type=at_least(0, float), default=0.0,
                   help="train the arms of count N until every added image is drawn this many times on average "
                        "(and `none` as long beside each); 0: every arm --classifier-steps (default: %(default)s)")
    p.add_argument("--crop", action="store_true",
                   help="every classifier (none too) trained with random crops on the fly (`train classifier --crop`): "
                        "what augmentation adds on top of the usual jitter; its runs and output named apart")
    p.add_argument("--reader", default=None,
                   help="a classifier (run folder or checkpoint) no generator was trained against: reports the share "
                        "of the CGIT images it reads as the class they were made for (`cgit_read_as_asked`)")
    p.add_argument("--out", default="runs/table3")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.seeds) < 2 or len(args.seeds) != len(args.heldout_seeds):
        raise SystemExit("error: give at least two --seeds and as many --heldout-seeds (mean ± std over replicates)")
    if args.added_passes and (args.real_share == POOLED or args.real_share >= 1.0):
        raise SystemExit("error: --added-passes needs a --real-share below 1 (the added "
                         "images' part of each batch sets how long a pass takes)")
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
