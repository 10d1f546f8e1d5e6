"""course_utils: the thin library behind Circuits from Scratch.

One module per idea: `data` (generated data sets), `model` (the course's transformer and its
conversion to TransformerLens's TransformerBridge), `train` (the one training loop), `metrics`
(scores read off attention patterns), `zoo` (the shipped models), `checks` (exercise checks).
"""

__version__ = "0.1.0"


def setup(seed: int = 0):
    """The first call in every notebook: seeds torch, picks the device, and says what it found.

    Returns the device the notebook should use (CUDA or MPS when present, else the CPU).
    """
    from importlib.metadata import version

    import torch

    from .train import pick_device

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    torch.manual_seed(seed)
    device = pick_device("auto")
    print(f"course_utils {__version__} | torch {torch.__version__} | "
          f"transformer-lens {version('transformer-lens')} | "
          f"device: {device}")
    return device
