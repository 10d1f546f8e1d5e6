"""Correct-letter heads (notebook 08; Lieberum et al. 2023): the analyses of a multiple-choice model.

- `correct_letter_score` / `correct_option_score`: how much of a head's attention at the last
  position goes to the correct option's label, or to the correct option itself;
- `head_scores`: both scores for every head, `ablated_accuracy`: accuracy with heads mean-ablated;
- `ov_label_accuracy`: whether a head's output alone, read through the unembedding, names the
  correct label among the question's labels (its OV "copies the label");
- `head_label_logits`: what a head's output alone adds to each label's logit;
- `top_directions`, `compress`, `compressed_qk_accuracy`: a head's queries and keys restricted to
  their top k directions (Lieberum et al. kept 3);
- `swapped_positions`, `logits_at_positions`, `position_or_label`: swap the positions of the correct (option, label) pair with another pair's,
  or swap their label tokens, and see whether the answer follows the position or the label;
- `letter_preference`, `letter_peak`, `proto_heads`: at each checkpoint of training, how much each head prefers one letter
  (the search for proto-correct-letter heads);
- `study`: all of them on one model, as the seed study records them.

Every function takes a course `Transformer` (or a `TransformerBridge`) and `Questions` from
`course_utils.multiple_choice`.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from . import validate
from .ablation import ablation_hooks
from .multiple_choice import (LETTERS, MultipleChoice, Questions, accuracy_and_loss, label_positions, mutation_table,
                              option_positions)


def _check_pattern(pattern, correct) -> None:
    validate.tensor(pattern, "pattern", "batch head_index query_pos key_pos", dtype="float")
    validate.tensor(correct, "correct", "batch", dtype="int")
    if correct.shape[0] != pattern.shape[0]:
        raise ValueError(f"correct must have shape [batch] = [{pattern.shape[0]}] (one slot per question), "
                         f"got shape {tuple(correct.shape)}")
    n_options = (pattern.shape[-1] - 3) // 2
    validate.ids(correct, n_options, "correct", "the option slots")


def correct_letter_score(pattern: Float[Tensor, "batch head_index query_pos key_pos"],
                         correct: Int[Tensor, " batch"]) -> Float[Tensor, " head_index"]:
    """Each head's attention from the last position (`->`) to the correct option's label, averaged
    over the questions: [head_index]. `correct` is the slot of the correct option."""
    _check_pattern(pattern, correct)
    n_options = (pattern.shape[-1] - 3) // 2
    keys = label_positions(n_options).to(pattern.device)[correct.to(pattern.device)]
    return pattern[torch.arange(len(correct)), :, -1, keys].mean(0)


def correct_option_score(pattern: Float[Tensor, "batch head_index query_pos key_pos"],
                         correct: Int[Tensor, " batch"]) -> Float[Tensor, " head_index"]:
    """Like `correct_letter_score`, for the correct option itself (the position just before its label)."""
    _check_pattern(pattern, correct)
    n_options = (pattern.shape[-1] - 3) // 2
    keys = option_positions(n_options).to(pattern.device)[correct.to(pattern.device)]
    return pattern[torch.arange(len(correct)), :, -1, keys].mean(0)


def _patterns(model, questions: Questions) -> list[torch.Tensor]:
    validate.model(model)
    validate.instance(questions, Questions, "questions")
    validate.tokens(questions.tokens, model.cfg, "questions.tokens")
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(questions.tokens, names_filter=lambda n: n in names)
    return [cache[n].float().cpu() for n in names]


def head_scores(model, questions: Questions) -> dict[str, Float[Tensor, "layer head_index"]]:
    """{"label": correct-letter score, "option": correct-option score}, each [layer, head_index]."""
    patterns = _patterns(model, questions)
    correct = questions.correct.cpu()
    return {"label": torch.stack([correct_letter_score(p, correct) for p in patterns]),
            "option": torch.stack([correct_option_score(p, correct) for p in patterns])}


def ablated_accuracy(model, questions: Questions, heads) -> dict[str, float]:
    """Accuracy and loss with `heads` ((layer, head) or a list) mean-ablated: each head's output
    replaced by its mean over these questions, position by position."""
    validate.instance(questions, Questions, "questions")
    hooks = ablation_hooks(model, heads, "mean", reference_tokens=questions.tokens)
    return accuracy_and_loss(model, questions, hooks)


def head_label_logits(model, tokens: Int[Tensor, "batch pos"], labels: Int[Tensor, "batch option"],
                      layer: int, head: int) -> Float[Tensor, "batch option"]:
    """What the head's output at the last position alone adds to the logit of each of the question's
    labels: [batch, option]. Its output z @ W_O, centred and divided by the final LayerNorm's scale
    (read from this run) and multiplied by its weight, as the model's final LayerNorm treats the
    whole residual stream, then read through the unembedding (no biases: they belong to no head)."""
    validate.head(model, layer, head)
    validate.tokens(tokens, model.cfg)
    validate.tensor(labels, "labels", "batch option", dtype="int")
    validate.ids(labels, model.cfg.d_vocab, "labels")
    if labels.shape[0] != tokens.shape[0]:
        raise ValueError(f"labels must have shape [batch, option] with batch = {tokens.shape[0]}, got shape {tuple(labels.shape)}")
    names = {f"blocks.{layer}.attn.hook_z", "ln_final.hook_scale"}
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
        out = cache[f"blocks.{layer}.attn.hook_z"][:, -1, head] @ model.W_O[layer, head]  # [batch, d_model]
        if "ln_final.hook_scale" in cache:  # a model with LayerNorm
            out = (out - out.mean(-1, keepdim=True)) / cache["ln_final.hook_scale"][:, -1] * model.ln_final.w
        logits = out @ model.W_U  # [batch, d_vocab]
    return logits.gather(1, labels.to(logits.device))


def ov_label_accuracy(model, questions: Questions, layer: int, head: int) -> float:
    """Share of questions where the head's output alone (`head_label_logits`) gives the correct label
    the highest logit among the question's labels: the head's OV circuit carries the answer's label."""
    validate.instance(questions, Questions, "questions")
    own = head_label_logits(model, questions.tokens, questions.labels, layer, head).cpu()
    return (own.argmax(1) == questions.correct.cpu()).float().mean().item()


