"""`python -m train evaluate`: classify a labelled test set as it is, or after translating it with a
UIT generator (paper section 3.2: the source classifier applied, unchanged, to x^{t→s}).

    python -m train evaluate --classifier runs/cls --out eval/            # the run's own test subjects
    python -m train evaluate --classifier runs/cls --data renders/ --generator runs/uit --out eval_uit/
    python -m train evaluate --classifier runs/s0 runs/s1 runs/s2 --data test/ --out eval3/   # mean ± std

Accuracy is reported as mean ± std (the paper's "70.9 ± 0.2"): over the classifiers given (e.g. one
run per training seed), or, with one classifier and --seeds N, over N seeded bootstrap resamples of
the test set. Writes OUT/metrics.json (accuracy, per-class accuracy, macro F1, the confusion
matrix), OUT/confusion.png, OUT/tsne.png (embeddings coloured by class, fig. 5), OUT/predictions.csv.
"""
import argparse
import csv
import logging
from pathlib import Path

import numpy as np
import torch

from engines.chain import softmax
from engines.contract import CLASSIFIER, UIT_GENERATOR
from face.expressions import EXPRESSIONS
from face.outputs import writable_folder
from face.ranges import at_least

from .checkpoint import load_model
from .data import ImageDataset, SideMaps, collate_skipping_bad
from .datasets.face_crops import crop_faces
from .datasets.sources import add_data_arguments, data_options, load_samples, wants_face_crop
from .datasets.splits import PARTS, apply_split, read_split
from .distributed import pick_device
from .eval_metrics import bootstrap_accuracies, confusion_matrix, mean_std, percent_pm, summarize
from .eval_plots import confusion_png, tsne_png
from .runlog import setup_logging, write_json

TSNE_MAX_POINTS = 2000


@torch.no_grad()
def classify_samples(net, samples, image_size: int, device, batch_size: int = 64, *, generator=None,
                     side_maps: SideMaps | None = None, logger=None, runlog=None, progress: bool = False) -> dict:
    """Run the classifier (after `generator`, a UIT G^{t→s}, when given) over labelled samples.
    Unreadable files are skipped and counted. Returns labels, predictions, probabilities,
    embeddings, paths, bad files, and the figures of `eval_metrics.summarize`."""
    from tqdm import tqdm
    logger = logger or logging.getLogger("train")
    net.eval()
    if generator is not None:
        generator.eval()
        if side_maps is None:
            raise ValueError("translating with a generator needs side maps")
    dataset = ImageDataset(samples, image_size, side_maps if generator is not None else None)
    labels, predictions, probabilities, embeddings, paths, bad = [], [], [], [], [], []
    for first in tqdm(range(0, len(samples), batch_size), desc="classify", unit="batch", disable=not progress):
        batch = collate_skipping_bad([dataset[i] for i in range(first, min(first + batch_size, len(samples)))])
        for path, reason in batch["bad"]:
            if runlog is not None:
                runlog.bad_file(path, reason, logger)
            else:
                logger.warning("skipping unreadable file %s (%s)", path, reason)
            bad.append(path)
        if batch["size"] == 0:
            continue
        x = batch["image"].to(device)
        if generator is not None:
            x = generator(torch.cat([x, batch["side"].to(device)], dim=1))[0]
        logits, embedding = net(x)
        logits = logits.float().cpu().numpy()
        probabilities.append(softmax(logits))
        predictions.append(logits.argmax(1))
        embeddings.append(embedding.float().cpu().numpy())
        labels.append(batch["label"].numpy())
        paths += [str(samples[int(i)].path) for i in batch["index"]]
    if not labels:
        raise ValueError(f"none of the {len(samples)} test images could be read")
    result = {"labels": np.concatenate(labels), "predictions": np.concatenate(predictions),
              "probabilities": np.concatenate(probabilities), "embeddings": np.concatenate(embeddings),
              "paths": paths, "bad_files": bad}
    result["figures"] = summarize(confusion_matrix(result["labels"], result["predictions"]))
    result["figures"]["bad_files"] = len(bad)
    return result


