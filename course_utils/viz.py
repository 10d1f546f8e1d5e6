"""Figures. Computing lives elsewhere; these functions only draw what they are given."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def head_heatmap(scores: torch.Tensor, title: str, ax=None, vmin=None, vmax=None, cmap="Blues"):
    """A [layer, head] grid of numbers, each cell labelled."""
    scores = _np(scores)
    if np.ndim(scores) != 2:
        raise ValueError(f"scores must be a [layer, head] grid, got shape {np.shape(scores)}")
    ax = ax or plt.subplots(figsize=(1.2 * scores.shape[1] + 1.5, 0.9 * scores.shape[0] + 1))[1]
    im = ax.imshow(scores, cmap=cmap, vmin=vmin, vmax=vmax)
    for (layer, head), value in np.ndenumerate(scores):
        ax.text(head, layer, f"{value:.2f}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(scores.shape[1]))
    ax.set_yticks(range(scores.shape[0]))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title)
    plt.colorbar(im, ax=ax, fraction=0.046)
    return ax


def attention_grid(patterns: torch.Tensor, title: str = "attention patterns"):
    """patterns [layer, head, query_pos, key_pos] as a grid of heat maps, one per head."""
    patterns = _np(patterns)
    if np.ndim(patterns) != 4:
        raise ValueError(f"patterns must be [layer, head, query_pos, key_pos], got shape {np.shape(patterns)}")
    n_layers, n_heads = patterns.shape[:2]
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(2.6 * n_heads, 2.6 * n_layers), squeeze=False)
    for layer in range(n_layers):
        for head in range(n_heads):
            ax = axes[layer, head]
            ax.imshow(patterns[layer, head], cmap="Blues", vmin=0, vmax=1)
            ax.set_title(f"head {layer}.{head}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{title} (rows: query position, columns: key position)")
    fig.tight_layout()
    return fig


def training_story(steps, loss=None, icl=None, induction=None, title="training"):
    """Curves over training steps: loss and/or ICL score on the left axis, induction scores
    ({label: values}) on the right axis."""
    curves = {"loss": loss, **{f"icl[{k!r}]": v for k, v in (icl or {}).items()},
              **{f"induction[{k!r}]": v for k, v in (induction or {}).items()}}
    for name, values in curves.items():
        if values is not None and len(values) != len(steps):
            raise ValueError(f"{name} must have one value per step ({len(steps)}), got {len(values)} values")
    fig, ax = plt.subplots(figsize=(8, 4))
    if loss is not None:
        ax.plot(steps, loss, color="black", label="loss")
    for label, values in (icl or {}).items():
        ax.plot(steps, values, label=f"ICL score, {label}", lw=2)
    ax.set_xlabel("training step")
    ax.set_ylabel("nats")
    lines, labels = ax.get_legend_handles_labels()
    if induction:
        ax2 = ax.twinx()
        for label, values in induction.items():
            ax2.plot(steps, values, ls="--", label=f"induction score, {label}")
        ax2.set_ylabel("induction score")
        ax2.set_ylim(0, 1)
        more, more_labels = ax2.get_legend_handles_labels()
        lines, labels = lines + more, labels + more_labels
    ax.legend(lines, labels, loc="upper right", fontsize=8)
    ax.set_title(title)
    return fig
