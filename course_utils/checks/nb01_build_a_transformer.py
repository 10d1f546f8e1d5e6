"""Checks for notebook 01, "Build a two-layer transformer": embedding, positional embedding, causal
attention, multi-head attention, unembedding, the forward pass that puts them together; then the
training loop, sampling, and two hooks, one that reads an activation and one that edits one."""

from __future__ import annotations

import einops
import torch
import torch.nn.functional as F

from .. import model as reference
from .. import train, validate
from . import fixtures
from .framework import ExerciseError, call, compare, done

REFERENCES = {
    "embed": reference.embed,
    "pos_embed": reference.pos_embed,
    "attention_pattern": reference.attention_pattern,
    "multi_head_attention": reference.multi_head_attention,
    "unembed": reference.unembed,
    "train_loop": train.train_loop,
    "sample": reference.sample,
    "record_patterns": reference.record_patterns,
    "logits_with_positions": reference.logits_with_positions,
}


def check_embed(fn):
    """fn(tokens [batch, pos], W_E [d_vocab, d_model]) -> [batch, pos, d_model]."""
    __tracebackhide__ = True
    shapes = [(2, 5, 11, 7), (3, 9, 20, 16), (1, 6, 8, 8)]  # (batch, pos, d_vocab, d_model); the last is square
    for seed, (batch, seq, d_vocab, d_model) in enumerate(shapes):
        g = fixtures.generator(seed)
        tokens = fixtures.tokens(g, batch, seq, d_vocab)
        W_E = torch.randn(d_vocab, d_model, generator=g)
        expected = reference.embed(tokens, W_E)
        got = call("embed", fn, {"tokens": tokens, "W_E": W_E})
        mistakes = {
            "you looked the tokens up in W_E.T: W_E is [d_vocab, d_model], so the embedding of token t "
            "is row t of W_E, W_E[tokens]": lambda: W_E.T[tokens],
            "your output is [pos, batch, d_model]: keep the batch axis first": expected.transpose(0, 1),
            "you returned one-hot vectors, not embeddings: look the rows up in W_E":
                lambda: F.one_hot(tokens, d_vocab).float(),
            "you embedded only the first sequence of the batch: index W_E with the whole tokens tensor":
                W_E[tokens[0]],
        }
        compare("embed", got, expected, mistakes, axes="batch pos d_model")
    done("embed", len(shapes))


def check_pos_embed(fn):
    """fn(tokens [batch, pos], W_pos [n_ctx, d_model]) -> [batch, pos, d_model]."""
    __tracebackhide__ = True
    shapes = [(2, 5, 12, 12, 6), (3, 7, 10, 10, 4), (4, 1, 9, 30, 5)]  # (batch, pos, n_ctx, d_vocab, d_model)
    for seed, (batch, seq, n_ctx, d_vocab, d_model) in enumerate(shapes):
        g = fixtures.generator(seed)
        tokens = fixtures.tokens(g, batch, seq, d_vocab)
        W_pos = torch.randn(n_ctx, d_model, generator=g)
        expected = reference.pos_embed(tokens, W_pos)
        got = call("pos_embed", fn, {"tokens": tokens, "W_pos": W_pos})
        mistakes = {
            "you indexed W_pos with the token ids: positional embeddings depend on the position "
            "(0, 1, ..., pos-1), not on which token is there": lambda: W_pos[tokens],
            "you returned all n_ctx rows of W_pos: take only the first `pos` rows, W_pos[:pos]":
                W_pos.expand(batch, n_ctx, d_model),
            "you forgot the batch axis: expand W_pos[:pos] to [batch, pos, d_model]": W_pos[:seq],
            "you took the first `batch` rows of W_pos: the positions are the second axis of tokens, "
            "tokens.shape[1]": W_pos[:batch].expand(batch, batch, d_model),
        }
        compare("pos_embed", got, expected, mistakes, axes="batch pos d_model")
    done("pos_embed", len(shapes))


_PATTERN_NAN = ("a row of the pattern is NaN when every score in it is -inf (the softmax divides 0 by 0): "
                "mask only the keys after the query (torch.triu(..., diagonal=1)), so each query keeps itself")


