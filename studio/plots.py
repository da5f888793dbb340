"""Matplotlib figures of what a model did: mel spectrograms, attention alignments, stop curves.

Shared by the training samples, the eval report and the studio's Inspect panel.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _tick_labels(tokens: list[str], max_labels: int = 80) -> tuple[list[int], list[str]]:
    step = max(1, int(np.ceil(len(tokens) / max_labels)))
    pos = list(range(0, len(tokens), step))
    return pos, [repr(tokens[i])[1:-1] if tokens[i] != " " else "␣" for i in pos]


def plot_alignment(alignment: np.ndarray, tokens: list[str] | None = None, title: str = "Attention alignment",
                   seconds_per_step: float | None = None, word_bounds: list[tuple[str, float, float]] | None = None,
                   ax=None):
    """Decoder time on x, text tokens on y; word boundaries as vertical lines when given."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    a = np.asarray(alignment, dtype=np.float32)  # (T_dec, T_text)
    extent = None
    xlabel = "decoder step"
    if seconds_per_step:
        extent = [0, a.shape[0] * seconds_per_step, a.shape[1] - 0.5, -0.5]
        xlabel = "time (s)"
    im = ax.imshow(a.T, aspect="auto", origin="upper", interpolation="none", cmap="viridis", vmin=0, vmax=1,
                   extent=extent)
    if tokens is not None:
        pos, labels = _tick_labels(tokens)
        ax.set_yticks(pos)
        ax.set_yticklabels(labels, fontsize=7)
    if word_bounds and seconds_per_step:
        for word, start, end in word_bounds:
            ax.axvline(start, color="white", lw=0.6, alpha=0.6)
            ax.text(start, -0.5, word, color="black", fontsize=7, rotation=45, va="bottom", ha="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("text token")
    ax.set_title(title, fontsize=10, pad=18 if word_bounds else 6)
    ax.figure.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label="weight")
    if own:
        fig.tight_layout()
        return fig
    return ax.figure


def plot_mel(mel: np.ndarray, title: str = "Mel spectrogram", frames_per_second: float | None = None,
             compare: np.ndarray | None = None, compare_title: str = "postnet output"):
    """One or two log-mel panels (e.g. decoder output and postnet output) with a shared scale."""
    panels = [(mel, title)] + ([(compare, compare_title)] if compare is not None else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.8 * len(panels)), dpi=100, squeeze=False)
    vmin = min(float(np.min(p)) for p, _ in panels)
    vmax = max(float(np.max(p)) for p, _ in panels)
    for ax, (m, t) in zip(axes[:, 0], panels):
        m = np.asarray(m, dtype=np.float32)
        extent = [0, len(m) / frames_per_second, 0, m.shape[1]] if frames_per_second else None
        im = ax.imshow(m.T, aspect="auto", origin="lower", cmap="magma", vmin=vmin, vmax=vmax,
                       interpolation="none", extent=extent)
        ax.set_title(t, fontsize=10)
        ax.set_ylabel("mel band")
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label="log magnitude")
    axes[-1, 0].set_xlabel("time (s)" if frames_per_second else "frame")
    fig.tight_layout()
    return fig


def plot_stop(stop: np.ndarray, threshold: float = 0.5, seconds_per_step: float | None = None):
    fig, ax = plt.subplots(figsize=(10, 1.8), dpi=100)
    x = np.arange(len(stop)) * (seconds_per_step or 1)
    ax.plot(x, stop, color="tab:red", lw=1.2)
    ax.axhline(threshold, color="gray", ls="--", lw=0.8)
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("P(stop)")
    ax.set_xlabel("time (s)" if seconds_per_step else "decoder step")
    fig.tight_layout()
    return fig


def save(fig, path) -> None:
    fig.savefig(path)
    plt.close(fig)
