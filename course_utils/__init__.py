"""course_utils: the thin library behind Circuits from Scratch.

One module per idea:
- `data` (repeated tokens, the synthetic language), `icl_classification` (Singh et al.-style
  in-context classification), `icl_tasks` (in-context tasks for function vectors): generated data;
- `model` (the course's transformer, top to bottom), `bridge` (its exact conversion to and from
  TransformerLens's TransformerBridge), `train` (the one training loop), `zoo` (the shipped models
  and studies);
- `metrics` (scores and circuits read off patterns and weights), `ablation` (zero, mean, resample,
  K-path and pattern-preserving ablation), `clamping` (interventions during training), `lens`
  (logit lens, direct logit attribution, tuned lens), `patching` (activation patching, causal
  tracing), `function_vectors` (mean head outputs, indirect effects, function vectors);
- `checks` (exercise checks), `viz` (plots and light circuitsvis views), `numerics` (the CPU
  numerics the zoo reproduces with);
- `validate` (the argument checks every module calls: one wording per rule).

The maintainers' tools (building the zoo and its studies, the Colab cell) live in `maintainer/`.
"""

__version__ = "0.1.0"


def setup(seed: int = 0):
    """The first call in every notebook: seeds torch, picks the device, and says what it found.

    Returns the device the notebook should use (CUDA or MPS when present, else the CPU).
    """
    from importlib.metadata import version

    import torch

    from . import validate
    from .train import pick_device

    validate.integer(seed=seed)
    torch.manual_seed(seed)
    device = pick_device("auto")
    print(f"course_utils {__version__} | torch {torch.__version__} | "
          f"transformer-lens {version('transformer-lens')} | "
          f"device: {device}")
    return device