def top_directions(vectors: Float[Tensor, "n d_head"], k: int) -> Float[Tensor, "k d_head"]:
    """The k orthonormal directions that hold most of `vectors` (their top right singular vectors,
    not centred: the mean is part of what a query or key carries)."""
    validate.tensor(vectors, "vectors", "n d_head", dtype="float")
    validate.int_in(k, 1, vectors.shape[1], "k", "at most d_head directions")
    validate.finite(vectors, "vectors")
    return torch.linalg.svd(vectors.double(), full_matrices=False).Vh[:k].to(vectors.dtype)


def compress(vectors: Float[Tensor, "n d_head"], k: int) -> Float[Tensor, "n d_head"]:
    """`vectors` projected onto their own top-k directions (`top_directions`): what is left of a
    head's queries, or keys, when they may use only k dimensions."""
    return project(vectors, top_directions(vectors, k))


def project(vectors: Float[Tensor, "... d_head"], basis: Float[Tensor, "k d_head"]) -> Float[Tensor, "... d_head"]:
    """`vectors` projected onto the span of the orthonormal rows of `basis`."""
    validate.tensor(vectors, "vectors", "... d_head", dtype="float")
    validate.tensor(basis, "basis", "k d_head", dtype="float")
    if basis.shape[1] != vectors.shape[-1]:
        raise ValueError(f"basis must have shape [k, d_head] = [k, {vectors.shape[-1]}], got shape {tuple(basis.shape)}")
    basis = basis.to(vectors.device, vectors.dtype)
    return (vectors @ basis.T) @ basis


def queries_and_keys(model, questions: Questions, layer: int, head: int, keys_at: str = "label"
                     ) -> tuple[Float[Tensor, "batch d_head"], Float[Tensor, "batch option d_head"]]:
    """The head's query at the last position [batch, d_head] and its keys at each option's label
    (keys_at="label") or at each option (keys_at="option") [batch, option, d_head]."""
    validate.head(model, layer, head)
    validate.instance(questions, Questions, "questions")
    validate.one_of(keys_at, ("label", "option"), "keys_at")
    names = {f"blocks.{layer}.attn.hook_q", f"blocks.{layer}.attn.hook_k"}
    with torch.no_grad():
        _, cache = model.run_with_cache(questions.tokens, names_filter=lambda n: n in names)
    n_options = questions.labels.shape[1]
    where = label_positions(n_options) if keys_at == "label" else option_positions(n_options)
    q = cache[f"blocks.{layer}.attn.hook_q"][:, -1, head].float().cpu()
    k = cache[f"blocks.{layer}.attn.hook_k"][:, where.to(questions.tokens.device), head].float().cpu()
    return q, k


