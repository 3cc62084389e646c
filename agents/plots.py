"""Log-mel spectrogram figures: ``vital-gym match``'s comparison and the benchmark report's grid.

Every image uses one colour scale (0..1, the env's observation range), so panels compare directly, and
its axes in seconds and Hz (the mel bands' centre frequencies).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vital_gym.features import Spectrogram

Panel = tuple[str, "np.ndarray | None"]  # (title, audio (channels, samples) or None for a failed render)


def plot_comparison(panels: Sequence[Panel], mel: Spectrogram, path: Path, dpi: int = 100) -> Path:
    """One row of labelled log-mels side by side (e.g. target and match), sharing the mel axis."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.2), squeeze=False, sharey=True)
    for ax, (title, audio) in zip(axes[0], panels):
        _draw(ax, mel, audio)
        ax.set_title(title)
        ax.set_xlabel("time (s)")
    axes[0][0].set_ylabel("frequency (Hz)")
    return _save(fig, path, dpi)


def plot_grid(rows: Sequence[Sequence[Panel]], mel: Spectrogram, path: Path, row_labels: Sequence[str], dpi: int = 100) -> Path:
    """Small log-mels, one row per example and one column per method; titles on the first row only."""
    plt = _pyplot()
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.2 * n_cols, 1.9 * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c, (title, audio) in enumerate(row):
            ax = axes[r][c]
            _draw(ax, mel, audio)
            ax.tick_params(labelsize=6)
            if c:
                ax.set_yticklabels([])
            if r < n_rows - 1:
                ax.set_xticklabels([])
            if r == 0:
                ax.set_title(title, fontsize=9)
        axes[r][0].set_ylabel(f"{row_labels[r]}\nHz", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("s", fontsize=7)
    return _save(fig, path, dpi)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw(ax, mel: Spectrogram, audio: np.ndarray | None) -> None:
    """One log-mel, frames against seconds and bands labelled by their centre frequency."""
    if audio is None:
        ax.text(0.5, 0.5, "failed", ha="center", va="center", transform=ax.transAxes)
        return
    image = mel(audio)
    frames = image.shape[1]
    ax.imshow(image, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1, extent=(0, frames * mel.frame_seconds, 0, image.shape[0]))
    hz = mel.band_hz
    ticks = [f for f in (100, 500, 1000, 2000, 5000, 10000, 20000) if hz[0] <= f <= hz[-1]]
    ax.set_yticks(np.interp(ticks, hz, np.arange(len(hz)) + 0.5))
    ax.set_yticklabels([f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks])


def _save(fig, path: Path, dpi: int) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
