"""Every public function and class of course_utils and maintainer, tried with bad input.

One table: each case makes one bad call and says which error it must raise and what the message
must say. A good message names the argument, shows the bad value (or its shape or dtype) and says
what was expected, so a learner can fix the call without reading a stack trace.

`test_every_public_function_has_a_case` lists the public functions and classes of every
course_utils module (found with pkgutil, so new modules are included automatically) and fails
naming any that has no case here and is not in EXEMPT.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable

import pytest
import torch

import course_utils
from course_utils import (ablation, bridge, checks, clamping, data, icl_classification, lens, metrics, model,
                          numerics, patching, train, validate, viz, zoo)
from course_utils import correct_letter as cl
from course_utils import failure_modes as fm
from course_utils import real_model
from course_utils import function_vectors as fv
from course_utils import modular_addition as ma
from course_utils import refusal as rf
from course_utils import sae as saes
from course_utils import superposition as sp
from course_utils import multiple_choice as mcq
from course_utils import in_context_regression as icr
from course_utils.data import SyntheticLanguage
from course_utils.icl_classification import ICLClassification
from course_utils.icl_tasks import ICLTasks
from course_utils.model import Config, Transformer
from course_utils.multiple_choice import MultipleChoice
from course_utils.request_tasks import RequestBatch, Requests
from course_utils.train import TrainConfig
from maintainer import colab_cell as colab
from maintainer import failure_study, superposition_study, zoo_build


@dataclass
class Case:
    target: str  # "module.name" of the function or class under test
    what: str  # the bad input, in a few words
    call: Callable[[], object]  # makes the bad call
    error: type[BaseException]
    match: str  # regex the message must match: the argument, the bad value, what was expected

    @property
    def id(self) -> str:
        return f"{self.target}: {self.what}"


# ---- small fixtures, built on first use ------------------------------------------------------------


@cache
def tiny() -> Transformer:
    return Transformer(Config(d_vocab=16, n_ctx=8, d_model=16, n_heads=2, n_layers=2, attn_only=True))


def vector_model() -> Transformer:  # reads vectors of 3 numbers, as notebook 13's model (d = 2)
    return Transformer(Config(d_vocab=1, d_input=3, n_ctx=8, d_model=16, n_heads=2, n_layers=2, attn_only=True))


def nan_weights() -> Transformer:
    m = Transformer(tiny().cfg)  # a model of its own: tiny() is shared
    with torch.no_grad():
        m.blocks[1].attn.W_V[0, 0, 0] = float("nan")
    return m


@cache
def zoo_model() -> Transformer:
    return zoo.load("attn_only_2l")


def tokens(*shape, dtype=torch.long, fill=1, device="cpu"):
    return torch.full(shape, fill, dtype=dtype, device=device)


def floats(*shape, device="cpu"):
    return torch.rand(shape, device=device)


def noise(batch, pos):
    """Noise for tiny()'s embeddings: [batch, pos, d_model = 16]."""
    return floats(batch, pos, 16)


META = "meta"  # a device with shapes and dtypes but no data: a "wrong device" that needs no GPU

_TMP = tempfile.TemporaryDirectory(prefix="course_utils_bad_input_")


@cache
def files() -> dict[str, Path]:
    """A missing file, a garbage file, a truncated checkpoint, a safetensors file that is not a
    checkpoint, and a checkpoint of the tiny model."""
    root = Path(_TMP.name)
    good = root / "step_000001.safetensors"
    m = tiny()
    opt = train.make_optimizer(m, TrainConfig())
    train.save_checkpoint(good, m, opt, 1, [1.0], TrainConfig())
    garbage = root / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    truncated = root / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    weights_only = root / "weights_only.safetensors"
    train.atomic_save({"x": torch.zeros(2)}, weights_only, {"note": "not a checkpoint"})
    return {"missing": root / "missing.safetensors", "garbage": garbage, "truncated": truncated,
            "weights_only": weights_only, "good": good, "root": root}


def optimizer():
    return train.make_optimizer(tiny(), TrainConfig())


TINY = dict(d_vocab=16, n_ctx=8, d_model=16, n_heads=2, n_layers=2, attn_only=True)
W = dict(W_Q=floats(2, 16, 8), b_Q=floats(2, 8), W_K=floats(2, 16, 8), b_K=floats(2, 8),
         W_V=floats(2, 16, 8), b_V=floats(2, 8), W_O=floats(2, 8, 16), b_O=floats(16))


def mha(**changes):
    args = {"x": floats(2, 4, 16), **W, **changes}
    return lambda: model.multi_head_attention(**args)


def pattern(*shape, dtype=torch.float32):
    return torch.ones(shape, dtype=dtype).tril()


@cache
def ln_model() -> Transformer:
    """A tiny model with MLPs and LayerNorm, for the lens functions."""
    return Transformer(Config(**{**TINY, "attn_only": False, "d_mlp": 32, "normalization_type": "LN"}))


@cache
def ln_cache():
    return ln_model().run_with_cache(tokens(2, 4))[1]


@cache
def tiny_cache():
    return tiny().run_with_cache(tokens(2, 4))[1]


def metric(logits):
    return logits.mean()


@cache
def study() -> dict:
    return clamping.load_study()


@cache
def icl() -> ICLTasks:
    """Small in-context tasks: d_vocab 43, prompts of at most 7 positions."""
    return ICLTasks(n_items=8, max_shots=2)


@cache
def icl_model() -> Transformer:
    """icl_model() with icl()'s vocabulary: its prompts (at most 7 positions) fit n_ctx=8."""
    return Transformer(Config(d_vocab=icl().d_vocab, n_ctx=8, d_model=16, n_heads=2, n_layers=2, attn_only=True))


@cache
def mc() -> MultipleChoice:
    """Small multiple-choice questions: d_vocab 44, at most 4 options (12 positions)."""
    return MultipleChoice(n_questions=8, max_options=4)


@cache
def mc_model() -> Transformer:
    return Transformer(Config(d_vocab=mc().d_vocab, n_ctx=mc().n_ctx, d_model=16, n_heads=2, n_layers=1))


@cache
def mcq_questions():
    return mc().questions(4)  # tokens [4, 11]


def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@cache
def icl_prompts():
    return icl().prompts("copy", 1, 4)  # tokens [4, 7], answers [4]


def per_task(*shape) -> dict:
    return {t: floats(*shape) for t in icl().tasks}


# ---- issue 16: caches of other models, weights with NaN, inf or a zero head ---------------------------


def _cache_of(**changes):
    return Transformer(Config(**{**TINY, **changes})).run_with_cache(tokens(2, 4))[1]


LN = dict(attn_only=False, d_mlp=32, normalization_type="LN")


@cache
def wide_cache():  # d_model 32: 4 heads of the same d_head
    return _cache_of(d_model=32, n_heads=4)


@cache
def deep_cache():
    return _cache_of(n_layers=3)


@cache
def heads4_cache():  # the same d_model, cut into 4 heads of d_head 4
    return _cache_of(n_heads=4)


@cache
def ln_wide_cache():
    return _cache_of(d_model=32, n_heads=4, **LN)


@cache
def ln_deep_cache():
    return _cache_of(n_layers=3, **LN)


@cache
def ln_deep_model() -> Transformer:
    return Transformer(Config(**{**TINY, "n_layers": 3, **LN}))


@cache
def ln_big_vocab_cache():  # every shape of ln_model() but a vocabulary of 32
    return Transformer(Config(**{**TINY, "d_vocab": 32, **LN})).run_with_cache(tokens(2, 4, fill=20))[1]


def zeroed_head_model() -> Transformer:
    m = Transformer(Config(**TINY))
    m.blocks[0].attn.W_O.data[1] = 0
    return m


def nan_head_model() -> Transformer:
    m = Transformer(Config(**TINY))
    m.blocks[1].attn.W_O.data[0, 0, 0] = float("nan")
    return m


def nan_at(t):
    """t with its first entry NaN."""
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


def inf_at(t):
    t = t.clone()
    t.view(-1)[0] = float("inf")
    return t


# ---- the table ---------------------------------------------------------------------------------------