def _pattern_mistakes(q, k):
    d_head, seq = q.shape[-1], q.shape[-2]
    scores = q @ k.transpose(-2, -1) / d_head**0.5
    future = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
    return {
        "your pattern puts weight on future positions: did you apply the causal mask "
        "(scores above the diagonal set to -inf) before the softmax?": scores.softmax(-1),
        "your scores are not divided by sqrt(d_head): without the scale the softmax is too sharp":
            (scores * d_head**0.5).masked_fill(future, float("-inf")).softmax(-1),
        "you divided the scores by d_head: divide by its square root, sqrt(d_head)":
            (scores / d_head**0.5).masked_fill(future, float("-inf")).softmax(-1),
        "your rows do not sum to 1: take the softmax over the last axis (the keys), not the queries":
            scores.masked_fill(future, float("-inf")).softmax(-2),
        "you masked after the softmax: rows no longer sum to 1; mask the scores with -inf first":
            scores.softmax(-1).masked_fill(future, 0.0),
        "you set the masked scores to 0: exp(0) = 1, so future keys still get weight; set them to -inf":
            scores.masked_fill(future, 0.0).softmax(-1),
        "your pattern is transposed: rows are queries, columns are keys (a query attends to "
        "earlier keys, so the pattern is lower-triangular)":
            scores.masked_fill(future, float("-inf")).softmax(-1).transpose(-2, -1),
        "you masked the diagonal too: a query may attend to its own position (query 0 has nothing "
        "else), so mask only above the diagonal, torch.triu(..., diagonal=1)":
            scores.masked_fill(torch.triu(torch.ones(seq, seq, dtype=torch.bool)), float("-inf")).softmax(-1),
    }


def check_attention_pattern(fn):
    """fn(q [..., pos, d_head], k [..., pos, d_head]) -> pattern [..., query_pos, key_pos]."""
    __tracebackhide__ = True
    shapes = [(1, 4, 3), (2, 6, 8), (2, 3, 5, 4)]  # the last has a head axis: [batch, head, pos, d_head]
    for seed, shape in enumerate(shapes):
        g = fixtures.generator(seed)
        q, k = torch.randn(shape, generator=g) * 2, torch.randn(shape, generator=g) * 2
        expected = reference.attention_pattern(q, k)
        got = call("attention_pattern", fn, {"q": q, "k": k})
        axes = " ".join(["batch", "head"][: len(shape) - 2] + ["query_pos", "key_pos"])
        compare("attention_pattern", got, expected, _pattern_mistakes(q, k), axes=axes, nan_hint=_PATTERN_NAN)
    done("attention_pattern", len(shapes))


_WEIGHT_NAMES = ("W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O", "b_O")


def _attention(x, w, mask=True, reduce="sum", scale=True):
    """Multi-head attention written out, with the switches that make the common mistakes."""
    project = "batch pos d_model, head d_model d_head -> batch head pos d_head"
    q = einops.einsum(x, w["W_Q"], project) + w["b_Q"][:, None]
    k = einops.einsum(x, w["W_K"], project) + w["b_K"][:, None]
    v = einops.einsum(x, w["W_V"], project) + w["b_V"][:, None]
    if mask:  # without the scale: k * sqrt(d_head) cancels the division inside attention_pattern
        pattern = reference.attention_pattern(q, k if scale else k * q.shape[-1] ** 0.5)
    else:
        pattern = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1)
    out = einops.einsum(pattern @ v, w["W_O"], "batch head pos d_head, head d_head d_model -> batch head pos d_model")
    if reduce == "keep":
        return out
    return (out.sum(1) if reduce == "sum" else out.mean(1)) + w["b_O"]


def check_multi_head_attention(fn):
    """fn(x, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O) -> [batch, pos, d_model]."""
    __tracebackhide__ = True
    shapes = [(2, 5, 2, 3), (1, 7, 4, 2), (3, 4, 3, 4)]  # (batch, pos, n_heads, d_head)
    for seed, (batch, seq, n_heads, d_head) in enumerate(shapes):
        g = fixtures.generator(seed)
        d_model = n_heads * d_head
        x = torch.randn(batch, seq, d_model, generator=g)
        w = fixtures.attention_weights(g, n_heads, d_model, d_head)
        inputs = {"x": x, **{name: w[name] for name in _WEIGHT_NAMES}}
        expected = reference.multi_head_attention(*inputs.values())
        got = call("multi_head_attention", fn, inputs)
        no_qkv_bias = dict(w, b_Q=torch.zeros_like(w["b_Q"]), b_K=torch.zeros_like(w["b_K"]),
                           b_V=torch.zeros_like(w["b_V"]))
        mistakes = {
            "you left out b_O, the output bias": expected - w["b_O"],
            "you left out the biases b_Q, b_K and b_V: add each to its projection": _attention(x, no_qkv_bias),
            "your heads see the future: apply the causal mask inside each head": _attention(x, w, mask=False),
            "your scores are not divided by sqrt(d_head)": _attention(x, w, scale=False),
            "you averaged the heads' outputs: heads write into the residual stream by adding up, "
            "so sum over the head axis": _attention(x, w, reduce="mean"),
            "your output still has a head axis: sum the heads' outputs into [batch, pos, d_model]":
                _attention(x, w, reduce="keep"),
        }
        compare("multi_head_attention", got, expected, mistakes, atol=1e-4, axes="batch pos d_model",
                nan_hint=_PATTERN_NAN)
    done("multi_head_attention", len(shapes))


