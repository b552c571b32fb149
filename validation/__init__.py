"""memlab.validation: checks of the theory against trained models (PyTorch backend).

This layer is the only one allowed to import torch, and it does so lazily, so
``import memlab`` and ``import memlab.validation`` work without torch installed.
The PyTorch trainers arrive with the validation issues; install them with
``pip install -e ".[torch]"`` (CPU: ``pip install torch==2.13.0``).
"""

__all__: list[str] = []
