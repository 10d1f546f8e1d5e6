"""Figures. Computing lives elsewhere; these functions only draw what they are given."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def head_heatmap(scores: Float[Tensor, "layer head_index"], title: str, ax=None, vmin=None, vmax=None, cmap="Blues"):
    """A [layer, head] grid of numbers, each cell labelled."""
    scores = _np(scores)
    if np.ndim(scores) != 2:
        raise ValueError(f"scores must be a [layer, head] grid, got shape {np.shape(scores)}")
    bad = ~np.isfinite(np.asarray(scores, dtype=float))
    if bad.any():  # imshow would leave a blank cell and the colour scale would ignore it: say so instead
        layer, head = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"scores contains NaN or inf ({int(bad.sum())} of {bad.size} entries, the first at layer "
                         f"{layer}, head {head}): expected finite numbers; the heat map would show a blank cell")
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


def attention_grid(patterns: Float[Tensor, "layer head_index query_pos key_pos"], title: str = "attention patterns"):
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


# ---- circuitsvis views that keep a notebook light -------------------------------------------
# circuitsvis inlines its whole JavaScript bundle (1.3 MB) into every view when offline, and
# probes google.com before each render to decide. These wrappers send the bundle once per kernel
# session, gzipped (about 0.5 MB), and every later view only names the element to draw and its
# data. The notebook then renders offline and online, in JupyterLab and in an exported HTML page.
# Colab shows each output in its own frame, so there every view carries the bundle.

_bundle_sent = False

_LOADER = """<script>
(function () {
  if (window.courseCircuitsVis) { return; }
  var data = "%s";
  window.courseCircuitsVis = (async function () {
    var bytes = Uint8Array.from(atob(data), function (c) { return c.charCodeAt(0); });
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    var script = document.createElement("script");
    script.textContent = (await new Response(stream).text()) + "\\nwindow.CircuitsVis = CircuitsVis;";
    document.head.appendChild(script);
    return window.CircuitsVis;
  })();
})();
</script>"""

_VIEW = """<div id="%(id)s" class="course-circuitsvis" data-view="%(element)s" style="margin: 15px 0;"></div>
<script>
(function () {
  var id = "%(id)s", props = %(props)s, tries = 0;
  function fail(message) {
    var el = document.getElementById(id);
    if (el) { el.textContent = message; }
    console.error(message);
  }
  function draw() {
    if (window.courseCircuitsVis) {
      window.courseCircuitsVis.then(function (cv) { cv.render(id, cv.%(element)s, props); })
        .catch(function (err) { fail("circuitsvis could not load: " + err); });
    } else if (tries++ < 100) {
      setTimeout(draw, 50);
    } else {
      fail("This view needs circuitsvis's script, which came with the first view of this session " +
           "(its output may have been cleared, or the page reloaded). Run `viz.reset_views()`, " +
           "then run this cell again.");
    }
  }
  draw();
})();
</script>"""


def _in_colab() -> bool:
    import sys

    return "google.colab" in sys.modules


def _bundle_base64() -> str:
    """circuitsvis's own JavaScript bundle, from the installed package, gzipped and base64-encoded."""
    global _BUNDLE
    if _BUNDLE is None:
        import base64
        import gzip
        from importlib.resources import files

        js = (files("circuitsvis") / "dist" / "cdn" / "iife.js").read_bytes()
        _BUNDLE = base64.b64encode(gzip.compress(js, compresslevel=9, mtime=0)).decode("ascii")
    return _BUNDLE


_BUNDLE = None


def reset_views():
    """Make the next view carry circuitsvis's script again (after a page reload or cleared outputs)."""
    global _bundle_sent
    _bundle_sent = False


class CircuitsVisView:
    """One circuitsvis element, shown by Jupyter through `_repr_html_`."""

    def __init__(self, element: str, props: dict):
        from uuid import uuid4

        from circuitsvis.utils.convert_props import convert_props

        self.element, self.id = element, f"course-cv-{uuid4().hex[:12]}"
        self.props = convert_props(props)  # circuitsvis's own conversion: tensors to nested lists, JSON

    def _repr_html_(self) -> str:
        global _bundle_sent
        view = _VIEW % {"id": self.id, "element": self.element, "props": self.props.replace("</", "<\\/")}
        if _bundle_sent and not _in_colab():
            return view
        _bundle_sent = True
        return _LOADER % _bundle_base64() + "\n" + view


def _tokens(tokens, argument="tokens") -> list[str]:
    if isinstance(tokens, torch.Tensor):
        tokens = tokens.tolist()
    if not isinstance(tokens, (list, tuple)) or any(isinstance(t, (list, tuple)) for t in tokens):
        raise ValueError(f"{argument} must be one sequence of tokens (a list of strings, or a 1-d tensor of "
                         f"ids), got {type(tokens).__name__}")
    return [str(t) for t in tokens]


def attention_heads(attention: Float[Tensor, "head_index query_pos key_pos"], tokens, head_names=None,
                    **options) -> CircuitsVisView:
    """circuitsvis's AttentionHeads view: attention [head, query_pos, key_pos] of one sequence, one
    thumbnail per head; click one to see it large and hover over tokens. `options` are circuitsvis's
    (max_value, min_value, positive_color, negative_color, mask_upper_tri)."""
    tokens = _tokens(tokens)
    attention = torch.as_tensor(_np(attention), dtype=torch.float32)
    if attention.ndim != 3 or attention.shape[1:] != (len(tokens), len(tokens)):
        raise ValueError(f"attention must be [head, query_pos, key_pos] = [head, {len(tokens)}, {len(tokens)}] "
                         f"for {len(tokens)} tokens, got shape {tuple(attention.shape)}")
    if head_names is not None and len(head_names) != attention.shape[0]:
        raise ValueError(f"head_names must name each of the {attention.shape[0]} heads, got {len(head_names)} names")
    return CircuitsVisView("AttentionHeads", _props(
        dict(attention=attention, tokens=tokens, attention_head_names=head_names, **options)))


def colored_tokens(tokens, values: Float[Tensor, " pos"], **options) -> CircuitsVisView:
    """circuitsvis's ColoredTokens view: each token coloured by one number (e.g. its loss).
    `options` are circuitsvis's (min_value, max_value, positive_color, negative_color)."""
    tokens = _tokens(tokens)
    values = torch.as_tensor(_np(values), dtype=torch.float32)
    if values.shape != (len(tokens),):
        raise ValueError(f"values must hold one number per token, shape ({len(tokens)},), "
                         f"got shape {tuple(values.shape)}")
    return CircuitsVisView("ColoredTokens", _props(dict(tokens=tokens, values=values, **options)))


_OPTIONS = {"max_value", "min_value", "positive_color", "negative_color", "mask_upper_tri", "show_axis_labels"}


def _props(kwargs: dict) -> dict:
    """snake_case Python arguments to circuitsvis's camelCase props; unknown options are refused."""
    unknown = set(kwargs) - _OPTIONS - {"attention", "tokens", "values", "attention_head_names"}
    if unknown:
        raise TypeError(f"unknown circuitsvis option(s) {sorted(unknown)}; expected some of {sorted(_OPTIONS)}")
    camel = {k: k.split("_")[0] + "".join(w.title() for w in k.split("_")[1:]) for k in kwargs}
    return {camel[k]: v for k, v in kwargs.items() if v is not None}
