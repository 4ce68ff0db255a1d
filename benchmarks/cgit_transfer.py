"""Expression transfer on held-out drivers (the paper's tables 5–6): `python -m benchmarks.cgit_transfer`,
one JSON line.

Each held-out driver (seeds no training used: new people, cameras, poses) is drawn as near-frontal
source-domain crops; for every drawn face the same head, pose and camera is also drawn with each of
the seven expressions. Then, with one source classifier (trained on source-domain images):
  real      the classifier on those seven real faces (the paper's "real images" row)
  NAME      each CGIT generator (`--model NAME=RUN`) translates the face to each of the seven
            expressions; the classifier reads the translations against the expression asked for;
            `--model NAME=OUT/expressions.json` (train warp-pairs) warps the face to each expression's
            geometry instead: a row without learning, what that command's pairs look like
and identity preservation, in the bilinear model's identity space (the face stage fits it to each
image, the same fit the driver monitor uses to notice a new driver; z-scored by the model's spread of
people): `identified` — the nearest real face from another drawing is the same driver's;
`own_over_other` — the mean distance from a translation to the face it was made from, over the mean
distance to other drivers' faces (< 1: nearer its source than other people are). The real faces
give the embedding's own ceiling (a single 64² crop is a noisy reading of a face's shape).

`NAME=RUN1,RUN2,RUN3` gives one model per seed (three training seeds): replicate i translates seed
i's drivers with model i, so each replicate is a new training and new people; every figure is
mean ± std over the replicates, and `paired` gives each model's difference per replicate with the real
images and with the first `--model` (the reference). Writes OUT/transfer.json, OUT/confusion_NAME.png
(asked vs read) and OUT/strips.png (figure 4: a held-out face and its seven translations, per model,
with the real faces).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import engines
from benchmarks.cli import check_replicates, exit_status
from face import bilinear
from face.crops import CropFitter
from benchmarks.paper_table4 import mean_std, named_paths
from engines.chain import classify
from engines.contract import CGIT_GENERATOR
from face.expressions import EXPRESSIONS, NUM_EXPRESSIONS
from face.imageio import from_network, to_network
from face.outputs import writable_folder
from face.ranges import at_least
from train.checkpoint import load_model
from train.eval_plots import confusion_png
from train.expression_warp import ExpressionWarp, load_targets
from train.synthetic.scene import Pose
from train.synthetic.writer import SOURCE_POSE, SynthWriter
from train.translate import labelled_strip

BATCH = 64


def held_out_faces(seed: int, scenario: str, size: int, drivers: int, faces_per_driver: int, progress: bool) -> dict:
    """One seed's drivers: `faces` N×S×S×3 (each in its own expression), their side maps, `label` N,
    `driver` N, and `real` N×7×S×S×3 — the same head, pose and camera in every expression."""
    writer = SynthWriter(Path("/nonexistent"), seed=seed, size=size, drivers=drivers, scenario=scenario)
    rng = np.random.default_rng(seed)
    people = [(writer.factory.driver(rng), writer.source_camera(rng)) for _ in range(drivers)]
    out = {"faces": [], "side": [], "label": [], "driver": [], "real": []}
    jobs = [(d, f) for d in range(drivers) for f in range(faces_per_driver)]
    for d, f in tqdm(jobs, desc=f"seed {seed} faces", disable=not progress, leave=False):
        driver, camera = people[d]
        label = (d * faces_per_driver + f) % NUM_EXPRESSIONS
        pose = Pose(**{k: float(rng.uniform(-1, 1) * v) for k, v in SOURCE_POSE.items()},
                    cx=float(rng.uniform(280, 360)), cy=float(rng.uniform(200, 260)), height=float(rng.uniform(170, 240)))
        real = [writer.source_crop(rng, driver, camera, writer.factory.expression(rng, e), pose)
                for e in range(NUM_EXPRESSIONS)]
        out["faces"].append(real[label][0])
        out["side"].append(real[label][1])
        out["label"].append(label)
        out["driver"].append(d)
        out["real"].append([crop for crop, _ in real])
    return {k: np.asarray(v) for k, v in out.items()}


def cgit_generator(path, name: str, network: str | None, size: int):
    """The CGIT generator of one `--model NAME` file, checked: of that kind, making the classifier's
    image size, asked for each of the seven expressions."""
    generator, config, _ = load_model(path, network, expect=CGIT_GENERATOR, needed_by=f"--model {name}")
    if int(config["image_size"]) != size:
        raise SystemExit(f"error: model {path} makes {config['image_size']}² images, the classifier reads {size}²")
    if generator.num_classes != NUM_EXPRESSIONS:
        raise SystemExit(f"error: model {path} makes {generator.num_classes} expressions, "
                         f"this benchmark asks for each of {NUM_EXPRESSIONS}")
    return generator


def is_warp(path) -> bool:
    """A `--model` that is `train warp-pairs`' expressions.json: the expression warp itself is the row."""
    return str(path).endswith(".json")


