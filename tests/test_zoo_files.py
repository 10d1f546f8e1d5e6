"""A shipped zoo file loads only if it is exactly what its card vouches for: its checksum, the
config it carries, float32 and finite tensors. Everything else is a clear error naming the file
and what to do, never a model that loads with damaged or other weights."""

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from course_utils import zoo
from course_utils.train import read_safetensors

NAME = "attn_only_2l"


@pytest.fixture
def zoo_copy(tmp_path, monkeypatch):
    for path in zoo.ZOO_DIR.glob(f"{NAME}*"):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    return tmp_path


def rewrite(zoo_copy, tensors, metadata, vouch: bool):
    """Write a changed weights file; with vouch=True the card's checksum is updated to match it, as
    if the card had been edited along with the file, so that the other checks are what is tested."""
    path = zoo_copy / f"{NAME}.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    if vouch:
        info = json.loads((zoo_copy / f"{NAME}.json").read_text())
        info["files"][path.name] = zoo.sha256(path)
        (zoo_copy / f"{NAME}.json").write_text(json.dumps(info))


def test_every_shipped_file_has_a_checksum_that_matches():
    for name in zoo.names():
        files = zoo.card(name)["files"]
        assert f"{name}.safetensors" in files
        for filename, digest in files.items():
            assert zoo.sha256(zoo.ZOO_DIR / filename) == digest, filename


def test_a_flipped_bit_is_refused(zoo_copy):
    path = zoo_copy / f"{NAME}.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # one bit of one weight: still a valid safetensors file
    path.write_bytes(bytes(data))
    read_safetensors(path)  # readable: only the checksum can tell
    with pytest.raises(ValueError, match=rf"{NAME}.safetensors does not match the checksum in its card .*make zoo"):
        zoo.load(NAME)


@pytest.mark.parametrize("vouch", [False, True])
def test_weights_in_another_dtype_are_refused_not_cast(zoo_copy, vouch):
    tensors, metadata = read_safetensors(zoo_copy / f"{NAME}.safetensors")
    tensors["blocks.0.attn.W_Q"] = tensors["blocks.0.attn.W_Q"].double()
    rewrite(zoo_copy, tensors, metadata, vouch)
    match = r"blocks.0.attn.W_Q is torch.float64, expected torch.float32" if vouch else "checksum"
    with pytest.raises(ValueError, match=match):
        zoo.load(NAME)


def test_integer_weights_are_refused(zoo_copy):
    tensors, metadata = read_safetensors(zoo_copy / f"{NAME}.safetensors")
    tensors["embed.W_E"] = tensors["embed.W_E"].to(torch.int32)
    rewrite(zoo_copy, tensors, metadata, vouch=True)
    with pytest.raises(ValueError, match=r"embed.W_E is torch.int32, expected torch.float32"):
        zoo.load(NAME)


def test_nan_weights_are_refused(zoo_copy):
    tensors, metadata = read_safetensors(zoo_copy / f"{NAME}.safetensors")
    tensors["unembed.W_U"][3, 7] = float("nan")
    rewrite(zoo_copy, tensors, metadata, vouch=True)
    with pytest.raises(ValueError, match=r"unembed.W_U holds NaN or inf"):
        zoo.load(NAME)


@pytest.mark.parametrize("field, value", [("d_head", 8), ("n_heads", 8), ("act_fn", "relu")])
def test_a_card_that_disagrees_with_the_file_is_refused(zoo_copy, field, value):
    info = json.loads((zoo_copy / f"{NAME}.json").read_text())
    info["model"][field] = value
    (zoo_copy / f"{NAME}.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"was built with another config than its card records"):
        zoo.load(NAME)


def test_a_card_without_checksums_is_refused(zoo_copy):
    info = json.loads((zoo_copy / f"{NAME}.json").read_text())
    del info["files"]
    (zoo_copy / f"{NAME}.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=rf"the card of {NAME} records no checksum for {NAME}.safetensors"):
        zoo.load(NAME)


def test_a_missing_history_file_says_what_to_do(zoo_copy):
    (zoo_copy / f"{NAME}.history.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"history.safetensors is missing: reinstall the course"):
        zoo.load(NAME, step=150)
    zoo.load(NAME)  # the final weights are a file of their own