def check_unembed(fn):
    """fn(resid [batch, pos, d_model], W_U [d_model, d_vocab], b_U [d_vocab]) -> logits [batch, pos, d_vocab]."""
    __tracebackhide__ = True
    shapes = [(2, 3, 4, 9), (1, 5, 6, 6), (3, 2, 5, 7)]  # (batch, pos, d_model, d_vocab); the second is square
    for seed, (batch, seq, d_model, d_vocab) in enumerate(shapes):
        g = fixtures.generator(seed)
        resid = torch.randn(batch, seq, d_model, generator=g)
        W_U, b_U = torch.randn(d_model, d_vocab, generator=g), torch.randn(d_vocab, generator=g)
        expected = reference.unembed(resid, W_U, b_U)
        got = call("unembed", fn, {"resid": resid, "W_U": W_U, "b_U": b_U})
        mistakes = {
            "you left out the bias b_U": resid @ W_U,
            "you applied a softmax: the unembedding returns logits, not probabilities": expected.softmax(-1),
            "you applied a log_softmax: the unembedding returns the logits themselves": expected.log_softmax(-1),
            "you multiplied by W_U.T: W_U is [d_model, d_vocab], so resid @ W_U": lambda: resid @ W_U.T + b_U,
        }
        compare("unembed", got, expected, mistakes, axes="batch pos d_vocab")
    done("unembed", len(shapes))


def _forward(tokens, model, pos=True, residual=True, layers=None, b_U=True, unembed=True):
    """The forward pass of notebook 01 written out, with the switches that make the common mistakes."""
    resid = reference.embed(tokens, model.W_E) + (reference.pos_embed(tokens, model.W_pos) if pos else 0)
    for block in list(model.blocks)[:layers]:
        a = block.attn
        out = reference.multi_head_attention(resid, a.W_Q, a.b_Q, a.W_K, a.b_K, a.W_V, a.b_V, a.W_O, a.b_O)
        resid = resid + out if residual else out
    if not unembed:
        return resid
    return reference.unembed(resid, model.W_U, model.b_U if b_U else torch.zeros_like(model.b_U))


def check_forward(fn, model):
    """fn(tokens, model) -> logits: your forward pass with `model`'s weights, against `model(tokens)`.

    Tried on `model` and on two more attention-only models with three layers and non-zero biases,
    with batches of different lengths."""
    __tracebackhide__ = True
    validate.instance(model, reference.Transformer, "model")
    if not model.cfg.attn_only or model.cfg.normalization_type is not None:
        raise ValueError("model must be attention-only without LayerNorm, like notebook 01's "
                         f"(attn_only=True, normalization_type=None), got {model.cfg}")
    models = [model, fixtures.model(seed=1, attn_only=True), fixtures.model(seed=2, n_heads=2, attn_only=True)]
    cases = 0
    for seed, m in enumerate(models):
        device = m.W_E.device
        for batch, seq in [(2, min(12, m.cfg.n_ctx)), (3, min(5, m.cfg.n_ctx))]:
            tokens = fixtures.tokens(fixtures.generator(seed), batch, seq, m.cfg.d_vocab).to(device)
            with torch.no_grad():
                expected = m(tokens)
                got = call("forward", fn, {"tokens": tokens, "model": m})
                mistakes = {
                    "you forgot the positional embedding": lambda: _forward(tokens, m, pos=False),
                    "you replaced the residual stream by each layer's output instead of adding to it: "
                    "resid = resid + attention(resid)": lambda: _forward(tokens, m, residual=False),
                    "you ran only the first block: is the `return` (or the unembedding) inside the loop over "
                    "model.blocks?": lambda: _forward(tokens, m, layers=1),
                    "you left out the unembedding's bias b_U": lambda: _forward(tokens, m, b_U=False),
                    "you returned the residual stream: finish with the unembedding, which gives logits":
                        lambda: _forward(tokens, m, unembed=False),
                }
            compare("forward", got, expected, mistakes, atol=1e-4, axes="batch pos d_vocab", nan_hint=_PATTERN_NAN)
            cases += 1
    done("forward", cases)


