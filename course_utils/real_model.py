"""GPT-2 small for the optional "On a real model" sections at the end of notebooks 03-07.

`gpt2()` boots GPT-2 small with `TransformerBridge.boot_transformers("gpt2")` where a model hub is
reachable (Colab, a laptop online) or GPT-2 is already in the local Hugging Face cache. Where neither
holds it prints one line saying how to run the section and returns None; the section's cells then do
nothing, and nothing else in the notebook depends on them.

With the environment variable `CIRCUITS_GPT2=random` it builds, locally and without a download,
GPT-2 small's architecture with random weights and a word-level stand-in tokenizer (one token per
word). The course's tests run the sections that way, so that every call in them is exercised; the
numbers mean nothing then, and `is_pretrained` is False, so the sections assert published findings
only on the real model.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import torch

from . import validate

ENV = "CIRCUITS_GPT2"
OFFLINE_MESSAGE = ("GPT-2 small cannot be downloaded here (no model hub reachable and no local copy): this optional "
                   "section is skipped. Run the notebook in Colab or on a machine online to see it.")
# Words of the sections' prompts, for the stand-in tokenizer (any other word becomes <|endoftext|>).
STAND_IN_WORDS = ("When Mary and John went to the store , gave a drink to . The cat sat on mat dog ran in park "
                  "hot cold big small up down fast slow happy sad old young light dark good bad -> : \n"
                  "France Paris Japan Tokyo Italy Rome Spain Madrid Germany Berlin Egypt Cairo capital of is").split(" ")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub's host accepts a connection (a quick check, so that a machine
    with no network skips the section in a fraction of a second instead of waiting on retries)."""
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _cached() -> bool:
    """Whether GPT-2 small's config is in the local Hugging Face cache (from an earlier download)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache("openai-community/gpt2", "config.json"), str)


def _stand_in_tokenizer():
    """A word-level tokenizer with GPT-2's special token: one token per whitespace-separated word."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<|endoftext|>", *dict.fromkeys(w for w in STAND_IN_WORDS if w.strip())]
    tokenizer = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<|endoftext|>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    special = "<|endoftext|>"
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=special, eos_token=special, unk_token=special,
                                   pad_token=special, add_bos_token=True, name_or_path="course-stand-in")


def _random_gpt2(device):
    from transformer_lens import TransformerBridge
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf_model = GPT2LMHeadModel(GPT2Config()).eval()  # GPT2Config() is GPT-2 small's architecture
    bridge = TransformerBridge.boot_transformers("gpt2", hf_model=hf_model, tokenizer=_stand_in_tokenizer(), device=device)
    bridge.course_stand_in = True
    return bridge.eval()


def gpt2(device: str | torch.device = "cpu"):
    """GPT-2 small as a TransformerBridge, in eval mode, or None (after printing why) where it cannot
    be had. `CIRCUITS_GPT2=random` in the environment builds a random-weight stand-in instead."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device such as 'cpu' or 'cuda', got {type(device).__name__}")
    mode = os.environ.get(ENV, "")
    if mode not in ("", "random"):
        raise ValueError(f"the environment variable {ENV} must be unset or 'random', got {mode!r}")
    if mode == "random":
        print("GPT-2 small's architecture with RANDOM weights and a stand-in tokenizer (CIRCUITS_GPT2=random): "
              "the code runs, the numbers mean nothing")
        return _random_gpt2(device)
    if not (_hub_reachable() or _cached()):
        print(OFFLINE_MESSAGE)
        return None
    from transformer_lens import TransformerBridge

    return TransformerBridge.boot_transformers("gpt2", device=device).eval()


def is_pretrained(model) -> bool:
    """True for the real GPT-2 small, False for the random-weight stand-in: the sections assert
    published findings only when this is True."""
    validate.model(model)
    return not getattr(model, "course_stand_in", False)
