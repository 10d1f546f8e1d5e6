"""The course's training loops: notebook 01's bare `train_loop`, and `train`, which every zoo model
and every notebook after 01 uses:

- Deterministic: the weights start from `model.cfg.seed`, and the batch at step t is `batches(t)`,
  a function of the step alone, so a run resumed from a checkpoint sees exactly the data it would
  have seen, and ends with exactly the same weights.
- Checkpoints (`step_000100.safetensors`) hold the weights, the optimizer state, the losses so far
  and the settings. Every file is written to a temporary file and then renamed, so a crash never
  leaves half a file. They are the training history that notebooks 02 and 04 study.
- Interrupt it (Ctrl-C, or kill the process) and call `train` again with the same `checkpoint_dir`:
  it carries on from the last checkpoint, to exactly the weights of an uninterrupted run. Ctrl-C
  first saves a checkpoint, so nothing is lost; it is held back while AdamW updates the weights (one
  tensor at a time) and while a checkpoint is written, so only a complete step is ever saved.
- Resuming refuses settings that differ from the saved ones (they would mix two runs). Only `steps`
  may grow, to train a finished run further, and `device` may change.
- CPU unless you ask for a device; `device="auto"` takes CUDA or MPS when there is one.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import Tensor
from tqdm.auto import tqdm

from . import validate
from .model import Config, Transformer, last_position_loss

DEVICES = ("cpu", "cuda", "mps", "auto")


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's (torch's defaults); notebook 10's grokking run uses (0.9, 0.98)
    warmup_steps: int = 50
    checkpoint_every: int = 100  # also the spacing of the saved history
    device: str = "cpu"  # "cpu", "cuda", "mps" or "auto"

    def __post_init__(self):
        validate.positive(**{f"TrainConfig.{name}": getattr(self, name) for name in ("steps", "batch_size", "checkpoint_every")})
        validate.at_least(self.warmup_steps, 0, "TrainConfig.warmup_steps")
        validate.positive_number(**{"TrainConfig.lr": self.lr})
        decay = self.weight_decay
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < math.inf:
            raise (TypeError if isinstance(decay, bool) or not isinstance(decay, (int, float)) else ValueError)(
                f"TrainConfig.weight_decay must be a finite number >= 0, got {decay!r}")
        betas = self.betas
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"TrainConfig.betas must be a pair of numbers (beta1, beta2), got {betas!r}")
        if not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas):
            raise (ValueError if all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in betas) else TypeError)(
                f"TrainConfig.betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = tuple(float(b) for b in betas)  # a card's JSON gives a list
        if self.device not in DEVICES:
            raise ValueError(f"TrainConfig.device must be 'cpu', 'cuda', 'mps' or 'auto', got {self.device!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)  # as JSON writes it, so that a saved run compares equal
        return d


@dataclass
class TrainResult:
    losses: list[float]  # the training loss at every step
    checkpoints: list[Path] = field(default_factory=list)


def pick_device(name: str = "auto") -> torch.device:
    """"auto": CUDA if present, else MPS if present, else CPU."""
    if not (isinstance(name, torch.device) or isinstance(name, str) and name.split(":")[0] in DEVICES):
        raise ValueError(f"name must be 'cpu', 'cuda', 'mps', 'auto' or a torch.device, got {name!r}")
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then constant."""
    validate.instance(cfg, TrainConfig, "cfg")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    return cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    validate.instance(cfg, TrainConfig, "cfg")
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas)


def train_loop(model: Transformer, batches: Int[Tensor, "step batch pos"], lr: float) -> Float[Tensor, " step"]:
    """The bare training loop of notebook 01: one AdamW step per batch, in place. Returns the loss at
    every step (before that step's update). `train` below is the same loop, with warm-up, checkpoints
    and resuming."""
    validate.instance(model, Transformer, "model")
    validate.tensor(batches, "batches", "step batch pos", dtype="int")
    validate.positive_number(lr=lr)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for tokens in batches.to(model.W_E.device):
        logits = model(tokens)
        # the prediction at position t is for the token at t + 1: the last position predicts nothing
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return torch.stack(losses)