C = Case
CASES: list[Case] = [
    # -- course_utils (package) --
    C("course_utils.setup", "seed a string", lambda: course_utils.setup("0"), TypeError, r"seed must be an int, got '0'"),

    # -- model: Config --
    C("model.Config", "d_vocab 0", lambda: Config(d_vocab=0), ValueError, r"Config\.d_vocab must be a positive int, got 0"),
    C("model.Config", "n_ctx float", lambda: Config(n_ctx=8.0), TypeError, r"Config\.n_ctx must be a positive int, got 8\.0"),
    C("model.Config", "n_layers True", lambda: Config(n_layers=True), TypeError, r"Config\.n_layers must be a positive int, got True"),
    C("model.Config", "d_model not divisible by n_heads", lambda: Config(d_model=16, n_heads=3), ValueError,
      r"Config\.d_model=16 is not divisible by n_heads=3"),
    C("model.Config", "normalization_type unknown", lambda: Config(normalization_type="RMS"), ValueError,
      r"normalization_type must be one of \(None, 'LN'\), got 'RMS'"),
    C("model.Config", "act_fn unknown", lambda: Config(act_fn="swish"), ValueError, r"act_fn must be one of \('gelu', 'relu'\), got 'swish'"),
    C("model.Config", "d_mlp 0", lambda: Config(attn_only=False, d_mlp=0), ValueError, r"Config\.d_mlp must be a positive int, got 0"),
    C("model.Config", "seed a string", lambda: Config(seed="1"), TypeError, r"Config\.seed must be an int, got '1'"),
    C("model.Config", "from_dict unknown field", lambda: Config.from_dict({"d_modle": 3}), ValueError,
      r"unknown Config fields \['d_modle'\]; known: \[.*'d_model'"),

    # -- model: the notebook-01 functions --
    C("model.embed", "float tokens", lambda: model.embed(floats(2, 3), floats(16, 4)), TypeError,
      r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("model.embed", "tokens rank 1", lambda: model.embed(tokens(3), floats(16, 4)), ValueError,
      r"tokens must have shape \[batch, pos\], got shape \(3,\)"),
    C("model.embed", "W_E rank 1", lambda: model.embed(tokens(2, 3), floats(16)), ValueError,
      r"W_E must have shape \[d_vocab, d_model\], got shape \(16,\)"),
    C("model.embed", "int W_E", lambda: model.embed(tokens(2, 3), tokens(16, 4)), TypeError,
      r"W_E must be a floating-point tensor, got dtype torch\.int64"),
    C("model.embed", "W_E on meta", lambda: model.embed(tokens(2, 3), floats(16, 4, device=META)), ValueError,
      r"W_E must hold data \(a CPU or GPU tensor\), got a tensor on device 'meta'"),
    C("model.embed", "token id = d_vocab", lambda: model.embed(tokens(2, 3, fill=16), floats(16, 4)), IndexError,
      r"tokens must be ids in \[0, 16\) \(the rows of W_E\), got ids from 16 to 16"),
    C("model.embed", "negative token id", lambda: model.embed(tokens(2, 3, fill=-1), floats(16, 4)), IndexError,
      r"tokens must be ids in \[0, 16\).*got ids from -1"),
    C("model.pos_embed", "tokens longer than W_pos", lambda: model.pos_embed(tokens(2, 9), floats(8, 4)), ValueError,
      r"tokens has 9 positions but W_pos has only n_ctx=8 rows"),
    C("model.pos_embed", "tokens rank 3", lambda: model.pos_embed(tokens(2, 3, 1), floats(8, 4)), ValueError,
      r"tokens must have shape \[batch, pos\], got shape \(2, 3, 1\)"),
    C("model.pos_embed", "float tokens", lambda: model.pos_embed(floats(2, 3), floats(8, 4)), TypeError,
      r"tokens must be an integer tensor.*got dtype torch\.float32"),
    C("model.pos_embed", "W_pos rank 3", lambda: model.pos_embed(tokens(2, 3), floats(1, 8, 4)), ValueError,
      r"W_pos must have shape \[n_ctx, d_model\], got shape \(1, 8, 4\)"),
    C("model.attention_pattern", "q rank 1", lambda: model.attention_pattern(floats(4), floats(4)), ValueError,
      r"q must have shape \[\.\.\., pos, d_head\], got shape \(4,\)"),
    C("model.attention_pattern", "int k", lambda: model.attention_pattern(floats(3, 4), tokens(3, 4)), TypeError,
      r"k must be a floating-point tensor, got dtype torch\.int64"),
    C("model.attention_pattern", "q and k differ", lambda: model.attention_pattern(floats(3, 4), floats(5, 4)), ValueError,
      r"q and k must have the same shape, got q \(3, 4\) and k \(5, 4\)"),
    C("model.attention_pattern", "q on meta", lambda: model.attention_pattern(floats(3, 4, device=META), floats(3, 4)),
      ValueError, r"q must hold data.*device 'meta'"),
    C("model.multi_head_attention", "x rank 2", mha(x=floats(4, 16)), ValueError,
      r"x must have shape \[batch, pos, d_model\], got shape \(4, 16\)"),
    C("model.multi_head_attention", "int x", mha(x=tokens(2, 4, 16)), TypeError, r"x must be a floating-point tensor, got dtype torch\.int64"),
    C("model.multi_head_attention", "W_K rank 2", mha(W_K=floats(16, 8)), ValueError,
      r"W_K must have shape \[head_index, d_model, d_head\], got shape \(16, 8\)"),
    C("model.multi_head_attention", "x d_model mismatch", mha(x=floats(2, 4, 12)), ValueError,
      r"x has d_model=12 but W_Q expects d_model=16"),
    C("model.unembed", "int resid", lambda: model.unembed(tokens(2, 3, 4), floats(4, 16), floats(16)), TypeError,
      r"resid must be a floating-point tensor, got dtype torch\.int64"),
    C("model.unembed", "W_U transposed", lambda: model.unembed(floats(2, 3, 4), floats(16, 4), floats(16)), ValueError,
      r"resid .*W_U \[d_model, d_vocab\] and b_U \[d_vocab\] must agree, got shapes \(2, 3, 4\), \(16, 4\) and \(16,\)"),
    C("model.unembed", "b_U rank 2", lambda: model.unembed(floats(2, 3, 4), floats(4, 16), floats(1, 16)), ValueError,
      r"b_U must have shape \[d_vocab\], got shape \(1, 16\)"),
    C("model.sample", "prompt rank 1", lambda: model.sample(tiny(), tokens(4), 2, 1.0, torch.Generator()), ValueError,
      r"prompt must have shape \[batch, pos\], got shape \(4,\)"),
    C("model.sample", "negative temperature", lambda: model.sample(tiny(), tokens(1, 2), 2, -1.0, torch.Generator()),
      ValueError, r"temperature must be a finite number >= 0, got -1\.0"),
    C("model.sample", "generator a seed", lambda: model.sample(tiny(), tokens(1, 2), 2, 1.0, 0), TypeError,
      r"generator must be a torch\.Generator, got int"),
    C("model.sample", "past the context", lambda: model.sample(tiny(), tokens(1, 6), 3, 0.0, torch.Generator()), ValueError,
      r"prompt has 6 positions and n_new=3 more would make 9, beyond the model's context n_ctx=8"),
    C("model.sample", "n_new negative", lambda: model.sample(tiny(), tokens(1, 2), -1, 0.0, torch.Generator()), ValueError,
      r"n_new must be an int >= 0, got -1"),
    C("model.record_patterns", "model a string", lambda: model.record_patterns("attn_only_2l", tokens(1, 4)), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("model.record_patterns", "float tokens", lambda: model.record_patterns(tiny(), floats(1, 4)), TypeError,
      r"tokens must be an integer tensor.*got dtype torch\.float32"),
    C("model.logits_with_positions", "one position short",
      lambda: model.logits_with_positions(tiny(), tokens(2, 4), torch.arange(3)), ValueError,
      r"positions must have shape \[pos\] \(one position per token\) = \[4\], got shape \(3,\)"),
    C("model.logits_with_positions", "position = n_ctx",
      lambda: model.logits_with_positions(tiny(), tokens(1, 2), torch.tensor([0, 8])), ValueError,
      r"positions contains id 8, outside the model's positions \[0, 8\)"),
    C("model.logits_with_positions", "float positions",
      lambda: model.logits_with_positions(tiny(), tokens(1, 2), torch.zeros(2)), TypeError,
      r"positions must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("model.next_token_loss", "logits rank 2", lambda: model.next_token_loss(floats(3, 16), tokens(1, 3)), ValueError,
      r"logits must have shape \[batch, pos, d_vocab\], got shape \(3, 16\)"),
    C("model.next_token_loss", "float tokens", lambda: model.next_token_loss(floats(1, 3, 16), floats(1, 3)), TypeError,
      r"tokens must be an integer tensor.*got dtype torch\.float32"),
    C("model.next_token_loss", "shapes disagree", lambda: model.next_token_loss(floats(1, 3, 16), tokens(1, 4)), ValueError,
      r"logits \[batch, pos, d_vocab\] and tokens \[batch, pos\] must agree, got shapes \(1, 3, 16\) and \(1, 4\)"),

    # -- model: the modules --
    *[C(f"model.{cls.__name__}", "cfg a dict", (lambda cls=cls: cls(TINY)), TypeError,
        r"cfg must be a course_utils\.model\.Config, got dict")
      for cls in (model.Embed, model.PosEmbed, model.LayerNorm, model.Attention, model.MLP, model.TransformerBlock,
                  model.Unembed, model.Transformer)],
    C("model.MLP", "attention-only cfg", lambda: model.MLP(Config(**TINY)), ValueError,
      r"cfg\.attn_only must be False for an MLP.*got True"),

    # -- model: the Transformer's forward pass --
    C("model.next_token_loss", "NaN logits", lambda: model.next_token_loss(floats(1, 3, 16) * float("nan"), tokens(1, 3)), ValueError,
      r"logits contains NaN or inf \(48 of 48 entries\)"),
    C("model.Transformer", "NaN weights", lambda: nan_weights()(tokens(2, 4)), ValueError,
      r"the model's logits contain NaN or inf: the weights blocks\.1\.attn\.W_V hold NaN or inf"),
    C("model.Transformer", "a hook returns NaN", lambda: tiny().run_with_hooks(tokens(2, 4), fwd_hooks=[
        ("blocks.0.hook_attn_out", lambda act, hook: act * float("nan"))]), ValueError,
      r"the weights are finite, so an activation became NaN or inf on the way \(a hook that returned NaN or inf\?\)"),
    C("model.Transformer", "tokens rank 1", lambda: tiny()(tokens(4)), ValueError,
      r"tokens must have shape \[batch, pos\], got shape \(4,\) \(add a batch dimension: tokens\[None\]\)"),
    C("model.Transformer", "tokens rank 3", lambda: tiny()(tokens(1, 2, 3)), ValueError,
      r"tokens must have shape \[batch, pos\], got shape \(1, 2, 3\)"),
    C("model.Transformer", "float tokens", lambda: tiny()(floats(2, 4)), TypeError,
      r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("model.Transformer", "bool tokens", lambda: tiny()(tokens(2, 4, dtype=torch.bool)), TypeError,
      r"tokens must be an integer tensor.*got dtype torch\.bool"),
    C("model.Transformer", "token id = d_vocab", lambda: tiny()(tokens(2, 4, fill=16)), ValueError,
      r"tokens contains id 16, outside the vocabulary \[0, 16\)"),
    C("model.Transformer", "negative token id", lambda: tiny()(tokens(2, 4, fill=-3)), ValueError,
      r"tokens contains id -3, outside the vocabulary \[0, 16\)"),
    C("model.Transformer", "longer than the context", lambda: tiny()(tokens(2, 9)), ValueError,
      r"tokens has 9 positions but the model's context is n_ctx=8"),
    C("model.Transformer", "empty batch", lambda: tiny()(tokens(0, 4)), ValueError,
      r"tokens is empty: shape \(0, 4\), expected at least one"),
    C("model.Transformer", "tokens on meta", lambda: tiny()(tokens(2, 4, device=META)), ValueError,
      r"tokens must hold data \(a CPU or GPU tensor\), got a tensor on device 'meta'"),
    C("model.Transformer", "tokens a list", lambda: tiny()([[1, 2]]), TypeError,
      r"tokens must be a torch\.Tensor \[batch, pos\], got list"),
    C("model.Transformer", "return_type unknown", lambda: tiny()(tokens(1, 4), return_type="probs"), ValueError,
      r"return_type must be 'logits', 'loss', 'both' or None, got 'probs'"),
    C("model.Transformer", "run_with_cache, token id too large", lambda: tiny().run_with_cache(tokens(1, 4, fill=99)),
      ValueError, r"tokens contains id 99, outside the vocabulary \[0, 16\)"),


    # -- bridge --
    C("bridge.bridge_config", "cfg a dict", lambda: bridge.bridge_config(TINY), TypeError, r"cfg must be a course_utils\.model\.Config, got dict"),
    C("bridge.to_bridge", "model a string", lambda: bridge.to_bridge("attn_only_2l"), TypeError,
      r"model must be a course_utils\.model\.Transformer, got str"),
    C("bridge.from_bridge", "a course model", lambda: bridge.from_bridge(tiny()), TypeError,
      r"bridge must be a transformer_lens\..*TransformerBridge, got Transformer"),

    # -- validate: one function per rule, one wording per rule (the cases above reach them through their callers) --
    C("validate.integer", "seed a float", lambda: validate.integer(seed=1.0), TypeError, r"seed must be an int, got 1\.0"),
    C("validate.integer", "step True", lambda: validate.integer(step=True), TypeError, r"step must be an int, got True"),
    C("validate.positive", "size 0", lambda: validate.positive(size=0), ValueError, r"size must be a positive int, got 0"),
    C("validate.positive", "size a string", lambda: validate.positive(size="4"), TypeError, r"size must be a positive int, got '4'"),
    C("validate.int_in", "above the range", lambda: validate.int_in(5, 0, 3, "pos", "the tokens have 4 positions"), ValueError,
      r"pos must be an int in \[0, 3\] \(the tokens have 4 positions\), got 5"),
    C("validate.int_in", "a float", lambda: validate.int_in(1.5, 0, 3, "pos"), TypeError, r"pos must be an int in \[0, 3\], got 1\.5"),
    C("validate.at_least", "below", lambda: validate.at_least(-1, 0, "layer"), ValueError, r"layer must be an int >= 0, got -1"),
    C("validate.at_least", "a string", lambda: validate.at_least("1", 0, "layer"), TypeError, r"layer must be an int >= 0, got '1'"),
    C("validate.one_of", "not a choice", lambda: validate.one_of("max", ("zero", "mean"), "method"), ValueError,
      r"method must be one of \('zero', 'mean'\), got 'max'"),
    C("validate.one_of", "another type", lambda: validate.one_of(0, ("zero", "mean"), "method"), TypeError,
      r"method must be one of \('zero', 'mean'\), got int 0"),
    C("validate.one_of", "no choices", lambda: validate.one_of("a", (), "name", "the shipped models"), ValueError,
      r"name must be one of the shipped models \(\), got 'a'"),
    C("validate.instance", "a dict for a Config", lambda: validate.instance({}, Config, "cfg"), TypeError,
      r"cfg must be a course_utils\.model\.Config, got dict"),
    C("validate.model", "a string", lambda: validate.model("gpt2"), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("validate.model", "a plain nn.Module", lambda: validate.model(torch.nn.Linear(2, 2), "reader"), TypeError,
      r"reader must be a course_utils Transformer or a TransformerBridge, got Linear"),
    C("validate.tensor", "W rank 2", lambda: validate.tensor(floats(16, 8), "W", "head_index d_model d_head", "float"), ValueError,
      r"W must have shape \[head_index, d_model, d_head\], got shape \(16, 8\)"),
    C("validate.tensor", "int x", lambda: validate.tensor(tokens(2, 3, 16), "x", "batch pos d_model", "float"), TypeError,
      r"x must be a floating-point tensor, got dtype torch\.int64"),
    C("validate.tensor", "a list", lambda: validate.tensor([1.0], "x", "... d_model"), TypeError,
      r"x must be a torch\.Tensor \[\.\.\., d_model\], got list"),
    C("validate.tensor", "on meta", lambda: validate.tensor(floats(2, device=META), "x", "d_model"), ValueError,
      r"x must hold data \(a CPU or GPU tensor\), got a tensor on device 'meta'"),
    C("validate.tokens", "float tokens", lambda: validate.tokens(floats(2, 4), tiny().cfg), TypeError,
      r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("validate.tokens", "id = d_vocab", lambda: validate.tokens(tokens(2, 4, fill=16), tiny().cfg, "clean_tokens"), ValueError,
      r"clean_tokens contains id 16, outside the vocabulary \[0, 16\)"),
    C("validate.answers", "one answer too few", lambda: validate.answers(tokens(3), tokens(4, 7)), ValueError,
      r"answers must have shape \[batch\] = \[4\] \(one answer per prompt\), got shape \(3,\)"),
    C("validate.answers", "float answers", lambda: validate.answers(floats(4), tokens(4, 7)), TypeError,
      r"answers must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("validate.answers", "answers a list", lambda: validate.answers([1, 2], tokens(2, 7)), TypeError,
      r"answers must be a torch\.Tensor \[batch\] = \[2\] \(one answer per prompt\), got list"),
    C("validate.shape_is", "another shape", lambda: validate.shape_is(floats(2, 8), "mean_z", (2, 2, 8), "[layer, head_index, d_head]"),
      ValueError, r"mean_z must have shape \[layer, head_index, d_head\] = \[2, 2, 8\], got shape \(2, 8\)"),
    C("validate.shape_is", "a list", lambda: validate.shape_is([0.0], "vector", (16,), "[d_model]"), TypeError,
      r"vector must be a torch\.Tensor \[d_model\] = \[16\], got list"),
    C("validate.layer", "layer out of range", lambda: validate.layer(tiny(), 5), ValueError,
      r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 5"),
    C("validate.layer", "model a string", lambda: validate.layer("attn_only_2l", 0), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("validate.head", "layer out of range", lambda: validate.head(tiny(), 2, 0), ValueError,
      r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 2"),
    C("validate.head", "head True", lambda: validate.head(tiny(), 0, True), TypeError,
      r"head must be an int in \[0, 1\] \(a layer has 2 heads\), got True"),
    C("validate.head", "model a string", lambda: validate.head("attn_only_2l", 0, 0), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("validate.head", "named pair out of range", lambda: validate.head(tiny(), 0, 3, name="writer"), ValueError,
      r"writer: head must be an int in \[0, 1\] \(a layer has 2 heads\), got 3"),
    C("validate.heads", "not pairs", lambda: validate.heads(tiny(), [(0, 0, 1)]), ValueError,
      r"heads must be \(layer, head\) pairs, got \(0, 0, 1\)"),
    C("validate.heads", "an int", lambda: validate.heads(tiny(), 3), TypeError,
      r"heads must be a \(layer, head\) pair or a list of them, got 3"),
    C("validate.k_path", "reader in the writer's layer", lambda: validate.k_path(tiny(), (1, 0), [(1, 1)], "patch_k_path"), ValueError,
      r"readers: head 1\.1 is not in a later layer than the writer 1\.0"),
    C("validate.k_path", "model with LayerNorm", lambda: validate.k_path(ln_model(), (0, 0), [(1, 0)], "patch_k_path"), ValueError,
      r"patch_k_path needs a model without LayerNorm \(normalization_type=None\), got 'LN'"),

    # -- data --
    C("data.repeated_tokens", "batch 0", lambda: data.repeated_tokens(0, 4, 16), ValueError, r"batch must be a positive int, got 0"),
    C("data.repeated_tokens", "prefix_len float", lambda: data.repeated_tokens(2, 2.5, 16), TypeError,
      r"prefix_len must be a positive int, got 2\.5"),
    C("data.repeated_tokens", "d_vocab negative", lambda: data.repeated_tokens(2, 4, -1), ValueError,
      r"d_vocab must be a positive int, got -1"),
    C("data.repeated_tokens", "seed a string", lambda: data.repeated_tokens(2, 4, 16, seed="0"), TypeError,
      r"seed must be an int, got '0'"),
    C("data.generator", "a float seed", lambda: data.generator(0, 2.5), TypeError, r"seeds\[1\] must be an int, got 2\.5"),
    C("data.SyntheticLanguage", "d_vocab 0", lambda: SyntheticLanguage(d_vocab=0), ValueError, r"d_vocab must be a positive int, got 0"),
    C("data.SyntheticLanguage", "successors > d_vocab", lambda: SyntheticLanguage(d_vocab=8, successors=9), ValueError,
      r"successors=9 cannot exceed d_vocab=8"),
    C("data.SyntheticLanguage", "p_repeat 1.5", lambda: SyntheticLanguage(p_repeat=1.5), ValueError, r"p_repeat must be in \[0, 1\], got 1\.5"),
    C("data.SyntheticLanguage", "span too long for n_ctx", lambda: SyntheticLanguage(n_ctx=16, max_span=10), ValueError,
      r"need min_span <= max_span and 2 \* max_span \+ 2 <= n_ctx.*max_span=10, n_ctx=16"),
    C("data.SyntheticLanguage", "seed a float", lambda: SyntheticLanguage(seed=0.5), TypeError, r"seed must be an int, got 0\.5"),
    C("data.SyntheticLanguage", "sample size 0", lambda: SyntheticLanguage().sample(0, seed=0), ValueError,
      r"size must be a positive int, got 0"),
    C("data.SyntheticLanguage", "batch step a float", lambda: SyntheticLanguage().batch(1.0, 4), TypeError,
      r"step must be an int, got 1\.0"),

    # -- train --
    C("train.TrainConfig", "steps 0", lambda: TrainConfig(steps=0), ValueError, r"TrainConfig\.steps must be a positive int, got 0"),
    C("train.TrainConfig", "batch_size float", lambda: TrainConfig(batch_size=2.0), TypeError,
      r"TrainConfig\.batch_size must be a positive int, got 2\.0"),
    C("train.TrainConfig", "steps True", lambda: TrainConfig(steps=True), TypeError, r"TrainConfig\.steps must be a positive int, got True"),
    C("train.TrainConfig", "lr 0", lambda: TrainConfig(lr=0), ValueError, r"TrainConfig\.lr must be a finite number > 0, got 0"),
    C("train.TrainConfig", "lr a string", lambda: TrainConfig(lr="1e-3"), TypeError,
      r"TrainConfig\.lr must be a finite number > 0, got '1e-3'"),
    C("train.TrainConfig", "lr True", lambda: TrainConfig(lr=True), TypeError, r"TrainConfig\.lr must be a finite number > 0, got True"),
    C("train.TrainConfig", "lr inf", lambda: TrainConfig(lr=float("inf")), ValueError,
      r"TrainConfig\.lr must be a finite number > 0, got inf"),
    C("train.TrainConfig", "lr nan", lambda: TrainConfig(lr=float("nan")), ValueError,
      r"TrainConfig\.lr must be a finite number > 0, got nan"),
    C("train.TrainConfig", "weight_decay negative", lambda: TrainConfig(weight_decay=-0.1), ValueError,
      r"TrainConfig\.weight_decay must be a finite number >= 0, got -0\.1"),
    C("train.TrainConfig", "weight_decay nan", lambda: TrainConfig(weight_decay=float("nan")), ValueError,
      r"TrainConfig\.weight_decay must be a finite number >= 0, got nan"),
    C("train.TrainConfig", "weight_decay a string", lambda: TrainConfig(weight_decay="0.1"), TypeError,
      r"TrainConfig\.weight_decay must be a finite number >= 0, got '0\.1'"),
    C("train.TrainConfig", "warmup_steps negative", lambda: TrainConfig(warmup_steps=-1), ValueError,
      r"TrainConfig\.warmup_steps must be an int >= 0, got -1"),
    C("train.TrainConfig", "device unknown", lambda: TrainConfig(device="tpu"), ValueError,
      r"TrainConfig\.device must be 'cpu', 'cuda', 'mps' or 'auto', got 'tpu'"),
    C("train.pick_device", "unknown device", lambda: train.pick_device("tpu"), ValueError,
      r"name must be 'cpu', 'cuda', 'mps', 'auto' or a torch\.device, got 'tpu'"),
    C("train.learning_rate", "negative step", lambda: train.learning_rate(-1, TrainConfig()), ValueError,
      r"step must be an int >= 0, got -1"),
    C("train.learning_rate", "cfg a dict", lambda: train.learning_rate(0, {"lr": 1e-3}), TypeError,
      r"cfg must be a course_utils\.train\.TrainConfig, got dict"),
    C("train.make_optimizer", "model a string", lambda: train.make_optimizer("model", TrainConfig()), TypeError,
      r"model must be a torch\.nn\.Module, got str"),
    C("train.make_optimizer", "cfg a Config", lambda: train.make_optimizer(tiny(), Config()), TypeError,
      r"cfg must be a course_utils\.train\.TrainConfig, got Config"),
    C("train.train", "model a string", lambda: train.train("attn_only_2l", lambda s: tokens(2, 4), TrainConfig()),
      TypeError, r"model must be a course_utils\.model\.Transformer, got str"),
    C("train.train", "batches a tensor", lambda: train.train(tiny(), tokens(2, 4), TrainConfig()), TypeError,
      r"batches must be a function step -> tokens \[batch, pos\], got Tensor"),
    C("train.train", "cfg a dict", lambda: train.train(tiny(), lambda s: tokens(2, 4), {"steps": 1}), TypeError,
      r"cfg must be a course_utils\.train\.TrainConfig, got dict"),
    C("train.train", "stop_at negative", lambda: train.train(tiny(), lambda s: tokens(2, 4), TrainConfig(), stop_at=-1),
      ValueError, r"stop_at must be None or an int >= 0, got -1"),
    C("train.train", "batches give float tokens",
      lambda: train.train(Transformer(Config(**TINY)), lambda s: floats(2, 4), TrainConfig(steps=1), progress=False),
      TypeError, r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("train.train_loop", "model a string", lambda: train.train_loop("attn_only_2l", tokens(2, 1, 4), 1e-3), TypeError,
      r"model must be a course_utils\.model\.Transformer, got str"),
    C("train.train_loop", "one batch, not a stack", lambda: train.train_loop(tiny(), tokens(2, 4), 1e-3), ValueError,
      r"batches must have shape \[step, batch, pos\], got shape \(2, 4\)"),
    C("train.train_loop", "float batches", lambda: train.train_loop(tiny(), floats(2, 1, 4), 1e-3), TypeError,
      r"batches must be an integer tensor.*got dtype torch\.float32"),
    C("train.train_loop", "lr 0", lambda: train.train_loop(tiny(), tokens(2, 1, 4), 0), ValueError,
      r"lr must be a finite number > 0, got 0"),
    C("train.list_checkpoints", "missing directory", lambda: train.list_checkpoints(files()["root"] / "nope"),
      FileNotFoundError, r"checkpoint_dir must be an existing directory, got '.*nope'"),
    C("train.list_checkpoints", "a file, not a directory", lambda: train.list_checkpoints(files()["good"]),
      FileNotFoundError, r"checkpoint_dir must be an existing directory, got '.*step_000001\.safetensors'"),
    C("train.atomic_save", "tensors a list", lambda: train.atomic_save([torch.zeros(1)], files()["root"] / "x.safetensors", {}),
      TypeError, r"tensors must be a dict \{name: torch\.Tensor\}, got list"),
    C("train.atomic_save", "metadata not strings",
      lambda: train.atomic_save({"x": torch.zeros(1)}, files()["root"] / "x.safetensors", {"step": 3}),
      TypeError, r"metadata must be a dict \{str: str\}, got \{'step': 3\}"),
    C("train.atomic_save", "directory missing",
      lambda: train.atomic_save({"x": torch.zeros(1)}, files()["root"] / "nope" / "x.safetensors", {}),
      FileNotFoundError, r"path must be in an existing directory, got '.*nope/x\.safetensors'"),
    C("train.atomic_write", "data a str", lambda: train.atomic_write(files()["root"] / "x.json", "{}"),
      TypeError, r"data must be bytes, got str"),
    C("train.atomic_write", "directory missing", lambda: train.atomic_write(files()["root"] / "nope" / "x.json", b"{}"),
      FileNotFoundError, r"path must be in an existing directory, got '.*nope/x\.json'"),
    C("train.read_safetensors", "missing file", lambda: train.read_safetensors(files()["missing"]), FileNotFoundError,
      r"no checkpoint file at .*missing\.safetensors: path must be an existing \.safetensors file"),
    C("train.read_safetensors", "garbage file", lambda: train.read_safetensors(files()["garbage"]), ValueError,
      r"garbage\.safetensors is not a readable safetensors file \(truncated or corrupt\?\)"),
    C("train.read_safetensors", "truncated file", lambda: train.read_safetensors(files()["truncated"]), ValueError,
      r"truncated\.safetensors is not a readable safetensors file \(truncated or corrupt\?\)"),
    C("train.save_checkpoint", "model a string",
      lambda: train.save_checkpoint(files()["root"] / "s.safetensors", "m", optimizer(), 1, [], TrainConfig()),
      TypeError, r"model must be a course_utils\.model\.Transformer, got str"),
    C("train.save_checkpoint", "optimizer a dict",
      lambda: train.save_checkpoint(files()["root"] / "s.safetensors", tiny(), {}, 1, [], TrainConfig()),
      TypeError, r"optimizer must be a torch\.optim\.Optimizer, got dict"),
    C("train.load_checkpoint", "missing file", lambda: train.load_checkpoint(files()["missing"], tiny()),
      FileNotFoundError, r"no checkpoint file at .*missing\.safetensors"),
    C("train.load_checkpoint", "truncated file", lambda: train.load_checkpoint(files()["truncated"], tiny()),
      ValueError, r"truncated\.safetensors is not a readable safetensors file \(truncated or corrupt\?\)"),
    C("train.load_checkpoint", "not a checkpoint", lambda: train.load_checkpoint(files()["weights_only"], tiny()),
      ValueError, r"weights_only\.safetensors is not a training checkpoint \(no 'step' in its metadata\)"),
    C("train.load_checkpoint", "another model's checkpoint",
      lambda: train.load_checkpoint(files()["good"], Transformer(Config(**{**TINY, "n_layers": 1}))),
      ValueError, r"step_000001\.safetensors was saved from a model with config \{.*'n_layers': 2.*\}, not \{.*'n_layers': 1"),
    C("train.load_checkpoint", "model a string", lambda: train.load_checkpoint(files()["good"], "attn_only_2l"),
      TypeError, r"model must be a course_utils\.model\.Transformer, got str"),
    C("validate.weights", "missing tensor", lambda: validate.weights(
        {k: v for k, v in tiny().state_dict().items() if k != "embed.W_E"}, tiny(), "some.safetensors"), ValueError,
      r"some.safetensors does not hold this model's weights: missing \['embed.W_E'\]"),
    C("validate.weights", "wrong shape", lambda: validate.weights(
        {**tiny().state_dict(), "embed.W_E": torch.zeros(3, 3)}, tiny(), "some.safetensors"), ValueError,
      r"embed.W_E has shape \(3, 3\), expected \(16, 16\)"),
    C("train.load_model", "missing file", lambda: train.load_model(files()["missing"]), FileNotFoundError,
      r"no checkpoint file at .*missing\.safetensors"),
    C("train.load_model", "garbage file", lambda: train.load_model(files()["garbage"]), ValueError,
      r"garbage\.safetensors is not a readable safetensors file"),
    C("train.load_model", "not a checkpoint", lambda: train.load_model(files()["weights_only"]), ValueError,
      r"path must be a training checkpoint; .*weights_only\.safetensors has no 'model_config'"),

    # -- metrics: attention-pattern scores --
    C("metrics.prev_token_score", "pattern rank 1", lambda: metrics.prev_token_score(floats(5)), ValueError,
      r"pattern must have shape \[\.\.\., query_pos, key_pos\], got shape \(5,\)"),
    C("metrics.prev_token_score", "pattern not square", lambda: metrics.prev_token_score(floats(2, 2, 4, 5)), ValueError,
      r"pattern must be square, query_pos == key_pos, got shape \(2, 2, 4, 5\)"),
    C("metrics.prev_token_score", "pattern a list", lambda: metrics.prev_token_score([[1.0]]), TypeError,
      r"pattern must be a torch\.Tensor \[\.\.\., query_pos, key_pos\], got list"),
    C("metrics.prev_token_score", "int pattern", lambda: metrics.prev_token_score(pattern(1, 2, 4, 4, dtype=torch.long)),
      TypeError, r"pattern must be a floating-point tensor, got dtype torch\.int64"),
    C("metrics.prev_token_score", "pattern on meta", lambda: metrics.prev_token_score(floats(1, 2, 4, 4, device=META)),
      ValueError, r"pattern must hold data.*device 'meta'"),
    C("metrics.induction_score", "period 0", lambda: metrics.induction_score(pattern(1, 2, 12, 12), 0), ValueError,
      r"period must be an int in \[1, 10\] \(sequences have length 12\), got 0"),
    C("metrics.induction_score", "period too long", lambda: metrics.induction_score(pattern(1, 2, 12, 12), 11), ValueError,
      r"period must be an int in \[1, 10\] \(sequences have length 12\), got 11"),
    C("metrics.induction_score", "period float", lambda: metrics.induction_score(pattern(1, 2, 12, 12), 6.0), TypeError,
      r"period must be an int in \[1, 10\] \(sequences have length 12\), got 6\.0"),
    C("metrics.induction_score", "period True", lambda: metrics.induction_score(pattern(1, 2, 12, 12), True), TypeError,
      r"period must be an int in \[1, 10\] \(sequences have length 12\), got True"),
    C("metrics.induction_score", "pattern not square", lambda: metrics.induction_score(floats(2, 2, 4, 5), 2), ValueError,
      r"pattern must be square, query_pos == key_pos, got shape \(2, 2, 4, 5\)"),
    C("metrics.duplicate_token_score", "period negative", lambda: metrics.duplicate_token_score(pattern(1, 2, 12, 12), -6),
      ValueError, r"period must be an int in \[1, 10\] \(sequences have length 12\), got -6"),
    C("metrics.duplicate_token_score", "int pattern",
      lambda: metrics.duplicate_token_score(pattern(1, 2, 12, 12, dtype=torch.long), 6),
      TypeError, r"pattern must be a floating-point tensor, got dtype torch\.int64"),
    C("metrics.head_scores", "model a string",
      lambda: metrics.head_scores("attn_only_2l", tokens(1, 8), metrics.prev_token_score), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("metrics.head_scores", "float tokens", lambda: metrics.head_scores(tiny(), floats(1, 8), metrics.prev_token_score),
      TypeError, r"tokens must be an integer tensor.*got dtype torch\.float32"),
    C("metrics.head_scores", "token id = d_vocab", lambda: metrics.head_scores(tiny(), tokens(1, 8, fill=16), metrics.prev_token_score),
      ValueError, r"tokens contains id 16, outside the vocabulary \[0, 16\)"),
    C("metrics.head_scores", "longer than the context", lambda: metrics.head_scores(tiny(), tokens(1, 9), metrics.prev_token_score),
      ValueError, r"tokens has 9 positions but the model's context is n_ctx=8"),
    C("metrics.head_scores", "empty batch", lambda: metrics.head_scores(tiny(), tokens(0, 8), metrics.prev_token_score),
      ValueError, r"tokens is empty: shape \(0, 8\)"),
    C("metrics.head_scores", "score a name", lambda: metrics.head_scores(tiny(), tokens(1, 8), "induction"),
      TypeError, r"score must be a function pattern -> \[head\] \(e\.g\. induction_score\), got 'induction'"),

    # -- metrics: losses and in-context learning --
    C("metrics.per_token_loss", "logits rank 2", lambda: metrics.per_token_loss(floats(4, 16), tokens(1, 4)), ValueError,
      r"logits must have shape \[batch, pos, d_vocab\], got shape \(4, 16\)"),
    C("metrics.per_token_loss", "float tokens", lambda: metrics.per_token_loss(floats(1, 4, 16), floats(1, 4)), TypeError,
      r"tokens must be an integer tensor.*got dtype torch\.float32"),
    C("metrics.icl_score", "loss a list", lambda: metrics.icl_score([1.0, 2.0], slice(0, 1), slice(1, 2)), TypeError,
      r"loss_by_token must be a torch\.Tensor \[\.\.\., predicted_pos\], got list"),
    C("metrics.icl_score", "early not a slice", lambda: metrics.icl_score(floats(2, 10), 3, slice(5, 9)), ValueError,
      r"early must be a non-empty slice of the 10 predicted positions, got 3"),
    C("metrics.icl_score", "late empty", lambda: metrics.icl_score(floats(2, 10), slice(0, 3), slice(20, 30)), ValueError,
      r"late must be a non-empty slice of the 10 predicted positions, got slice\(20, 30, None\)"),
    C("metrics.phase_window", "lengths differ", lambda: metrics.phase_window([0, 1, 2], [0.0, 1.0], 2), ValueError,
      r"steps and values must be sequences of the same length, at least 3; got lengths 3 and 2"),
    C("metrics.phase_window", "width 0", lambda: metrics.phase_window([0, 1, 2], [0.0, 1.0, 2.0], 0), ValueError,
      r"width must be a number of steps > 0, got 0"),
    C("metrics.first_step_above", "lengths differ", lambda: metrics.first_step_above([0, 1, 2], [0.5], 0.4), ValueError,
      r"steps and values must be non-empty and of the same length, got 3 and 1"),
    C("metrics.phase_change", "lengths differ", lambda: metrics.phase_change([0, 1, 2], [0] * 3, [0] * 3, [0] * 2, 2),
      ValueError, r"steps, both ICL curves and best_induction must have one value per checkpoint, got lengths \[3, 3, 3, 2\]"),
    C("metrics.loss_on_copies", "copied not bool", lambda: metrics.loss_on_copies(floats(2, 7), tokens(2, 8)), TypeError,
      r"copied must be a bool tensor \[batch, pos\], got torch.int64"),
    C("metrics.loss_on_copies", "copied as long as the losses",
      lambda: metrics.loss_on_copies(floats(2, 7), torch.zeros(2, 7, dtype=torch.bool)), ValueError,
      r"copied must be \[batch, pos\] with pos one more than the losses' \(2, 7\), got \(2, 7\)"),
    C("metrics.loss_on_copies", "int losses", lambda: metrics.loss_on_copies(tokens(2, 7), torch.zeros(2, 8, dtype=torch.bool)),
      TypeError, r"loss_by_token must be a floating-point tensor, got dtype torch.int64"),
    C("metrics.window_shares", "steps a list", lambda: metrics.window_shares([0, 1, 2], floats(3), 2), TypeError,
      r"steps must be a torch.Tensor \[n_checkpoints\], got list"),
    C("metrics.window_shares", "lengths differ", lambda: metrics.window_shares(tokens(3), floats(4), 2), ValueError,
      r"steps and values must have one entry per checkpoint \(at least 2\), got shapes \(3,\) and \(4,\)"),
    C("metrics.window_shares", "width 0", lambda: metrics.window_shares(torch.arange(3), floats(3), 0), ValueError,
      r"width must be a number of training steps > 0, got 0"),
    C("metrics.window_shares", "no change", lambda: metrics.window_shares(torch.arange(3), torch.tensor([1.0, 2.0, 1.0]), 2),
      ValueError, r"values end where they start"),
    C("metrics.attention_by_offset", "no batch axis", lambda: metrics.attention_by_offset(pattern(4, 4)), ValueError,
      r"pattern must be \[batch, head, query_pos, key_pos\], got shape \(4, 4\)"),
    C("metrics.attention_by_offset", "int pattern", lambda: metrics.attention_by_offset(pattern(1, 2, 4, 4, dtype=torch.long)),
      TypeError, r"pattern must be a floating-point tensor, got dtype torch.int64"),
    C("metrics.prev_and_induction_scores", "model a string",
      lambda: metrics.prev_and_induction_scores("attn_only_2l", tokens(1, 8), 4), TypeError, r"model must be"),
    C("metrics.phase_window", "values hold NaN", lambda: metrics.phase_window([0, 1, 2], [0.0, float("nan"), 2.0], 2), ValueError,
      r"values contains NaN or inf \(1 of 3 entries\): expected finite numbers"),
    C("metrics.first_step_above", "values hold NaN", lambda: metrics.first_step_above([0, 1, 2], [0.1, float("nan"), 0.9], 0.5),
      ValueError, r"values contains NaN or inf \(1 of 3 entries\): expected finite numbers"),
    C("metrics.first_step_above", "threshold NaN", lambda: metrics.first_step_above([0, 1, 2], [0.1, 0.5, 0.9], float("nan")),
      ValueError, r"threshold must be a finite number, got nan"),
    C("metrics.first_step_above", "threshold a string", lambda: metrics.first_step_above([0, 1, 2], [0.1, 0.5, 0.9], "0.5"),
      TypeError, r"threshold must be a finite number, got '0.5'"),
    C("metrics.formation_steps", "steps not increasing", lambda: metrics.formation_steps(torch.tensor([0, 20, 10]), floats(3, 2), 0.5),
      ValueError, r"steps must increase from one checkpoint to the next, got \[0, 20, 10\]"),
    C("metrics.formation_steps", "scores of another length", lambda: metrics.formation_steps(torch.arange(3), floats(4, 2), 0.5),
      ValueError, r"scores must be \[n_checkpoints, \.\.\.\] with one row per entry of steps \(3,\), got shape \(4, 2\)"),
    C("metrics.formation_steps", "scores 0-d", lambda: metrics.formation_steps(torch.arange(1), torch.tensor(0.5), 0.5),
      ValueError, r"scores must be \[n_checkpoints, \.\.\.\] .*got shape \(\)"),
    C("metrics.formation_steps", "scores hold NaN", lambda: metrics.formation_steps(torch.arange(3), nan_at(floats(3, 2)), 0.5),
      ValueError, r"scores contains NaN or inf \(1 of 6 entries\)"),
    C("metrics.formation_steps", "int scores", lambda: metrics.formation_steps(torch.arange(3), tokens(3, 2), 0.5),
      TypeError, r"scores must be a floating-point tensor, got dtype torch.int64"),
    C("metrics.formation_steps", "steps a list", lambda: metrics.formation_steps([0, 1, 2], floats(3, 2), 0.5),
      TypeError, r"steps must be a torch.Tensor \[n_checkpoints\], got list"),
    C("metrics.formation_steps", "threshold a tensor", lambda: metrics.formation_steps(torch.arange(3), floats(3, 2), torch.tensor(0.5)),
      TypeError, r"threshold must be a finite number, got tensor\(0.5000\)"),
    C("metrics.copy_loss_curves", "empty history", lambda: metrics.copy_loss_curves({}, tokens(2, 8), torch.zeros(2, 8, dtype=torch.bool)),
      ValueError, r"history must be a non-empty dict \{step: model\}, got \{\}"),
    C("metrics.copy_loss_curves", "steps as strings", lambda: metrics.copy_loss_curves({"0": tiny()}, tokens(2, 8),
                                                                                    torch.zeros(2, 8, dtype=torch.bool)),
      TypeError, r"history's keys must be training steps \(ints\), got \[\"'0'\"\]"),
    C("metrics.copy_loss_curves", "a model a string", lambda: metrics.copy_loss_curves({0: "attn_only_2l"}, tokens(2, 8),
                                                                                    torch.zeros(2, 8, dtype=torch.bool)),
      TypeError, r"history\[0\] must be a course_utils Transformer or a TransformerBridge, got str"),
    C("metrics.copy_loss_curves", "copied of another length", lambda: metrics.copy_loss_curves({0: tiny()}, tokens(2, 8),
                                                                                            torch.zeros(2, 7, dtype=torch.bool)),
      ValueError, r"copied must be \[batch, pos\] with pos one more than the losses' \(2, 7\), got \(2, 7\)"),
    C("metrics.copy_loss_curves", "tokens longer than the context", lambda: metrics.copy_loss_curves({0: tiny()}, tokens(2, 9),
                                                                                                  torch.zeros(2, 9, dtype=torch.bool)),
      ValueError, r"tokens has 9 positions but the model's context is n_ctx=8"),
    C("metrics.prev_and_induction_scores", "period too long",
      lambda: metrics.prev_and_induction_scores(tiny(), tokens(1, 8), 7), ValueError,
      r"period must be an int in \[1, 6\] \(sequences have length 8\), got 7"),
    C("metrics.prev_and_induction_scores", "longer than the context",
      lambda: metrics.prev_and_induction_scores(tiny(), tokens(1, 9), 4), ValueError, r"9 positions but .*n_ctx=8"),
    C("metrics.icl_slices", "language a name", lambda: metrics.icl_slices("attn_only_2l"), TypeError,
      r"language must be a course_utils\.data\.SyntheticLanguage, got str"),
    C("metrics.training_curves", "history empty", lambda: metrics.training_curves({}, SyntheticLanguage()), ValueError,
      r"history must be a non-empty dict \{step: model\}, got \{\}"),
    C("metrics.training_curves", "language a name", lambda: metrics.training_curves({0: tiny()}, "attn_only_2l"),
      TypeError, r"language must be a course_utils\.data\.SyntheticLanguage, got str"),

    # -- metrics: weight-level circuits --
    *[C(f"metrics.{fn.__name__}", what, (lambda fn=fn, lh=lh: fn(tiny(), *lh)), error, match)
      for fn in (metrics.full_ov_circuit, metrics.positional_qk_circuit, metrics.token_qk_circuit)
      for what, lh, error, match in [
          ("layer out of range", (2, 0), ValueError, r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 2"),
          ("negative head", (0, -1), ValueError, r"head must be an int in \[0, 1\] \(a layer has 2 heads\), got -1"),
          ("layer 1.0", (1.0, 0), TypeError, r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 1\.0"),
          ("head True", (0, True), TypeError, r"head must be an int in \[0, 1\] \(a layer has 2 heads\), got True"),
      ]],
    C("metrics.full_ov_circuit", "model a string", lambda: metrics.full_ov_circuit("attn_only_2l", 0, 0), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("metrics.eigenvalue_copying_score", "not square", lambda: metrics.eigenvalue_copying_score(floats(3, 4)), ValueError,
      r"matrix must be a square FactoredMatrix or a square 2-d tensor, got shape \(3, 4\)"),
    C("metrics.eigenvalue_copying_score", "a list", lambda: metrics.eigenvalue_copying_score([[1.0]]), TypeError,
      r"matrix must be a square FactoredMatrix or a square 2-d tensor, got list"),
    C("metrics.copying_score", "rank 3", lambda: metrics.copying_score(floats(2, 4, 4)), ValueError,
      r"full_ov must have shape \[d_vocab, d_vocab\], got shape \(2, 4, 4\)"),
    C("metrics.composition_score", "inner shapes differ", lambda: metrics.composition_score(floats(4, 3), floats(4, 4)),
      ValueError, r"W_A \[d, m\] and W_B \[m, e\] must share m, got shapes \(4, 3\) and \(4, 4\)"),
    C("metrics.composition_score", "int W_B", lambda: metrics.composition_score(floats(4, 4), tokens(4, 4)), TypeError,
      r"W_B must be a floating-point tensor, got dtype torch\.int64"),
    C("metrics.composition_score", "W_A rank 1", lambda: metrics.composition_score(floats(4), floats(4, 4)), ValueError,
      r"W_A must have shape \[\.\.\., d, m\], got shape \(4,\)"),
    C("metrics.composition_scores", "mode unknown", lambda: metrics.composition_scores(tiny(), "O"), ValueError,
      r"mode must be 'Q', 'K' or 'V', got 'O'"),
    C("metrics.composition_scores", "mode lower case", lambda: metrics.composition_scores(tiny(), "q"), ValueError,
      r"mode must be 'Q', 'K' or 'V', got 'q'"),
    C("metrics.composition_scores", "model a string", lambda: metrics.composition_scores("attn_only_2l", "Q"), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("metrics.qk_circuit", "d_model differs", lambda: metrics.qk_circuit(floats(5, 8), floats(5, 6), floats(8, 2), floats(8, 2)),
      ValueError, r"must share d_model and d_head, got shapes \(5, 8\), \(5, 6\), \(8, 2\), \(8, 2\)"),
    C("metrics.qk_circuit", "int X_key", lambda: metrics.qk_circuit(floats(5, 8), tokens(5, 8), floats(8, 2), floats(8, 2)),
      TypeError, r"X_key must be a floating-point tensor, got dtype torch\.int64"),
    C("metrics.qk_circuit", "W_Q with a head axis", lambda: metrics.qk_circuit(floats(5, 8), floats(5, 8), floats(4, 8, 2),
                                                                             floats(8, 2)),
      ValueError, r"W_Q must have shape \[d_model, d_head\], got shape \(4, 8, 2\)"),
    C("metrics.key_scores_by_source", "q without a batch axis",
      lambda: metrics.key_scores_by_source(floats(6, 3), floats(2, 1, 6, 8), floats(8, 3)), ValueError,
      r"q must have shape \[batch, query_pos, d_head\], got shape \(6, 3\)"),
    C("metrics.key_scores_by_source", "W_K of another head size",
      lambda: metrics.key_scores_by_source(floats(1, 6, 3), floats(2, 1, 6, 8), floats(8, 4)), ValueError,
      r"do not fit together: shapes \(1, 6, 3\), \(2, 1, 6, 8\), \(8, 4\)"),
    C("metrics.ov_eigenvalue_score", "not square", lambda: metrics.ov_eigenvalue_score(floats(6, 2), floats(2, 5)), ValueError,
      r"A \[\.\.\., n, k\] and B \[\.\.\., k, n\] must make a square product, got shapes \(6, 2\) and \(2, 5\)"),
    C("metrics.ov_eigenvalue_score", "A a list", lambda: metrics.ov_eigenvalue_score([[1.0]], floats(1, 1)), TypeError,
      r"A must be a torch\.Tensor \[\.\.\., n, k\], got list"),
    C("metrics.full_ov_top1_accuracy", "W_U transposed",
      lambda: metrics.full_ov_top1_accuracy(floats(10, 6), floats(2, 6, 3), floats(2, 3, 6), floats(10, 6)), ValueError,
      r"do not fit together: shapes \(10, 6\), \(2, 6, 3\), \(2, 3, 6\), \(10, 6\)"),
    C("metrics.full_ov_top1_accuracy", "int W_E",
      lambda: metrics.full_ov_top1_accuracy(tokens(10, 6), floats(2, 6, 3), floats(2, 3, 6), floats(6, 10)), TypeError,
      r"W_E must be a floating-point tensor, got dtype torch\.int64"),
    C("metrics.repetition_rate", "float tokens", lambda: metrics.repetition_rate(floats(2, 8), 2, 4), TypeError,
      r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("metrics.repetition_rate", "tokens rank 1", lambda: metrics.repetition_rate(tokens(8), 2, 4), ValueError,
      r"tokens must have shape \[batch, pos\], got shape \(8,\)"),
    C("metrics.repetition_rate", "n 0", lambda: metrics.repetition_rate(tokens(2, 8), 0, 4), ValueError, r"n must be a positive int, got 0"),
    C("metrics.repetition_rate", "n 2.0", lambda: metrics.repetition_rate(tokens(2, 8), 2.0, 4), TypeError, r"n must be a positive int, got 2\.0"),
    C("metrics.repetition_rate", "start before the first n-gram ends", lambda: metrics.repetition_rate(tokens(2, 8), 3, 1), ValueError,
      r"start must be an int in \[2, 7\] \(an n-gram must end there: n=3, the tokens have 8 positions\), got 1"),
    C("metrics.repetition_rate", "start past the end", lambda: metrics.repetition_rate(tokens(2, 8), 2, 8), ValueError,
      r"start must be an int in \[1, 7\] .*got 8"),
    C("model.generate", "prompt too long for new_tokens", lambda: model.generate(tiny(), tokens(2, 6), 3), ValueError,
      r"prompt \(6 positions\) plus new_tokens \(3\) must fit in the model's context, n_ctx=8"),
    C("model.generate", "new_tokens 0", lambda: model.generate(tiny(), tokens(2, 4), 0), ValueError, r"new_tokens must be a positive int, got 0"),
    C("model.generate", "prompt rank 1", lambda: model.generate(tiny(), tokens(4), 2), ValueError,
      r"prompt must have shape \[batch, pos\], got shape \(4,\) \(add a batch dimension: prompt\[None\]\)"),
    C("model.generate", "float prompt", lambda: model.generate(tiny(), floats(2, 4), 2), TypeError,
      r"prompt must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("model.generate", "prompt id outside the vocabulary", lambda: model.generate(tiny(), tokens(2, 4, fill=16), 2), ValueError,
      r"prompt contains id 16, outside the vocabulary \[0, 16\)"),
    C("model.generate", "generator an int seed", lambda: model.generate(tiny(), tokens(2, 4), 2, generator=0), TypeError,
      r"generator must be a torch\.Generator or None \(greedy\), got int"),
    C("model.generate", "fwd_hooks a dict", lambda: model.generate(tiny(), tokens(2, 4), 2, fwd_hooks={}), TypeError,
      r"fwd_hooks must be a list of \(hook name, hook\) pairs, got dict"),
    C("model.generate", "model a string", lambda: model.generate("gpt2", tokens(2, 4), 2), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("metrics.composition_excess", "random writers of another shape",
      lambda: metrics.composition_excess(floats(2, 6, 6), floats(3, 6, 6), floats(4, 6, 5), floats(4, 6, 6)), ValueError,
      r"must fit together.*got \(2, 6, 6\), \(3, 6, 6\), \(4, 6, 5\), \(4, 6, 6\)"),
    C("metrics.composition_excess", "one writer without its axis",
      lambda: metrics.composition_excess(floats(6, 6), floats(3, 6, 6), floats(4, 6, 6), floats(4, 6, 6)), ValueError,
      r"writers must have shape \[n, rows, columns\], got shape \(6, 6\)"),
    C("metrics.random_composition_baseline", "mode unknown", lambda: metrics.random_composition_baseline(tiny(), "QK"),
      ValueError, r"mode must be 'Q', 'K' or 'V', got 'QK'"),
    C("metrics.random_composition_baseline", "samples 0", lambda: metrics.random_composition_baseline(tiny(), "Q", samples=0),
      ValueError, r"samples must be a positive int, got 0"),

    # -- zoo --
    C("zoo.card", "unknown name", lambda: zoo.card("gpt5"), ValueError,
      r"name must be one of the shipped models \('attn_only_1l', 'attn_only_2l', .*\), got 'gpt5'"),
    C("zoo.card", "name not a string", lambda: zoo.card(2), TypeError, r"name must be one of the shipped models \('attn_only_1l', .*got int 2"),
    C("zoo.language", "unknown name", lambda: zoo.language("attn_only_3l"), ValueError, r"name must be one of the shipped models .*got 'attn_only_3l'"),
    C("zoo.load", "unknown name", lambda: zoo.load("gpt5"), ValueError, r"name must be one of the shipped models .*got 'gpt5'"),
    C("zoo.load", "unknown step", lambda: zoo.load("attn_only_2l", step=7), ValueError,
      r"attn_only_2l has no checkpoint at step 7; its history has steps \[0, 150, 300"),
    C("zoo.load", "step a string", lambda: zoo.load("attn_only_2l", step="150"), ValueError,
      r"attn_only_2l has no checkpoint at step '150'; its history has steps \[0, 150"),
    C("zoo.load", "step True", lambda: zoo.load("attn_only_2l", step=True), ValueError,
      r"attn_only_2l has no checkpoint at step True; its history has steps"),
    C("zoo.history", "unknown name", lambda: zoo.history("gpt5"), ValueError, r"name must be one of the shipped models .*got 'gpt5'"),
    C("zoo.training_history", "unknown name", lambda: zoo.training_history("gpt5"), ValueError, r"shipped models .*got 'gpt5'"),
    C("zoo.evaluate", "model a name", lambda: zoo.evaluate("attn_only_2l", zoo.language("attn_only_2l")), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("zoo.evaluate", "language a name", lambda: zoo.evaluate(zoo_model(), "attn_only_2l"), TypeError,
      r"language must be a course_utils\.data\.SyntheticLanguage, got str"),
    C("zoo.evaluate", "language with a larger vocabulary", lambda: zoo.evaluate(zoo_model(), SyntheticLanguage(d_vocab=128, n_ctx=32, max_span=15)),
      ValueError, r"tokens contains id \d+, outside the vocabulary \[0, 64\)"),
    C("zoo.retrain", "unknown name", lambda: zoo.retrain("gpt5"), ValueError, r"shipped models .*got 'gpt5'"),
    C("zoo.story", "empty history", lambda: zoo.story({}, zoo.language("attn_only_2l")), ValueError,
      r"history must be a non-empty dict \{step: model\}, got \{\}"),
    C("zoo.story", "language a name", lambda: zoo.story({0: zoo_model()}, "attn_only_2l"), TypeError,
      r"language must be a course_utils\.data\.SyntheticLanguage, got str"),
    C("zoo_build.seed_study", "unknown name", lambda: zoo_build.seed_study("gpt5", [1], files()["root"]), ValueError,
      r"name must be one of the recipes .*got 'gpt5'"),
    C("zoo.sha256", "missing file", lambda: zoo.sha256("/nope/x.safetensors"), FileNotFoundError,
      r"path must be an existing file, got '/nope/x.safetensors'"),
    C("zoo.sha256", "a directory", lambda: zoo.sha256(zoo.ZOO_DIR), FileNotFoundError, r"path must be an existing file"),
    C("zoo.sha256", "not a path", lambda: zoo.sha256(3), FileNotFoundError, r"path must be an existing file, got 3"),
    C("numerics.why_not_bitwise", "a string", lambda: numerics.why_not_bitwise("avx2"), TypeError,
      r"built_with must be a card's 'numerics' \(a dict\) or None, got str"),
    C("zoo_build.write_json", "missing directory", lambda: zoo_build.write_json(Path("/nope/card.json"), {}),
      FileNotFoundError, r"path must be in an existing directory, got '/nope/card.json'"),
    C("zoo_build.write_json", "not JSON", lambda: zoo_build.write_json(files()["root"] / "x.json", {"t": torch.zeros(1)}),
      TypeError, r"Tensor is not JSON serializable"),
    C("zoo_build.with_zoo_numerics", "not a maintainer command", lambda: zoo_build.with_zoo_numerics("course_utils.zoo"),
      ValueError, r"module must name a maintainer command such as 'maintainer.zoo_build', got 'course_utils.zoo'"),
    C("zoo_build.with_zoo_numerics", "not a string", lambda: zoo_build.with_zoo_numerics(None), ValueError,
      r"module must name a maintainer command"),
    C("zoo_build.build", "unknown name", lambda: zoo_build.build("gpt5"), ValueError, r"name must be one of the recipes \('attn_only_1l', 'attn_only_2l', .*got 'gpt5'"),
    C("zoo_build.record_seed_study", "unknown name", lambda: zoo_build.record_seed_study("gpt5", [1], files()["root"]), ValueError,
      r"name must be one of the shipped models .*got 'gpt5'"),
    C("zoo_build.record_phase_change", "unknown name", lambda: zoo_build.record_phase_change("gpt5"), ValueError, r"shipped models .*got 'gpt5'"),

    # -- checks: every check names a non-function fn; carry_on names unknown exercises --
    *[C(f"checks.{fn.__name__}", "fn not a function", (lambda fn=fn: fn("embed")), checks.ExerciseError,
        r"expected a function as fn \(pass the function itself, not its result\), got str")
      for fn in (checks.check_embed, checks.check_pos_embed, checks.check_attention_pattern,
                 checks.check_multi_head_attention, checks.check_unembed, checks.check_per_token_loss,
                 checks.check_icl_score, checks.check_loss_on_copies, checks.check_prev_and_induction_scores,
                 checks.check_attention_by_offset, checks.check_window_shares, checks.check_prev_token_score, checks.check_induction_score,
                 checks.check_duplicate_token_score, checks.check_composition_score,
                 checks.check_ablate_head, checks.check_ablated_loss, checks.check_ablation_effects,
                 checks.check_combination_costs, checks.check_keys_without, checks.check_pattern_preserving_loss,
                 checks.check_perfect_prev_token_pattern, checks.check_clamp_head_pattern,
                 checks.check_decompose_resid, checks.check_unembed_resid, checks.check_kl_to_final,
                 checks.check_logit_attribution, checks.check_lens_top_tokens, checks.check_settle_layer,
                 checks.check_head_attribution, checks.check_fit_tuned_lens,
                 checks.check_normalized_metric, checks.check_patch_resid_pre,
                 checks.check_correct_logprob, checks.check_resid_patching, checks.check_patch_heads,
                 checks.check_patch_k_path, checks.check_noised_logprob, checks.check_causal_trace,
                 checks.check_mean_head_outputs, checks.check_indirect_effect, checks.check_logits_with_vector,
                 checks.check_indirect_effects, checks.check_top_heads_vector, checks.check_layer_sweep,
                 checks.check_qk_circuit, checks.check_composition_excess, checks.check_ov_eigenvalue_score,
                 checks.check_full_ov_top1_accuracy, checks.check_key_scores_by_source,
                 checks.check_copy_loss_curves, checks.check_formation_steps,
                 checks.check_attention_to, checks.check_answer_shares,
                 checks.check_train_loop, checks.check_sample, checks.check_record_patterns,
                 checks.check_logits_with_positions, checks.check_repetition_rate,
                 checks.check_correct_letter_score, checks.check_mutated_labels, checks.check_head_label_logits,
                 checks.check_compress, checks.check_swapped_positions, checks.check_logits_at_positions,
                 checks.check_letter_peak,
                 checks.check_train_test_split, checks.check_fourier_basis, checks.check_key_frequencies,
                 checks.check_restricted_logits, checks.check_excluded_logits, checks.check_grokking_phases,
                 checks.check_cos_fit,
                 checks.check_toy_forward, checks.check_toy_loss, checks.check_superposition_measure,
                 checks.check_neuron_alignment, checks.check_sae_forward, checks.check_sae_loss,
                 checks.check_sae_training_step, checks.check_feature_recovery, checks.check_clamp_latent,
                 checks.check_mean_difference, checks.check_ablation_hooks, checks.check_addition_hook,
                 checks.check_random_control, checks.check_direction_layer_sweep, checks.check_steering_effects)],
    C("checks.check_forward", "fn not a function", lambda: checks.check_forward(None, tiny()), checks.ExerciseError,
      r"expected a function as fn.*got NoneType"),
    C("checks.check_forward", "model a string", lambda: checks.check_forward(lambda t, m: m(t), "attn_only_2l"), TypeError,
      r"model must be a course_utils\.model\.Transformer, got str"),
    C("checks.check_forward", "model with LayerNorm", lambda: checks.check_forward(lambda t, m: m(t), ln_model()), ValueError,
      r"model must be attention-only without LayerNorm, like notebook 01's \(attn_only=True, normalization_type=None\)"),
    C("checks.carry_on", "unknown exercise", lambda: checks.carry_on("embedding", None), ValueError,
      r"no reference implementation named 'embedding' in course_utils: name must be the name of an exercise's function"),

    # -- viz --
    C("viz.head_heatmap", "scores rank 1", lambda: viz.head_heatmap(floats(4), "scores"), ValueError,
      r"scores must be a \[layer, head\] grid, got shape \(4,\)"),
    C("viz.head_heatmap", "scores hold NaN", lambda: viz.head_heatmap(torch.tensor([[0.1, float("nan")], [0.2, 0.3]]), "scores"),
      ValueError, r"scores contains NaN or inf \(1 of 4 entries, the first at layer 0, head 1\): expected finite numbers; "
                  r"the heat map would show a blank cell"),
    C("viz.head_heatmap", "scores hold inf", lambda: viz.head_heatmap(inf_at(floats(2, 2)), "scores"),
      ValueError, r"scores contains NaN or inf \(1 of 4 entries, the first at layer 0, head 0\)"),
    C("viz.attention_grid", "patterns rank 3", lambda: viz.attention_grid(floats(2, 4, 4)), ValueError,
      r"patterns must be \[layer, head, query_pos, key_pos\], got shape \(2, 4, 4\)"),
    C("viz.training_story", "loss shorter than steps", lambda: viz.training_story([0, 1, 2], loss=[1.0, 0.5]), ValueError,
      r"loss must have one value per step \(3\), got 2 values"),
    C("viz.training_story", "induction curve too long", lambda: viz.training_story([0, 1], induction={"2l": [0, 1, 2]}),
      ValueError, r"induction\['2l'\] must have one value per step \(2\), got 3 values"),
    # ---- colab: the set-up cell and badge, written by tools/make_exercises.py
    C("colab_cell.colab_requirements", "missing pyproject", lambda: colab.colab_requirements("/nope/pyproject.toml"),
      FileNotFoundError, r"pyproject must be the course's pyproject.toml, got '/nope/pyproject.toml' \(no such file\)"),
    C("colab_cell.install_commands", "not a pyproject", lambda: colab.install_commands(files()["garbage"]), ValueError,
      r"pyproject must be a pyproject.toml with \[project\] dependencies, got .*garbage.safetensors"),
    C("colab_cell.setup_cell_source", "missing pyproject", lambda: colab.setup_cell_source(Path("/nope.toml")),
      FileNotFoundError, r"pyproject must be .* got '/nope.toml'"),
    C("colab_cell.badge_markdown", "not a path", lambda: colab.badge_markdown(3), ValueError,
      r"notebook_path must be a notebook's path relative to the repository root.*got 3"),
    C("colab_cell.badge_markdown", "absolute path", lambda: colab.badge_markdown("/home/x/01.ipynb"), ValueError,
      r"notebook_path must be .*got '/home/x/01.ipynb'"),
    # ---- viz: the light circuitsvis views
    C("viz.attention_heads", "one head, no head axis", lambda: viz.attention_heads(floats(4, 4), list("abcd")),
      ValueError, r"attention must be \[head, query_pos, key_pos\] = \[head, 4, 4\] for 4 tokens, got shape \(4, 4\)"),
    C("viz.attention_heads", "tokens of another length", lambda: viz.attention_heads(floats(2, 4, 4), list("abc")),
      ValueError, r"attention must be .* for 3 tokens, got shape \(2, 4, 4\)"),
    C("viz.attention_heads", "too few head names",
      lambda: viz.attention_heads(floats(2, 4, 4), list("abcd"), head_names=["x"]), ValueError,
      r"head_names must name each of the 2 heads, got 1 names"),
    C("viz.colored_tokens", "values of another length", lambda: viz.colored_tokens(["a", "b"], floats(3)),
      ValueError, r"values must hold one number per token, shape \(2,\), got shape \(3,\)"),

    # -- ablation (notebook 04) --
    C("ablation.ablate_head", "z rank 3", lambda: ablation.ablate_head(floats(2, 4, 2), 0, 0.0), ValueError,
      r"z must have shape \[batch, pos, head_index, d_head\], got shape \(2, 4, 2\)"),
    C("ablation.ablate_head", "head out of range", lambda: ablation.ablate_head(floats(2, 4, 2, 8), 2, 0.0), ValueError,
      r"head must be an int in \[0, 1\] \(z has 2 heads\), got 2"),
    C("ablation.ablate_head", "head True", lambda: ablation.ablate_head(floats(2, 4, 2, 8), True, 0.0), TypeError,
      r"head must be an int in \[0, 1\] \(z has 2 heads\), got True"),
    C("ablation.ablate_head", "replacement of another shape", lambda: ablation.ablate_head(floats(2, 4, 2, 8), 0, floats(3, 8)),
      ValueError, r"replacement of shape \(3, 8\) does not broadcast to the head's output \[batch, pos, d_head\] = \[2, 4, 8\]"),
    C("ablation.ablation_hooks", "method unknown", lambda: ablation.ablation_hooks(tiny(), (0, 0), "max"), ValueError,
      r"method must be one of \('zero', 'mean', 'resample'\), got 'max'"),
    C("ablation.ablation_hooks", "head out of range", lambda: ablation.ablation_hooks(tiny(), [(0, 0), (1, 2)]), ValueError,
      r"heads: head must be an int in \[0, 1\] \(a layer has 2 heads\), got 2"),
    C("ablation.ablation_hooks", "heads not pairs", lambda: ablation.ablation_hooks(tiny(), [(0, 0, 1)]), ValueError,
      r"heads must be \(layer, head\) pairs, got \(0, 0, 1\)"),
    C("ablation.ablation_hooks", "mean without reference", lambda: ablation.ablation_hooks(tiny(), (0, 0), "mean"), ValueError,
      r"method='mean' needs reference_tokens \[batch, pos\]"),
    C("ablation.ablation_hooks", "model a string", lambda: ablation.ablation_hooks("attn_only_2l", (0, 0)), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("ablation.loss_with_hooks", "model a string", lambda: ablation.loss_with_hooks("attn_only_2l", tokens(2, 4), []),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("ablation.loss_with_hooks", "token id = d_vocab", lambda: ablation.loss_with_hooks(tiny(), tokens(2, 4, fill=16), []),
      ValueError, r"tokens contains id 16, outside the vocabulary \[0, 16\)"),
    C("ablation.ablated_loss", "method unknown", lambda: ablation.ablated_loss(tiny(), tokens(2, 4), [(0, 0)], "max"), ValueError,
      r"method must be one of \('zero', 'mean', 'resample'\), got 'max'"),
    C("ablation.ablated_loss", "resample without reference", lambda: ablation.ablated_loss(tiny(), tokens(2, 4), [(0, 0)], "resample"),
      ValueError, r"method='resample' needs reference_tokens \[batch, pos\]"),
    C("ablation.combination_costs", "no heads", lambda: ablation.combination_costs(tiny(), tokens(2, 4), [], slice(1, 3)),
      ValueError, r"heads must name at least one \(layer, head\), got \[\]"),
    C("ablation.combination_costs", "head out of range",
      lambda: ablation.combination_costs(tiny(), tokens(2, 4), [(1, 0), (1, 5)], slice(1, 3)), ValueError,
      r"heads: head must be an int in \[0, 1\] \(a layer has 2 heads\), got 5"),
    C("ablation.combination_costs", "too many heads",
      lambda: ablation.combination_costs(tiny(), tokens(2, 4), [(0, 0), (0, 1), (1, 0), (1, 1)] * 3, slice(1, 3)), ValueError,
      r"heads: 12 heads make 2 \*\* 12 runs; take at most 10"),
    C("ablation.ablation_effects", "model a string", lambda: ablation.ablation_effects("attn_only_2l", tokens(2, 4), slice(1, 3)),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("ablation.ablation_effects", "method unknown", lambda: ablation.ablation_effects(tiny(), tokens(2, 4), slice(1, 3), "max"),
      ValueError, r"method must be one of \('zero', 'mean', 'resample'\), got 'max'"),
    C("ablation.ablation_effects", "empty batch", lambda: ablation.ablation_effects(tiny(), tokens(0, 4), slice(1, 3)),
      ValueError, r"tokens is empty: shape \(0, 4\)"),
    C("ablation.head_output", "W_O of another layout", lambda: ablation.head_output(floats(2, 4, 2, 8), floats(16, 8), 0),
      ValueError, r"W_O must be \[head, d_head, d_model\] = \[2, 8, d_model\], got \(16, 8\)"),
    C("ablation.head_output", "z rank 2", lambda: ablation.head_output(floats(4, 16), floats(2, 8, 16), 0),
      ValueError, r"z must have shape \[batch, pos, head_index, d_head\], got shape \(4, 16\)"),
    C("ablation.keys_without", "removed without d_model", lambda: ablation.keys_without(floats(2, 4, 2, 8), floats(2, 4), floats(2, 16, 8), 0),
      ValueError, r"removed must be \[batch, pos, d_model\] with \[batch, pos\] = \[2, 4\], got \(2, 4\)"),
    C("ablation.keys_without", "W_K transposed", lambda: ablation.keys_without(floats(2, 4, 2, 8), floats(2, 4, 16), floats(2, 8, 16), 0),
      ValueError, r"W_K must be \[head, d_model, d_head\] = \[2, 16, 8\], got \(2, 8, 16\)"),
    C("ablation.k_path_ablation_hooks", "reader not later", lambda: ablation.k_path_ablation_hooks(tiny(), (1, 0), [(1, 1)]),
      ValueError, r"readers: head 1\.1 is not in a later layer than the writer 1\.0"),
    C("ablation.k_path_ablation_hooks", "model with LayerNorm", lambda: ablation.k_path_ablation_hooks(ln_model(), (0, 0), [(1, 0)]),
      ValueError, r"needs a model without LayerNorm \(normalization_type=None\), got 'LN'"),
    C("ablation.k_path_ablation_hooks", "writer out of range", lambda: ablation.k_path_ablation_hooks(tiny(), (0, 9), [(1, 0)]),
      ValueError, r"writer: head must be an int in \[0, 1\] \(a layer has 2 heads\), got 9"),
    C("ablation.clean_patterns", "model a string", lambda: ablation.clean_patterns("attn_only_2l", tokens(2, 4)), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("ablation.clean_patterns", "tokens rank 1", lambda: ablation.clean_patterns(tiny(), tokens(4)), ValueError,
      r"tokens must have shape \[batch, pos\], got shape \(4,\)"),
    C("ablation.freeze_pattern_hooks", "patterns lack a layer", lambda: ablation.freeze_pattern_hooks(tiny(), {0: floats(2, 2, 4, 4)}, (1, 0)),
      ValueError, r"patterns has no entry for layer 1 \(it has layers \[0\]\)"),
    C("ablation.freeze_pattern_hooks", "patterns a tensor", lambda: ablation.freeze_pattern_hooks(tiny(), floats(2, 2, 4, 4), (1, 0)),
      TypeError, r"patterns must be a dict \{layer: \[batch, head, query_pos, key_pos\]\} \(from clean_patterns\), got Tensor"),
    C("ablation.pattern_preserving_loss", "no heads", lambda: ablation.pattern_preserving_loss(tiny(), tokens(2, 4), []),
      ValueError, r"heads must name at least one \(layer, head\), got \[\]"),
    C("ablation.pattern_preserving_loss", "method unknown", lambda: ablation.pattern_preserving_loss(tiny(), tokens(2, 4), [(0, 0)], "max"),
      ValueError, r"method must be one of \('zero', 'mean', 'resample'\), got 'max'"),
    C("ablation.clamp_head_pattern", "pattern rank 3", lambda: ablation.clamp_head_pattern(floats(2, 4, 4), 0, floats(8, 8)),
      ValueError, r"pattern must be a tensor \[batch, head, query_pos, key_pos\] \(hook_pattern\), got \(2, 4, 4\)"),
    C("ablation.clamp_head_pattern", "head out of range", lambda: ablation.clamp_head_pattern(floats(2, 2, 4, 4), 2, floats(8, 8)),
      ValueError, r"head 2 does not exist: pattern has 2 heads"),
    C("ablation.clamp_head_pattern", "target shorter than the run",
      lambda: ablation.clamp_head_pattern(floats(2, 2, 4, 4), 0, floats(3, 3)), ValueError,
      r"target must be a \[n_ctx, n_ctx\] pattern at least as long as the run's \[query_pos, key_pos\] = \[4, 4\], got \(3, 3\)"),
    C("ablation.pattern_preserving_ablation_hooks", "no heads", lambda: ablation.pattern_preserving_ablation_hooks(tiny(), tokens(2, 4), []),
      ValueError, r"heads must name at least one \(layer, head\), got \[\]"),
    C("ablation.pattern_preserving_ablation_hooks", "layer out of range",
      lambda: ablation.pattern_preserving_ablation_hooks(tiny(), tokens(2, 4), (3, 0)), ValueError,
      r"heads: layer must be an int in \[0, 1\] \(the model has 2 layers\), got 3"),

    # -- icl_classification (notebook 04) --
    C("icl_classification.ICLClassification", "n_labels 1", lambda: ICLClassification(n_labels=1), ValueError,
      r"n_labels must be at least 2 \(one label cannot be learnt in context\), got 1"),
    C("icl_classification.ICLClassification", "n_classes 0", lambda: ICLClassification(n_classes=0), ValueError,
      r"n_classes must be a positive int, got 0"),
    C("icl_classification.ICLClassification", "n_pairs a float", lambda: ICLClassification(n_pairs=8.0), TypeError,
      r"n_pairs must be a positive int, got 8\.0"),
    C("icl_classification.ICLClassification", "seed a string", lambda: ICLClassification(seed="0"), TypeError,
      r"seed must be an int, got '0'"),
    C("icl_classification.ICLClassification", "sample size 0", lambda: ICLClassification().sample(0, seed=0), ValueError,
      r"size must be a positive int, got 0"),
    C("icl_classification.formation_step", "lengths differ", lambda: icl_classification.formation_step([0, 25], [0.5]),
      ValueError, r"steps and values must be non-empty and of the same length, got 2 and 1"),
    C("icl_classification.formation_step", "empty", lambda: icl_classification.formation_step([], []),
      ValueError, r"steps and values must be non-empty .*got 0 and 0"),
    C("icl_classification.query_accuracy", "model of another task", lambda: icl_classification.query_accuracy(tiny(), ICLClassification()),
      ValueError, r"the model \(d_vocab=16, n_ctx=8\) does not fit the task \(d_vocab=12, n_ctx=18\)"),
    C("icl_classification.query_accuracy", "model a string", lambda: icl_classification.query_accuracy("m", ICLClassification()),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("icl_classification.query_accuracy", "task a dict", lambda: icl_classification.query_accuracy(tiny(), {"n_classes": 8}),
      TypeError, r"task must be a course_utils\.icl_classification\.ICLClassification, got dict"),

    # -- clamping (notebook 04) --
    C("clamping.perfect_prev_token_pattern", "n_ctx 1", lambda: clamping.perfect_prev_token_pattern(1), ValueError,
      r"n_ctx must be an int >= 2, got 1"),
    C("clamping.perfect_prev_token_pattern", "n_ctx a float", lambda: clamping.perfect_prev_token_pattern(4.0), TypeError,
      r"n_ctx must be an int >= 2, got 4\.0"),
    C("clamping.clamp_prev_token_hooks", "head out of range", lambda: clamping.clamp_prev_token_hooks(tiny(), 0, 2), ValueError,
      r"head must be an int in \[0, 1\] \(a layer has 2 heads\), got 2"),
    C("clamping.clamp_prev_token_hooks", "layer 0.0", lambda: clamping.clamp_prev_token_hooks(tiny(), 0.0, 0), TypeError,
      r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 0\.0"),
    C("clamping.clamp_layer0_output_hooks", "model a string", lambda: clamping.clamp_layer0_output_hooks("attn_only_2l"), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("clamping.condition_hooks", "condition unknown", lambda: clamping.condition_hooks(tiny(), "clamp"), ValueError,
      r"condition must be one of \('baseline', 'clamp_prev_token', 'clamp_layer0_output', 'ablate_layer0'\), got 'clamp'"),
    C("clamping.condition_hooks", "model a string", lambda: clamping.condition_hooks("m", "clamp_prev_token"), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("clamping.RunConfig", "condition unknown", lambda: clamping.RunConfig(condition="ablate"), ValueError,
      r"condition must be one of \('baseline', 'clamp_prev_token', 'clamp_layer0_output', 'ablate_layer0'\), got 'ablate'"),
    C("clamping.RunConfig", "task a dict", lambda: clamping.RunConfig(task={"n_classes": 8}), TypeError,
      r"RunConfig\.task must be a course_utils\.icl_classification\.ICLClassification, got dict"),
    C("clamping.RunConfig", "steps 0", lambda: clamping.RunConfig(steps=0), ValueError,
      r"TrainConfig\.steps must be a positive int, got 0"),
    C("clamping.RunConfig", "lr negative", lambda: clamping.RunConfig(lr=-1.0), ValueError, r"TrainConfig\.lr must be a finite number > 0, got -1\.0"),
    C("clamping.RunConfig", "eval_every 0", lambda: clamping.RunConfig(eval_every=0), ValueError,
      r"TrainConfig\.checkpoint_every must be a positive int, got 0"),
    C("clamping.RunConfig", "d_model not divisible by n_heads", lambda: clamping.RunConfig(d_model=30, n_heads=4), ValueError,
      r"Config\.d_model=30 is not divisible by n_heads=4"),
    C("clamping.RunConfig", "model_seed a string", lambda: clamping.RunConfig(model_seed="0"), TypeError,
      r"Config\.seed must be an int, got '0'"),
    C("clamping.RunConfig", "from_dict unknown field", lambda: clamping.RunConfig.from_dict({"task": {}, "stpes": 3}), TypeError,
      r"unexpected keyword argument 'stpes'"),
    C("clamping.run", "cfg a dict", lambda: clamping.run({"steps": 10}), TypeError,
      r"cfg must be a course_utils\.clamping\.RunConfig, got dict"),
    C("clamping.run_study", "points of dicts", lambda: clamping.run_study([{"steps": 10}], progress=False), TypeError,
      r"points must be a list of course_utils\.clamping\.RunConfig, got an item of type dict"),
    C("clamping.study_points", "classes 0", lambda: clamping.study_points(seeds=(0,), classes=(0,)), ValueError,
      r"n_classes must be a positive int, got 0"),
    C("clamping.study_points", "seed a float", lambda: clamping.study_points(seeds=(0.5,)), TypeError,
      r"seed must be an int, got 0\.5"),
    C("clamping.load_study", "missing file", lambda: clamping.load_study(files()["missing"]), FileNotFoundError,
      r"no study at .*missing\.safetensors; compute it with clamping\.run_study\(\), or `python -m maintainer\.clamping_study`"),
    C("clamping.find", "study without runs", lambda: clamping.find({}), ValueError,
      r"study must be the dict of load_study\(\) or run_study\(\), with a 'runs' list, got \{\}"),
    C("clamping.find", "unknown task parameter", lambda: clamping.find(study(), n_class=16), ValueError,
      r"unknown task parameters \['n_class'\]; known: \['n_classes', 'n_labels', 'n_pairs'\]"),
    C("clamping.find", "condition unknown", lambda: clamping.find(study(), "clamp"), ValueError,
      r"condition must be one of \('baseline', 'clamp_prev_token', 'clamp_layer0_output', 'ablate_layer0'\), got 'clamp'"),
    C("clamping.median_steps_to_form", "no such runs", lambda: clamping.median_steps_to_form(study(), n_classes=5), ValueError,
      r"the study has no runs with condition='baseline' and task \{'n_classes': 5\}"),
    C("clamping.median_steps_to_form", "study a path", lambda: clamping.median_steps_to_form(str(clamping.STUDY_FILE)), ValueError,
      r"study must be the dict of load_study\(\) or run_study\(\).*got '.*icl_clamping\.json'"),
    C("clamping.steps_to_form", "runs a study", lambda: clamping.steps_to_form(study()), ValueError,
      r"runs must be a list of recorded runs \(dicts with a 'formation_step'\), got dict"),
    C("clamping.study_claims", "study without runs", lambda: clamping.study_claims({"runs": None}), ValueError,
      r"study must be the dict of load_study\(\) or run_study\(\), with a 'runs' list, got \{'runs': None\}"),
    C("clamping.reproduce", "a RunConfig, not a point", lambda: clamping.reproduce(clamping.RunConfig()), ValueError,
      r"point must be a recorded run of the study \(a dict with a 'config'\), got RunConfig"),

    # -- lens (notebook 05) --
    C("lens.ln_final_params", "model without LayerNorm", lambda: lens.ln_final_params(tiny()), ValueError,
      r"the model has normalization_type=None, not 'LN'"),
    C("lens.ln_final_params", "model a string", lambda: lens.ln_final_params("gpt2"), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("lens.decompose_resid", "cache a dict", lambda: lens.decompose_resid({"hook_embed": floats(2, 4, 16)}, 2), TypeError,
      r"cache must be the ActivationCache from model\.run_with_cache\(tokens\), got dict"),
    C("lens.decompose_resid", "attention-only model", lambda: lens.decompose_resid(tiny_cache(), 2), ValueError,
      r"expected 6 components for n_layers=2, got 4 \(decompose_resid by layer needs a model with MLPs\)"),
    C("lens.decompose_resid", "n_layers too large", lambda: lens.decompose_resid(ln_cache(), 3), ValueError,
      r"n_layers must be the model's number of layers \(2, from the cache\), got 3"),
    C("lens.decompose_labels", "n_layers a string", lambda: lens.decompose_labels("2"), TypeError,
      r"n_layers must be a positive int, got '2'"),
    C("lens.lens_labels", "n_layers 0", lambda: lens.lens_labels(0), ValueError, r"n_layers must be a positive int, got 0"),
    C("lens.resid_components", "cache a dict", lambda: lens.resid_components(ln_model(), {}), TypeError,
      r"cache must be the ActivationCache from model\.run_with_cache\(tokens\), got dict"),
    C("lens.resid_components", "model a string", lambda: lens.resid_components("gpt2", ln_cache()), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("lens.unembed_resid", "resid of another d_model", lambda: lens.unembed_resid(floats(2, 4, 8), floats(16), floats(16), floats(16, 16), floats(16)),
      ValueError, r"resid \[\.\.\., d_model\], w and b \[d_model\] and W_U \[d_model, d_vocab\] must agree on d_model, "
      r"got shapes \(2, 4, 8\), \(16,\), \(16,\) and \(16, 16\)"),
    C("lens.unembed_resid", "int resid", lambda: lens.unembed_resid(tokens(2, 4, 16), floats(16), floats(16), floats(16, 16), floats(16)),
      TypeError, r"resid must be a floating-point tensor, got dtype torch\.int64"),
    C("lens.logit_lens", "cache from a names_filter", lambda: lens.logit_lens(ln_model(), ln_model().run_with_cache(
        tokens(2, 4), names_filter=lambda n: n == "hook_embed")[1]), ValueError,
      r"cache lacks \['blocks\.1\.hook_resid_post'\]: run model\.run_with_cache\(tokens\) without a names_filter"),
    C("lens.logit_lens", "cache a tensor", lambda: lens.logit_lens(ln_model(), floats(2, 4, 16)), TypeError,
      r"cache must be the ActivationCache from model\.run_with_cache\(tokens\), got Tensor"),
    C("lens.kl_to_final", "no layer axis", lambda: lens.kl_to_final(floats(2, 4, 16), floats(2, 4, 16)), ValueError,
      r"lens_logits \(2, 4, 16\) must be \[layer, \*final_logits\.shape\]; final_logits is \(2, 4, 16\)"),
    C("lens.rank_of", "float token", lambda: lens.rank_of(floats(2, 4, 16), floats(2, 4)), TypeError,
      r"token must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("lens.rank_of", "shapes disagree", lambda: lens.rank_of(floats(2, 4, 16), tokens(2, 3)), ValueError,
      r"logits \[\.\.\., d_vocab\] and token \[\.\.\.\] must agree, got shapes \(2, 4, 16\) and \(2, 3\)"),
    C("lens.logit_attribution", "float tokens", lambda: lens.logit_attribution(floats(3, 2, 4, 16), floats(16, 16), floats(2, 4)),
      TypeError, r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("lens.logit_attribution", "stack without a component axis", lambda: lens.logit_attribution(floats(2, 4, 16), floats(16, 16), tokens(2, 4)),
      ValueError, r"stack must have shape \[component, batch, pos, d_model\], got shape \(2, 4, 16\)"),
    C("lens.logit_attribution", "shapes disagree", lambda: lens.logit_attribution(floats(3, 2, 4, 16), floats(16, 16), tokens(2, 5)),
      ValueError, r"stack \[component, batch, pos, d_model\], W_U \[d_model, d_vocab\] and tokens \[batch, pos\] must agree, "
      r"got shapes \(3, 2, 4, 16\), \(16, 16\) and \(2, 5\)"),
    C("lens.direct_logit_attribution", "tokens of another shape", lambda: lens.direct_logit_attribution(ln_model(), ln_cache(), tokens(2, 3)),
      ValueError, r"tokens has shape \(2, 3\) but the cache was made from tokens of shape \(2, 4\)"),
    C("lens.direct_logit_attribution", "float tokens", lambda: lens.direct_logit_attribution(ln_model(), ln_cache(), floats(2, 4)),
      TypeError, r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("lens.direct_logit_attribution", "cache a string", lambda: lens.direct_logit_attribution(ln_model(), "cache", tokens(2, 4)),
      TypeError, r"cache must be the ActivationCache from model\.run_with_cache\(tokens\), got str"),
    C("lens.direct_logit_attribution", "model without LayerNorm", lambda: lens.direct_logit_attribution(tiny(), tiny_cache(), tokens(2, 4)),
      ValueError, r"the model has normalization_type=None, not 'LN'"),
    C("lens.head_attribution", "tokens rank 1", lambda: lens.head_attribution(ln_model(), ln_cache(), tokens(4)),
      ValueError, r"tokens must have shape \[batch, pos\], got shape \(4,\) \(add a batch dimension: tokens\[None\]\)"),
    C("lens.layer_attribution", "cache a string", lambda: lens.layer_attribution(ln_model(), "cache", tokens(2, 4)),
      TypeError, r"cache must be the ActivationCache from model\.run_with_cache\(tokens\), got str"),
    C("lens.layer_attribution", "tokens of another shape", lambda: lens.layer_attribution(ln_model(), ln_cache(), tokens(1, 4)),
      ValueError, r"tokens has shape \(1, 4\) but the cache was made from tokens of shape \(2, 4\)"),
    C("lens.TunedLens", "n_layers 0", lambda: lens.TunedLens(0, 16), ValueError, r"n_layers must be a positive int, got 0"),
    C("lens.TunedLens", "d_model a float", lambda: lens.TunedLens(2, 16.0), TypeError, r"d_model must be a positive int, got 16\.0"),
    C("lens.TunedLens", "resid_stack of another depth", lambda: lens.TunedLens(2, 16)(floats(2, 2, 4, 16), ln_model()), ValueError,
      r"resid_stack has 2 rows; this lens has 3"),
    C("lens.train_tuned_lens", "steps 0", lambda: lens.train_tuned_lens(ln_model(), lambda s: tokens(2, 4), steps=0), ValueError,
      r"steps must be a positive int, got 0"),
    C("lens.train_tuned_lens", "batches a tensor", lambda: lens.train_tuned_lens(ln_model(), tokens(2, 4)), TypeError,
      r"batches must be a function step -> tokens \[batch, pos\], got Tensor"),
    C("lens.train_tuned_lens", "model a string", lambda: lens.train_tuned_lens("gpt2", lambda s: tokens(2, 4)), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("lens.tuned_lens_logits", "lens a string", lambda: lens.tuned_lens_logits("tuned", ln_model(), ln_cache()), TypeError,
      r"lens must be a course_utils\.lens\.TunedLens, got str"),
    C("lens.tuned_lens_logits", "lens for another depth", lambda: lens.tuned_lens_logits(lens.TunedLens(3, 16), ln_model(), ln_cache()),
      ValueError, r"resid_stack has 3 rows; this lens has 4"),
    C("lens.kl_to_final", "an empty lens", lambda: lens.kl_to_final(floats(0, 2, 4, 16), floats(2, 4, 16)), ValueError,
      r"lens_logits has no layer \(shape \(0, 2, 4, 16\)\): expected at least one row"),
    C("lens.kl_to_final", "int final_logits", lambda: lens.kl_to_final(floats(3, 2, 4, 16), tokens(2, 4, 16)), TypeError,
      r"final_logits must be a floating-point tensor, got dtype torch.int64"),
    C("lens.lens_top_tokens", "seq beyond the batch", lambda: lens.lens_top_tokens(ln_model(), ln_cache(), 2, [0, 1]), ValueError,
      r"seq must be an int in \[0, 1\] \(a sequence of the cache's batch\), got 2"),
    C("lens.lens_top_tokens", "position beyond the sequence", lambda: lens.lens_top_tokens(ln_model(), ln_cache(), 0, [0, 4]),
      ValueError, r"positions must be an int in \[0, 3\] \(a position of the cache's sequences\), got 4"),
    C("lens.lens_top_tokens", "no positions", lambda: lens.lens_top_tokens(ln_model(), ln_cache(), 0, []), ValueError,
      r"positions must be a non-empty list of positions, got \[\]"),
    C("lens.lens_top_tokens", "positions a float", lambda: lens.lens_top_tokens(ln_model(), ln_cache(), 0, [1.0]), TypeError,
      r"positions must be an int in \[0, 3\] \(a position of the cache's sequences\), got 1\.0"),
    C("lens.lens_top_tokens", "cache a dict", lambda: lens.lens_top_tokens(ln_model(), {}, 0, [0]), TypeError, r"cache"),
    C("lens.settle_layer", "an empty lens", lambda: lens.settle_layer(floats(0, 2, 16)), ValueError,
      r"lens_logits has no layer \(shape \(0, 2, 16\)\): expected at least one row"),
    C("lens.settle_layer", "no layer axis", lambda: lens.settle_layer(floats(16)), ValueError,
      r"lens_logits must have shape \[layer, \.\.\., d_vocab\], got shape \(16,\)"),
    C("lens.settle_layer", "int lens_logits", lambda: lens.settle_layer(tokens(3, 2, 16)), TypeError,
      r"lens_logits must be a floating-point tensor, got dtype torch.int64"),
    C("lens.settle_layer", "NaN in lens_logits", lambda: lens.settle_layer(nan_at(floats(3, 2, 16))), ValueError,
      r"lens_logits contains NaN or inf"),
    C("lens.fit_tuned_lens", "tuned a string", lambda: lens.fit_tuned_lens("tuned", ln_model(), lambda s: tokens(2, 4), 1), TypeError,
      r"tuned must be a course_utils\.lens\.TunedLens, got str"),
    C("lens.fit_tuned_lens", "tuned for another depth", lambda: lens.fit_tuned_lens(lens.TunedLens(3, 16), ln_model(), lambda s: tokens(2, 4), 1),
      ValueError, r"tuned has translators for 3 layers of d_model 16; the model has 2 layers of d_model 16"),
    C("lens.fit_tuned_lens", "steps 0", lambda: lens.fit_tuned_lens(lens.TunedLens(2, 16), ln_model(), lambda s: tokens(2, 4), 0), ValueError,
      r"steps must be a positive int, got 0"),
    C("lens.fit_tuned_lens", "batches a tensor", lambda: lens.fit_tuned_lens(lens.TunedLens(2, 16), ln_model(), tokens(2, 4), 1), TypeError,
      r"batches must be a function step -> tokens \[batch, pos\], got Tensor"),
    C("lens.fit_tuned_lens", "lr negative", lambda: lens.fit_tuned_lens(lens.TunedLens(2, 16), ln_model(), lambda s: tokens(2, 4), 1, lr=-1.0),
      ValueError, r"lr must be a finite number > 0, got -1\.0"),

    # -- patching (notebook 06) --
    C("patching.clean_and_corrupted", "batch 0", lambda: patching.clean_and_corrupted(0, 4, 16), ValueError,
      r"batch must be a positive int, got 0"),
    C("patching.clean_and_corrupted", "d_vocab 1", lambda: patching.clean_and_corrupted(2, 4, 1), ValueError,
      r"d_vocab must be at least 2 \(a corrupted token must differ from the clean one\), got 1"),
    C("patching.correct_logprob", "shapes disagree", lambda: patching.correct_logprob(floats(2, 4, 16), tokens(2, 5), slice(0, 2)),
      ValueError, r"logits \(2, 4, 16\) and tokens \(2, 5\) must agree on \[batch, pos\]"),
    C("patching.correct_logprob", "positions select nothing", lambda: patching.correct_logprob(floats(2, 4, 16), tokens(2, 4), slice(5, 9)),
      ValueError, r"positions slice\(5, 9, None\) selects none of the 3 predicted positions"),
    C("patching.correct_logprob", "float tokens", lambda: patching.correct_logprob(floats(2, 4, 16), floats(2, 4), slice(0, 2)),
      TypeError, r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("patching.normalized_metric", "clean equals corrupted",
      lambda: patching.normalized_metric(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(2.0)), ValueError,
      r"clean_value \(2\) and corrupted_value \(2\) are equal"),
    C("patching.patching_metric", "model a string", lambda: patching.patching_metric("gpt2", tokens(2, 4), tokens(2, 4), slice(0, 2)),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("patching.patching_metric", "clean equals corrupted", lambda: patching.patching_metric(tiny(), tokens(2, 4), tokens(2, 4), slice(0, 2)),
      ValueError, r"clean_value \(.*\) and corrupted_value \(.*\) are equal"),
    C("patching.patch_resid_pre", "layer out of range", lambda: patching.patch_resid_pre(tiny(), tokens(2, 4), tiny_cache(), metric, 2, 0),
      ValueError, r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 2"),
    C("patching.patch_resid_pre", "pos out of range", lambda: patching.patch_resid_pre(tiny(), tokens(2, 4), tiny_cache(), metric, 0, 4),
      ValueError, r"pos must be an int in \[0, 3\] \(the tokens have 4 positions\), got 4"),
    C("patching.patch_resid_pre", "layer True", lambda: patching.patch_resid_pre(tiny(), tokens(2, 4), tiny_cache(), metric, True, 0),
      TypeError, r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got True"),
    C("patching.patch_resid_pre", "float corrupted_tokens", lambda: patching.patch_resid_pre(tiny(), floats(2, 4), tiny_cache(), metric, 0, 0),
      TypeError, r"corrupted_tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("patching.patch_resid_pre", "cache a dict", lambda: patching.patch_resid_pre(tiny(), tokens(2, 4), {}, metric, 0, 0),
      TypeError, r"clean_cache must be the ActivationCache from model\.run_with_cache\(clean_tokens\), got dict"),
    C("patching.patch_head", "head out of range", lambda: patching.patch_head(tiny(), tokens(2, 4), tiny_cache(), metric, 0, 2),
      ValueError, r"head must be an int in \[0, 1\] \(a layer has 2 heads\), got 2"),
    C("patching.patch_head", "activation unknown", lambda: patching.patch_head(tiny(), tokens(2, 4), tiny_cache(), metric, 0, 0, "result"),
      ValueError, r"activation must be one of \('z', 'q', 'k', 'v', 'pattern'\), got 'result'"),
    C("patching.patch_k_path", "reader not after the writer", lambda: patching.patch_k_path(
        tiny(), tokens(2, 4), tiny_cache(), metric, (1, 0), [(1, 1)]), ValueError,
      r"readers: head 1.1 is not in a later layer than the writer 1.0"),
    C("patching.patch_k_path", "writer head out of range", lambda: patching.patch_k_path(
        tiny(), tokens(2, 4), tiny_cache(), metric, (0, 5), [(1, 1)]), ValueError,
      r"writer: head must be an int in \[0, 1\] \(a layer has 2 heads\), got 5"),
    C("patching.patch_k_path", "model a string", lambda: patching.patch_k_path(
        "m", tokens(2, 4), tiny_cache(), metric, (0, 0), [(1, 1)]), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("patching.patch_heads", "no heads", lambda: patching.patch_heads(tiny(), tokens(2, 4), tiny_cache(), metric, []),
      ValueError, r"heads must list at least one \(layer, head\)"),
    C("patching.patch_heads", "corrupted of another shape", lambda: patching.patch_heads(tiny(), tokens(2, 3), tiny_cache(), metric, [(0, 0)]),
      ValueError, r"corrupted_tokens has shape \(2, 3\), the clean cache \(2, 4\): clean and corrupted inputs must have the same shape"),
    C("patching.resid_patching", "model a string", lambda: patching.resid_patching("gpt2", tokens(2, 4), tiny_cache(), metric),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("patching.resid_patching", "corrupted rank 1", lambda: patching.resid_patching(tiny(), tokens(4), tiny_cache(), metric),
      ValueError, r"corrupted_tokens must have shape \[batch, pos\], got shape \(4,\)"),
    C("patching.head_patching", "activation unknown", lambda: patching.head_patching(tiny(), tokens(2, 4), tiny_cache(), metric, "result"),
      ValueError, r"activation must be one of \('z', 'q', 'k', 'v', 'pattern'\), got 'result'"),
    C("patching.head_patching", "corrupted of another shape", lambda: patching.head_patching(tiny(), tokens(1, 4), tiny_cache(), metric),
      ValueError, r"corrupted_tokens has shape \(1, 4\), the clean cache \(2, 4\)"),
    C("patching.causal_trace", "noise position out of range", lambda: patching.causal_trace(tiny(), tokens(2, 4), noise(2, 4), [4], slice(0, 2)),
      ValueError, r"noise_positions must be a non-empty list of positions in \[0, 3\], got \[4\]"),
    C("patching.causal_trace", "no noise positions", lambda: patching.causal_trace(tiny(), tokens(2, 4), noise(2, 4), [], slice(0, 2)),
      ValueError, r"noise_positions must be a non-empty list of positions in \[0, 3\], got \[\]"),
    C("patching.causal_trace", "noise_positions an int", lambda: patching.causal_trace(tiny(), tokens(2, 4), noise(2, 4), 1, slice(0, 2)),
      TypeError, r"noise_positions must be a list of positions, got int"),
    C("patching.causal_trace", "noise of another shape", lambda: patching.causal_trace(tiny(), tokens(2, 4), noise(2, 3), [0], slice(0, 2)),
      ValueError, r"noise must have shape \[batch, pos, d_model\] = \[2, 4, 16\], got shape \(2, 3, 16\)"),
    C("patching.causal_trace", "noise without d_model", lambda: patching.causal_trace(tiny(), tokens(2, 4), floats(2, 4), [0], slice(0, 2)),
      ValueError, r"noise must have shape \[batch, pos, d_model\], got shape \(2, 4\)"),
    C("patching.causal_trace", "noise a float", lambda: patching.causal_trace(tiny(), tokens(2, 4), 3.0, [0], slice(0, 2)),
      TypeError, r"noise must be a torch.Tensor \[batch, pos, d_model\], got float"),
    C("patching.causal_trace", "noise NaN", lambda: patching.causal_trace(tiny(), tokens(2, 4), noise(2, 4) * float("nan"), [0], slice(0, 2)),
      ValueError, r"noise contains NaN or inf"),
    C("patching.causal_trace", "metric_positions a list", lambda: patching.causal_trace(tiny(), tokens(2, 4), noise(2, 4), [0], [1, 2]),
      TypeError, r"metric_positions must be a slice of predicted positions, got list"),
    C("patching.causal_trace", "float tokens", lambda: patching.causal_trace(tiny(), floats(2, 4), noise(2, 4), [0], slice(0, 2)),
      TypeError, r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("patching.causal_trace", "model a string", lambda: patching.causal_trace("gpt2", tokens(2, 4), noise(2, 4), [0], slice(0, 2)),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("patching.causal_trace", "progress 'yes'", lambda: patching.causal_trace(tiny(), tokens(2, 4), noise(2, 4), [0], slice(0, 2), progress="yes"),
      TypeError, r"progress must be True or False, got 'yes'"),
    C("patching.noised_logprob", "noise of another batch", lambda: patching.noised_logprob(tiny(), tokens(2, 4), noise(3, 4), [0], slice(0, 2)),
      ValueError, r"noise must have shape \[batch, pos, d_model\] = \[2, 4, 16\], got shape \(3, 4, 16\)"),
    C("patching.noised_logprob", "integer noise", lambda: patching.noised_logprob(tiny(), tokens(2, 4), tokens(2, 4, 16), [0], slice(0, 2)),
      TypeError, r"noise must be a floating-point tensor, got dtype torch.int64"),
    C("patching.noised_logprob", "noise position True", lambda: patching.noised_logprob(tiny(), tokens(2, 4), noise(2, 4), [True], slice(0, 2)),
      ValueError, r"noise_positions must be a non-empty list of positions in \[0, 3\], got \[True\]"),
    C("patching.noised_logprob", "metric positions select nothing", lambda: patching.noised_logprob(tiny(), tokens(2, 4), noise(2, 4), [0], slice(5, 9)),
      ValueError, r"positions slice\(5, 9, None\) selects none of the 3 predicted positions"),
    C("patching.noised_logprob", "model a string", lambda: patching.noised_logprob("gpt2", tokens(2, 4), noise(2, 4), [0], slice(0, 2)),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    # -- icl_tasks (notebook 07) --
    C("icl_tasks.ICLTasks", "n_items odd", lambda: ICLTasks(n_items=7), ValueError, r"n_items must be an even number >= 8, got 7"),
    C("icl_tasks.ICLTasks", "n_items 6", lambda: ICLTasks(n_items=6), ValueError, r"n_items must be an even number >= 8, got 6"),
    C("icl_tasks.ICLTasks", "max_shots 0", lambda: ICLTasks(max_shots=0), ValueError, r"max_shots must be a positive int, got 0"),
    C("icl_tasks.ICLTasks", "unknown task", lambda: ICLTasks(tasks=("copy", "reverse")), ValueError,
      r"tasks must be distinct names among \('copy', 'successor', 'antonym', 'capital'\), got \('copy', 'reverse'\)"),
    C("icl_tasks.ICLTasks", "no tasks", lambda: ICLTasks(tasks=()), ValueError, r"tasks must be distinct names among .*, got \(\)"),
    C("icl_tasks.ICLTasks", "a task twice", lambda: ICLTasks(tasks=("copy", "copy")), ValueError,
      r"tasks must be distinct names among .*, got \('copy', 'copy'\)"),
    C("icl_tasks.ICLTasks", "p_noise 1", lambda: ICLTasks(p_noise=1.0), ValueError, r"p_noise must be in \[0, 1\), got 1\.0"),
    C("icl_tasks.ICLTasks", "seed a string", lambda: ICLTasks(seed="0"), TypeError, r"seed must be an int, got '0'"),
    C("icl_tasks.ICLTasks", "from_dict unknown field", lambda: ICLTasks.from_dict({"n_item": 8, "tasks": ["copy"]}), ValueError,
      r"unknown ICLTasks fields \['n_item'\]; known: \[.*'n_items'"),
    C("icl_tasks.ICLTasks", "prompts of an unknown task", lambda: icl().prompts("opposite", 1, 4), ValueError,
      r"unknown task 'opposite'; the tasks are \('copy', 'successor', 'antonym', 'capital'\)"),
    C("icl_tasks.ICLTasks", "prompts with too many shots", lambda: icl().prompts("copy", 2, 4), ValueError,
      r"shots must be an int in \[0, 1\] \(the model saw at most max_shots - 1 demonstrations before an answer\), got 2"),
    C("icl_tasks.ICLTasks", "prompts of size 0", lambda: icl().prompts("copy", 1, 0), ValueError, r"size must be a positive int, got 0"),
    C("icl_tasks.ICLTasks", "shuffled labels of one shot", lambda: icl().prompts("copy", 1, 4, shuffle_labels=True), ValueError,
      r"shuffle_labels needs at least 2 demonstrations to shuffle, got shots=1"),
    C("icl_tasks.ICLTasks", "shuffled and random labels", lambda: ICLTasks(n_items=8, max_shots=4).prompts("copy", 3, 4, shuffle_labels=True, random_labels=True),
      ValueError, r"choose one corruption: shuffle_labels or random_labels, not both"),
    C("icl_tasks.ICLTasks", "random labels of no shots", lambda: icl().prompts("copy", 0, 4, random_labels=True), ValueError,
      r"random_labels needs at least 1 demonstration, got shots=0"),
    C("icl_tasks.ICLTasks", "answer block of an unknown task", lambda: icl().answer_block("reverse"), ValueError,
      r"unknown task 'reverse'; the tasks are"),
    C("icl_tasks.ICLTasks", "batch of size 0", lambda: icl().batch(0, 0), ValueError, r"size must be a positive int, got 0"),
    C("icl_tasks.ICLTasks", "apply an unknown task", lambda: icl().apply("reverse", tokens(3)), ValueError,
      r"unknown task 'reverse'; the tasks are"),

    # -- function_vectors (notebook 07) --
    C("function_vectors.mean_head_z", "model a string", lambda: fv.mean_head_z("gpt2", icl_prompts().tokens), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("function_vectors.mean_head_z", "float tokens", lambda: fv.mean_head_z(tiny(), floats(4, 7)), TypeError,
      r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("function_vectors.mean_head_z", "empty tokens", lambda: fv.mean_head_z(tiny(), tokens(0, 7)), ValueError,
      r"tokens is empty: shape \(0, 7\), expected at least one sequence and position"),
    C("function_vectors.mean_head_z", "token id = d_vocab", lambda: fv.mean_head_z(tiny(), tokens(2, 4, fill=16)), ValueError,
      r"tokens contains id 16, outside the vocabulary \[0, 16\)"),
    C("function_vectors.mean_head_outputs", "tokens rank 1", lambda: fv.mean_head_outputs(tiny(), tokens(7)), ValueError,
      r"tokens must have shape \[batch, pos\], got shape \(7,\) \(add a batch dimension: tokens\[None\]\)"),
    C("function_vectors.mean_head_outputs", "model a string", lambda: fv.mean_head_outputs("gpt2", tokens(2, 4)), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("function_vectors.mean_head_outputs", "tokens a list", lambda: fv.mean_head_outputs(tiny(), [[1, 2]]), TypeError,
      r"tokens must be a torch\.Tensor \[batch, pos\], got list"),
    C("function_vectors.indirect_effect", "layer True", lambda: fv.indirect_effect(tiny(), tokens(4, 7), tokens(4), floats(2, 2, 8), True, 0),
      TypeError, r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got True"),
    C("function_vectors.indirect_effect", "head out of range", lambda: fv.indirect_effect(tiny(), tokens(4, 7), tokens(4), floats(2, 2, 8), 0, 2),
      ValueError, r"head must be an int in \[0, 1\] \(a layer has 2 heads\), got 2"),
    C("function_vectors.indirect_effect", "mean_z of one layer", lambda: fv.indirect_effect(tiny(), tokens(4, 7), tokens(4), floats(2, 8), 0, 0),
      ValueError, r"mean_z must have shape \[layer, head_index, d_head\] = \[2, 2, 8\], got shape \(2, 8\)"),
    C("function_vectors.indirect_effect", "float answers", lambda: fv.indirect_effect(tiny(), tokens(4, 7), floats(4), floats(2, 2, 8), 0, 0),
      TypeError, r"answers must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("function_vectors.indirect_effects", "model a string", lambda: fv.indirect_effects("gpt2", tokens(4, 7), tokens(4), floats(2, 2, 8)),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("function_vectors.indirect_effects", "mean_z of another model", lambda: fv.indirect_effects(tiny(), tokens(4, 7), tokens(4), floats(3, 4, 16)),
      ValueError, r"mean_z must have shape \[layer, head_index, d_head\] = \[2, 2, 8\], got shape \(3, 4, 16\)"),
    C("function_vectors.indirect_effects", "answers of another batch", lambda: fv.indirect_effects(tiny(), tokens(4, 7), tokens(5), floats(2, 2, 8)),
      ValueError, r"answers must have shape \[batch\] = \[4\] \(one answer per prompt\), got shape \(5,\)"),
    C("function_vectors.top_heads", "aie rank 1", lambda: fv.top_heads(floats(4), 2), ValueError,
      r"aie must have shape \[layer, head_index\], got shape \(4,\)"),
    C("function_vectors.top_heads", "k larger than the heads", lambda: fv.top_heads(floats(2, 2), 5), ValueError,
      r"k must be an int in \[0, 4\] \(how many heads to take\), got 5"),
    C("function_vectors.top_heads", "k True", lambda: fv.top_heads(floats(2, 2), True), TypeError,
      r"k must be an int in \[0, 4\] \(how many heads to take\), got True"),
    C("function_vectors.top_heads", "aie a list", lambda: fv.top_heads([[0.1, 0.2]], 1), TypeError,
      r"aie must be a torch\.Tensor \[layer, head_index\], got list"),
    C("function_vectors.function_vector", "head out of range", lambda: fv.function_vector(floats(2, 2, 16), [(2, 0)]), ValueError,
      r"heads: layer must be an int in \[0, 1\] \(the model has 2 layers\), got 2"),
    C("function_vectors.function_vector", "one pair, not a list of pairs", lambda: fv.function_vector(floats(2, 2, 16), (0, 1)), ValueError,
      r"heads must be a list of \(layer, head\) pairs, got \(0, 1\)"),
    C("function_vectors.function_vector", "float layer", lambda: fv.function_vector(floats(2, 2, 16), [(0.5, 1)]), TypeError,
      r"heads: layer must be an int in \[0, 1\] \(the model has 2 layers\), got 0\.5"),
    C("function_vectors.function_vector", "mean_outputs rank 2", lambda: fv.function_vector(floats(2, 16), [(0, 1)]), ValueError,
      r"mean_outputs must have shape \[layer, head_index, d_model\], got shape \(2, 16\)"),
    C("function_vectors.top_heads_vector", "aie of other heads", lambda: fv.top_heads_vector(floats(2, 2, 16), floats(2, 3), 1),
      ValueError, r"aie must be \[layer, head\] of the same heads as mean_outputs \(2, 2\), got shape \(2, 3\)"),
    C("function_vectors.top_heads_vector", "k larger than the heads", lambda: fv.top_heads_vector(floats(2, 2, 16), floats(2, 2), 5),
      ValueError, r"k must be an int in \[0, 4\] \(how many heads to take\), got 5"),
    C("function_vectors.top_heads_vector", "aie a list", lambda: fv.top_heads_vector(floats(2, 2, 16), [[0.1, 0.2]], 1),
      TypeError, r"aie must be a torch\.Tensor \[layer, head_index\], got list"),
    C("function_vectors.layer_sweep", "ks an int", lambda: fv.layer_sweep(tiny(), tokens(4, 7), tokens(4), floats(2, 2, 16), floats(2, 2), 3),
      TypeError, r"ks must be a non-empty list of head counts, got 3"),
    C("function_vectors.layer_sweep", "mean_outputs of another model", lambda: fv.layer_sweep(tiny(), tokens(4, 7), tokens(4), floats(3, 2, 16), floats(3, 2), [1]),
      ValueError, r"mean_outputs must have shape \[layer, head_index, d_model\] = \[2, 2, 16\], got shape \(3, 2, 16\)"),
    C("function_vectors.layer_sweep", "model a string", lambda: fv.layer_sweep("gpt2", tokens(4, 7), tokens(4), floats(2, 2, 16), floats(2, 2), [1]),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("function_vectors.attention_to", "key_positions an int", lambda: fv.attention_to(tiny(), tokens(4, 7), 3), TypeError,
      r"key_positions must be a non-empty list of positions, got 3"),
    C("function_vectors.attention_to", "key_positions empty", lambda: fv.attention_to(tiny(), tokens(4, 7), []), TypeError,
      r"key_positions must be a non-empty list of positions, got \[\]"),
    C("function_vectors.attention_to", "position past the end", lambda: fv.attention_to(tiny(), tokens(4, 7), [2, 7]), ValueError,
      r"key_positions must be an int in \[0, 6\] \(the prompts have 7 positions\), got 7"),
    C("function_vectors.attention_to", "negative position", lambda: fv.attention_to(tiny(), tokens(4, 7), [-2]), ValueError,
      r"key_positions must be an int in \[0, 6\] \(the prompts have 7 positions\), got -2"),
    C("function_vectors.attention_to", "position repeated", lambda: fv.attention_to(tiny(), tokens(4, 7), [3, 3]), ValueError,
      r"key_positions must be distinct positions \(a repeated one would count twice\), got \[3, 3\]"),
    C("function_vectors.attention_to", "model a string", lambda: fv.attention_to("gpt2", tokens(4, 7), [1]), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("function_vectors.answer_shares", "answers of another batch", lambda: fv.answer_shares(tiny(), tokens(4, 7), tokens(3, 2), floats(2, 16), 0),
      ValueError, r"answers must be \[task, batch\] with one answer per prompt \(4\) for every task, got shape \(3, 2\)"),
    C("function_vectors.answer_shares", "answers one row", lambda: fv.answer_shares(tiny(), tokens(4, 7), tokens(4), floats(2, 16), 0),
      ValueError, r"answers must have shape \[task, batch\], got shape \(4,\)"),
    C("function_vectors.answer_shares", "answers outside the vocabulary", lambda: fv.answer_shares(tiny(), tokens(4, 7), tokens(3, 4, fill=16),
                                                                                                    floats(2, 16), 0),
      ValueError, r"answers contains id 16, outside the vocabulary \[0, 16\)"),
    C("function_vectors.answer_shares", "vectors of another d_model", lambda: fv.answer_shares(tiny(), tokens(4, 7), tokens(3, 4), floats(2, 8), 0),
      ValueError, r"vectors must be \[vector, d_model\] with d_model = 16, got shape \(2, 8\)"),
    C("function_vectors.answer_shares", "one vector, no vector axis", lambda: fv.answer_shares(tiny(), tokens(4, 7), tokens(3, 4), floats(16), 0),
      ValueError, r"vectors must have shape \[vector, d_model\], got shape \(16,\)"),
    C("function_vectors.answer_shares", "vectors hold NaN", lambda: fv.answer_shares(tiny(), tokens(4, 7), tokens(3, 4), nan_at(floats(2, 16)), 0),
      ValueError, r"vectors contains NaN or inf \(1 of 32 entries\)"),
    C("function_vectors.answer_shares", "layer out of range", lambda: fv.answer_shares(tiny(), tokens(4, 7), tokens(3, 4), floats(2, 16), 2),
      ValueError, r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 2"),
    C("function_vectors.add_vector_hook", "vector a list", lambda: fv.add_vector_hook([0.0] * 16, 0), TypeError,
      r"vector must be a torch\.Tensor \[d_model\], got list"),
    C("function_vectors.add_vector_hook", "vector rank 2", lambda: fv.add_vector_hook(floats(1, 16), 0), ValueError,
      r"vector must have shape \[d_model\], got shape \(1, 16\)"),
    C("function_vectors.add_vector_hook", "int vector", lambda: fv.add_vector_hook(tokens(16), 0), TypeError,
      r"vector must be a floating-point tensor, got dtype torch\.int64"),
    C("function_vectors.add_vector_hook", "layer -1", lambda: fv.add_vector_hook(floats(16), -1), ValueError,
      r"layer must be an int >= 0 \(the vector goes into blocks\.layer\.hook_attn_out\), got -1"),
    C("function_vectors.add_vector_hook", "layer True", lambda: fv.add_vector_hook(floats(16), True), TypeError,
      r"layer must be an int >= 0 \(the vector goes into blocks\.layer\.hook_attn_out\), got True"),
    C("function_vectors.logits_with_vector", "vector of another d_model", lambda: fv.logits_with_vector(tiny(), tokens(4, 7), floats(8), 0),
      ValueError, r"vector must have shape \[d_model\] = \[16\], got shape \(8,\)"),
    C("function_vectors.logits_with_vector", "layer out of range", lambda: fv.logits_with_vector(tiny(), tokens(4, 7), floats(16), 2),
      ValueError, r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 2"),
    C("function_vectors.logits_with_vector", "model a string", lambda: fv.logits_with_vector("gpt2", tokens(4, 7), floats(16), 0),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("function_vectors.logits_with_vector", "float tokens", lambda: fv.logits_with_vector(tiny(), floats(4, 7)),
      TypeError, r"tokens must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("function_vectors.predictions_with_vector", "layer True", lambda: fv.predictions_with_vector(tiny(), tokens(4, 7), floats(16), True),
      TypeError, r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got True"),
    C("function_vectors.predictions_with_vector", "vector a list", lambda: fv.predictions_with_vector(tiny(), tokens(4, 7), [0.0] * 16, 0),
      TypeError, r"vector must be a torch\.Tensor \[d_model\] = \[16\], got list"),
    C("function_vectors.accuracy_with_vector", "answers of another batch", lambda: fv.accuracy_with_vector(tiny(), tokens(4, 7), tokens(2)),
      ValueError, r"answers must have shape \[batch\] = \[4\] \(one answer per prompt\), got shape \(2,\)"),
    C("function_vectors.accuracy_with_vector", "tokens a list", lambda: fv.accuracy_with_vector(tiny(), [[1, 2]], tokens(1)),
      TypeError, r"tokens must be a torch\.Tensor \[batch, pos\], got list"),
    C("function_vectors.accuracy_with_vector", "float answers", lambda: fv.accuracy_with_vector(tiny(), tokens(4, 7), floats(4)),
      TypeError, r"answers must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("function_vectors.task_mean_z", "data a string", lambda: fv.task_mean_z(tiny(), "copy"), TypeError,
      r"language must be a course_utils\.icl_tasks\.ICLTasks, got str"),
    C("function_vectors.task_mean_z", "shots too many", lambda: fv.task_mean_z(icl_model(), icl(), shots=2, size=4), ValueError,
      r"shots must be an int in \[0, 1\] .*got 2"),
    C("function_vectors.task_mean_z", "size 0", lambda: fv.task_mean_z(icl_model(), icl(), shots=1, size=0), ValueError,
      r"size must be a positive int, got 0"),
    C("function_vectors.task_mean_outputs", "data a SyntheticLanguage", lambda: fv.task_mean_outputs(tiny(), SyntheticLanguage()), TypeError,
      r"language must be a course_utils\.icl_tasks\.ICLTasks, got SyntheticLanguage"),
    C("function_vectors.task_mean_outputs", "model a string", lambda: fv.task_mean_outputs("gpt2", icl(), shots=1, size=4), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("function_vectors.average_indirect_effects", "mean_z lacks tasks", lambda: fv.average_indirect_effects(icl_model(), icl(), {"copy": floats(2, 2, 8)}),
      ValueError, r"mean_z must be a dict with an entry for every task \['copy', 'successor', 'antonym', 'capital'\], got \['copy'\]"),
    C("function_vectors.average_indirect_effects", "mean_z a tensor", lambda: fv.average_indirect_effects(icl_model(), icl(), floats(2, 2, 8)),
      TypeError, r"mean_z must be a dict with an entry for every task \['copy', 'successor', 'antonym', 'capital'\], got Tensor"),
    C("function_vectors.average_indirect_effects", "no shots: nothing to corrupt", lambda: fv.average_indirect_effects(icl_model(), icl(), per_task(2, 2, 8), shots=0, size=4),
      ValueError, r"random_labels needs at least 1 demonstration, got shots=0"),
    C("function_vectors.average_indirect_effects", "data a string", lambda: fv.average_indirect_effects(tiny(), "copy", per_task(2, 2, 8)),
      TypeError, r"language must be a course_utils\.icl_tasks\.ICLTasks, got str"),
    C("function_vectors.cross_task_matrix", "vectors lack tasks", lambda: fv.cross_task_matrix(icl_model(), icl(), {"copy": floats(16)}, 0),
      ValueError, r"vectors must be a dict with an entry for every task \['copy', 'successor', 'antonym', 'capital'\], got \['copy'\]"),
    C("function_vectors.cross_task_matrix", "layer out of range", lambda: fv.cross_task_matrix(icl_model(), icl(), per_task(16), 5),
      ValueError, r"layer must be an int in \[0, 1\] .*got 5"),
    C("function_vectors.cross_task_matrix", "vectors of another d_model", lambda: fv.cross_task_matrix(icl_model(), icl(), per_task(8), 0, size=4),
      ValueError, r"vector must have shape \[d_model\] = \[16\], got shape \(8,\)"),
    C("function_vectors.cross_task_matrix", "model a string", lambda: fv.cross_task_matrix("gpt2", icl(), per_task(16), 0),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("function_vectors.study", "k larger than the heads", lambda: fv.study(icl_model(), icl(), 5, 0, shots=1, size=4), ValueError,
      r"k must be an int in \[0, 4\] \(how many heads to take\), got 5"),
    C("function_vectors.study", "layer -1", lambda: fv.study(icl_model(), icl(), 2, -1, shots=1, size=4), ValueError,
      r"layer must be an int in \[0, 1\] .*got -1"),
    C("function_vectors.study", "data a string", lambda: fv.study(tiny(), "copy", 2, 0), TypeError,
      r"language must be a course_utils\.icl_tasks\.ICLTasks, got str"),
    C("function_vectors.study", "model a string", lambda: fv.study("gpt2", icl(), 2, 0), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),

    # -- zoo: the in-context tasks model (notebook 07) --
    C("zoo.evaluate_icl", "model a name", lambda: zoo.evaluate_icl("icl_tasks", icl()), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("zoo.evaluate_icl", "language a SyntheticLanguage", lambda: zoo.evaluate_icl(tiny(), SyntheticLanguage()), TypeError,
      r"language must be a course_utils\.icl_tasks\.ICLTasks, got SyntheticLanguage"),
    C("zoo.evaluate_icl", "size 0", lambda: zoo.evaluate_icl(icl_model(), icl(), size=0), ValueError, r"size must be a positive int, got 0"),
    C("zoo.evaluate_icl", "tasks with a larger vocabulary", lambda: zoo.evaluate_icl(tiny(), ICLTasks(n_items=16, max_shots=2), size=4),
      ValueError, r"tokens contains id \d+, outside the vocabulary \[0, 16\)"),
    C("zoo_build.icl_seed_study", "unknown name", lambda: zoo_build.icl_seed_study("gpt5", [1], files()["root"], 2, 1), ValueError,
      r"name must be one of the recipes .*got 'gpt5'"),
    C("zoo_build.icl_seed_study", "a recipe of another kind", lambda: zoo_build.icl_seed_study("attn_only_2l", [1], files()["root"], 2, 1), ValueError,
      r"name must be a recipe of in-context tasks \(ICLTasks\): one of \['icl_tasks'\], got 'attn_only_2l'"),
    C("zoo_build.icl_seed_study", "k larger than the heads", lambda: zoo_build.icl_seed_study("icl_tasks", [1], files()["root"], 9, 0), ValueError,
      r"k must be an int in \[0, 8\] \(how many heads to take\), got 9"),
    C("zoo_build.icl_seed_study", "layer out of range", lambda: zoo_build.icl_seed_study("icl_tasks", [1], files()["root"], 2, 2), ValueError,
      r"layer must be an int in \[0, 1\] .*got 2"),

    # -- modular_addition (notebook 10) --
    C("modular_addition.train_test_split", "p not prime", lambda: ma.train_test_split(15, 0.5, 0), ValueError, r"p must be a prime >= 3 .*got 15"),
    C("modular_addition.train_test_split", "p a float", lambda: ma.train_test_split(13.0, 0.5, 0), TypeError, r"p must be an int, got 13\.0"),
    C("modular_addition.train_test_split", "fraction 1.5", lambda: ma.train_test_split(13, 1.5, 0), ValueError, r"train_fraction must be in \[0, 1\], got 1\.5"),
    C("modular_addition.train_test_split", "fraction 1: no test pair", lambda: ma.train_test_split(13, 1.0, 0), ValueError,
      r"train_fraction must leave at least one pair for training and one for testing \(p \* p = 169 pairs\), got 1\.0"),
    C("modular_addition.train_test_split", "fraction a string", lambda: ma.train_test_split(13, "half", 0), TypeError, r"train_fraction must be in \[0, 1\], got 'half'"),
    C("modular_addition.train_test_split", "seed a float", lambda: ma.train_test_split(13, 0.5, 1.0), TypeError, r"seed must be an int, got 1\.0"),
    C("modular_addition.ModularAddition", "p 1", lambda: ma.ModularAddition(p=1), ValueError, r"p must be a prime >= 3 .*got 1"),
    C("modular_addition.ModularAddition", "fraction 0", lambda: ma.ModularAddition(p=13, train_fraction=0.0), ValueError,
      r"train_fraction must leave at least one pair for training"),
    C("modular_addition.ModularAddition", "batch larger than the training set", lambda: ma.ModularAddition(p=13).batch(0, 500), ValueError,
      r"size must be an int in \[1, 84\] \(at most the 84 training pairs\), got 500"),
    C("modular_addition.ModularAddition", "batch step a float", lambda: ma.ModularAddition(p=13).batch(0.0, 8), TypeError, r"step must be an int, got 0\.0"),
    C("modular_addition.ModularAddition", "from_dict with an unknown field", lambda: ma.ModularAddition.from_dict({"p": 13, "q": 2}), ValueError,
      r"d must be a dict with ModularAddition's fields \['p', 'seed', 'train_fraction'\]"),
    C("modular_addition.fourier_basis", "p even", lambda: ma.fourier_basis(12), ValueError, r"p must be a prime >= 3 .*got 12"),
    C("modular_addition.fourier_basis", "p a tensor", lambda: ma.fourier_basis(torch.tensor(13)), TypeError, r"p must be an int, got tensor\(13\)"),
    C("modular_addition.fourier_basis_names", "p not prime", lambda: ma.fourier_basis_names(9), ValueError, r"p must be a prime >= 3 .*got 9"),
    C("modular_addition.frequency_norms", "W a list", lambda: ma.frequency_norms([[1.0]]), TypeError, r"W must be a torch\.Tensor"),
    C("modular_addition.frequency_norms", "W with the `=` row (14 rows)", lambda: ma.frequency_norms(floats(14, 4)), ValueError, r"p must be a prime >= 3 .*got 14"),
    C("modular_addition.frequency_norms", "W rank 1", lambda: ma.frequency_norms(floats(13)), ValueError, r"W must have shape \[x, d\]"),
    C("modular_addition.frequency_norms", "W with NaN", lambda: ma.frequency_norms(floats(13, 4) * float("nan")), ValueError, r"W .*NaN"),
    C("modular_addition.key_frequencies", "share 2", lambda: ma.key_frequencies(floats(13, 4), share=2.0), ValueError, r"share must be in \[0, 1\], got 2\.0"),
    C("modular_addition.key_frequencies", "W int", lambda: ma.key_frequencies(tokens(13, 4)), TypeError, r"W must be a floating-point tensor"),
    C("modular_addition.logit_table", "model a string", lambda: ma.logit_table("grokking", ma.ModularAddition(p=13)), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("modular_addition.logit_table", "data a SyntheticLanguage", lambda: ma.logit_table(tiny(), SyntheticLanguage()), TypeError,
      r"data must be a course_utils\.modular_addition\.ModularAddition, got SyntheticLanguage"),
    C("modular_addition.logit_table", "a model with a smaller vocabulary", lambda: ma.logit_table(tiny(), ma.ModularAddition(p=17)), ValueError,
      r"tokens contains id 17, outside the vocabulary \[0, 16\)"),
    C("modular_addition.restricted_logits", "frequencies floats", lambda: ma.restricted_logits(floats(13, 13, 14), torch.tensor([1.0])), TypeError,
      r"frequencies must be an integer tensor"),
    C("modular_addition.restricted_logits", "frequency 0", lambda: ma.restricted_logits(floats(13, 13, 14), torch.tensor([0, 3])), ValueError,
      r"frequencies must be frequencies in 1\.\.6 \(one or more\), got \[0, 3\]"),
    C("modular_addition.restricted_logits", "frequency past (p-1)/2", lambda: ma.restricted_logits(floats(13, 13, 14), torch.tensor([7])), ValueError,
      r"frequencies must be frequencies in 1\.\.6 \(one or more\), got \[7\]"),
    C("modular_addition.restricted_logits", "logits of a batch, not a table", lambda: ma.restricted_logits(floats(169, 3, 14), torch.tensor([1])), ValueError,
      r"logits must be a table \[p, p, d_vocab\] over every pair \(a, b\), got shape \(169, 3, 14\)"),
    C("modular_addition.excluded_logits", "no frequencies", lambda: ma.excluded_logits(floats(13, 13, 14), torch.tensor([], dtype=torch.long)), ValueError,
      r"frequencies must be frequencies in 1\.\.6 \(one or more\), got \[\]"),
    C("modular_addition.excluded_logits", "logits with NaN", lambda: ma.excluded_logits(floats(13, 13, 14) * float("nan"), torch.tensor([1])), ValueError,
      r"logits .*NaN"),
    C("modular_addition.table_loss", "table of another p", lambda: ma.table_loss(floats(11, 11, 12), ma.ModularAddition(p=13)), ValueError,
      r"logits must be a table \[p, p, d_vocab\] = \[13, 13, \.\.\.\], got shape \(11, 11, 12\)"),
    C("modular_addition.table_loss", "pairs out of range", lambda: ma.table_loss(floats(13, 13, 14), ma.ModularAddition(p=13), tokens(3, fill=169)), ValueError,
      r"pairs contains id 169, outside the pairs a \* p \+ b \[0, 169\)"),
    C("modular_addition.table_loss", "data a dict", lambda: ma.table_loss(floats(13, 13, 14), {"p": 13}), TypeError,
      r"data must be a course_utils\.modular_addition\.ModularAddition, got dict"),
    C("modular_addition.accuracy", "pairs floats", lambda: ma.accuracy(floats(13, 13, 14), ma.ModularAddition(p=13), floats(3)), TypeError,
      r"pairs must be an integer tensor"),
    C("modular_addition.accuracy", "table of a batch", lambda: ma.accuracy(floats(169, 14), ma.ModularAddition(p=13)), ValueError,
      r"logits must have shape \[a, b, c\]"),
    C("modular_addition.weight_norm", "model a string", lambda: ma.weight_norm("grokking"), TypeError, r"model must be a torch\.nn\.Module, got str"),
    C("modular_addition.cos_fit", "frequencies a list", lambda: ma.cos_fit(floats(13, 13, 14), [1, 2]), TypeError, r"frequencies must be a torch\.Tensor"),
    C("modular_addition.cos_fit", "logits rank 2", lambda: ma.cos_fit(floats(169, 14), torch.tensor([1])), ValueError, r"logits must have shape \[a, b, c\]"),
    C("modular_addition.neuron_frequency_shares", "acts of a batch", lambda: ma.neuron_frequency_shares(floats(169, 3, 8)), ValueError,
      r"acts must be a table \[p, p, neuron\] over every pair \(a, b\), got shape \(169, 3, 8\)"),
    C("modular_addition.neuron_frequency_shares", "acts int", lambda: ma.neuron_frequency_shares(tokens(13, 13, 8)), TypeError,
      r"acts must be a floating-point tensor"),
    C("modular_addition.progress_measures", "history a list", lambda: ma.progress_measures([tiny()], ma.ModularAddition(p=13), torch.tensor([1])), TypeError,
      r"history must be a dict \{step: model\} \(zoo\.history\), got list"),
    C("modular_addition.progress_measures", "data a string", lambda: ma.progress_measures({0: tiny()}, "mod 13", torch.tensor([1])), TypeError,
      r"data must be a course_utils\.modular_addition\.ModularAddition, got str"),
    C("modular_addition.progress_measures", "frequency past (p-1)/2", lambda: ma.progress_measures({0: tiny()}, ma.ModularAddition(p=13), torch.tensor([9])), ValueError,
      r"frequencies must be frequencies in 1\.\.6"),
    C("zoo.evaluate_grokking", "language a SyntheticLanguage", lambda: zoo.evaluate_grokking({0: tiny()}, SyntheticLanguage()), TypeError,
      r"language must be a course_utils\.modular_addition\.ModularAddition, got SyntheticLanguage"),
    C("zoo.evaluate_grokking", "history a model", lambda: zoo.evaluate_grokking(tiny(), ma.ModularAddition(p=13)), TypeError,
      r"history_models must be a dict \{step: model\}, got Transformer"),
    C("modular_addition.grokking_phases", "steps floats", lambda: ma.grokking_phases(floats(3), floats(3), floats(3), floats(3), 4.0), TypeError,
      r"steps must be an integer tensor"),
    C("modular_addition.grokking_phases", "a curve shorter than steps", lambda: ma.grokking_phases(tokens(3), floats(2), floats(3), floats(3), 4.0), ValueError,
      r"train_accuracy must have shape \[checkpoint\] \(one value per step of steps\) = \[3\], got shape \(2,\)"),
    C("modular_addition.grokking_phases", "chance_loss 0", lambda: ma.grokking_phases(tokens(3), floats(3), floats(3), floats(3), 0.0), ValueError,
      r"chance_loss must be a finite number > 0, got 0\.0"),
    C("model.last_position_loss", "answers per position", lambda: model.last_position_loss(floats(2, 3, 16), tokens(2, 3)), ValueError,
      r"answers must have shape \[batch\] = \[2\] \(one answer per prompt\), got shape \(2, 3\)"),
    C("model.last_position_loss", "answers floats", lambda: model.last_position_loss(floats(2, 3, 16), floats(2)), TypeError,
      r"answers must be an integer tensor"),
    C("model.last_position_loss", "answer outside the vocabulary", lambda: model.last_position_loss(floats(2, 3, 16), tokens(2, fill=16)), ValueError,
      r"answers contains id 16, outside the vocabulary \[0, 16\)"),
    C("train.TrainConfig", "betas one number", lambda: TrainConfig(betas=0.9), TypeError, r"TrainConfig\.betas must be a pair of numbers \(beta1, beta2\), got 0\.9"),
    C("train.TrainConfig", "betas 1.0", lambda: TrainConfig(betas=(0.9, 1.0)), ValueError, r"TrainConfig\.betas must be two numbers in \[0, 1\), got \(0\.9, 1\.0\)"),
    C("train.TrainConfig", "betas strings", lambda: TrainConfig(betas=("0.9", "0.98")), TypeError, r"TrainConfig\.betas must be two numbers in \[0, 1\)"),
    C("train.train", "batches give a triple",
      lambda: train.train(Transformer(Config(**TINY)), lambda s: (tokens(2, 4), tokens(2), tokens(2)), TrainConfig(steps=1), progress=False),
      TypeError, r"batches\(step\) must return tokens \[batch, pos\] or a pair \(tokens, answers\), got a tuple of 3"),
    C("train.train", "batches give answers per position",
      lambda: train.train(Transformer(Config(**TINY)), lambda s: (tokens(2, 4), tokens(2, 4)), TrainConfig(steps=1), progress=False),
      ValueError, r"answers must have shape \[batch\] = \[2\]"),
    C("train.train", "loss_positions with (tokens, answers) batches",
      lambda: train.train(Transformer(Config(**TINY)), lambda s: (tokens(2, 4), tokens(2)), TrainConfig(steps=1), progress=False,
                          loss_positions=[-1]),
      ValueError, r"loss_positions applies to token batches; a pair \(tokens, answers\) is already trained on its answers only"),
    # -- multiple_choice (notebook 08) --
    C("multiple_choice.MultipleChoice", "labels unknown", lambda: MultipleChoice(labels="random"), ValueError,
      r"labels must be one of the label regimes \('fixed', 'randomised'\), got 'random'"),
    C("multiple_choice.MultipleChoice", "labels a bool", lambda: MultipleChoice(labels=True), TypeError,
      r"labels must be one of the label regimes \('fixed', 'randomised'\), got bool True"),
    C("multiple_choice.MultipleChoice", "n_questions 3", lambda: MultipleChoice(n_questions=3), ValueError,
      r"n_questions must be an int >= 4 .*got 3"),
    C("multiple_choice.MultipleChoice", "one option", lambda: MultipleChoice(n_options=1), ValueError,
      r"n_options must be an int in \[2, 16\] .*got 1"),
    C("multiple_choice.MultipleChoice", "max_options below n_options", lambda: MultipleChoice(max_options=3), ValueError,
      r"max_options must be an int in \[4, 16\] .*got 3"),
    C("multiple_choice.MultipleChoice", "seed a string", lambda: MultipleChoice(seed="0"), TypeError, r"seed must be an int, got '0'"),
    C("multiple_choice.MultipleChoice", "from_dict unknown field", lambda: MultipleChoice.from_dict({"n_question": 8}), ValueError,
      r"unknown MultipleChoice fields \['n_question'\]; known: \[.*'n_questions'"),
    C("multiple_choice.MultipleChoice", "from_dict a list", lambda: MultipleChoice.from_dict([8]), TypeError,
      r"d must be a dict of MultipleChoice fields, got list"),
    C("multiple_choice.MultipleChoice", "batch of size 0", lambda: mc().batch(0, 0), ValueError, r"size must be a positive int, got 0"),
    C("multiple_choice.MultipleChoice", "batch step a float", lambda: mc().batch(1.0, 4), TypeError, r"step must be an int, got 1\.0"),
    C("multiple_choice.MultipleChoice", "questions with an unknown mutation", lambda: mc().questions(4, labels="numbers"), ValueError,
      r"labels must be one of the label mutations \('fixed', 'shuffled', 'random'\), got 'numbers'"),
    C("multiple_choice.MultipleChoice", "questions with more options than the context", lambda: mc().questions(4, n_options=5), ValueError,
      r"n_options must be an int in \[2, 4\] \(the context holds max_options options\), got 5"),
    C("multiple_choice.MultipleChoice", "correct_at past the options", lambda: mc().questions(4, correct_at=4), ValueError,
      r"correct_at must be an int in \[0, 3\] \(a slot of the options\), got 4"),
    C("multiple_choice.MultipleChoice", "answer_of float indices", lambda: mc().answer_of(floats(3)), TypeError,
      r"q must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("multiple_choice.MultipleChoice", "answer_of an index past the questions", lambda: mc().answer_of(tokens(3, fill=8)), ValueError,
      r"q contains id 8, outside the question indices \[0, 8\)"),
    C("multiple_choice.MultipleChoice", "to_str of a batch", lambda: mc().to_str(tokens(2, 5)), ValueError,
      r"tokens must have shape \[pos\], got shape \(2, 5\)"),
    C("multiple_choice.MultipleChoice", "with_labels of another shape", lambda: mc().with_labels(mc().questions(2), tokens(2, 3)), ValueError,
      r"letters must have shape \[batch, option\] = \[2, 4\], got shape \(2, 3\)"),
    C("multiple_choice.MultipleChoice", "with_labels past Z", lambda: mc().with_labels(mc().questions(2), tokens(2, 4, fill=26)), ValueError,
      r"letters contains id 26, outside the alphabet \[0, 26\)"),
    C("multiple_choice.MultipleChoice", "letter 26", lambda: mc().letter(26), ValueError, r"i must be an int in \[0, 25\] \(the alphabet\), got 26"),
    C("multiple_choice.option_positions", "n_options 0", lambda: mcq.option_positions(0), ValueError, r"n_options must be a positive int, got 0"),
    C("multiple_choice.option_positions", "n_options a float", lambda: mcq.option_positions(4.0), TypeError, r"n_options must be a positive int, got 4\.0"),
    C("multiple_choice.label_positions", "n_options -1", lambda: mcq.label_positions(-1), ValueError, r"n_options must be a positive int, got -1"),
    C("multiple_choice.label_positions", "n_options a string", lambda: mcq.label_positions("4"), TypeError, r"n_options must be a positive int, got '4'"),
    C("multiple_choice.mutated_labels", "kind unknown", lambda: mcq.mutated_labels("numbers", 4, 4, gen()), ValueError,
      r"kind must be one of the label mutations \('fixed', 'shuffled', 'random'\), got 'numbers'"),
    C("multiple_choice.mutated_labels", "more options than letters", lambda: mcq.mutated_labels("random", 4, 27, gen()), ValueError,
      r"n_options must be an int in \[1, 26\] \(one letter per option\), got 27"),
    C("multiple_choice.mutated_labels", "gen a seed", lambda: mcq.mutated_labels("random", 4, 4, 0), TypeError,
      r"gen must be a torch\.Generator, got int"),
    C("multiple_choice.mutated_labels", "size 0", lambda: mcq.mutated_labels("fixed", 0, 4, gen()), ValueError, r"size must be a positive int, got 0"),
    C("multiple_choice.answer_logits", "model a string", lambda: mcq.answer_logits("gpt2", mc().questions(2)), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("multiple_choice.answer_logits", "questions a tensor", lambda: mcq.answer_logits(mc_model(), tokens(2, 11)), TypeError,
      r"questions must be a course_utils\.multiple_choice\.Questions, got Tensor"),
    C("multiple_choice.answer_logits", "questions of a larger vocabulary", lambda: mcq.answer_logits(tiny(), mc().questions(2)), ValueError,
      r"questions\.tokens has 11 positions but the model's context is n_ctx=8"),
    C("multiple_choice.accuracy_and_loss", "model a string", lambda: mcq.accuracy_and_loss("gpt2", mc().questions(2)), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("multiple_choice.accuracy_and_loss", "questions a tensor", lambda: mcq.accuracy_and_loss(mc_model(), tokens(2, 11)), TypeError,
      r"questions must be a course_utils\.multiple_choice\.Questions, got Tensor"),
    C("multiple_choice.accuracy_and_loss", "questions from a larger vocabulary", lambda: mcq.accuracy_and_loss(mc_model(), MultipleChoice(max_options=4).questions(2)),
      ValueError, r"questions\.tokens contains id \d+, outside the vocabulary \[0, 44\)"),
    C("multiple_choice.mutations", "mc a dict", lambda: mcq.mutations({"labels": "fixed"}), TypeError,
      r"mc must be a course_utils\.multiple_choice\.MultipleChoice, got dict"),
    C("multiple_choice.mutations", "mc an ICLTasks", lambda: mcq.mutations(icl()), TypeError,
      r"mc must be a course_utils\.multiple_choice\.MultipleChoice, got ICLTasks"),
    C("multiple_choice.mutations", "mc None", lambda: mcq.mutations(None), TypeError,
      r"mc must be a course_utils\.multiple_choice\.MultipleChoice, got NoneType"),
    C("multiple_choice.mutation_table", "size 0", lambda: mcq.mutation_table(mc_model(), mc(), size=0), ValueError, r"size must be a positive int, got 0"),
    C("multiple_choice.mutation_table", "mc a string", lambda: mcq.mutation_table(mc_model(), "fixed"), TypeError,
      r"mc must be a course_utils\.multiple_choice\.MultipleChoice, got str"),
    C("multiple_choice.mutation_table", "no room for one option more", lambda: mcq.mutation_table(mc_model(), mc(), size=2), ValueError,
      r"n_options must be an int in \[2, 4\] \(the context holds max_options options\), got 5"),
    C("train.train", "loss_positions an int", lambda: train.train(tiny(), lambda s: tokens(2, 4), TrainConfig(), loss_positions=-1),
      TypeError, r"loss_positions must be None or a non-empty list of ints, got -1"),
    C("zoo.evaluate_mc", "model a name", lambda: zoo.evaluate_mc("mc_fixed", mc()), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("zoo.evaluate_mc", "language an ICLTasks", lambda: zoo.evaluate_mc(mc_model(), icl()), TypeError,
      r"language must be a course_utils\.multiple_choice\.MultipleChoice, got ICLTasks"),
    C("zoo.evaluate_mc", "size 0", lambda: zoo.evaluate_mc(mc_model(), mc(), size=0), ValueError, r"size must be a positive int, got 0"),

    # -- correct_letter (notebook 08) --
    C("correct_letter.correct_letter_score", "pattern of one layer per head", lambda: cl.correct_letter_score(floats(2, 11, 11), tokens(2)), ValueError,
      r"pattern must have shape \[batch, head_index, query_pos, key_pos\], got shape \(2, 11, 11\)"),
    C("correct_letter.correct_letter_score", "correct of another batch", lambda: cl.correct_letter_score(floats(2, 2, 11, 11), tokens(3)), ValueError,
      r"correct must have shape \[batch\] = \[2\] \(one slot per question\), got shape \(3,\)"),
    C("correct_letter.correct_letter_score", "correct past the options", lambda: cl.correct_letter_score(floats(2, 2, 11, 11), tokens(2, fill=4)), ValueError,
      r"correct contains id 4, outside the option slots \[0, 4\)"),
    C("correct_letter.correct_letter_score", "float correct", lambda: cl.correct_letter_score(floats(2, 2, 11, 11), floats(2)), TypeError,
      r"correct must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("correct_letter.correct_option_score", "pattern a list", lambda: cl.correct_option_score([[0.5]], tokens(2)), TypeError,
      r"pattern must be a torch\.Tensor \[batch, head_index, query_pos, key_pos\], got list"),
    C("correct_letter.correct_option_score", "integer pattern", lambda: cl.correct_option_score(tokens(2, 2, 11, 11), tokens(2)), TypeError,
      r"pattern must be a floating-point tensor, got dtype torch\.int64"),
    C("correct_letter.correct_option_score", "correct of another batch", lambda: cl.correct_option_score(floats(2, 2, 11, 11), tokens(1)), ValueError,
      r"correct must have shape \[batch\] = \[2\]"),
    C("correct_letter.head_scores", "model a string", lambda: cl.head_scores("gpt2", mcq_questions()), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("correct_letter.head_scores", "questions a tensor", lambda: cl.head_scores(mc_model(), tokens(2, 11)), TypeError,
      r"questions must be a course_utils\.multiple_choice\.Questions, got Tensor"),
    C("correct_letter.head_scores", "questions too long for the model", lambda: cl.head_scores(tiny(), mcq_questions()), ValueError,
      r"questions\.tokens has 11 positions but the model's context is n_ctx=8"),
    C("correct_letter.ablated_accuracy", "head out of range", lambda: cl.ablated_accuracy(mc_model(), mcq_questions(), (0, 5)), ValueError,
      r"heads: head must be an int in \[0, 1\] \(a layer has 2 heads\), got 5"),
    C("correct_letter.ablated_accuracy", "questions a tensor", lambda: cl.ablated_accuracy(mc_model(), tokens(2, 11), (0, 0)), TypeError,
      r"questions must be a course_utils\.multiple_choice\.Questions, got Tensor"),
    C("correct_letter.ablated_accuracy", "heads a string", lambda: cl.ablated_accuracy(mc_model(), mcq_questions(), "0.1"), ValueError,
      r"heads must be \(layer, head\) pairs, got \('0',\)"),
    C("correct_letter.head_label_logits", "labels of another batch", lambda: cl.head_label_logits(mc_model(), mcq_questions().tokens, tokens(2, 4), 0, 0),
      ValueError, r"labels must have shape \[batch, option\] with batch = 4, got shape \(2, 4\)"),
    C("correct_letter.head_label_logits", "labels past the vocabulary", lambda: cl.head_label_logits(mc_model(), mcq_questions().tokens, tokens(4, 4, fill=44), 0, 0),
      ValueError, r"labels contains id 44, outside the vocabulary \[0, 44\)"),
    C("correct_letter.head_label_logits", "layer out of range", lambda: cl.head_label_logits(mc_model(), mcq_questions().tokens, tokens(4, 4), 1, 0),
      ValueError, r"layer must be an int in \[0, 0\] \(the model has 1 layers\), got 1"),
    C("correct_letter.ov_label_accuracy", "head a float", lambda: cl.ov_label_accuracy(mc_model(), mcq_questions(), 0, 1.0), TypeError,
      r"head must be an int in \[0, 1\] \(a layer has 2 heads\), got 1\.0"),
    C("correct_letter.ov_label_accuracy", "questions a tensor", lambda: cl.ov_label_accuracy(mc_model(), tokens(2, 11), 0, 0), TypeError,
      r"questions must be a course_utils\.multiple_choice\.Questions, got Tensor"),
    C("correct_letter.ov_label_accuracy", "model a string", lambda: cl.ov_label_accuracy("gpt2", mcq_questions(), 0, 0), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("correct_letter.top_directions", "k larger than d_head", lambda: cl.top_directions(floats(10, 4), 5), ValueError,
      r"k must be an int in \[1, 4\] \(at most d_head directions\), got 5"),
    C("correct_letter.top_directions", "NaN vectors", lambda: cl.top_directions(torch.full((3, 4), float("nan")), 1), ValueError,
      r"vectors contains NaN or inf"),
    C("correct_letter.top_directions", "vectors [d_head]", lambda: cl.top_directions(floats(4), 1), ValueError,
      r"vectors must have shape \[n, d_head\], got shape \(4,\)"),
    C("correct_letter.compress", "k 0", lambda: cl.compress(floats(10, 4), 0), ValueError, r"k must be an int in \[1, 4\]"),
    C("correct_letter.compress", "integer vectors", lambda: cl.compress(tokens(10, 4), 1), TypeError,
      r"vectors must be a floating-point tensor, got dtype torch\.int64"),
    C("correct_letter.compress", "vectors a list", lambda: cl.compress([[1.0, 2.0]], 1), TypeError,
      r"vectors must be a torch\.Tensor \[n, d_head\], got list"),
    C("correct_letter.project", "basis of another width", lambda: cl.project(floats(5, 4), floats(2, 3)), ValueError,
      r"basis must have shape \[k, d_head\] = \[k, 4\], got shape \(2, 3\)"),
    C("correct_letter.project", "basis one vector", lambda: cl.project(floats(5, 4), floats(4)), ValueError,
      r"basis must have shape \[k, d_head\], got shape \(4,\)"),
    C("correct_letter.project", "vectors a list", lambda: cl.project([1.0], floats(1, 4)), TypeError,
      r"vectors must be a torch\.Tensor"),
    C("correct_letter.queries_and_keys", "keys_at unknown", lambda: cl.queries_and_keys(mc_model(), mcq_questions(), 0, 0, "query"), ValueError,
      r"keys_at must be one of \('label', 'option'\), got 'query'"),
    C("correct_letter.queries_and_keys", "head out of range", lambda: cl.queries_and_keys(mc_model(), mcq_questions(), 0, 2), ValueError,
      r"head must be an int in \[0, 1\]"),
    C("correct_letter.queries_and_keys", "questions a tensor", lambda: cl.queries_and_keys(mc_model(), tokens(2, 11), 0, 0), TypeError,
      r"questions must be a course_utils\.multiple_choice\.Questions, got Tensor"),
    C("correct_letter.compressed_qk_accuracy", "k 0", lambda: cl.compressed_qk_accuracy(mc_model(), mcq_questions(), (0, 0), 0), ValueError,
      r"k must be a positive int, got 0"),
    C("correct_letter.compressed_qk_accuracy", "control_seed a string", lambda: cl.compressed_qk_accuracy(mc_model(), mcq_questions(), (0, 0), 1, control_seed="1"),
      TypeError, r"control_seed must be an int, got '1'"),
    C("correct_letter.compressed_qk_accuracy", "squeeze not a function", lambda: cl.compressed_qk_accuracy(mc_model(), mcq_questions(), (0, 0), 1, squeeze=3), TypeError,
      r"squeeze must be a function \(vectors \[n, d_head\], k\) -> \[n, d_head\], got int"),
    C("correct_letter.compressed_qk_accuracy", "a head of layer 3", lambda: cl.compressed_qk_accuracy(mc_model(), mcq_questions(), (3, 0), 1), ValueError,
      r"heads: layer must be an int in \[0, 0\]"),
    C("correct_letter.swapped_positions", "other of another batch", lambda: cl.swapped_positions(tokens(3), tokens(2), 4), ValueError,
      r"other must have shape \[batch\] = \[3\], got shape \(2,\)"),
    C("correct_letter.swapped_positions", "correct past the options", lambda: cl.swapped_positions(tokens(3, fill=4), tokens(3), 4), ValueError,
      r"correct contains id 4, outside the option slots \[0, 4\)"),
    C("correct_letter.swapped_positions", "n_options 0", lambda: cl.swapped_positions(tokens(3), tokens(3), 0), ValueError,
      r"n_options must be a positive int, got 0"),
    C("correct_letter.logits_at_positions", "positions of another shape", lambda: cl.logits_at_positions(tiny(), tokens(2, 4), tokens(2, 3)), ValueError,
      r"positions must have shape \[batch, pos\] \(one position per token\) = \[2, 4\], got shape \(2, 3\)"),
    C("correct_letter.logits_at_positions", "positions past the context", lambda: cl.logits_at_positions(tiny(), tokens(2, 4), tokens(2, 4, fill=8)), ValueError,
      r"positions contains id 8, outside the model's positions \[0, 8\)"),
    C("correct_letter.logits_at_positions", "float positions", lambda: cl.logits_at_positions(tiny(), tokens(2, 4), floats(2, 4)), TypeError,
      r"positions must be an integer tensor \(torch\.long\), got dtype torch\.float32"),
    C("correct_letter.swapped", "what unknown", lambda: cl.swapped(mcq_questions(), tokens(4), "tokens"), ValueError,
      r"what must be one of \('positions', 'labels'\), got 'tokens'"),
    C("correct_letter.swapped", "other the correct slot", lambda: cl.swapped(mcq_questions(), mcq_questions().correct.clone(), "labels"), ValueError,
      r"other must give, for each question, a slot other than the correct one"),
    C("correct_letter.swapped", "questions a tensor", lambda: cl.swapped(tokens(2, 11), tokens(2), "labels"), TypeError,
      r"questions must be a course_utils\.multiple_choice\.Questions, got Tensor"),
    C("correct_letter.position_or_label", "what unknown", lambda: cl.position_or_label(mc_model(), mcq_questions(), "slots"), ValueError,
      r"what must be one of \('positions', 'labels'\), got 'slots'"),
    C("correct_letter.position_or_label", "seed a float", lambda: cl.position_or_label(mc_model(), mcq_questions(), "labels", 1.5), TypeError,
      r"seed must be an int, got 1\.5"),
    C("correct_letter.position_or_label", "model a string", lambda: cl.position_or_label("gpt2", mcq_questions(), "labels"), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("correct_letter.letter_preference", "mc a string", lambda: cl.letter_preference(mc_model(), "fixed"), TypeError,
      r"mc must be a course_utils\.multiple_choice\.MultipleChoice, got str"),
    C("correct_letter.letter_preference", "size 0", lambda: cl.letter_preference(mc_model(), mc(), size=0), ValueError,
      r"size must be a positive int, got 0"),
    C("correct_letter.letter_preference", "model a string", lambda: cl.letter_preference("gpt2", mc()), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("correct_letter.letter_peak", "one head", lambda: cl.letter_peak(floats(26)), ValueError,
      r"preference must have shape \[layer, head_index, letter\], got shape \(26,\)"),
    C("correct_letter.letter_peak", "integers", lambda: cl.letter_peak(tokens(2, 2, 26)), TypeError,
      r"preference must be a floating-point tensor, got dtype torch\.int64"),
    C("correct_letter.letter_peak", "a list", lambda: cl.letter_peak([[[0.5]]]), TypeError,
      r"preference must be a torch\.Tensor \[layer, head_index, letter\], got list"),
    C("correct_letter.proto_heads", "history a list", lambda: cl.proto_heads([mc_model()], mc()), TypeError,
      r"history must be a non-empty dict \{step: model\}, got list"),
    C("correct_letter.proto_heads", "history empty", lambda: cl.proto_heads({}, mc()), TypeError,
      r"history must be a non-empty dict \{step: model\}, got dict"),
    C("correct_letter.proto_heads", "mc a string", lambda: cl.proto_heads({0: mc_model()}, "fixed"), TypeError,
      r"mc must be a course_utils\.multiple_choice\.MultipleChoice, got str"),
    C("correct_letter.study", "mc an ICLTasks", lambda: cl.study(mc_model(), icl()), TypeError,
      r"mc must be a course_utils\.multiple_choice\.MultipleChoice, got ICLTasks"),
    C("correct_letter.study", "model a string", lambda: cl.study("gpt2", mc()), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("correct_letter.study", "questions too long for the model", lambda: cl.study(tiny(), mc()), ValueError,
      r"questions\.tokens has 11 positions but the model's context is n_ctx=8"),
    C("zoo_build.mc_seed_study", "unknown name", lambda: zoo_build.mc_seed_study("gpt5", [1], files()["root"]), ValueError,
      r"name must be one of the recipes .*got 'gpt5'"),
    C("zoo_build.mc_seed_study", "a recipe of another kind", lambda: zoo_build.mc_seed_study("attn_only_2l", [1], files()["root"]), ValueError,
      r"name must be a recipe of multiple-choice questions: one of \['mc_fixed', 'mc_random'\], got 'attn_only_2l'"),

    # ==== issue 16: results that looked plausible and were wrong ==================================
    # -- a cache from another model (wider: d_model 32, 4 heads of d_head 8; deeper: 3 layers) --
    *[C(f"patching.{fn.__name__}", f"cache of a {kind} model", (lambda fn=fn, c=c, extra=extra: fn(tiny(), tokens(2, 4), c(), metric, *extra)),
        ValueError, r"clean_cache comes from another model: " + match)
      for fn, extra in ((patching.patch_resid_pre, (0, 0)), (patching.patch_head, (0, 0)), (patching.patch_heads, ([(0, 0)],)),
                        (patching.patch_k_path, ((0, 0), [(1, 0)])), (patching.resid_patching, ()), (patching.head_patching, ()))
      for kind, c, match in (("wider", wide_cache, r"hook_embed has shape \(2, 4, 32\) but the model has d_model=16"),
                             ("deeper", deep_cache, r"it has blocks\.2\.hook_resid_pre but the model has n_layers=2"))],
    *[C(f"lens.{name}", f"cache of a {kind} model", (lambda call=call, c=c: call(c())), ValueError, r"cache comes from another model: " + match)
      for name, call in (("logit_lens", lambda c: lens.logit_lens(ln_model(), c)),
                         ("resid_components", lambda c: lens.resid_components(ln_model(), c)),
                         ("direct_logit_attribution", lambda c: lens.direct_logit_attribution(ln_model(), c, tokens(2, 4))),
                         ("head_attribution", lambda c: lens.head_attribution(ln_model(), c, tokens(2, 4))),
                         ("layer_attribution", lambda c: lens.layer_attribution(ln_model(), c, tokens(2, 4))),
                         ("tuned_lens_logits", lambda c: lens.tuned_lens_logits(lens.TunedLens(2, 16), ln_model(), c)))
      for kind, c, match in (("wider", ln_wide_cache, r"hook_embed has shape \(2, 4, 32\) but the model has d_model=16"),
                             ("deeper", ln_deep_cache, r"it has blocks\.2\.hook_resid_pre but the model has n_layers=2"))],
    C("patching.patch_head", "cache with more heads of the same d_model",
      lambda: patching.patch_head(tiny(), tokens(2, 4), heads4_cache(), metric, 0, 0), ValueError,
      r"clean_cache comes from another model: blocks\.0\.attn\.hook_[qkvz] has shape \(2, 4, 4, 4\) but the model has \[n_heads, d_head\] = \[2, 8\]"),
    C("lens.logit_lens", "cache of a model with fewer layers", lambda: lens.logit_lens(ln_deep_model(), ln_cache()), ValueError,
      r"cache lacks \['blocks\.2\.hook_resid_post'\]"),
    C("lens.direct_logit_attribution", "tokens beyond the model's vocabulary, cache of a larger one",
      lambda: lens.direct_logit_attribution(ln_model(), ln_big_vocab_cache(), tokens(2, 4, fill=20)), ValueError,
      r"tokens contains id 20, outside the vocabulary \[0, 16\)"),
    C("validate.cache", "a dict", lambda: validate.cache({}, tiny(), "clean_cache", "clean_tokens"), TypeError,
      r"clean_cache must be the ActivationCache from model\.run_with_cache\(clean_tokens\), got dict"),
    C("validate.cache", "another model's", lambda: validate.cache(wide_cache(), tiny()), ValueError,
      r"cache comes from another model: hook_embed has shape \(2, 4, 32\) but the model has d_model=16"),

    # -- token ids outside [0, d_vocab), negative ones included (they would index from the end) --
    *[C(target, f"token id {fill}", call(fill), ValueError, rf"{name} contains id {fill}, outside the vocabulary \[0, 16\)")
      for fill in (-1, 16)
      for target, name, call in (
          ("model.next_token_loss", "tokens", lambda f: lambda: model.next_token_loss(floats(1, 3, 16), tokens(1, 3, fill=f))),
          ("metrics.per_token_loss", "tokens", lambda f: lambda: metrics.per_token_loss(floats(1, 3, 16), tokens(1, 3, fill=f))),
          ("patching.correct_logprob", "tokens", lambda f: lambda: patching.correct_logprob(floats(2, 4, 16), tokens(2, 4, fill=f), slice(0, 2))),
          ("lens.logit_attribution", "tokens", lambda f: lambda: lens.logit_attribution(floats(3, 2, 4, 16), floats(16, 16), tokens(2, 4, fill=f))),
          ("lens.rank_of", "token", lambda f: lambda: lens.rank_of(floats(2, 4, 16), tokens(2, 4, fill=f))),
          ("function_vectors.accuracy_with_vector", "answers", lambda f: lambda: fv.accuracy_with_vector(tiny(), tokens(4, 7), tokens(4, fill=f))),
          ("function_vectors.indirect_effect", "answers", lambda f: lambda: fv.indirect_effect(tiny(), tokens(4, 7), tokens(4, fill=f), floats(2, 2, 8), 0, 0)),
      )],
    C("model.next_token_loss", "token id -100 (cross_entropy's ignore_index)", lambda: model.next_token_loss(floats(1, 3, 16), tokens(1, 3, fill=-100)),
      ValueError, r"tokens contains id -100, outside the vocabulary \[0, 16\)"),
    C("function_vectors.indirect_effects", "answer id = d_vocab", lambda: fv.indirect_effects(tiny(), tokens(4, 7), tokens(4, fill=16), floats(2, 2, 8)),
      ValueError, r"answers contains id 16, outside the vocabulary \[0, 16\)"),
    C("icl_tasks.ICLTasks", "apply to a negative item", lambda: icl().apply("copy", tokens(3, fill=-1)), ValueError,
      r"x contains id -1, outside the items \[0, 8\)"),
    C("icl_tasks.ICLTasks", "to_str of a negative token", lambda: icl().to_str(tokens(3, fill=-1)), ValueError,
      r"tokens contains id -1, outside the vocabulary \[0, 43\)"),
    C("ablation.clean_patterns", "negative token id", lambda: ablation.clean_patterns(tiny(), tokens(2, 4, fill=-1)), ValueError,
      r"tokens contains id -1, outside the vocabulary \[0, 16\)"),
    C("validate.ids", "negative id", lambda: validate.ids(tokens(2, 3, fill=-2), 16, "clean_tokens"), ValueError,
      r"clean_tokens contains id -2, outside the vocabulary \[0, 16\)"),
    C("validate.answers", "answer id = d_vocab", lambda: validate.answers(tokens(4, fill=16), tokens(4, 7), d_vocab=16), ValueError,
      r"answers contains id 16, outside the vocabulary \[0, 16\)"),

    # -- floats, bools and strings where ints or flags are meant --
    C("model.Config", "attn_only 'False'", lambda: Config(attn_only="False"), TypeError, r"Config\.attn_only must be True or False, got 'False'"),
    C("model.Config", "attn_only 0", lambda: Config(attn_only=0), TypeError, r"Config\.attn_only must be True or False, got 0"),
    C("model.Config", "eps a string", lambda: Config(eps="1e-5"), TypeError, r"Config\.eps must be a finite number > 0, got '1e-5'"),
    C("model.Config", "eps 0", lambda: Config(eps=0.0), ValueError, r"Config\.eps must be a finite number > 0, got 0\.0"),
    C("model.Config", "init_range negative", lambda: Config(init_range=-1.0), ValueError, r"Config\.init_range must be a finite number > 0, got -1\.0"),
    C("model.Config", "init_range inf", lambda: Config(init_range=float("inf")), ValueError, r"Config\.init_range must be a finite number > 0, got inf"),
    C("model.Transformer", "loss_per_token 'no'", lambda: tiny()(tokens(1, 4), return_type="loss", loss_per_token="no"), TypeError,
      r"loss_per_token must be True or False, got 'no'"),
    C("model.next_token_loss", "per_token 'no'", lambda: model.next_token_loss(floats(1, 3, 16), tokens(1, 3), per_token="no"), TypeError,
      r"per_token must be True or False, got 'no'"),
    C("data.SyntheticLanguage", "p_repeat True", lambda: SyntheticLanguage(p_repeat=True), TypeError, r"p_repeat must be in \[0, 1\], got True"),
    C("data.SyntheticLanguage", "p_repeat a string", lambda: SyntheticLanguage(p_repeat="0.5"), TypeError, r"p_repeat must be in \[0, 1\], got '0\.5'"),
    C("data.SyntheticLanguage", "p_repeat nan", lambda: SyntheticLanguage(p_repeat=float("nan")), ValueError, r"p_repeat must be in \[0, 1\], got nan"),
    C("data.SyntheticLanguage", "batch(1.5, 4)", lambda: SyntheticLanguage().batch(1.5, 4), TypeError, r"step must be an int, got 1\.5"),
    C("data.SyntheticLanguage", "batch size 4.0", lambda: SyntheticLanguage().batch(1, 4.0), TypeError, r"size must be a positive int, got 4\.0"),
    C("icl_tasks.ICLTasks", "batch(1.5, 4)", lambda: icl().batch(1.5, 4), TypeError, r"step must be an int, got 1\.5"),
    C("icl_tasks.ICLTasks", "batch step True", lambda: icl().batch(True, 4), TypeError, r"step must be an int, got True"),
    C("icl_tasks.ICLTasks", "prompts shots True", lambda: icl().prompts("copy", True, 4), TypeError, r"shots must be an int in \[0, 1\] .*got True"),
    C("icl_tasks.ICLTasks", "prompts seed 1.5", lambda: icl().prompts("copy", 1, 4, seed=1.5), TypeError, r"seed must be an int, got 1\.5"),
    C("icl_tasks.ICLTasks", "prompts shuffle_labels 'no'", lambda: ICLTasks(n_items=8, max_shots=4).prompts("copy", 3, 4, shuffle_labels="no"),
      TypeError, r"shuffle_labels must be True or False, got 'no'"),
    C("icl_classification.ICLClassification", "batch(1.5, 4)", lambda: ICLClassification().batch(1.5, 4), TypeError, r"step must be an int, got 1\.5"),
    C("icl_classification.ICLClassification", "sample seed True", lambda: ICLClassification().sample(4, True), TypeError, r"seed must be an int, got True"),
    C("function_vectors.task_mean_z", "shots=True", lambda: fv.task_mean_z(icl_model(), icl(), shots=True, size=4), TypeError,
      r"shots must be an int in \[0, 1\] .*got True"),
    C("function_vectors.average_indirect_effects", "shots=True", lambda: fv.average_indirect_effects(icl_model(), icl(), per_task(2, 2, 8), shots=True, size=4),
      TypeError, r"shots must be an int in \[0, 1\] .*got True"),
    C("function_vectors.cross_task_matrix", "seed 1.5", lambda: fv.cross_task_matrix(icl_model(), icl(), per_task(16), 0, size=4, seed=1.5),
      TypeError, r"seed must be an int, got 1\.5"),
    C("metrics.random_composition_baseline", "seed 1.5", lambda: metrics.random_composition_baseline(tiny(), "Q", seed=1.5), TypeError,
      r"seed must be an int, got 1\.5"),
    C("lens.train_tuned_lens", "seed 1.5", lambda: lens.train_tuned_lens(ln_model(), lambda s: tokens(2, 4), steps=1, seed=1.5), TypeError,
      r"seed must be an int, got 1\.5"),
    C("lens.train_tuned_lens", "lr inf", lambda: lens.train_tuned_lens(ln_model(), lambda s: tokens(2, 4), steps=1, lr=float("inf")), ValueError,
      r"lr must be a finite number > 0, got inf"),
    C("lens.train_tuned_lens", "lr True", lambda: lens.train_tuned_lens(ln_model(), lambda s: tokens(2, 4), steps=1, lr=True), TypeError,
      r"lr must be a finite number > 0, got True"),
    C("validate.boolean", "a string", lambda: validate.boolean(progress="yes"), TypeError, r"progress must be True or False, got 'yes'"),
    C("validate.positive_number", "nan", lambda: validate.positive_number(lr=float("nan")), ValueError, r"lr must be a finite number > 0, got nan"),
    C("validate.non_negative", "-1", lambda: validate.non_negative(temperature=-1), ValueError,
      r"temperature must be a finite number >= 0, got -1"),
    C("validate.non_negative", "a string", lambda: validate.non_negative(temperature="0"), TypeError,
      r"temperature must be a finite number >= 0, got '0'"),
    C("validate.fraction", "1.5", lambda: validate.fraction(1.5, "p"), ValueError, r"p must be in \[0, 1\], got 1\.5"),

    # -- inputs that cannot give a number: NaN or inf came back with no word --
    C("model.next_token_loss", "one position", lambda: model.next_token_loss(floats(2, 1, 16), tokens(2, 1)), ValueError,
      r"tokens has 1 position\(s\), but a next-token loss .* needs at least 2, got shape \(2, 1\)"),
    C("metrics.per_token_loss", "one position", lambda: metrics.per_token_loss(floats(2, 1, 16), tokens(2, 1)), ValueError,
      r"tokens has 1 position\(s\), but a next-token loss .* needs at least 2"),
    C("model.Transformer", "loss of one position", lambda: tiny()(tokens(2, 1), return_type="loss"), ValueError,
      r"tokens has 1 position\(s\), but a next-token loss .* needs at least 2"),
    C("metrics.prev_token_score", "one position", lambda: metrics.prev_token_score(pattern(1, 2, 1, 1)), ValueError,
      r"pattern has 1 position\(s\), but a score of attention to earlier positions needs at least 2, got shape \(1, 2, 1, 1\)"),
    C("metrics.head_scores", "one position", lambda: metrics.head_scores(tiny(), tokens(2, 1), metrics.prev_token_score), ValueError,
      r"pattern has 1 position\(s\), but a score of attention to earlier positions needs at least 2"),
    C("metrics.composition_score", "W_A all zeros", lambda: metrics.composition_score(torch.zeros(4, 4), floats(4, 4)), ValueError,
      r"W_A is all zeros: the composition score .* is 0 / 0, undefined"),
    C("metrics.composition_score", "W_B all zeros", lambda: metrics.composition_score(floats(4, 4), torch.zeros(4, 4)), ValueError,
      r"W_B is all zeros: the composition score .* is 0 / 0, undefined"),
    C("metrics.composition_scores", "a head with W_O all zeros", lambda: metrics.composition_scores(zeroed_head_model(), "Q"), ValueError,
      r"model\.W_O is all zeros for heads \(layer, head\) \[\(0, 1\)\]: a composition score is 0 / 0, undefined"),
    C("metrics.eigenvalue_copying_score", "all zeros", lambda: metrics.eigenvalue_copying_score(torch.zeros(4, 4)), ValueError,
      r"matrix is all zeros: its copying score .* is 0 / 0, undefined"),
    C("ablation.ablation_effects", "positions select nothing", lambda: ablation.ablation_effects(tiny(), tokens(2, 4), slice(5, 9)), ValueError,
      r"positions slice\(5, 9, None\) selects none of the 3 predicted positions"),
    C("ablation.ablation_effects", "an empty slice", lambda: ablation.ablation_effects(tiny(), tokens(2, 4), slice(1, 1)), ValueError,
      r"positions slice\(1, 1, None\) selects none of the 3 predicted positions"),
    C("validate.nonzero", "zeros", lambda: validate.nonzero(torch.zeros(3), "W", "a ratio of norms"), ValueError,
      r"W is all zeros: a ratio of norms is 0 / 0, undefined"),
    C("validate.head_weights", "a zero head", lambda: validate.head_weights(torch.zeros(1, 2, 3), "W_O", "a score"), ValueError,
      r"W_O is all zeros for heads \(layer, head\) \[\(0, 0\), \(0, 1\)\]"),
    C("validate.positions_at_least", "one position", lambda: validate.positions_at_least(tokens(2, 1), 2, "tokens", "a loss"), ValueError,
      r"tokens has 1 position\(s\), but a loss needs at least 2"),
    C("validate.selects", "nothing", lambda: validate.selects(floats(2, 0), slice(3, 3), 3), ValueError,
      r"positions slice\(3, 3, None\) selects none of the 3 predicted positions"),

    # -- NaN or inf in weights, vectors and scores --
    *[C(target, f"{name} holds {kind}", call, ValueError, rf"{name} contains NaN or inf \(\d+ of \d+ entries\)")
      for kind, bad in (("NaN", nan_at), ("inf", inf_at))
      for target, name, call in (
          ("model.embed", "W_E", lambda bad=bad: model.embed(tokens(2, 3), bad(floats(16, 4)))),
          ("model.attention_pattern", "q", lambda bad=bad: model.attention_pattern(bad(floats(3, 4)), floats(3, 4))),
          ("model.multi_head_attention", "W_Q", lambda bad=bad: mha(W_Q=bad(floats(2, 16, 8)))()),
          ("metrics.induction_score", "pattern", lambda bad=bad: metrics.induction_score(bad(pattern(1, 2, 12, 12)), 6)),
          ("metrics.composition_score", "W_A", lambda bad=bad: metrics.composition_score(bad(floats(4, 4)), floats(4, 4))),
          ("function_vectors.top_heads", "aie", lambda bad=bad: fv.top_heads(bad(floats(2, 2)), 1)),
          ("function_vectors.logits_with_vector", "vector", lambda bad=bad: fv.logits_with_vector(tiny(), tokens(4, 7), bad(floats(16)), 0)),
          ("lens.unembed_resid", "w", lambda bad=bad: lens.unembed_resid(floats(2, 4, 16), bad(floats(16)), floats(16), floats(16, 16), floats(16))),
      )],
    *[C(target, f"{name} holds NaN", call, ValueError, rf"{name} contains NaN or inf \(\d+ of \d+ entries\): expected finite numbers")
      for target, name, call in (
          ("model.pos_embed", "W_pos", lambda: model.pos_embed(tokens(2, 3), nan_at(floats(8, 4)))),
          ("model.unembed", "resid", lambda: model.unembed(nan_at(floats(2, 3, 4)), floats(4, 16), floats(16))),
          ("metrics.per_token_loss", "logits", lambda: metrics.per_token_loss(nan_at(floats(1, 3, 16)), tokens(1, 3))),
          ("metrics.prev_token_score", "pattern", lambda: metrics.prev_token_score(nan_at(pattern(1, 2, 4, 4)))),
          ("metrics.duplicate_token_score", "pattern", lambda: metrics.duplicate_token_score(nan_at(pattern(1, 2, 12, 12)), 6)),
          ("metrics.icl_score", "loss_by_token", lambda: metrics.icl_score(nan_at(floats(2, 10)), slice(0, 3), slice(5, 9))),
          ("metrics.eigenvalue_copying_score", "matrix", lambda: metrics.eigenvalue_copying_score(nan_at(floats(4, 4)))),
          ("metrics.copying_score", "full_ov", lambda: metrics.copying_score(nan_at(floats(4, 4)))),
          ("metrics.composition_scores", "model.W_O", lambda: metrics.composition_scores(nan_head_model(), "K")),
          ("ablation.ablate_head", "replacement", lambda: ablation.ablate_head(floats(2, 4, 2, 8), 0, float("nan"))),
          ("ablation.head_output", "W_O", lambda: ablation.head_output(floats(2, 4, 2, 8), nan_at(floats(2, 8, 16)), 0)),
          ("ablation.keys_without", "removed", lambda: ablation.keys_without(floats(2, 4, 2, 8), nan_at(floats(2, 4, 16)), floats(2, 16, 8), 0)),
          ("lens.kl_to_final", "final_logits", lambda: lens.kl_to_final(floats(3, 2, 4, 16), nan_at(floats(2, 4, 16)))),
          ("lens.rank_of", "logits", lambda: lens.rank_of(nan_at(floats(2, 4, 16)), tokens(2, 4))),
          ("lens.logit_attribution", "stack", lambda: lens.logit_attribution(nan_at(floats(3, 2, 4, 16)), floats(16, 16), tokens(2, 4))),
          ("lens.TunedLens", "resid_stack", lambda: lens.TunedLens(2, 16)(nan_at(floats(3, 2, 4, 16)), ln_model())),
          ("patching.correct_logprob", "logits", lambda: patching.correct_logprob(nan_at(floats(2, 4, 16)), tokens(2, 4), slice(0, 2))),
          ("patching.normalized_metric", "clean_value", lambda: patching.normalized_metric(torch.tensor(1.0), torch.tensor(float("nan")), torch.tensor(0.0))),
          ("function_vectors.function_vector", "mean_outputs", lambda: fv.function_vector(nan_at(floats(2, 2, 16)), [(0, 0)])),
          ("function_vectors.add_vector_hook", "vector", lambda: fv.add_vector_hook(nan_at(floats(16)), 0)),
          ("function_vectors.predictions_with_vector", "vector", lambda: fv.predictions_with_vector(tiny(), tokens(4, 7), nan_at(floats(16)), 0)),
          ("function_vectors.accuracy_with_vector", "vector", lambda: fv.accuracy_with_vector(tiny(), tokens(4, 7), tokens(4), nan_at(floats(16)), 0)),
          ("function_vectors.indirect_effect", "mean_z", lambda: fv.indirect_effect(tiny(), tokens(4, 7), tokens(4), nan_at(floats(2, 2, 8)), 0, 0)),
          ("function_vectors.indirect_effects", "mean_z", lambda: fv.indirect_effects(tiny(), tokens(4, 7), tokens(4), nan_at(floats(2, 2, 8)))),
          ("function_vectors.cross_task_matrix", "vector", lambda: fv.cross_task_matrix(icl_model(), icl(), {t: nan_at(floats(16)) for t in icl().tasks}, 0, size=4)),
          ("validate.finite", "x", lambda: validate.finite(nan_at(floats(3)), "x")),
      )],
    C("function_vectors.top_heads", "NaN would rank first", lambda: fv.top_heads(torch.tensor([[0.1, float("nan")], [0.2, 0.3]]), 1), ValueError,
      r"aie contains NaN or inf \(1 of 4 entries\)"),
    C("patching.normalized_metric", "value inf", lambda: patching.normalized_metric(torch.tensor(float("inf")), torch.tensor(1.0), torch.tensor(0.0)),
      ValueError, r"value contains NaN or inf \(1 of 1 entries\)"),

    # -- biases of the wrong shape, which would broadcast silently --
    C("model.multi_head_attention", "b_Q one row for all heads", mha(b_Q=floats(1, 8)), ValueError,
      r"b_Q must have shape \[head_index, d_head\] = \[2, 8\], got shape \(1, 8\)"),
    C("model.multi_head_attention", "b_K without the head axis", mha(b_K=floats(8)), ValueError,
      r"b_K must have shape \[head_index, d_head\] = \[2, 8\], got shape \(8,\)"),
    C("model.multi_head_attention", "b_V a scalar", mha(b_V=torch.tensor(0.5)), ValueError,
      r"b_V must have shape \[head_index, d_head\] = \[2, 8\], got shape \(\)"),
    C("model.multi_head_attention", "b_O of one entry", mha(b_O=floats(1)), ValueError, r"b_O must have shape \[d_model\] = \[16\], got shape \(1,\)"),
    C("model.multi_head_attention", "b_O per position", mha(b_O=floats(4, 16)), ValueError, r"b_O must have shape \[d_model\] = \[16\], got shape \(4, 16\)"),
    C("model.multi_head_attention", "b_Q a list", mha(b_Q=[0.0]), TypeError, r"b_Q must be a torch\.Tensor \[head_index, d_head\] = \[2, 8\], got list"),
    C("lens.unembed_resid", "b_U of one entry", lambda: lens.unembed_resid(floats(2, 4, 16), floats(16), floats(16), floats(16, 16), floats(1)),
      ValueError, r"b_U must have shape \[d_vocab\] = \[16\], got shape \(1,\)"),
    C("lens.unembed_resid", "b per position", lambda: lens.unembed_resid(floats(2, 4, 16), floats(16), floats(4, 16), floats(16, 16), floats(16)),
      ValueError, r"b must have shape \[d_model\] = \[16\], got shape \(4, 16\)"),
    C("lens.unembed_resid", "w per batch", lambda: lens.unembed_resid(floats(2, 4, 16), floats(2, 16), floats(16), floats(16, 16), floats(16)),
      ValueError, r"w must have shape \[d_model\] = \[16\], got shape \(2, 16\)"),

    # -- superposition and sae (notebook 09) --
    C("superposition.feature_batch", "sparsity 1", lambda: sp.feature_batch(4, torch.tensor([1.0]), 3, torch.Generator()), ValueError, r"sparsity must be in \[0, 1\)"),
    C("superposition.feature_batch", "batch 0", lambda: sp.feature_batch(0, torch.tensor([0.5]), 3, torch.Generator()), ValueError, r"batch must be a positive int, got 0"),
    C("superposition.toy_forward", "b per batch", lambda: sp.toy_forward(floats(2, 3, 5), floats(4, 2, 5), floats(4, 2, 5)), ValueError, r"b must have shape one bias per instance and feature = \[2, 5\]"),
    C("superposition.toy_forward", "x without instances", lambda: sp.toy_forward(floats(2, 3, 5), floats(2, 5), floats(4, 5)), ValueError, r"x must have shape \[batch, instance, feature\], got shape \(4, 5\)"),
    C("superposition.toy_loss", "importance per feature only", lambda: sp.toy_loss(floats(4, 2, 5), floats(4, 2, 5), floats(5)), ValueError, r"importance must have shape \[instance, feature\], as x's = \[2, 5\]"),
    C("superposition.ToyModel", "hidden 0", lambda: sp.ToyModel(2, 5, 0), ValueError, r"n_hidden must be a positive int, got 0"),
    C("superposition.ToyModel", "hidden_relu 'yes'", lambda: sp.ToyModel(2, 5, 2, hidden_relu="yes"), TypeError, r"hidden_relu must be True or False, got 'yes'"),
    C("superposition.train_toy", "sparsity per feature", lambda: sp.train_toy(sp.ToyModel(2, 5, 2), floats(2, 5), floats(2, 5)), ValueError, r"sparsity must have shape one sparsity per instance = \[2\]"),
    C("superposition.train_toy", "not a ToyModel", lambda: sp.train_toy(tiny(), floats(2, 5), floats(2)), TypeError, r"model must be a course_utils\.superposition\.ToyModel"),
    C("superposition.feature_norms", "W rank 2", lambda: sp.feature_norms(floats(3, 5)), ValueError, r"W must have shape \[instance, hidden, feature\], got shape \(3, 5\)"),
    C("superposition.superposition_measure", "W integer", lambda: sp.superposition_measure(tokens(1, 2, 3)), TypeError, r"W must be a floating-point tensor"),
    C("superposition.represented", "W a list", lambda: sp.represented([[1.0]]), TypeError, r"W must be a torch\.Tensor"),
    C("superposition.neuron_alignment", "W rank 2", lambda: sp.neuron_alignment(floats(3, 5)), ValueError, r"W must have shape \[instance, hidden, feature\]"),
    C("superposition.random_rotation", "seed a float", lambda: sp.random_rotation(2, 3, seed=1.0), TypeError, r"seed must be an int, got 1\.0"),
    C("superposition.rotate_hidden", "rotation of the wrong size", lambda: sp.rotate_hidden(sp.ToyModel(2, 5, 3), floats(2, 2, 2)), ValueError, r"rotation must have shape \[instance, hidden, hidden\] = \[2, 3, 3\]"),
    C("superposition.evaluate_toy", "not a ToyModel", lambda: sp.evaluate_toy(None, floats(2, 5), floats(2)), TypeError, r"model must be a course_utils\.superposition\.ToyModel, got NoneType"),
    C("superposition.two_feature_phase", "three features", lambda: sp.two_feature_phase(floats(4, 1, 3)), ValueError, r"W must hold 2 features"),
    C("sae.SparseAutoencoder", "d_sae a float", lambda: saes.SparseAutoencoder(4, 8.0), TypeError, r"d_sae must be a positive int, got 8\.0"),
    C("sae.sae_forward", "W_dec not transposed", lambda: saes.sae_forward(floats(2, 4), floats(4, 8), floats(8), floats(4, 8), floats(4)), ValueError, r"W_dec must have shape \[d_sae, d_in\], W_enc's shape transposed = \[8, 4\]"),
    C("sae.sae_forward", "x of the wrong width", lambda: saes.sae_forward(floats(2, 5), floats(4, 8), floats(8), floats(8, 4), floats(4)), ValueError, r"x\[0\] must have shape d_in entries, as W_enc's rows = \[4\]"),
    C("sae.sae_loss", "negative l1", lambda: saes.sae_loss(floats(2, 4), floats(2, 8), floats(2, 4), floats(8, 4), -1.0), ValueError, r"l1_coefficient must be a finite number >= 0, got -1\.0"),
    C("sae.sae_loss", "latents of the wrong width", lambda: saes.sae_loss(floats(2, 4), floats(2, 7), floats(2, 4), floats(8, 4), 0.1), ValueError, r"latents must have shape \[batch, d_sae\] = \[2, 8\]"),
    C("sae.sae_training_step", "no optimizer", lambda: saes.sae_training_step(saes.SparseAutoencoder(4, 8), None, floats(2, 4), 0.1), TypeError, r"optimizer must be a torch\.optim\.optimizer\.Optimizer, got NoneType"),
    C("sae.train_sae", "activations of the wrong width", lambda: saes.train_sae(saes.SparseAutoencoder(4, 8), floats(10, 5), 0.1), ValueError, r"activations\[0\] must have shape one activation of d_in entries = \[4\]"),
    C("sae.train_sae", "steps 0", lambda: saes.train_sae(saes.SparseAutoencoder(4, 8), floats(10, 4), 0.1, steps=0), ValueError, r"steps must be a positive int, got 0"),
    C("sae.feature_recovery", "W_dec rank 1", lambda: saes.feature_recovery(floats(3, 4), floats(4)), ValueError, r"W_dec must have shape \[d_sae, d_in\], got shape \(4,\)"),
    C("sae.random_dictionary", "d_in 0", lambda: saes.random_dictionary(8, 0), ValueError, r"d_in must be a positive int, got 0"),
    C("sae.l0", "latents rank 1", lambda: saes.l0(floats(8)), ValueError, r"latents must have shape \[batch, d_sae\], got shape \(8,\)"),
    C("sae.dead_latents", "latents integer", lambda: saes.dead_latents(tokens(2, 8)), TypeError, r"latents must be a floating-point tensor"),
    C("sae.explained_variance", "reconstruction of another shape", lambda: saes.explained_variance(floats(4, 3), floats(4, 2)), ValueError, r"reconstruction must have shape the shape of x = \[4, 3\]"),
    C("sae.sparse_activations", "p_active 2", lambda: saes.sparse_activations(10, floats(3, 4), 2.0, torch.Generator()), ValueError, r"p_active must be in \[0, 1\], got 2\.0"),
    C("superposition_study.measure", "seed a float", lambda: superposition_study.measure(0.0), TypeError, r"seed must be an int, got 0\.0"),
    C("superposition_study.main", "missing directory", lambda: superposition_study.main("/nope/x.json"), ValueError, r"path must be in an existing directory, got '/nope/x\.json'"),
    C("sae.clamp_latent", "latent out of range", lambda: saes.clamp_latent(floats(2, 4), floats(4, 8), floats(8), floats(8, 4), floats(4), 8, 1.0), ValueError, r"latent must be an int in \[0, 7\] \(a latent of the SAE\), got 8"),
    C("sae.clamp_latent", "x a list", lambda: saes.clamp_latent([[0.0]], floats(4, 8), floats(8), floats(8, 4), floats(4), 0, 1.0), TypeError, r"x must be a torch\.Tensor"),
    C("sae.latent_precision", "labels float", lambda: saes.latent_precision(floats(5, 3), floats(5), 2), TypeError, r"labels must be an integer tensor \(torch\.long\)"),
    C("sae.latent_precision", "labels too short", lambda: saes.latent_precision(floats(5, 3), tokens(4), 2), ValueError, r"labels must have shape one label per input = \[5\]"),
    C("sae.course_activations", "not a model", lambda: saes.course_activations("attn_only_2l", tokens(1, 4), "blocks.1.hook_resid_pre"), TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("sae.course_sae_data", "recipe without a hook", lambda: saes.course_sae_data({"model": "attn_only_2l"}), ValueError, r"recipe must have every key of course_sae_recipe\(\), missing \['batch'"),
    C("sae.train_course_sae", "recipe a string", lambda: saes.train_course_sae("attn_only_2l"), TypeError, r"recipe must be a builtins\.dict, got str"),
    C("sae.load_course_sae", "retrain 'yes'", lambda: saes.load_course_sae(retrain="yes"), TypeError, r"retrain must be True or False, got 'yes'"),
    C("sae.successor_mass", "successors per position", lambda: saes.successor_mass(tiny(), tokens(1, 4), "blocks.0.hook_resid_pre", None, floats(4) > 0), ValueError, r"successors must have shape one flag per token of the vocabulary"),
    C("superposition_study.course_sae_metrics", "not an SAE", lambda: superposition_study.course_sae_metrics(None, saes.course_sae_recipe()), TypeError, r"sae must be a course_utils\.sae\.SparseAutoencoder, got NoneType"),
    # -- integer token dtypes: only torch.long, refused at the entrance with a hint --
    *[C(target, f"{name} {dtype}", (lambda call=call, dtype=dtype: call(dtype)), TypeError,
        rf"{name} must be an integer tensor \(torch\.long\), got dtype torch\.{dtype} \(convert with {name}\.long\(\)\)")
      for dtype in ("int32", "int16", "uint8")
      for target, name, call in (
          ("model.Transformer", "tokens", lambda d: tiny()(tokens(2, 4, dtype=getattr(torch, d)), return_type="loss")),
          ("model.next_token_loss", "tokens", lambda d: model.next_token_loss(floats(1, 3, 16), tokens(1, 3, dtype=getattr(torch, d)))),
          ("model.embed", "tokens", lambda d: model.embed(tokens(2, 3, dtype=getattr(torch, d)), floats(16, 4))),
          ("patching.correct_logprob", "tokens", lambda d: patching.correct_logprob(floats(2, 4, 16), tokens(2, 4, dtype=getattr(torch, d)), slice(0, 2))),
          ("function_vectors.accuracy_with_vector", "answers", lambda d: fv.accuracy_with_vector(tiny(), tokens(4, 7), tokens(4, dtype=getattr(torch, d)))),
      )],
    *[C(target, f"{name} int32", call, TypeError, rf"{name} must be an integer tensor \(torch\.long\), got dtype torch\.int32")
      for target, name, call in (
          ("lens.rank_of", "token", lambda: lens.rank_of(floats(2, 4, 16), tokens(2, 4, dtype=torch.int32))),
          ("lens.logit_attribution", "tokens", lambda: lens.logit_attribution(floats(3, 2, 4, 16), floats(16, 16), tokens(2, 4, dtype=torch.int32))),
          ("metrics.head_scores", "tokens", lambda: metrics.head_scores(tiny(), tokens(1, 8, dtype=torch.int32), metrics.prev_token_score)),
          ("function_vectors.mean_head_z", "tokens", lambda: fv.mean_head_z(tiny(), tokens(2, 4, dtype=torch.int32))),
          ("model.pos_embed", "tokens", lambda: model.pos_embed(tokens(2, 3, dtype=torch.int32), floats(8, 4))),
          ("validate.tokens", "tokens", lambda: validate.tokens(tokens(2, 4, dtype=torch.int32), tiny().cfg)),
      )],
    # -- failure_modes (notebook 11) --
    C("failure_modes.value_weighted_pattern", "pattern 3-d", lambda: fm.value_weighted_pattern(floats(2, 4, 4), floats(2, 4, 2, 8), floats(2, 8, 16)),
      ValueError, r"pattern must have shape \[batch, head_index, query_pos, key_pos\], got shape \(2, 4, 4\)"),
    C("failure_modes.value_weighted_pattern", "v of another batch", lambda: fm.value_weighted_pattern(floats(2, 2, 4, 4), floats(3, 4, 2, 8), floats(2, 8, 16)),
      ValueError, r"pattern .*, v .* and W_O .* do not fit together"),
    C("failure_modes.value_weighted_pattern", "W_O a list", lambda: fm.value_weighted_pattern(floats(2, 2, 4, 4), floats(2, 4, 2, 8), [[0.0]]),
      TypeError, r"W_O must be a torch\.Tensor"),
    C("failure_modes.ablation_verdicts", "head of a third layer", lambda: fm.ablation_verdicts(tiny(), tokens(2, 4), (2, 0), slice(None), tokens(2, 4)),
      ValueError, r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 2"),
    C("failure_modes.ablation_verdicts", "model a string", lambda: fm.ablation_verdicts("gpt2", tokens(2, 4), (0, 0), slice(None), tokens(2, 4)),
      TypeError, r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("failure_modes.removal_effect", "a dict for the cache", lambda: fm.removal_effect(ln_model(), {}, tokens(2, 4), floats(2, 4, 16)),
      TypeError, r"cache must be the ActivationCache from model\.run_with_cache\(tokens\), got dict"),
    C("failure_modes.removal_effect", "component of another shape", lambda: fm.removal_effect(ln_model(), ln_cache(), tokens(2, 4), floats(2, 3, 16)),
      ValueError, r"component must have the residual stream's shape \(2, 4, 16\)"),
    C("failure_modes.removal_effect", "model without LayerNorm", lambda: fm.removal_effect(tiny(), tiny_cache(), tokens(2, 4), floats(2, 4, 16)),
      ValueError, r"normalization_type=None, not 'LN'"),
    C("failure_modes.head_outputs", "layer 5", lambda: fm.head_outputs(tiny(), tiny_cache(), 5), ValueError,
      r"layer must be an int in \[0, 1\] \(the model has 2 layers\), got 5"),
    C("failure_modes.head_outputs", "another model's cache", lambda: fm.head_outputs(tiny(), zoo_model().run_with_cache(tokens(1, 4))[1], 0), ValueError,
      r"cache comes from another model"),
    C("failure_modes.bias_share", "layer a float", lambda: fm.bias_share(tiny(), tiny_cache(), 0.0), TypeError,
      r"layer must be an int in \[0, 1\].*got 0\.0"),
    C("failure_modes.k_path_effects", "a model with LayerNorm", lambda: fm.k_path_effects(ln_model(), tokens(2, 4), 2), ValueError,
      r"model must have two layers and no LayerNorm"),
    C("failure_modes.k_path_effects", "period 0", lambda: fm.k_path_effects(tiny(), tokens(2, 4), 0), ValueError,
      r"period must be an int in \[1, 3\]"),
    C("failure_modes.favourite_token_ov", "d_vocab 2", lambda: fm.favourite_token_ov(2), ValueError, r"d_vocab must be an int >= 3, got 2"),
    C("failure_modes.favourite_token_ov", "d_vocab a float", lambda: fm.favourite_token_ov(8.0), TypeError, r"d_vocab must be an int, got 8\.0"),
    C("failure_modes.suppressing_ov", "d_vocab 0", lambda: fm.suppressing_ov(0), ValueError, r"d_vocab must be an int >= 3, got 0"),
    C("failure_modes.copying_table", "model a string", lambda: fm.copying_table("gpt2"), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("failure_modes.attention_sink_model", "n_ctx 1", lambda: fm.attention_sink_model(n_ctx=1), ValueError, r"n_ctx must be an int >= 2, got 1"),
    C("failure_modes.attention_sink_model", "d_vocab a string", lambda: fm.attention_sink_model(d_vocab="8"), TypeError, r"d_vocab must be an int >= 3, got '8'"),
    C("failure_modes.scrubbed_loss", "a model with LayerNorm", lambda: fm.scrubbed_loss(ln_model(), tokens(2, 4), tokens(2, 4), {"q": "all", "k": "all", "v": "all"}),
      ValueError, r"model must be a two-layer attention-only model"),
    C("failure_modes.scrubbed_loss", "other_tokens of another shape", lambda: fm.scrubbed_loss(tiny(), tokens(2, 4), tokens(2, 3), {"q": "all", "k": "all", "v": "all"}),
      ValueError, r"other_tokens must have the shape of tokens \(2, 4\), got \(2, 3\)"),
    C("failure_modes.scrubbed_loss", "keep without v", lambda: fm.scrubbed_loss(tiny(), tokens(2, 4), tokens(2, 4), {"q": "all", "k": "all"}),
      ValueError, r"keep must be a dict with keys 'q', 'k', 'v'"),
    C("failure_modes.scrubbed_loss", "a head the model lacks", lambda: fm.scrubbed_loss(tiny(), tokens(2, 4), tokens(2, 4), {"q": "all", "k": "0.7", "v": "all"}),
      ValueError, r"keep\['k'\] must be one of .*got '0\.7'"),
    C("failure_modes.subspace_patch", "v of the wrong size", lambda: fm.subspace_patch(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(4)),
      ValueError, r"must agree: two \[batch, d_hidden\] activations and a \[d_hidden\] direction"),
    C("failure_modes.subspace_patch", "v all zeros", lambda: fm.subspace_patch(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(3)),
      ValueError, r"v is all zeros"),
    C("failure_modes.subspace_patch", "int activations", lambda: fm.subspace_patch(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3), torch.ones(3)),
      TypeError, r"h_clean must be a floating-point tensor, got dtype torch.int64"),
    C("failure_modes.variation_split", "one example", lambda: fm.variation_split(torch.ones(1, 3), torch.ones(3), torch.ones(3, 2)),
      ValueError, r"h must hold at least 2 examples"),
    C("failure_modes.variation_split", "W_out of another size", lambda: fm.variation_split(torch.ones(4, 3), torch.ones(3), torch.ones(5, 2)),
      ValueError, r"must agree on d_hidden"),
    C("failure_modes.variation_split", "v a list", lambda: fm.variation_split(torch.ones(4, 3), [1.0, 0.0, 0.0], torch.ones(3, 2)),
      TypeError, r"v must be a"),
    C("failure_modes.prev_token_scores", "model a string", lambda: fm.prev_token_scores("gpt2", SyntheticLanguage()), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("failure_modes.prev_token_scores", "language an ICLTasks", lambda: fm.prev_token_scores(tiny(), ICLTasks()), TypeError,
      r"language must be a course_utils\.data\.SyntheticLanguage, got ICLTasks"),
    C("failure_study.add_prev_scores", "seed a string", lambda: failure_study.add_prev_scores(files()["root"], ["1"]), TypeError,
      r"seed must be an int, got '1'"),
    C("real_model.gpt2", "device an int", lambda: real_model.gpt2(0), TypeError,
      r"device must be a str or torch\.device such as 'cpu' or 'cuda', got int"),
    C("real_model.is_pretrained", "model a string", lambda: real_model.is_pretrained("gpt2"), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("failure_modes.loss_recovered", "a string", lambda: fm.loss_recovered("3.1", 3.0, 6.0), TypeError, r"scrubbed must be a number \(a mean loss\), got '3\.1'"),
    C("failure_modes.loss_recovered", "clean = resampled", lambda: fm.loss_recovered(3.1, 3.0, 3.0), ValueError, r"resampled and clean are equal"),
    C("failure_modes.loss_recovered", "NaN", lambda: fm.loss_recovered(3.1, float("nan"), 6.0), TypeError, r"clean must be a number"),
    C("failure_modes.induction_heads", "threshold 0", lambda: fm.induction_heads(tiny(), tokens(2, 8), 4, 0.0), ValueError,
      r"threshold must be a finite number > 0, got 0\.0"),
    C("failure_modes.induction_heads", "model a string", lambda: fm.induction_heads("gpt2", tokens(2, 8), 4), TypeError,
      r"model must be a course_utils Transformer or a TransformerBridge, got str"),
    C("failure_modes.study", "language an ICLTasks", lambda: fm.study(tiny(), ln_model(), ICLTasks()), TypeError,
      r"language must be a course_utils\.data\.SyntheticLanguage, got ICLTasks"),
    C("failure_modes.study", "four_layer without LayerNorm", lambda: fm.study(tiny(), tiny(), SyntheticLanguage()), ValueError,
      r"four_layer must have LayerNorm"),
    C("failure_study.trained", "unknown model", lambda: failure_study.trained("gpt5", 1, files()["root"]), ValueError,
      r"name must be one of notebook 11's models \('attn_only_2l', 'ln_mlp_4l'\), got 'gpt5'"),
    C("failure_study.trained", "seed a string", lambda: failure_study.trained("attn_only_2l", "1", files()["root"]), TypeError, r"seed must be an int, got '1'"),
    *[C(f"checks.{fn.__name__}", "fn not a function", (lambda fn=fn: fn("embed")), checks.ExerciseError,
        r"expected a function as fn \(pass the function itself, not its result\), got str")
      for fn in (checks.check_value_weighted_pattern, checks.check_ablation_verdicts, checks.check_removal_effect,
                 checks.check_bias_share, checks.check_favourite_token_ov, checks.check_scrubbed_loss,
                 checks.check_subspace_patch, checks.check_variation_split)],
    C("failure_study.run", "seed 0 listed", lambda: failure_study.run(files()["root"], [0, 1]), ValueError,
      r"seeds must be a list of positive ints \(seed 0 is the shipped models, always included\), got \[0, 1\]"),
]


# -- requests and refusal (notebook 12) --
@cache
def rq_model() -> Transformer:
    """A small model with Requests()'s vocabulary (d_vocab 31, requests of 7 positions), MLPs and LayerNorm."""
    r = Requests()
    return Transformer(Config(d_vocab=r.d_vocab, n_ctx=r.n_ctx, d_model=16, n_heads=2, n_layers=2, d_mlp=32,
                              normalization_type="LN"))


def rq_batch(refused=True, size=4) -> RequestBatch:
    return Requests().prompts(size, refused=refused)


CASES += [
    C("request_tasks.Requests", "n_items too small", lambda: Requests(n_items=6, n_forbidden=2), ValueError,
      r"n_items - n_forbidden must be > n_args .*got n_items=6, n_forbidden=2, n_args=4"),
    C("request_tasks.Requests", "an unknown task", lambda: Requests(tasks=("first", "median")), ValueError,
      r"tasks must be distinct names among \('first', 'last', 'min', 'max'\), got \('first', 'median'\)"),
    C("request_tasks.Requests", "p_refuse 1", lambda: Requests(p_refuse=1.0), ValueError, r"p_refuse must be in \(0, 1\), got 1\.0"),
    C("request_tasks.Requests", "seed a float", lambda: Requests(seed=1.5), TypeError, r"seed must be an int, got 1\.5"),
    C("request_tasks.Requests", "prompts refused not a bool", lambda: Requests().prompts(4, refused=1), TypeError, r"refused must be True or False, got 1"),
    C("request_tasks.Requests", "prompts of an unknown task", lambda: Requests().prompts(4, refused=True, task="median"), ValueError,
      r"task must be one of the tasks .*got 'median'"),
    C("request_tasks.Requests", "batch size 0", lambda: Requests().batch(0, 0), ValueError, r"size must be a positive int, got 0"),
    C("request_tasks.Requests", "to_str of a batch", lambda: Requests().to_str(tokens(2, 7)), ValueError, r"tokens must have shape \[pos\], got shape \(2, 7\)"),
    C("request_tasks.Requests", "from_dict with an unknown field", lambda: Requests.from_dict({"n_items": 24, "colour": 1}), ValueError,
      r"unknown Requests fields \['colour'\]"),
    C("request_tasks.Requests", "task_token of an unknown task", lambda: Requests().task_token("median"), ValueError, r"task must be one of the tasks"),
    C("refusal.resid_name", "layer past the end", lambda: rf.resid_name(rq_model(), 3), ValueError,
      r"layer must be an int in \[0, 2\] \(0 \.\. n_layers = 2"),
    C("refusal.resid_name", "model a name", lambda: rf.resid_name("request_tasks", 1), TypeError, r"model must be"),
    C("refusal.last_resid", "tokens float", lambda: rf.last_resid(rq_model(), floats(2, 7), 1), TypeError, r"tokens must be an integer tensor"),
    C("refusal.mean_difference", "layer -1", lambda: rf.mean_difference(rq_model(), tokens(2, 7), tokens(2, 7), -1), ValueError,
      r"layer must be an int in \[0, 2\]"),
    C("refusal.ablation_hook_names", "model a dict", lambda: rf.ablation_hook_names({}), TypeError, r"model must be"),
    C("refusal.ablation_hooks", "a zero direction", lambda: rf.ablation_hooks(rq_model(), torch.zeros(16)), ValueError,
      r"direction is all zeros: a direction needs a non-zero vector is 0 / 0"),
    C("refusal.ablation_hooks", "direction [1, d_model]", lambda: rf.ablation_hooks(rq_model(), floats(1, 16)), ValueError,
      r"direction must have shape \[d_model\], got shape \(1, 16\)"),
    C("refusal.addition_hook", "vector of another width", lambda: rf.addition_hook(rq_model(), floats(8), 1), ValueError,
      r"vector must have shape \[d_model\] = \[16\], got shape \(8,\)"),
    C("refusal.addition_hook", "vector with NaN", lambda: rf.addition_hook(rq_model(), torch.full((16,), float("nan")), 1), ValueError,
      r"vector .*NaN"),
    C("refusal.random_directions", "n 0", lambda: rf.random_directions(floats(16), 0), ValueError, r"n must be a positive int, got 0"),
    C("refusal.random_directions", "seed a float", lambda: rf.random_directions(floats(16), 3, 0.5), TypeError, r"seed must be an int, got 0\.5"),
    C("refusal.separation", "direction an int tensor", lambda: rf.separation(rq_model(), tokens(2, 7), tokens(2, 7), tokens(16), 1), TypeError,
      r"direction must be a floating-point tensor, got dtype torch.int64"),
    C("refusal.predictions", "tokens past the vocabulary", lambda: rf.predictions(rq_model(), tokens(2, 7, fill=40)), ValueError,
      r"tokens .*40"),
    C("refusal.behaviour", "batch a tensor", lambda: rf.behaviour(rq_model(), tokens(2, 7), 29), TypeError,
      r"batch must be a course_utils.request_tasks.RequestBatch, got Tensor"),
    C("refusal.behaviour", "refuse a float", lambda: rf.behaviour(rq_model(), rq_batch(), 29.0), TypeError, r"refuse must be an int, got 29\.0"),
    C("refusal.random_control", "harmless a tensor", lambda: rf.random_control(rq_model(), rq_batch(), tokens(2, 7), floats(16), 1, 29, 2),
      TypeError, r"harmless must be a course_utils.request_tasks.RequestBatch, got Tensor"),
    C("refusal.direction_layer_sweep", "model a name", lambda: rf.direction_layer_sweep("request_tasks", (rq_batch(), rq_batch(False)),
      (rq_batch(), rq_batch(False)), 29), TypeError, r"model must be"),
    C("refusal.ablation_sweep", "refused a tensor", lambda: rf.ablation_sweep(rq_model(), (rq_batch(), rq_batch(False)), tokens(2, 7), 29),
      TypeError, r"batch must be a course_utils.request_tasks.RequestBatch, got Tensor"),
    C("refusal.one_pair_vector", "index past the batch", lambda: rf.one_pair_vector(rq_model(), tokens(2, 7), tokens(2, 7), 1, 5), ValueError,
      r"index must be an int in \[0, 1\] \(a pair of the batch\), got 5"),
    C("refusal.refusal_function_vector", "k past the heads", lambda: rf.refusal_function_vector(rq_model(), tokens(2, 7), tokens(2, 7), 29, 9),
      ValueError, r"k must be an int in \[0, 4\]"),
    C("refusal.steering_effects", "harmless tokens, not a batch", lambda: rf.steering_effects(rq_model(), tokens(2, 7), floats(16), 1, 29),
      TypeError, r"harmless must be a course_utils.request_tasks.RequestBatch, got Tensor"),
    C("refusal.study", "data an ICLTasks", lambda: rf.study(rq_model(), icl(), 1), TypeError, r"data must be a course_utils.request_tasks.Requests, got ICLTasks"),
    C("zoo.evaluate_request_tasks", "language an ICLTasks", lambda: zoo.evaluate_request_tasks(rq_model(), icl()), TypeError,
      r"language must be a course_utils.request_tasks.Requests, got ICLTasks"),
    C("zoo_build.request_tasks_seed_study", "a recipe of another kind", lambda: zoo_build.request_tasks_seed_study("icl_tasks", [1], "/nonexistent"),
      ValueError, r"name must be a recipe of requests .*got 'icl_tasks'"),

    # -- in_context_regression (notebook 13) --
    C("model.Config", "d_input 0", lambda: Config(d_input=0), ValueError, r"Config\.d_input must be a positive int, got 0"),
    C("bridge.to_bridge", "a model that reads vectors", lambda: bridge.to_bridge(vector_model()), ValueError,
      r"model reads vectors \(Config\.d_input=3, notebook 13\)"),
    C("validate.vectors", "token ids", lambda: validate.vectors(tokens(2, 4, 3), Config(d_input=3)), TypeError,
      r"inputs must be a floating-point tensor, got dtype torch\.int64"),
    C("validate.vectors", "wrong d_input", lambda: validate.vectors(floats(2, 4, 5), Config(d_input=3)), ValueError,
      r"inputs must have shape \[batch, pos, d_input=3\], got shape \(2, 4, 5\)"),
    C("model.Transformer", "vectors and return_type loss", lambda: vector_model()(floats(2, 4, 3), return_type="loss"), ValueError,
      r"return_type must be 'logits' or None for a model that reads vectors .*got 'loss'"),
    C("in_context_regression.LinearRegressionTasks", "d 0", lambda: icr.LinearRegressionTasks(d=0), ValueError, r"d must be a positive int, got 0"),
    C("in_context_regression.LinearRegressionTasks", "noise -1", lambda: icr.LinearRegressionTasks(noise=-1.0), ValueError, r"noise must be .*got -1\.0"),
    C("in_context_regression.LinearRegressionTasks", "anisotropy 0.5", lambda: icr.LinearRegressionTasks(anisotropy=0.5), ValueError,
      r"anisotropy must be a number >= 1 .*got 0\.5"),
    C("in_context_regression.LinearRegressionTasks", "sparsity 1", lambda: icr.LinearRegressionTasks(sparsity=1.0), ValueError,
      r"sparsity must be a number in \[0, 1\) .*got 1\.0"),
    C("in_context_regression.LinearRegressionTasks", "unknown field", lambda: icr.LinearRegressionTasks.from_dict({"dim": 3}), ValueError,
      r"unknown LinearRegressionTasks fields \['dim'\]"),
    C("in_context_regression.interleave", "ys one point short", lambda: icr.interleave(floats(2, 4, 3), floats(2, 3)), ValueError,
      r"xs \[batch, point, d\] and ys \[batch, point\] must agree, got shapes \(2, 4, 3\) and \(2, 3\)"),
    C("in_context_regression.interleave", "xs without a batch axis", lambda: icr.interleave(floats(4, 3), floats(2, 4)), ValueError,
      r"xs must have shape \[batch, point, d\]"),
    C("in_context_regression.prediction_loss", "two outputs", lambda: icr.prediction_loss(floats(2, 8, 2), floats(2, 4)), ValueError,
      r"outputs must be \[batch, 2 point, 1\] for ys \[batch, point\], got shapes \(2, 8, 2\) and \(2, 4\)"),
    C("in_context_regression.model_predictions", "not a model", lambda: icr.model_predictions("m", floats(2, 4, 2), floats(2, 4)), TypeError,
      r"model must be a course_utils Transformer"),
    C("in_context_regression.error_curve", "d a float", lambda: icr.error_curve(floats(2, 4), floats(2, 4), 5.0), TypeError,
      r"d must be a positive int, got 5\.0"),
    C("in_context_regression.error_curve", "shapes differ", lambda: icr.error_curve(floats(2, 4), floats(2, 5), 5), ValueError,
      r"predictions .*shape"),
    C("in_context_regression.least_squares_predictions", "ys with NaN", lambda: icr.least_squares_predictions(floats(2, 4, 3), torch.full((2, 4), float("nan"))),
      ValueError, r"ys contains NaN or inf"),
    C("in_context_regression.ridge_predictions", "lam 0", lambda: icr.ridge_predictions(floats(2, 4, 3), floats(2, 4), 0.0), ValueError,
      r"lam must be a finite number > 0, got 0\.0"),
    C("in_context_regression.nearest_neighbour_predictions", "n_neighbours 0", lambda: icr.nearest_neighbour_predictions(floats(2, 4, 3), floats(2, 4), 0),
      ValueError, r"n_neighbours must be a positive int, got 0"),
    C("in_context_regression.averaging_predictions", "int xs", lambda: icr.averaging_predictions(tokens(2, 4, 3), floats(2, 4)), TypeError,
      r"xs must be a floating-point tensor"),
    C("in_context_regression.gd_predictions", "steps 0", lambda: icr.gd_predictions(floats(2, 4, 3), floats(2, 4), 0.1, 0), ValueError,
      r"steps must be a positive int, got 0"),
    C("in_context_regression.gd_fit", "lrs empty", lambda: icr.gd_fit(floats(2, 4), floats(2, 4, 3), floats(2, 4), 1, ()), ValueError,
      r"lrs must be a non-empty sequence of positive numbers, got \(\)"),
    C("in_context_regression.probe_r2", "n_train = all", lambda: icr.probe_r2(floats(10, 4), floats(10, 2), 10), ValueError,
      r"n_train must leave samples to score the probe on: below 10, got 10"),
    C("in_context_regression.probe_r2", "sample counts differ", lambda: icr.probe_r2(floats(10, 4), floats(9, 2), 5), ValueError,
      r"acts and targets must have the same number of samples, got 10 and 9"),
    C("in_context_regression.residual_at", "point past the prompt", lambda: icr.residual_at(vector_model(), floats(2, 2, 2), floats(2, 2), 2), ValueError,
      r"point must be .*got 2"),
    C("in_context_regression.min_norm_estimate", "k past the prompt", lambda: icr.min_norm_estimate(floats(2, 4, 3), floats(2, 4), 5), ValueError,
      r"k must be .*got 5"),
    C("in_context_regression.study", "tasks a dict", lambda: icr.study(vector_model(), {"d": 2}), TypeError,
      r"tasks must be a course_utils\.in_context_regression\.LinearRegressionTasks, got dict"),
    *[C(f"checks.{check.__name__}", "fn not a function", lambda check=check: check(None), checks.ExerciseError, r"expected a function as fn.*got NoneType")
      for check in (checks.check_interleave, checks.check_least_squares_predictions, checks.check_ridge_predictions,
                    checks.check_nearest_neighbour_predictions, checks.check_error_curve, checks.check_gd_predictions,
                    checks.check_probe_r2, checks.check_sweep_curves)],
    C("in_context_regression.sweep_curves", "unknown property", lambda: icr.sweep_curves(vector_model(), icr.LinearRegressionTasks(d=2, n_points=4), "dimension", [3]),
      ValueError, r"prop must be one of .*got 'dimension'"),
    C("in_context_regression.sweep_curves", "values empty", lambda: icr.sweep_curves(vector_model(), icr.LinearRegressionTasks(d=2, n_points=4), "noise", []),
      ValueError, r"values must be a non-empty list of values of noise, got \[\]"),
]

# Public names that need no bad-input case, each with the reason.
EXEMPT = {
    "zoo.names",  # takes no input
    "numerics.zoo_environment",  # takes no input
    "numerics.applies_here",  # takes no input
    "numerics.current",  # takes no input
    "zoo.Recipe",  # a frozen record of (description, Config, SyntheticLanguage, TrainConfig); those have cases
    "data.Batch",  # a record of two tensors returned by SyntheticLanguage.sample; never built from user input
    "train.TrainResult",  # a record returned by train; never built from user input
    "checks.ExerciseError",  # the error the checks raise, not a function that takes input
    "viz.CircuitsVisView",  # what attention_heads and colored_tokens return; never built from user input
    "viz.reset_views",  # takes no input
    "icl_tasks.Prompts",  # a record of three tensors returned by ICLTasks.prompts; never built from user input
    "sae.course_sae_recipe",  # takes no input
    "superposition_study.build_course_sae",  # takes no input (a maintainer command)
    "failure_modes.illusion_layer",  # takes no input
    "in_context_regression.Prompts",  # a record of tensors returned by LinearRegressionTasks.sample; never built from user input
    "multiple_choice.Questions",  # a record of tensors returned by MultipleChoice.questions; never built from user input
    "request_tasks.RequestBatch",  # a record of tensors returned by Requests.prompts; never built from user input
}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case: Case):
    with pytest.raises(case.error, match=case.match):
        case.call()


def public_objects() -> dict[str, object]:
    """{"module.name": object} for every public function and class defined in a course_utils module
    ("course_utils.setup" for the package itself, "zoo.load" for a submodule)."""
    import maintainer

    modules = {"course_utils": course_utils}
    for package in (course_utils, maintainer):
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                modules[info.name] = importlib.import_module(f"{package.__name__}.{info.name}")

    def defined_in(obj, module) -> bool:  # a subpackage (checks) counts what its modules define and it re-exports
        inside = hasattr(module, "__path__") and module is not course_utils
        return obj.__module__ == module.__name__ or inside and obj.__module__.startswith(module.__name__ + ".")

    return {f"{short}.{name}": obj
            for short, module in modules.items() for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and defined_in(obj, module)}


def test_every_public_function_has_a_case():
    public = public_objects()
    covered = {c.target for c in CASES}
    assert not covered - set(public), f"cases name things that are not public: {sorted(covered - set(public))}"
    assert not EXEMPT - set(public), f"exemptions name things that are not public: {sorted(EXEMPT - set(public))}"
    assert not EXEMPT & covered, f"exempt but tested (drop the exemption): {sorted(EXEMPT & covered)}"
    missing = sorted(set(public) - covered - EXEMPT)
    assert not missing, (
        f"{len(missing)} public functions/classes have no bad-input case in tests/test_bad_input.py "
        f"(add one to CASES, or to EXEMPT with a reason if it takes no input): {missing}")


def test_the_table_is_large():
    """The count of cases is reported with the issue; keep it from shrinking unnoticed."""
    print(f"{len(CASES)} bad-input cases over {len({c.target for c in CASES})} public functions and classes")
    assert len(CASES) >= 435 + 170  # issue 16 added the 'plausible and wrong' families
    assert len({c.id for c in CASES}) == len(CASES), "two cases share an id"
