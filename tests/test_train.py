import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from course_utils.data import SyntheticLanguage
from course_utils.model import Config, Transformer
from course_utils.train import (TrainConfig, atomic_write, list_checkpoints, load_checkpoint, load_model, pick_device,
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


def test_resuming_with_other_settings_is_refused(tmp_path):
    from dataclasses import replace

    train(Transformer(CFG), batches, TCFG, checkpoint_dir=tmp_path, progress=False, stop_at=13)
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"cannot resume from .*step_000013.*lr=0.01, not 0.02 .*new checkpoint_dir"):
        train(Transformer(CFG), batches, replace(TCFG, lr=2e-2), checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"batch_size=8, not 4"):
        train(Transformer(CFG), batches, replace(TCFG, batch_size=4), checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"model seed=1, not 2"):
        train(Transformer(replace(CFG, seed=2)), batches, TCFG, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"trained to step 13, past the 10 steps asked for.*load_model"):
        train(Transformer(CFG), batches, replace(TCFG, steps=10), checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"trained to step 13, past the 12 steps asked for"):
        train(Transformer(CFG), batches, TCFG, checkpoint_dir=tmp_path, progress=False, stop_at=12)
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == before  # nothing written
    # The same step, asked again, is the finished run.
    again = Transformer(CFG)
    result = train(again, batches, TCFG, checkpoint_dir=tmp_path, progress=False, stop_at=13)
    assert len(result.losses) == 13 and same_weights(again, load_model(tmp_path / "step_000013.safetensors"))


def test_a_finished_run_trains_further_to_the_weights_of_one_longer_run(tmp_path):
    from dataclasses import replace

    longer = replace(TCFG, steps=30)
    straight = Transformer(CFG)
    straight_result = train(straight, batches, longer, progress=False)
    trained(tmp_path)  # 24 steps
    extended = Transformer(CFG)
    result = train(extended, batches, longer, checkpoint_dir=tmp_path, progress=False)
    assert same_weights(extended, straight) and result.losses == straight_result.losses


def test_leftover_temporary_files_are_removed(tmp_path):
    train(Transformer(CFG), batches, TCFG, checkpoint_dir=tmp_path, progress=False, stop_at=10)
    # What a kill during a save leaves: a temporary file (here half a checkpoint).
    (tmp_path / "step_000015.safetensors.tmp").write_bytes((tmp_path / "step_000010.safetensors").read_bytes()[:99])
    resumed = Transformer(CFG)
    train(resumed, batches, TCFG, checkpoint_dir=tmp_path, progress=False)
    assert not list(tmp_path.glob("*.tmp"))
    assert same_weights(resumed, trained()[0])


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "card.json"
    atomic_write(path, b"old")
    assert path.read_bytes() == b"old"

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["card.json"]


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
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        TrainConfig(lr=0)
    with pytest.raises(TypeError, match=r"course_utils\.model\.Transformer"):
        train(torch.nn.Linear(2, 2), batches, TCFG)
    with pytest.raises(TypeError, match="batches must be a function"):
        train(Transformer(CFG), [1, 2], TCFG)


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda", "mps")


# ---- Ctrl-C at any instant ---------------------------------------------------------------------------
# A profiler counts every Python and C call the training loop makes; an interrupt is fired (a real
# SIGINT, as Ctrl-C sends) at a chosen count, so it lands anywhere: in the batch, the forward, the
# backward, inside AdamW's tensor-by-tensor update, inside the checkpoint save.


def _phase(frame) -> str:
    """The part of a training step that `frame` is in: what `train` itself called."""
    while frame is not None and frame.f_back is not None and frame.f_back.f_code is not train.__code__:
        frame = frame.f_back
    if frame is None or frame.f_back is None:
        return "loop"
    code = frame.f_code
    if "torch/optim" in code.co_filename.replace("\\", "/"):
        return "optimizer step"
    return {"batches": "batch", "_wrapped_call_impl": "forward", "_call_impl": "forward", "_batch_loss": "forward",
            "backward": "backward", "save": "save"}.get(code.co_name, "loop")


