"""Log-mel spectrogram figures shared by ``vital-gym match`` and the benchmark report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vital_gym.features import LogMelSpectrogram

Panel = tuple[str, "np.ndarray | None"]  # (title, audio (channels, samples) or None for a failed render)


def plot_spectrograms(
    rows: Sequence[Sequence[Panel]], mel: LogMelSpectrogram, path: Path, row_labels: Sequence[str] | None = None, dpi: int = 100
) -> Path:
    """A grid of log-mel images on one colour scale (0..1), one row per example; ``None`` reads "failed"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    single = n_rows == 1
    size = (4.5 * n_cols, 3.2) if single else (2.2 * n_cols, 1.9 * n_rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=size, squeeze=False, sharey=single)
    for r, row in enumerate(rows):
        for c, (title, audio) in enumerate(row):
            ax = axes[r][c]
            if audio is not None:
                ax.imshow(mel(audio), origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
            else:
                ax.text(0.5, 0.5, "failed", ha="center", va="center")
            if single:
                ax.set_title(title)
                ax.set_xlabel("frame")
            else:
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(title, fontsize=9)
        if row_labels is not None:
            axes[r][0].set_ylabel(row_labels[r], fontsize=7)
        elif single:
            axes[r][0].set_ylabel("mel band")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