# ---- the training loop, sampling, and hooks ----------------------------------------------------------


def _train(model, batches, lr, zero_grad=True, shift="next", step=True, one_optimizer=True, sgd=False, after=False):
    """The training loop of notebook 01 written out, with the switches that make the common mistakes."""
    def new_optimizer():
        return (torch.optim.SGD if sgd else torch.optim.AdamW)(model.parameters(), lr=lr)

    optimizer, losses = new_optimizer(), []
    for tokens in batches:
        optimizer = optimizer if one_optimizer else new_optimizer()
        logits = model(tokens)
        predicted, target = {"next": (logits[:, :-1], tokens[:, 1:]), "none": (logits, tokens),
                             "back": (logits[:, 1:], tokens[:, :-1])}[shift]
        loss = F.cross_entropy(predicted.flatten(0, 1), target.flatten())
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if step:
            optimizer.step()
        if after:  # the loss measured again, on the updated model
            with torch.no_grad():
                loss = F.cross_entropy(model(tokens)[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
        losses.append(loss.detach())
    return torch.stack(losses)


_TRAIN_CASES = [  # (fixture model, steps, batch, pos, lr): attention-only, then with LayerNorm and MLPs
    (dict(seed=3, attn_only=True), 4, 3, 7, 1e-2),
    (dict(seed=4, n_heads=2), 5, 2, 9, 3e-3),
]


def check_train_loop(fn):
    """fn(model, batches [step, batch, pos], lr) -> losses [step]: trains `model` in place, one AdamW step
    per batch. Compares the losses and the trained model with the reference loop's, from the same start."""
    __tracebackhide__ = True
    for seed, (shape, steps, batch, seq, lr) in enumerate(_TRAIN_CASES):
        g = fixtures.generator(seed)
        batches = torch.stack([fixtures.tokens(g, batch, seq, 13) for _ in range(steps)])
        reference_model = fixtures.model(**shape)
        expected = train.train_loop(reference_model, batches, lr)
        model = fixtures.model(**shape)
        got = call("train_loop", fn, {"model": model, "batches": batches, "lr": lr}, changes=("model",))

        def variant(**switches):
            return lambda: _train(fixtures.model(**shape), batches, lr, **switches)

        mistakes = {
            "your weights never changed: every loss is the untrained model's. After loss.backward(), call "
            "optimizer.step() (and zero the gradients before backward, not between backward and step)": variant(step=False),
            "you never zeroed the gradients: loss.backward() adds to .grad, so each step used the sum of every "
            "gradient so far. Call optimizer.zero_grad() once per step, before loss.backward()": variant(zero_grad=False),
            "you compared the logits at each position with the token at that same position: the prediction at "
            "position t is for the token at t + 1, so pair logits[:, :-1] with tokens[:, 1:]": variant(shift="none"),
            "you shifted the wrong way: the prediction at position t is for the NEXT token, so pair "
            "logits[:, :-1] with tokens[:, 1:] (not logits[:, 1:] with tokens[:, :-1])": variant(shift="back"),
            "you made a new optimizer at every step: AdamW keeps running averages of the gradients from step "
            "to step. Create it once, before the loop": variant(one_optimizer=False),
            "your steps are plain gradient descent (SGD): use torch.optim.AdamW(model.parameters(), lr=lr)":
                variant(sgd=True),
            "your losses were measured after each step, on the updated model: keep the loss you computed "
            "before the step, the one you called backward on": variant(after=True),
        }
        compare("train_loop", got, expected, mistakes, atol=1e-4, axes="step")
        with torch.no_grad():
            trained = torch.allclose(model(batches[0]), reference_model(batches[0]), atol=1e-4)
        if not trained:
            raise ExerciseError(
                "[train_loop] your losses are right, but `model` is not trained as they say: after your function "
                "its logits differ from the reference's. Train `model` itself, in place (not a copy), one step "
                "per batch, and no extra step after the loop.")
    done("train_loop", len(_TRAIN_CASES))


def _sample(model, prompt, n_new, temperature, generator, position=-1, divide=True, append=True, axis=None,
            use_temperature=True):
    """Sampling written out, with the switches that make the common mistakes."""
    tokens = prompt
    with torch.no_grad():
        for _ in range(n_new):
            logits = model(tokens if append else prompt)
            if axis == "pos":  # argmax or softmax over the positions, then the last row
                scores = logits.argmax(1)[:, -1:] if temperature == 0 else None
                probs = None if temperature == 0 else (logits / temperature).softmax(1)[:, -1]
            else:
                logits = logits[:, position]
                t = temperature if use_temperature else 1.0
                scores = logits.argmax(-1, keepdim=True) if temperature == 0 else None
                probs = None if temperature == 0 else (logits / t if divide else logits * t).softmax(0 if axis == "batch" else -1)
            next_token = scores if probs is None else torch.multinomial(probs, 1, generator=generator)
            tokens = torch.cat([tokens, next_token], dim=1)
    return tokens


_GLOBAL_SEED = 12345  # the global RNG's seed while the learner samples: a sampler that ignores `generator` uses it
_SAMPLE_CASES = [  # (fixture model, batch, prompt length, n_new, temperature); sampling first: its draws tell more
    (dict(seed=5, attn_only=True), 3, 4, 6, 0.5),  # mistakes apart than greedy's, where a small model repeats itself
    (dict(seed=5, attn_only=True), 3, 4, 5, 0.0),
    (dict(seed=6, n_heads=2), 2, 3, 7, 2.0),
    (dict(seed=7, attn_only=True, n_layers=2), 4, 1, 8, 1.5),
]


def _with_global_seed(f):
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
        torch.manual_seed(_GLOBAL_SEED)
        return f()


def check_sample(fn):
    """fn(model, prompt [batch, pos], n_new, temperature, generator) -> tokens [batch, pos + n_new]: greedy
    when temperature == 0, else one torch.multinomial draw per new token from softmax(logits / temperature)."""
    __tracebackhide__ = True
    for seed, (shape, batch, seq, n_new, temperature) in enumerate(_SAMPLE_CASES):
        model = fixtures.model(**shape)
        prompt = fixtures.tokens(fixtures.generator(seed), batch, seq, model.cfg.d_vocab)
        expected = reference.sample(model, prompt, n_new, temperature, fixtures.generator(100 + seed))
        inputs = {"model": model, "prompt": prompt, "n_new": n_new, "temperature": temperature,
                  "generator": fixtures.generator(100 + seed)}
        try:
            got = _with_global_seed(lambda: call("sample", fn, inputs))
        except ExerciseError as err:
            if temperature == 0 and "probability tensor contains" in str(err):
                raise ExerciseError("[sample] with temperature 0 your function divided the logits by 0, which gives "
                                    "inf and NaN probabilities: temperature 0 means greedy, so take the argmax "
                                    "instead of sampling") from None
            raise

        def variant(**switches):
            return lambda: _sample(model, prompt, n_new, temperature, fixtures.generator(100 + seed), **switches)

        mistakes = {
            "you predicted each new token from the logits at position 0: the prediction for the next token sits "
            "at the last position, logits[:, -1]": variant(position=0),
            "you predicted every new token from the prompt alone: append each new token (torch.cat along the "
            "positions) and run the model on the longer sequence": variant(append=False),
            "you took the argmax or the softmax over the positions: take the last position's logits, "
            "logits[:, -1] ([batch, d_vocab]), then work over the vocabulary, dim=-1": variant(axis="pos"),
            "your softmax runs over the batch (dim=0): the next token's probabilities are over the "
            "vocabulary, dim=-1": variant(axis="batch"),
            "you multiplied the logits by the temperature: divide them by it, so that a temperature below 1 "
            "sharpens the distribution and one above 1 flattens it": variant(divide=False),
            "you sampled from softmax(logits), ignoring the temperature: divide the logits by it first":
                variant(use_temperature=False),
            "you ignored `generator`: pass it to torch.multinomial(probs, num_samples=1, generator=generator), "
            "so that the same seed gives the same tokens":
                lambda: _with_global_seed(lambda: _sample(model, prompt, n_new, temperature, None)),
        }
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.equal(got[:, :seq], prompt):
            raise ExerciseError("[sample] your output does not start with the prompt: return the prompt followed "
                                "by the new tokens, [batch, pos + n_new]")
        compare("sample", got, expected, mistakes, axes="batch pos")
    done("sample", len(_SAMPLE_CASES))


def _patterns(model, tokens, hook="hook_pattern"):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([cache[f"blocks.{layer}.attn.{hook}"] for layer in range(model.cfg.n_layers)])


_PATTERN_CASES = [  # (fixture model, batch, pos): three layers without LayerNorm, then two with, two heads
    (dict(seed=8, attn_only=True), 2, 6),
    (dict(seed=9, n_layers=2, n_heads=2), 3, 9),
]


def check_record_patterns(fn):
    """fn(model, tokens) -> every layer's attention pattern [layer, batch, head_index, query_pos, key_pos],
    read with hooks during one run; compared with run_with_cache's."""
    __tracebackhide__ = True
    for seed, (shape, batch, seq) in enumerate(_PATTERN_CASES):
        model = fixtures.model(**shape)
        tokens = fixtures.tokens(fixtures.generator(seed), batch, seq, model.cfg.d_vocab)
        expected = _patterns(model, tokens)
        got = call("record_patterns", fn, {"model": model, "tokens": tokens})
        n = model.cfg.n_layers
        mistakes = {
            "you recorded the attention scores (hook_attn_scores: before the softmax, -inf in the future): "
            "record the pattern, blocks.{layer}.attn.hook_pattern": lambda: _patterns(model, tokens, "hook_attn_scores"),
            "every entry is layer 0's pattern: hook blocks.{layer}.attn.hook_pattern for each layer":
                expected[:1].expand(n, *expected.shape[1:]),
            "every entry is the last layer's pattern: a hook defined in a loop sees the loop variable's last "
            "value; record the patterns in the order the hooks run, or bind the layer (def hook(p, hook, layer=layer))":
                expected[-1:].expand(n, *expected.shape[1:]),
        }
        compare("record_patterns", got, expected, mistakes, axes="layer batch head_index query_pos key_pos")
    done("record_patterns", len(_PATTERN_CASES))


def _moved(model, tokens, replace):
    return model.run_with_hooks(tokens, fwd_hooks=[(name, lambda act, hook, f=f: f(act)) for name, f in replace.items()])


_POSITION_CASES = [  # (fixture model, batch, pos, positions): shifted, all at position 0, reversed. The first has
    (dict(seed=10, attn_only=True, n_ctx=16), 2, 6, torch.arange(6) + 3),  # more positions than token ids: W_pos[tokens] runs
    (dict(seed=11, n_heads=2), 3, 5, torch.zeros(5, dtype=torch.long)),
    (dict(seed=12, attn_only=True, n_layers=2), 2, 7, torch.arange(7).flip(0)),
]


def check_logits_with_positions(fn):
    """fn(model, tokens, positions [pos]) -> logits [batch, pos, d_vocab] when a hook on hook_pos_embed tells
    the model that token i sits at position positions[i]."""
    __tracebackhide__ = True
    for seed, (shape, batch, seq, positions) in enumerate(_POSITION_CASES):
        model = fixtures.model(**shape)
        tokens = fixtures.tokens(fixtures.generator(seed), batch, seq, model.cfg.d_vocab)
        with torch.no_grad():
            expected = reference.logits_with_positions(model, tokens, positions)
            got = call("logits_with_positions", fn, {"model": model, "tokens": tokens, "positions": positions.clone()})
            W_pos = model.W_pos
            mistakes = {
                "your logits are the model's own: the hook's change never reached the model. A hook changes an "
                "activation by returning the new tensor": lambda: model(tokens),
                "you added the new positional embedding to the old one: what the hook returns replaces the "
                "activation, so return W_pos[positions] alone": lambda: _moved(
                    model, tokens, {"hook_pos_embed": lambda act: act + W_pos[positions]}),
                "you changed the token embedding (hook_embed): the positional embedding passes through "
                "hook_pos_embed": lambda: _moved(model, tokens, {"hook_embed": lambda act: W_pos[positions].expand_as(act)}),
                "you indexed W_pos with the token ids: use the rows `positions`, one per position":
                    lambda: _moved(model, tokens, {"hook_pos_embed": lambda act: W_pos[tokens]}),
            }
        compare("logits_with_positions", got, expected, mistakes, atol=1e-4, axes="batch pos d_vocab")
    done("logits_with_positions", len(_POSITION_CASES))