def write_figures(result: dict, out_dir, title: str = "", tsne: bool = True, seed: int = 0) -> dict:
    """OUT/metrics.json, confusion.png, predictions.csv and (tsne) tsne.png of one classification."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = result["figures"]
    paths = {"metrics": str(write_json(out_dir / "metrics.json", figures)),
             "confusion_png": str(confusion_png(figures["confusion_matrix"], figures["classes"], out_dir / "confusion.png",
                                                f"{title} — accuracy {100 * figures['accuracy']:.1f} %".strip(" —")))}
    with (out_dir / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "predicted", "confidence"])
        for path, label, predicted, probs in zip(result["paths"], result["labels"], result["predictions"],
                                                 result["probabilities"]):
            writer.writerow([path, EXPRESSIONS[label], EXPRESSIONS[predicted], f"{probs[predicted]:.4f}"])
    paths["predictions"] = str(out_dir / "predictions.csv")
    if tsne:
        paths["tsne_png"] = str(tsne_plot(result, out_dir / "tsne.png", title, seed))
    return paths


def tsne_plot(result: dict, path, title: str = "", seed: int = 0) -> Path | None:
    embeddings, labels = result["embeddings"], result["labels"]
    if len(labels) < 4:
        logging.getLogger("train").warning("t-SNE skipped: only %d images", len(labels))
        return None
    if len(labels) > TSNE_MAX_POINTS:  # t-SNE is quadratic: a seeded subset says the same
        chosen = np.random.default_rng(seed).choice(len(labels), TSNE_MAX_POINTS, replace=False)
        embeddings, labels = embeddings[chosen], labels[chosen]
    heading = "t-SNE of classifier embeddings" + (f" — {title}" if title else "")
    return tsne_png(embeddings, labels, EXPRESSIONS, path, seed, heading)


# ---- the command --------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classifier", nargs="+", required=True, metavar="CKPT",
                   help="classifier checkpoint(s) or run folder(s); several: mean ± std over them")
    p.add_argument("--data", help="labelled test data (default: the first classifier run's own test part)")
    p.add_argument("--split", help="with --data: take only one part of this split file (see --part)")
    p.add_argument("--part", default="test", choices=PARTS, help="which part of --split (test)")
    p.add_argument("--generator", metavar="CKPT", help="translate the images with this UIT generator (G_ts) first")
    p.add_argument("--seeds", type=at_least(1), default=1, help="one classifier: bootstrap resamples for mean ± std (1)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--batch-size", type=at_least(1), default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-tsne", dest="tsne", action="store_false", help="skip the t-SNE plot")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    add_data_arguments(p)
    return p


def _load_classifiers(paths) -> list[tuple[str, torch.nn.Module, dict]]:
    loaded = []
    for path in paths:
        net, config, _ = load_model(path, expect=CLASSIFIER, needed_by="evaluation")
        loaded.append((str(path), net, config))
    sizes = {int(config["image_size"]) for _, _, config in loaded}
    if len(sizes) > 1:
        raise ValueError(f"the classifiers take different image sizes {sorted(sizes)}; evaluate one size at a time")
    return loaded


def _run_dir_of(checkpoint) -> Path:
    path = Path(checkpoint)
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def _test_samples(args, config: dict, logger):
    """(samples, format, options): --data (optionally one part of --split), or the classifier run's
    own test part (its --test-data, or the test subjects of its split.json)."""
    if args.data:
        options = data_options(args)
        samples, fmt = load_samples(args.data, options)
        if args.split:
            samples = apply_split(samples, read_split(args.split), args.split)[args.part]
        return samples, fmt, options
    options = dict(config.get("data_options") or {})
    if config.get("test_data"):
        samples, fmt = load_samples(config["test_data"], options)
        return samples, fmt, options
    split_path = _run_dir_of(args.classifier[0]) / "split.json"
    if not config.get("data") or not split_path.is_file():
        raise SystemExit(f"error: no --data, and the classifier's run has no test part to fall back on "
                         f"({split_path} not found)")
    samples, fmt = load_samples(config["data"], options)
    logger.info("evaluating the test subjects of %s", split_path)
    return apply_split(samples, read_split(split_path), str(split_path))["test"], fmt, options


def _load_generator(path, image_size: int):
    # G_ts, or its weight average when the run kept one
    generator, config, _ = load_model(path, expect=UIT_GENERATOR, needed_by="evaluation's translation")
    if int(config["image_size"]) != image_size:
        raise ValueError(f"{path}: the generator makes {config['image_size']}² images but the classifier takes "
                         f"{image_size}²; train them at one size")
    return generator


def evaluate(args, logger) -> dict:
    out = Path(args.out)
    classifiers = _load_classifiers(args.classifier)
    size = int(classifiers[0][2]["image_size"])
    samples, fmt, options = _test_samples(args, classifiers[0][2], logger)
    if not samples:
        raise ValueError("the test set is empty")
    if wants_face_crop(fmt, options):
        samples, counts = crop_faces(samples, out / "cache", size, progress=args.progress)
        logger.info("face crops: %s", counts)
    device = pick_device(args.device)
    generator = _load_generator(args.generator, size).to(device) if args.generator else None
    side_maps = SideMaps(out / "cache") if generator is not None else None
    if side_maps is not None:
        side_maps.prepare(samples, progress=args.progress)
    trained = set()
    for _, _, config in classifiers:
        trained |= set((config.get("train_classes") or {}).keys())
    runs = []
    for path, net, config in classifiers:
        result = classify_samples(net.to(device), samples, size, device, args.batch_size, generator=generator,
                                  side_maps=side_maps, logger=logger, progress=args.progress)
        runs.append((path, result))
    first = runs[0][1]["figures"]
    if first["missing_classes"]:
        logger.warning("classes with no test image (their accuracy is undefined, left out of macro F1): %s",
                       ", ".join(first["missing_classes"]))
    untrained = [c for c in first["classes_in_test"] if trained and c not in trained]
    if untrained:
        logger.warning("test classes the classifier never saw in training: %s", ", ".join(untrained))
    accuracies = [r["figures"]["accuracy"] for _, r in runs]
    if len(runs) > 1:
        over = f"{len(runs)} classifiers"
    elif args.seeds > 1:
        accuracies = bootstrap_accuracies(runs[0][1]["labels"] == runs[0][1]["predictions"], args.seeds)
        over = f"{args.seeds} bootstrap resamples"
    else:
        over = "one classifier"
    mean, std = mean_std(accuracies)
    f1_mean, f1_std = mean_std([r["figures"]["macro_f1"] for _, r in runs])
    per_class = {}
    for name in EXPRESSIONS:
        values = [r["figures"]["per_class_accuracy"][name] for _, r in runs]
        per_class[name] = None if values[0] is None else dict(zip(("mean", "std"), mean_std(values)))
    pooled = np.sum([r["figures"]["confusion_matrix"] for _, r in runs], axis=0)
    title = "after UIT translation" if generator is not None else ""
    report = {
        "accuracy": {"mean": mean, "std": std, "text": percent_pm(mean, std), "over": over, "values": accuracies},
        "macro_f1": {"mean": f1_mean, "std": f1_std},
        "per_class_accuracy": per_class,
        "confusion_matrix": pooled.astype(int).tolist(),
        "classes": list(EXPRESSIONS),
        "missing_classes": first["missing_classes"],
        "images": first["images"],
        "bad_files": runs[0][1]["bad_files"],
        "classifiers": [{"checkpoint": path, **{k: r["figures"][k] for k in ("accuracy", "macro_f1", "per_class_accuracy")}}
                        for path, r in runs],
        "generator": args.generator,
        "data": args.data or classifiers[0][2].get("data"),
    }
    out.mkdir(parents=True, exist_ok=True)
    report["files"] = {"metrics": str(write_json(out / "metrics.json", report)),
                       "confusion_png": str(confusion_png(pooled, EXPRESSIONS, out / "confusion.png",
                                                          f"{title} accuracy {percent_pm(mean, std)} %".strip()))}
    with (out / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "predicted", "confidence"])
        r = runs[0][1]
        for path, label, predicted, probs in zip(r["paths"], r["labels"], r["predictions"], r["probabilities"]):
            writer.writerow([path, EXPRESSIONS[label], EXPRESSIONS[predicted], f"{probs[predicted]:.4f}"])
    if args.tsne:
        tsne = tsne_plot(runs[0][1], out / "tsne.png", title)
        if tsne is not None:
            report["files"]["tsne_png"] = str(tsne)
    write_json(out / "metrics.json", report)
    return report


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.split and not args.data:
        raise SystemExit("error: --split selects a part of --data; give --data too")
    try:
        writable_folder(args.out, f"--out {args.out}")   # before the classifying: its figures are the point
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    logger = setup_logging(None)
    report = evaluate(args, logger)
    print(f"accuracy {report['accuracy']['text']} % ({report['accuracy']['over']}, {report['images']} images"
          f"{', translated by ' + args.generator if args.generator else ''})")
    print(f"macro F1 {report['macro_f1']['mean']:.3f}")
    for name, value in report["per_class_accuracy"].items():
        print(f"  {name:<10} " + ("no test images" if value is None else f"{100 * value['mean']:.1f} %"))
    print(f"wrote {args.out}/metrics.json, confusion.png" + (", tsne.png" if "tsne_png" in report["files"] else ""))
    return 0
