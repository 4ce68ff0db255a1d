"""Classification figures from labels and predictions (pure numpy): confusion matrix, accuracy,
per-class accuracy (recall), macro F1, and mean ± std over runs in the paper's "70.9 ± 0.2" form."""
import math

import numpy as np

from face.expressions import EXPRESSIONS


def confusion_matrix(labels, predictions, num_classes: int = len(EXPRESSIONS)) -> np.ndarray:
    """counts[true, predicted]."""
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.shape[0]} labels but {predictions.shape[0]} predictions")
    for name, values in (("label", labels), ("prediction", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"a {name} outside 0..{num_classes - 1}")
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def summarize(counts: np.ndarray, classes=EXPRESSIONS) -> dict:
    """accuracy, per-class accuracy (None for a class with no test image), per-class F1, macro F1
    over the classes the test set holds, and the matrix itself (JSON types)."""
    counts = np.asarray(counts)
    total = int(counts.sum())
    if total == 0:
        raise ValueError("no test images: nothing to score")
    true_per_class, predicted_per_class, hits = counts.sum(1), counts.sum(0), np.diag(counts)
    present = [i for i in range(len(classes)) if true_per_class[i] > 0]
    per_class_accuracy, per_class_f1 = {}, {}
    for i, name in enumerate(classes):
        if true_per_class[i] == 0:
            per_class_accuracy[name] = per_class_f1[name] = None
            continue
        recall = hits[i] / true_per_class[i]
        precision = hits[i] / predicted_per_class[i] if predicted_per_class[i] else 0.0
        per_class_accuracy[name] = float(recall)
        per_class_f1[name] = float(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return {
        "images": total,
        "accuracy": float(hits.sum() / total),
        "per_class_accuracy": per_class_accuracy,
        "per_class_f1": per_class_f1,
        "macro_f1": float(np.mean([per_class_f1[classes[i]] for i in present])),
        "classes_in_test": [classes[i] for i in present],
        "missing_classes": [classes[i] for i in range(len(classes)) if true_per_class[i] == 0],
        "confusion_matrix": counts.astype(int).tolist(),
        "classes": list(classes),
    }


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean ± std of nothing")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def percent_pm(mean: float, std: float, digits: int = 1) -> str:
    """0.709, 0.002 -> '70.9 ± 0.2' (percent)."""
    return f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f}"


def bootstrap_accuracies(correct, seeds: int, first_seed: int = 0) -> list[float]:
    """Accuracy on `seeds` seeded resamples (with replacement) of the test set."""
    correct = np.asarray(correct, dtype=np.float64)
    return [float(np.random.default_rng(first_seed + s).choice(correct, size=correct.size).mean()) for s in range(seeds)]