def compressed_qk_accuracy(model, questions: Questions, heads, k: int, keys_at: str = "label",
                           control_seed: int | None = None, squeeze=None) -> dict:
    """Accuracy and loss when each of `heads` ((layer, head) or a list) may use only k dimensions of
    its queries and keys: its queries at the last position are replaced by `squeeze(queries, k)`,
    and its keys at the labels (or the options, keys_at="option"), the keys it chooses among, by
    `squeeze(keys, k)`. squeeze: `compress` by default (each set onto its own top-k directions);
    control_seed an int: k random orthonormal directions instead, the control."""
    heads = validate.heads(model, heads)
    validate.positive(k=k)
    validate.one_of(keys_at, ("label", "option"), "keys_at")
    if control_seed is not None:
        validate.integer(control_seed=control_seed)
        gen = torch.Generator().manual_seed(control_seed)

        def squeeze(vectors, k):
            return project(vectors, top_directions(torch.randn(k, vectors.shape[-1], generator=gen), k))
    elif squeeze is None:
        squeeze = compress
    elif not callable(squeeze):
        raise TypeError(f"squeeze must be a function (vectors [n, d_head], k) -> [n, d_head], got {type(squeeze).__name__}")
    n_options = questions.labels.shape[1]
    where = (label_positions(n_options) if keys_at == "label" else option_positions(n_options)).to(questions.tokens.device)

    def squeeze_hook(which: str, layer: int):
        def hook(x, hook):
            x = x.clone()
            for lay, head in heads:
                if lay != layer:
                    continue
                if which == "q":  # only the last position's query is read
                    x[:, -1, head] = squeeze(x[:, -1, head].float().cpu(), k).to(x.device, x.dtype)
                else:
                    keys = x[:, where, head]  # [batch, option, d_head]
                    x[:, where, head] = squeeze(keys.flatten(0, 1).float().cpu(), k).to(x.device, x.dtype).view_as(keys)
            return x
        return hook

    hooks = [(f"blocks.{layer}.attn.hook_{which}", squeeze_hook(which, layer))
             for layer in sorted({lay for lay, _ in heads}) for which in ("q", "k")]
    return accuracy_and_loss(model, questions, hooks)


def swapped_positions(correct: Int[Tensor, " batch"], other: Int[Tensor, " batch"], n_options: int) -> Int[Tensor, "batch pos"]:
    """The position each token of a question is told it has, [batch, 2 * n_options + 3], when the
    correct (option, label) pair and the pair in slot `other` exchange places: every other token
    keeps its own position."""
    validate.positive(n_options=n_options)
    validate.tensor(correct, "correct", "batch", dtype="int")
    validate.tensor(other, "other", "batch", dtype="int")
    validate.ids(correct, n_options, "correct", "the option slots")
    validate.ids(other, n_options, "other", "the option slots")
    if other.shape != correct.shape:
        raise ValueError(f"other must have shape [batch] = [{correct.shape[0]}], got shape {tuple(other.shape)}")
    size = correct.shape[0]
    rows = torch.arange(size)
    positions = torch.arange(2 * n_options + 3).expand(size, -1).clone()
    c, o = correct.cpu(), other.cpu()
    for offset in (0, 1):  # the option, then its label
        pc, po = option_positions(n_options)[c] + offset, option_positions(n_options)[o] + offset
        positions[rows, pc], positions[rows, po] = po, pc
    return positions.to(correct.device)


