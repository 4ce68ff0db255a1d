"""PNG figures of an evaluation: the confusion matrix and a t-SNE map of the classifier's
embeddings coloured by class (paper fig. 5)."""
from pathlib import Path

import numpy as np


def pyplot():
    """matplotlib's pyplot drawing off-screen (every figure of training and the benchmarks is a file)."""
    import matplotlib
    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt
    return plt


def save(plt, fig, path, dpi: float | None = None) -> Path:
    """`fig` laid out, written to `path` as a PNG (its folder made) and closed."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def confusion_png(counts, classes, path, title: str = "confusion matrix") -> Path:
    """Rows: true class, columns: predicted; cells coloured by the row's share, labelled with counts."""
    plt = pyplot()
    counts = np.asarray(counts)
    rows = counts.sum(1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if counts[i, j]:
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center",
                        color="white" if share[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    return save(plt, fig, path)


def tsne_points(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of N×D embeddings (perplexity fitted to small sets)."""
    from sklearn.manifold import TSNE
    embeddings = np.asarray(embeddings, dtype=np.float64)
    n = embeddings.shape[0]
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 images, got {n}")
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings)


def tsne_png(embeddings, labels, classes, path, seed: int = 0, title: str = "t-SNE of classifier embeddings") -> Path:
    plt = pyplot()
    points = tsne_points(embeddings, seed)
    labels = np.asarray(labels)
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    for k, name in enumerate(classes):
        chosen = labels == k
        if chosen.any():
            ax.scatter(points[chosen, 0], points[chosen, 1], s=10, color=colours(k), label=f"{name} ({int(chosen.sum())})")
    ax.legend(loc="best", fontsize=8, markerscale=2)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return save(plt, fig, path)
