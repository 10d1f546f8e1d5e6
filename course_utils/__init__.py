"""course_utils: the thin library behind Circuits from Scratch. One module per idea:

- `model`: the course's transformer, top to bottom in the order of notebook 01, with TransformerLens hook names
- `bridge`: its exact conversion to and from TransformerLens's `TransformerBridge`
- `validate`: the argument checks every module calls (one wording per rule)
- `data`: repeated random tokens, and the synthetic bigram language with copied spans
- `icl_classification`: in-context classification (Singh et al. 2024), for the clamping study
- `icl_tasks`: in-context tasks `x -> f(x)` for function vectors
- `modular_addition`: modular addition, its train/test split, and the Fourier tools to read a model that groks it
- `multiple_choice`: multiple-choice questions with fixed or randomised labels, and their mutations
- `request_tasks`: task prompts the model answers, and refuses when they mention a forbidden item (notebook 12)
- `in_context_regression`: in-context linear regression prompts, the baselines (least squares, ridge, ...) and probes (notebook 13)
- `train`: the one training loop (seeded, resumable, atomic checkpoints)
- `zoo`: the shipped models, their cards and histories, checked against the cards' checksums
- `numerics`: the CPU numerics the zoo reproduces with
- `metrics`: head scores and circuits read off attention patterns and weights
- `ablation`: zero, mean, resample, K-path and pattern-preserving ablation
- `clamping`: interventions during training, and the shipped clamping study
- `lens`: the logit lens, direct logit attribution, the tuned lens
- `patching`: activation patching and causal tracing
- `function_vectors`: mean head outputs, indirect effects, function vectors
- `correct_letter`: correct-letter heads: attention on the answer's label, OV, compressed QK, position versus label
- `superposition`: toy models of superposition, trained many at once, and measures of their features (notebook 09)
- `sae`: a sparse autoencoder, its training, and the score of the features it recovers (notebook 09)
- `failure_modes`: where the course's methods mislead, measured, and the checks that catch it (notebook 11)
- `real_model`: GPT-2 small for the optional "On a real model" sections (or a random-weight stand-in, offline)
- `refusal`: one direction: the mean difference, directional ablation, activation addition, their controls (notebook 12)
- `viz`: plots and light circuitsvis views
- `checks`: the exercise checks, one module per notebook

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