def translator(path, name: str, network: str | None, size: int):
    """faces, side maps → N×7×S×S×3 uint8, every face in every expression: a CGIT generator's
    translations, or the expression warp's (no learning: what `train warp-pairs` pairs look like)."""
    if is_warp(path):
        try:
            targets, model = load_targets(path)
        except ValueError as error:
            raise SystemExit(f"error: --model {name}: {error}") from None
        return lambda faces, side: warped(ExpressionWarp(model), targets, faces)
    generator = cgit_generator(path, name, network, size)
    return lambda faces, side: transfer(generator, faces, side)


def warped(warp, targets, faces: np.ndarray) -> np.ndarray:
    """N×7×S×S×3: each face warped to each expression's target geometry (unchanged where no face is fitted)."""
    out = np.repeat(faces[:, None], NUM_EXPRESSIONS, axis=1)
    try:
        for k, crop in enumerate(faces):
            shape = warp.fit(crop)
            if shape is not None:
                out[k] = [warp(crop, shape, target) for target in targets]
    finally:
        warp.close()
    return out


@torch.no_grad()
def transfer(generator, faces: np.ndarray, side: np.ndarray) -> np.ndarray:
    """N×7×S×S×3 uint8: every face translated to every expression (uint8 between generator and
    classifier, as the pipeline's stages pass images)."""
    x = torch.from_numpy(np.concatenate([to_network(faces), to_network(side)], axis=1))
    out = []
    for label in range(NUM_EXPRESSIONS):
        onehot = F.one_hot(torch.full((len(x),), label), NUM_EXPRESSIONS).float()
        out.append(np.concatenate([from_network(generator(x[i:i + BATCH], onehot[i:i + BATCH])[0].numpy())
                                   for i in range(0, len(x), BATCH)]))
    return np.stack(out, axis=1)


class IdentityReader:
    """The bilinear identity weights the face stage fits to one face crop, in units of the model's
    spread of people (z-scores), or None when no face is found."""

    def __init__(self, model):
        self.fitter = CropFitter(model)
        self.mean = model.identity_mean.astype(np.float64)
        self.std = model.identity_std.astype(np.float64)

    def __call__(self, crop: np.ndarray):
        result = self.fitter(crop)
        return (result.identity_weights - self.mean) / self.std if result else None

    def close(self):
        self.fitter.close()


def identity_figures(identities, gallery, drivers, drawings, inputs, skip_self: bool) -> dict:
    """identities: per image (its driver, its drawing) the identity or None. gallery: identities of the
    real faces (N×7, None where unread), drivers/drawings their owners; inputs: per drawing, the
    identity of the face that was translated.
      identified      the nearest real face of any other drawing belongs to the image's own driver
      own_over_other  mean distance to the face it was made from, over the mean distance to the
                      faces of other drivers (< 1: nearer its source than other people are)
    skip_self: the real row, where each drawing's own expression is its input (distance 0)."""
    known = [i for i, g in enumerate(gallery) if g is not None]
    G = np.array([gallery[i] for i in known])
    g_driver, g_drawing = drivers[known], drawings[known]
    hits, own, other, unread = [], [], [], 0
    for k, (identity, d, f) in enumerate(zip(identities, drivers, drawings)):
        if identity is None:
            unread += 1
            continue
        distances = np.linalg.norm(G - identity, axis=1)
        elsewhere = g_drawing != f
        if elsewhere.any():
            hits.append(g_driver[elsewhere][np.argmin(distances[elsewhere])] == d)
        if inputs[f] is not None and not (skip_self and np.array_equal(identity, inputs[f])):
            own.append(np.linalg.norm(identity - inputs[f]))
        if (g_driver != d).any():
            other.append(distances[g_driver != d].mean())
    return {"identified": float(np.mean(hits)) if hits else None,
            "own_over_other": float(np.mean(own) / np.mean(other)) if own and other else None,
            "unread": unread}


def ratio_spread(values) -> dict:
    """mean ± std over seeds of a ratio (mean_std is for shares, in %)."""
    values = np.asarray(values, dtype=np.float64)
    return {"mean": round(float(values.mean()), 3), "std": round(float(values.std(ddof=1)), 3) if len(values) > 1 else 0.0,
            "per_seed": [round(float(v), 3) for v in values]}


def unless_unread(spread, values) -> dict:
    """spread(values), or None figures when some seed's identities could not be read at all."""
    if any(v is None for v in values):
        return {"mean": None, "std": None, "per_seed": values}
    return spread(values)