def logits_at_positions(model, tokens: Int[Tensor, "batch pos"], positions: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch d_vocab"]:
    """The logits at the last position when token i of question b is told it sits at position
    positions[b, i]: a hook replaces the positional embedding with those rows of W_pos."""
    validate.model(model)
    validate.tokens(tokens, model.cfg)
    validate.tensor(positions, "positions", "batch pos", dtype="int")
    validate.shape_is(positions, "positions", tuple(tokens.shape), "[batch, pos] (one position per token)")
    validate.ids(positions, model.cfg.n_ctx, "positions", "the model's positions")

    def move(pos_embed, hook):
        return model.W_pos[positions.to(pos_embed.device)]

    return model.run_with_hooks(tokens, fwd_hooks=[("hook_pos_embed", move)])[:, -1]


def swapped(questions: Questions, other: Int[Tensor, " batch"], what: str) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """(tokens, positions) for the position-versus-label test: the correct (option, label) pair and
    the pair in slot `other` exchange their positions (what="positions": the tokens stay, each is
    told it sits where the other pair sits; `swapped_positions`) or their label tokens (what="labels")."""
    validate.instance(questions, Questions, "questions")
    validate.one_of(what, ("positions", "labels"), "what")
    size, n_options = questions.labels.shape
    validate.tensor(other, "other", "batch", dtype="int")
    validate.ids(other, n_options, "other", "the option slots")
    if other.shape[0] != size or (other.cpu() == questions.correct.cpu()).any():
        raise ValueError("other must give, for each question, a slot other than the correct one: shape [batch], other != correct")
    rows = torch.arange(size)
    tokens = questions.tokens.cpu().clone()
    c, o = questions.correct.cpu(), other.cpu()
    if what == "labels":
        lc, lo = label_positions(n_options)[c], label_positions(n_options)[o]
        tokens[rows, lc], tokens[rows, lo] = tokens[rows, lo], tokens[rows, lc]
        return tokens, torch.arange(tokens.shape[1]).expand(size, -1).clone()
    return tokens, swapped_positions(c, o, n_options)


def position_or_label(model, questions: Questions, what: str, seed: int = 0) -> dict[str, float]:
    """Swap (`swapped`) the correct pair with another slot's, drawn at random, and say what the
    model answers: {"follows_label": share answering the label token that now sits after the
    correct option, "follows_position": share answering the label that sat at the slot the correct
    option now occupies (what="positions") or sat at the correct slot originally (what="labels"),
    "other": the rest}. A model that reads the label's identity follows the label; a model that
    reads "the n-th option" follows the position."""
    validate.model(model)
    validate.instance(questions, Questions, "questions")
    validate.integer(seed=seed)
    size, n_options = questions.labels.shape
    gen = torch.Generator().manual_seed(seed)
    other = (questions.correct.cpu() + torch.randint(1, n_options, (size,), generator=gen)) % n_options
    tokens, positions = swapped(questions, other, what)
    device = model.W_E.device
    with torch.no_grad():
        answer = logits_at_positions(model, tokens.to(device), positions.to(device)).argmax(-1).cpu()
    rows = torch.arange(size)
    labels = questions.labels.cpu()
    correct_label, other_label = labels[rows, questions.correct.cpu()], labels[rows, other]
    if what == "positions":  # the tokens stay: the correct option still carries its own label token
        by_label, by_position = correct_label, other_label
    else:  # the label after the correct option is now the other one; its position is unchanged
        by_label, by_position = other_label, correct_label
    follows_label = (answer == by_label).float().mean().item()
    follows_position = (answer == by_position).float().mean().item()
    return {"follows_label": follows_label, "follows_position": follows_position,
            "other": 1 - follows_label - follows_position}


def letter_preference(model, mc: MultipleChoice, size: int = 512, seed: int = 0) -> Float[Tensor, "layer head_index letter"]:
    """[layer, head_index, letter]: each head's mean attention from the last position to a *wrong*
    option's label, by which letter the label is, on questions whose letters are independent of the
    slots: random letters for a randomised-label model, A to D shuffled for a fixed-label one (it
    never saw the other letters). Wrong labels only, so that the answer does not count: a head
    that prefers one letter whatever the question has a peak here; a correct-letter head gives the
    wrong labels nothing, whatever their letter. Letters never shown have 0."""
    validate.model(model)
    validate.instance(mc, MultipleChoice, "mc")
    questions = mc.questions(size, seed, labels="random" if mc.labels == "randomised" else "shuffled")
    patterns = _patterns(model, questions)
    n_options = mc.n_options
    letters = questions.labels.cpu() - mc.first_letter  # [batch, option]
    wrong = torch.ones_like(letters, dtype=torch.bool)
    wrong[torch.arange(size), questions.correct.cpu()] = False
    letters = letters[wrong]  # [batch * (option - 1)]
    out = torch.zeros(len(patterns), model.cfg.n_heads, len(LETTERS))
    counts = torch.zeros(len(LETTERS))
    counts.index_add_(0, letters, torch.ones(letters.numel()))
    for layer, p in enumerate(patterns):
        at_labels = p[:, :, -1, label_positions(n_options)]  # [batch, head, option]
        for h in range(model.cfg.n_heads):
            out[layer, h].index_add_(0, letters, at_labels[:, h][wrong])
    return out / counts.clamp(min=1)


def letter_peak(preference: Float[Tensor, "layer head_index letter"]) -> Float[Tensor, "layer head_index"]:
    """How much each head prefers one letter: its largest attention on one letter minus its mean
    over the letters, from `letter_preference` (restricted to the letters shown)."""
    validate.tensor(preference, "preference", "layer head_index letter", dtype="float")
    return preference.max(-1).values - preference.mean(-1)


def proto_heads(history: dict, mc: MultipleChoice, size: int = 256, seed: int = 0) -> dict:
    """At every checkpoint {step: model} of a training history: each head's correct-letter and
    correct-option scores, and its letter preference's peak (the largest attention on one letter
    minus the mean over the letters shown) and which letter that is. Lists indexed [step][layer][head]."""
    validate.instance(mc, MultipleChoice, "mc")
    if not isinstance(history, dict) or not history:
        raise TypeError(f"history must be a non-empty dict {{step: model}}, got {type(history).__name__}")
    shown = slice(0, len(LETTERS)) if mc.labels == "randomised" else slice(0, mc.n_options)
    out = {"steps": [], "label_scores": [], "option_scores": [], "letter_peak": [], "peak_letter": []}
    questions = mc.questions(size, seed)
    for step in sorted(history):
        model = history[step]
        scores = head_scores(model, questions)
        pref = letter_preference(model, mc, size, seed)[..., shown]
        out["steps"].append(int(step))
        out["label_scores"].append(scores["label"].round(decimals=4).tolist())
        out["option_scores"].append(scores["option"].round(decimals=4).tolist())
        out["letter_peak"].append(letter_peak(pref).round(decimals=4).tolist())
        out["peak_letter"].append(pref.argmax(-1).tolist())
    return out


def study(model, mc: MultipleChoice, size: int = 512, seed: int = 0, k: int = 3) -> dict:
    """Everything notebook 08 asserts about one model, as plain numbers (the seed study's record):
    head scores, the best head by each score, ablation, OV, QK compression at k = 1..k, the position
    versus label tests, and the mutation table."""
    validate.model(model)
    validate.instance(mc, MultipleChoice, "mc")
    questions = mc.questions(size, seed)
    scores = head_scores(model, questions)
    result = {"label_scores": scores["label"].round(decimals=4).tolist(),
              "option_scores": scores["option"].round(decimals=4).tolist(),
              "clean": accuracy_and_loss(model, questions)}
    for kind in ("label", "option"):
        layer, head = divmod(int(scores[kind].argmax()), model.cfg.n_heads)
        result[f"best_{kind}_head"] = [layer, head]
        result[f"best_{kind}_score"] = round(float(scores[kind][layer, head]), 4)
    # the heads that do the job: every head of the last layer whose attention on the correct
    # label or option is above 0.3
    last = model.cfg.n_layers - 1
    top = torch.maximum(scores["label"][last], scores["option"][last])
    heads = [(last, h) for h in range(model.cfg.n_heads) if top[h] > 0.3]
    result["answer_heads"] = [list(h) for h in heads]
    result["ablated_answer_heads"] = ablated_accuracy(model, questions, heads) if heads else result["clean"]
    result["ov_label_accuracy"] = [round(ov_label_accuracy(model, questions, last, h), 4) for h in range(model.cfg.n_heads)]
    # every answer head compressed at once (they are redundant: one alone proves nothing)
    squeezed = heads or [(last, int(top.argmax()))]
    keys_at = "label" if scores["label"][last].sum() >= scores["option"][last].sum() else "option"
    result["compressed"] = {"heads": [list(h) for h in squeezed], "keys_at": keys_at,
                            "by_k": {str(j): compressed_qk_accuracy(model, questions, squeezed, j, keys_at) for j in range(1, k + 1)}}
    result["compressed"]["random_k1"] = compressed_qk_accuracy(model, questions, squeezed, 1, keys_at, control_seed=seed)
    result["ablated_each"] = [ablated_accuracy(model, questions, (last, h))["accuracy"] for h in range(model.cfg.n_heads)]
    result["position_or_label"] = {what: position_or_label(model, questions, what, seed) for what in ("positions", "labels")}
    result["mutations"] = mutation_table(model, mc, size, seed)
    return _rounded(result)


def _rounded(x):
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x
