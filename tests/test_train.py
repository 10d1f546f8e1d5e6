import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from course_utils.data import SyntheticLanguage
from course_utils.model import Config, Transformer
from course_utils.train import (TrainConfig, list_checkpoints, load_checkpoint, load_model, pick_device,
                                read_safetensors, train)

LANG = SyntheticLanguage(d_vocab=32, n_ctx=16, successors=4, min_span=3, max_span=6)
CFG = Config(d_vocab=32, n_ctx=16, d_model=16, n_heads=2, n_layers=2, seed=1)
TCFG = TrainConfig(steps=24, batch_size=8, lr=1e-2, warmup_steps=5, checkpoint_every=5)


def batches(step):
    return LANG.batch(step, 8)


def trained(tmp_path=None, **kwargs):
    model = Transformer(CFG)
    result = train(model, batches, TCFG, checkpoint_dir=tmp_path, progress=False, **kwargs)
    return model, result


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_training_lowers_the_loss_and_is_deterministic():
    a, ra = trained()
    b, rb = trained()
    assert same_weights(a, b) and ra.losses == rb.losses
    assert sum(ra.losses[-4:]) / 4 < sum(ra.losses[:4]) / 4 - 0.3


def test_checkpoints_follow_the_schedule_and_leave_no_temporary_files(tmp_path):
    _, result = trained(tmp_path)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        f"step_{s:06d}.safetensors" for s in (5, 10, 15, 20, 24)]
    assert not list(tmp_path.glob("*.tmp"))
    model = load_model(tmp_path / "step_000024.safetensors")
    assert same_weights(model, trained()[0])


def test_stopped_run_resumes_to_the_same_weights(tmp_path):
    reference, ref_result = trained()
    model = Transformer(CFG)
    partial = train(model, batches, TCFG, checkpoint_dir=tmp_path, progress=False, stop_at=13)
    assert len(partial.losses) == 13
    resumed = Transformer(CFG)  # a fresh process would start from a fresh model
    result = train(resumed, batches, TCFG, checkpoint_dir=tmp_path, progress=False)
    assert same_weights(resumed, reference)
    assert result.losses == ref_result.losses


def test_keyboard_interrupt_saves_and_resumes(tmp_path):
    reference, _ = trained()
    calls = {"n": 0}

    def interrupting(step):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return batches(step)

    with pytest.raises(KeyboardInterrupt, match="after step 7.*resumes"):
        train(Transformer(CFG), interrupting, TCFG, checkpoint_dir=tmp_path, progress=False)
    assert list_checkpoints(tmp_path)[-1].name == "step_000007.safetensors"
    resumed = Transformer(CFG)
    train(resumed, batches, TCFG, checkpoint_dir=tmp_path, progress=False)
    assert same_weights(resumed, reference)


def test_killed_process_resumes_from_its_last_checkpoint(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_train import CFG, TCFG, LANG
        from course_utils.model import Transformer
        from course_utils.train import train
        def batches(step):
            if step == 17:
                os.kill(os.getpid(), signal.SIGKILL)  # dies mid-run, between checkpoints
            return LANG.batch(step, 8)
        train(Transformer(CFG), batches, TCFG, checkpoint_dir={str(tmp_path)!r}, progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert list_checkpoints(tmp_path)[-1].name == "step_000015.safetensors"
    resumed = Transformer(CFG)
    train(resumed, batches, TCFG, checkpoint_dir=tmp_path, progress=False)
    assert same_weights(resumed, trained()[0])


def test_a_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    trained(tmp_path)
    path = list_checkpoints(tmp_path)[-1]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(path)
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_safetensors(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        read_safetensors(tmp_path / "missing.safetensors")


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    trained(tmp_path)
    other = Transformer(Config(d_vocab=32, n_ctx=16, d_model=16, n_heads=4, n_layers=2))
    with pytest.raises(ValueError, match="saved from a model with config"):
        load_checkpoint(list_checkpoints(tmp_path)[-1], other)


def test_bad_training_arguments():
    with pytest.raises(ValueError, match="steps must be a positive int, got 0"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="device must be"):
        TrainConfig(device="tpu")
    with pytest.raises(ValueError, match="lr must be > 0"):
        TrainConfig(lr=0)
    with pytest.raises(TypeError, match="course_utils Transformer"):
        train(torch.nn.Linear(2, 2), batches, TCFG)
    with pytest.raises(TypeError, match="batches must be a function"):
        train(Transformer(CFG), [1, 2], TCFG)


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