def run(args) -> dict:
    out = writable_folder(args.out, f"--out {args.out}")   # before measuring: a result that cannot be written is lost
    models = named_paths(args.model, len(args.seeds))
    classifier = engines.load(args.classifier, threads=args.threads)
    size = classifier.info.image_size
    for name, paths in models.items():   # every file checked before any face is drawn, not minutes into the run;
        for path in paths:                # loaded again where used, so that one generator at a time is held
            translator(path, name, args.generator, size)
    rows = ["real", *models]
    figures = {row: {"accuracy": [], "identified": [], "own_over_other": []} for row in rows}
    confusion = {row: np.zeros((NUM_EXPRESSIONS, NUM_EXPRESSIONS), np.int64) for row in rows}
    unread = {row: 0 for row in rows}
    strips, started = [], time.perf_counter()
    reader = IdentityReader(bilinear.load())   # the model the synthetic drivers are drawn from
    try:
        for replicate, seed in enumerate(args.seeds):
            data = held_out_faces(seed, args.scenario, size, args.drivers, args.faces_per_driver, not args.no_progress)
            n = len(data["faces"])
            images = {"real": data["real"]}
            for name, paths in models.items():
                images[name] = translator(paths[replicate], name, args.generator, size)(data["faces"], data["side"])
            asked = np.tile(np.arange(NUM_EXPRESSIONS), n)
            drivers = np.repeat(data["driver"], NUM_EXPRESSIONS)
            faces = np.repeat(np.arange(n), NUM_EXPRESSIONS)
            real_ids = [reader(im) for im in data["real"].reshape(-1, size, size, 3)]
            inputs = [real_ids[f * NUM_EXPRESSIONS + int(label)] for f, label in enumerate(data["label"])]
            for row in rows:
                flat = images[row].reshape(-1, size, size, 3)
                read = classify(classifier, flat, BATCH).argmax(1)
                figures[row]["accuracy"].append(float(np.mean(read == asked)))
                np.add.at(confusion[row], (asked, read), 1)
                ids = real_ids if row == "real" else [reader(im) for im in flat]
                idf = identity_figures(ids, real_ids, drivers, faces, inputs, skip_self=row == "real")
                figures[row]["identified"].append(idf["identified"])
                figures[row]["own_over_other"].append(idf["own_over_other"])
                unread[row] += idf["unread"]
            if replicate == 0:
                for k in range(min(args.strips, n)):
                    strips.append(("real", data["faces"][k], data["real"][k]))
                    strips.extend((name, data["faces"][k], images[name][k]) for name in models)
    finally:
        reader.close()
    table = {row: {"accuracy": mean_std(f["accuracy"]), "identified": unless_unread(mean_std, f["identified"]),
                   "own_over_other": unless_unread(ratio_spread, f["own_over_other"]), "unread_identities": unread[row]}
             for row, f in figures.items()}
    of_real = {name: ratio_spread(np.divide(figures[name]["accuracy"], figures["real"]["accuracy"])) for name in models}
    # each model against the real images, and every later model against the first (the reference: the
    # full model against its ablations, or a recipe against its levers), per replicate
    reference = next(iter(models))
    pairs = [(name, "real") for name in models] + [(name, reference) for name in models if name != reference]
    paired = {f"{a} - {b}": mean_std(np.subtract(figures[a]["accuracy"], figures[b]["accuracy"])) for a, b in pairs}
    result = {"benchmark": "cgit_transfer", "scenario": args.scenario, "seeds": args.seeds,
              "drivers": args.drivers, "faces_per_driver": args.faces_per_driver, "image_size": size,
              "classifier": str(args.classifier), "models": models, "rows": table,
              "accuracy_of_real": of_real, "paired": paired,
              "confusion": {row: c.tolist() for row, c in confusion.items()},
              "seconds": round(time.perf_counter() - started, 1)}
    (out / "transfer.json").write_text(json.dumps(result, indent=1))
    for row, counts in confusion.items():
        confusion_png(counts, EXPRESSIONS, out / f"confusion_{row}.png",
                      f"{row}: expression asked (rows) vs read by the classifier")
    if strips:
        titles = ["input", *EXPRESSIONS]
        rows_png = []
        for name, input_face, seven in strips:
            strip = labelled_strip([input_face, *seven], titles)
            cv2.putText(strip, name, (3, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1, cv2.LINE_AA)
            rows_png.append(strip)
        cv2.imwrite(str(out / "strips.png"), np.concatenate(rows_png, axis=0))
    return result


def build_parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks.cgit_transfer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classifier", default="models/classifier.onnx",
                   help="source classifier (ONNX) that reads the translations (default: %(default)s)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=RUN[,RUN2,...]",
                   help="a CGIT run or checkpoint to compare (repeatable); one, or one per seed; or train warp-pairs' "
                        "OUT/expressions.json: the expression warp itself as a row")
    p.add_argument("--generator", choices=("G_ts", "G_ts_ema"), default=None,
                   help="which weights of each run translate: live (G_ts) or the average (G_ts_ema; the default "
                        "when the run kept one)")
    p.add_argument("--scenario", choices=("pose", "camera"), default="pose",
                   help="which source domain the held-out faces are drawn in (default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103],
                   help="held-out driver seeds, never used for training data (default: %(default)s)")
    p.add_argument("--drivers", type=at_least(1), default=8, help="drivers per seed (default: %(default)s)")
    p.add_argument("--faces-per-driver", type=at_least(1), default=6,
                   help="faces drawn per driver, each in all seven expressions (default: %(default)s)")
    p.add_argument("--strips", type=at_least(0), default=3, help="held-out faces shown in strips.png (default: %(default)s)")
    p.add_argument("--threads", type=at_least(0), default=2)
    p.add_argument("--out", default="runs/cgit_transfer")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    check_replicates(args.seeds)
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
