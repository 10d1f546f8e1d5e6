"""Damaged files never load silently, saving never leaves a half-written file, and training resumes
to the same weights wherever it was interrupted."""

import json
import random
import shutil

import pytest
import torch
from safetensors.torch import save_file

from course_utils import train as train_module
from course_utils import zoo
from course_utils.model import Transformer
from course_utils.train import atomic_save, list_checkpoints, load_checkpoint, load_model, read_safetensors, train
from test_train import CFG, TCFG, batches, same_weights, trained


@pytest.fixture
def zoo_copy(tmp_path, monkeypatch):
    """A writable copy of the shipped zoo, which the test may damage."""
    for path in zoo.ZOO_DIR.glob("attn_only_2l*"):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    return tmp_path


@pytest.mark.parametrize("damage", ["truncate", "zeros", "flip_header"])
@pytest.mark.parametrize("file, step", [("attn_only_2l.safetensors", None), ("attn_only_2l.history.safetensors", 1500)])
def test_damaged_zoo_files_give_a_clear_error(zoo_copy, damage, file, step):
    path = zoo_copy / file
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) * 2 // 3], "zeros": b"\0" * len(data),
                      "flip_header": b"\xff" * 16 + data[16:]}[damage])
    with pytest.raises(ValueError, match="does not match the checksum in its card"):
        zoo.load("attn_only_2l", step=step)


def test_a_zoo_file_missing_a_tensor_is_refused(zoo_copy):
    tensors, metadata = read_safetensors(zoo_copy / "attn_only_2l.safetensors")
    del tensors["blocks.1.attn.W_K"]
    save_file(tensors, str(zoo_copy / "attn_only_2l.safetensors"), metadata=metadata)
    with pytest.raises(ValueError, match="does not match the checksum"):
        zoo.load("attn_only_2l")
    # even with a card that vouches for the file, a missing tensor is refused before loading
    info = zoo.card("attn_only_2l")
    info["files"]["attn_only_2l.safetensors"] = zoo.sha256(zoo_copy / "attn_only_2l.safetensors")
    (zoo_copy / "attn_only_2l.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"does not hold this model's weights: missing \['blocks.1.attn.W_K'\]"):
        zoo.load("attn_only_2l")


def test_a_checkpoint_missing_a_tensor_leaves_the_model_untouched(tmp_path):
    trained(tmp_path)
    path = list_checkpoints(tmp_path)[-1]
    tensors, metadata = read_safetensors(path)
    del tensors["model.blocks.0.attn.W_Q"]
    tensors["model.blocks.0.attn.W_V"] = tensors["model.blocks.0.attn.W_V"][:1]
    save_file(tensors, str(path), metadata=metadata)
    model = Transformer(CFG)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"missing \['blocks.0.attn.W_Q'\].*blocks.0.attn.W_V has shape"):
        load_checkpoint(path, model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="does not hold this model's weights"):
        load_model(path)


def test_a_failed_save_keeps_the_old_file_and_leaves_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "weights.safetensors"
    atomic_save({"x": torch.ones(3)}, path, {"step": "1"})
    good = path.read_bytes()

    def dies_before_the_rename(fd):  # the new file is written but not yet safe on disk
        raise OSError("disk full")

    monkeypatch.setattr(train_module.os, "fsync", dies_before_the_rename)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.zeros(3)}, path, {"step": "2"})
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["weights.safetensors"]


@pytest.mark.parametrize("stop", random.Random(8).sample(range(1, TCFG.steps), 4))
def test_a_run_stopped_at_a_random_step_resumes_to_the_same_weights(tmp_path, stop):
    reference, ref_result = trained()
    train(Transformer(CFG), batches, TCFG, checkpoint_dir=tmp_path, progress=False, stop_at=stop)
    resumed = Transformer(CFG)
    result = train(resumed, batches, TCFG, checkpoint_dir=tmp_path, progress=False)
    assert same_weights(resumed, reference) and result.losses == ref_result.losses