def _train_interrupted_at(tmp_path, event: int | None):
    """Train into tmp_path, sending SIGINT at the `event`-th profiler event (None: never).
    Returns True if the run was interrupted."""
    count = 0

    def profiler(frame, what, arg):
        nonlocal count
        count += 1
        if count == event:
            signal.raise_signal(signal.SIGINT)

    sys.setprofile(profiler)
    try:
        train(Transformer(CFG), batches, TCFG, checkpoint_dir=tmp_path, progress=False)
        return False
    except KeyboardInterrupt:
        return True
    finally:
        sys.setprofile(None)


def _events_by_phase(tmp_path) -> dict[str, list[int]]:
    """Run once, uninterrupted, recording the phase of every profiler event (after a first run that
    makes the imports a first call does, so that every run makes the same calls)."""
    train(Transformer(CFG), batches, TCFG, checkpoint_dir=tmp_path / "warm-up", progress=False)
    phases: list[str] = []
    sys.setprofile(lambda frame, what, arg: phases.append(_phase(frame)))
    try:
        train(Transformer(CFG), batches, TCFG, checkpoint_dir=tmp_path / "calibration", progress=False)
    finally:
        sys.setprofile(None)
    by_phase: dict[str, list[int]] = {}
    for index, phase in enumerate(phases, start=1):
        by_phase.setdefault(phase, []).append(index)
    return by_phase


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal or a notebook, also where the tests were
    started with SIGINT ignored (a background job, some CI runners)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_interrupt_at_any_instant_resumes_to_the_same_weights(tmp_path, ctrl_c_raises):
    import random

    reference, ref_result = trained()
    by_phase = _events_by_phase(tmp_path)
    assert {"batch", "forward", "backward", "optimizer step", "save"} <= by_phase.keys(), by_phase.keys()
    rng = random.Random(0)
    everywhere = [i for events in by_phase.values() for i in events]
    # Ten instants in each phase, then up to two more interrupts, anywhere, in the resumed runs.
    trials = [(phase, rng.choice(events)) for phase, events in sorted(by_phase.items()) for _ in range(10)]
    interrupted, failures = 0, []
    for n, (phase, event) in enumerate(trials):
        run_dir = tmp_path / f"run{n}"
        events = [event, rng.choice(everywhere), rng.choice(everywhere), None]
        interrupted += sum(_train_interrupted_at(run_dir, e) for e in events)
        assert not list(run_dir.glob("*.tmp"))
        resumed = load_model(list_checkpoints(run_dir)[-1])
        _, metadata = read_safetensors(list_checkpoints(run_dir)[-1])
        if not same_weights(resumed, reference) or json.loads(metadata["losses"]) != ref_result.losses:
            failures.append(f"interrupts at events {events[:3]}, the first in the {phase}")
    assert interrupted >= len(trials)
    assert not failures, f"{len(failures)} of {len(trials)} interrupted runs differ: {failures}"


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="sends SIGINT to the main thread (POSIX)")
def test_ctrl_c_from_another_thread_at_random_times_resumes_to_the_same_weights(tmp_path, ctrl_c_raises):
    """As a learner's Ctrl-C arrives: from outside, at any time. Each run is interrupted once."""
    import random
    import threading
    import time

    reference, ref_result = trained()
    start = time.perf_counter()
    trained(tmp_path / "timing")
    duration = time.perf_counter() - start
    rng = random.Random(1)
    interrupted = 0
    for n in range(20):
        run_dir = tmp_path / f"run{n}"
        timer = threading.Timer(rng.uniform(0, duration), signal.pthread_kill,
                                (threading.main_thread().ident, signal.SIGINT))
        try:
            timer.start()
            train(Transformer(CFG), batches, TCFG, checkpoint_dir=run_dir, progress=False)
            timer.cancel()
            timer.join()
        except KeyboardInterrupt:
            interrupted += 1
            timer.join()
        resumed = Transformer(CFG)
        result = train(resumed, batches, TCFG, checkpoint_dir=run_dir, progress=False)
        assert same_weights(resumed, reference), f"run {n} differs after an interrupt"
        assert result.losses == ref_result.losses
    assert interrupted >= 5


def test_training_works_where_gradients_were_turned_off(tmp_path):
    """Notebook 04 turns gradients off for its ablation half, then retrains (RETRAIN = True)."""
    torch.set_grad_enabled(False)
    try:
        model, result = trained(tmp_path)
    finally:
        torch.set_grad_enabled(True)
    assert len(result.losses) == TCFG.steps and result.losses[-1] < result.losses[0]