def train(
    model: Transformer,
    batches: Callable[[int], torch.Tensor],
    cfg: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    fwd_hooks: list | None = None,
    progress: bool = True,
    stop_at: int | None = None,
    loss_positions: list[int] | None = None,
) -> TrainResult:
    """Train `model` in place for `cfg.steps` steps on `batches(step)`: [batch, pos] tokens, trained
    with the next-token loss at every position, or a pair (tokens [batch, pos], answers [batch]),
    trained to predict each answer at the last position only (modular addition, notebook 10), or a
    pair (vectors [batch, pos, d_input], ys [batch, point]) for a model that reads vectors, trained
    with `in_context_regression.prediction_loss` (notebook 13).

    checkpoint_dir: where checkpoints go; if it already holds some, training resumes from the last,
        provided the model config (seed included) and the TrainConfig are the ones it was saved with
        (`steps` may grow, `device` may change). `batches` and `fwd_hooks` cannot be compared: pass
        the same ones. A directory whose run is already past `steps` (or `stop_at`) is refused:
        load an earlier checkpoint with `load_model`, or train into a new directory.
    fwd_hooks: [(hook_name, fn)] attached for the whole run (e.g. to clamp or ablate a head).
    stop_at: stop after this many steps (as if interrupted), saving a checkpoint first.
    loss_positions: count only these predictions in the loss (indices into the pos - 1 predictions;
        [-1] is the last token, as in notebook 08's multiple-choice questions, where everything
        before the answer is random). None: every next-token prediction counts.
    """
    validate.instance(model, Transformer, "model")
    if not callable(batches):
        raise TypeError(f"batches must be a function step -> tokens [batch, pos], got {type(batches).__name__}")
    validate.instance(cfg, TrainConfig, "cfg")
    if stop_at is not None and (not isinstance(stop_at, int) or isinstance(stop_at, bool) or stop_at < 0):
        raise ValueError(f"stop_at must be None or an int >= 0, got {stop_at!r}")
    if loss_positions is not None and (not isinstance(loss_positions, list) or not loss_positions
                                       or not all(isinstance(i, int) and not isinstance(i, bool) for i in loss_positions)):
        raise TypeError(f"loss_positions must be None or a non-empty list of ints, got {loss_positions!r}")
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    device = pick_device(cfg.device)
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    losses: list[float] = []
    start = 0
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    saved: list[Path] = []
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        for leftover in ckpt_dir.glob("step_*.safetensors.tmp"):  # a save cut short by a kill
            leftover.unlink()
        saved = list_checkpoints(ckpt_dir)
        if saved:
            _refuse_changed_settings(saved[-1], model, cfg, end)
            start, losses = load_checkpoint(saved[-1], model, optimizer)

    def save(step: int):
        if ckpt_dir is not None:
            path = ckpt_dir / f"step_{step:06d}.safetensors"
            save_checkpoint(path, model, optimizer, step, losses, cfg)
            if path not in saved:
                saved.append(path)

    bar = tqdm(range(start, end), initial=start, total=cfg.steps, desc="training", disable=not progress)
    try:
        # enable_grad: a notebook that turned gradients off for its analysis can still train
        with model.hooks(fwd_hooks=fwd_hooks or []), torch.enable_grad():
            for step in bar:
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(step, cfg)
                loss = _batch_loss(model, batches(step), device, loss_positions)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                # Up to here an interrupt leaves the weights as they were after the last step. From
                # here on they change, one tensor at a time: Ctrl-C waits until the step is complete.
                with _ctrl_c_deferred():
                    optimizer.step()
                    losses.append(loss.item())
                    if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == end:
                        save(step + 1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
    except KeyboardInterrupt:
        with _ctrl_c_deferred():  # a second Ctrl-C waits for this save
            save(len(losses))
        bar.close()
        raise KeyboardInterrupt(
            f"training interrupted after step {len(losses)}; a checkpoint is saved in {ckpt_dir}, and "
            f"calling train again with the same checkpoint_dir resumes from it"
            if ckpt_dir is not None else f"training interrupted after step {len(losses)}"
        ) from None
    bar.close()
    return TrainResult(losses=losses, checkpoints=saved)


def _batch_loss(model: Transformer, batch, device: torch.device, loss_positions: list[int] | None) -> Tensor:
    """The loss `train` minimises on one batch: see `train`."""
    if isinstance(batch, tuple):
        if len(batch) != 2:
            raise TypeError(f"batches(step) must return tokens [batch, pos] or a pair (tokens, answers), "
                            f"got a tuple of {len(batch)}")
        if loss_positions is not None:
            raise ValueError("loss_positions applies to token batches; a pair (tokens, answers) is already "
                             "trained on its answers only")
        tokens, answers = batch
        if tokens.is_floating_point():  # vectors and the numbers to predict (notebook 13)
            from .in_context_regression import prediction_loss
            return prediction_loss(model(tokens.to(device)), answers)
        return last_position_loss(model(tokens.to(device)), answers.to(device))
    if loss_positions is None:
        return model(batch.to(device), return_type="loss")
    per_token = model(batch.to(device), return_type="loss", loss_per_token=True)
    return per_token[:, loss_positions].mean()


@contextmanager
def _ctrl_c_deferred():
    """Hold back Ctrl-C (SIGINT) until the block is done, then deliver it. Signals only ever reach
    the main thread, so anywhere else there is nothing to hold back."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)  # now handled as usual: a KeyboardInterrupt, by default


# Settings a resumed run must share with the saved one: each changes the weights or the history.
RESUME_SETTINGS = ("batch_size", "lr", "weight_decay", "betas", "warmup_steps", "checkpoint_every")
# What a checkpoint saved before a setting existed was trained with.
_SAVED_BEFORE = {"betas": [0.9, 0.999]}


def _refuse_changed_settings(path: Path, model: Transformer, cfg: TrainConfig, end: int) -> None:
    """Refuse, before touching the model, to resume from a checkpoint of another run."""
    metadata = read_safetensors(path)[1]
    if "step" not in metadata or "train_config" not in metadata or "model_config" not in metadata:
        raise ValueError(f"{path} is not a training checkpoint (no step or settings in its metadata): "
                         f"checkpoint_dir must hold only this run's checkpoints")
    saved_model, saved_train = json.loads(metadata["model_config"]), json.loads(metadata["train_config"])
    asked_model, asked_train = model.cfg.to_dict(), cfg.to_dict()
    changed = [f"model {k}={saved_model.get(k)!r}, not {v!r}" for k, v in asked_model.items() if saved_model.get(k) != v]
    saved_train = {**_SAVED_BEFORE, **saved_train}
    changed += [f"{k}={saved_train.get(k)!r}, not {asked_train[k]!r}" for k in RESUME_SETTINGS
                if saved_train.get(k) != asked_train[k]]
    if changed:
        raise ValueError(f"cannot resume from {path}: it was saved with {'; '.join(changed)} as asked now. "
                         f"Resuming would mix two runs: use the saved settings, or a new checkpoint_dir.")
    if int(metadata["step"]) > end:
        raise ValueError(
            f"{path.parent} already holds a run trained to step {metadata['step']}, past the {end} steps asked "
            f"for: load the model at an earlier step with load_model(path) (the files are "
            f"step_NNNNNN.safetensors), or train into a new checkpoint_dir.")


# ---- checkpoints ---------------------------------------------------------------------------------


def list_checkpoints(checkpoint_dir: str | Path) -> list[Path]:
    """The checkpoints in a directory, oldest first."""
    if not Path(checkpoint_dir).is_dir():
        raise FileNotFoundError(f"checkpoint_dir must be an existing directory, got {str(checkpoint_dir)!r}")
    return sorted(Path(checkpoint_dir).glob("step_*.safetensors"))


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write `data` so that `path` is always either the old file or the complete new one: into a
    temporary file beside it, flushed to disk, then renamed over it (a rename is atomic)."""
    if not isinstance(data, bytes):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"path must be in an existing directory, got {str(path)!r}")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left if something failed: never a half-written file


def atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically (see `atomic_write`)."""
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise TypeError(f"tensors must be a dict {{name: torch.Tensor}}, got {type(tensors).__name__}")
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise TypeError(f"metadata must be a dict {{str: str}}, got {metadata!r:.80}")
    if not Path(path).parent.is_dir():
        raise FileNotFoundError(f"path must be in an existing directory, got {str(path)!r}")
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, safetensors_bytes(tensors, metadata=metadata))


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; a clear error if it is missing or damaged."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}: path must be an existing .safetensors file")
    try:
        with _ctrl_c_deferred():  # a Ctrl-C inside the reader's C code would come out as a ValueError
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
            return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {err}. "
            f"Delete it and retrain, or resume from an earlier checkpoint."
        ) from None


def save_checkpoint(path, model: Transformer, optimizer, step: int, losses: list[float], cfg: TrainConfig):
    validate.instance(model, Transformer, "model")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    validate.instance(cfg, TrainConfig, "cfg")
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    names = {p: n for n, p in model.named_parameters()}
    for p, state in optimizer.state.items():
        for key, value in state.items():
            tensors[f"optim.{names[p]}.{key}"] = torch.as_tensor(value)
    metadata = {
        "step": str(step),
        "losses": json.dumps(losses),
        "model_config": json.dumps(model.cfg.to_dict()),
        "train_config": json.dumps(cfg.to_dict()),
    }
    atomic_save(tensors, path, metadata)


def load_checkpoint(path, model: Transformer, optimizer=None) -> tuple[int, list[float]]:
    """Load weights (and optimizer state) into `model` in place; returns (step, losses)."""
    validate.instance(model, Transformer, "model")
    tensors, metadata = read_safetensors(path)
    if "step" not in metadata:
        raise ValueError(f"{path} is not a training checkpoint (no 'step' in its metadata)")
    saved_cfg = json.loads(metadata["model_config"])
    if saved_cfg != model.cfg.to_dict():
        raise ValueError(f"{path} was saved from a model with config {saved_cfg}, not {model.cfg.to_dict()}")
    device = model.W_E.device
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    validate.weights(weights, model, path)
    model.load_state_dict(weights, strict=True)
    if optimizer is not None:
        params = dict(model.named_parameters())
        state = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                name, field_name = key[len("optim."):].rsplit(".", 1)
                state.setdefault(name, {})[field_name] = value.to(device) if value.ndim else value
        order = {p: i for i, p in enumerate(optimizer.param_groups[0]["params"])}
        optim_state = optimizer.state_dict()
        optim_state["state"] = {order[params[n]]: s for n, s in state.items()}
        optimizer.load_state_dict(optim_state)
    return int(metadata["step"]), json.loads(metadata["losses"])


def load_model(path) -> Transformer:
    """A model with the weights of a checkpoint file (its config comes from the file)."""
    _, metadata = read_safetensors(path)
    if "model_config" not in metadata:
        raise ValueError(f"path must be a training checkpoint; {path} has no 'model_config' in its metadata")
    model = Transformer(Config.from_dict(json.loads(metadata["model_config"])))
    load_checkpoint(path, model)
    return model
