"""bf16 autocast training where mmengine's ``AmpOptimWrapper`` refuses the device.

mmengine's ``AmpOptimWrapper`` asserts a GPU / NPU / MLU / MUSA; bf16 needs no loss scaling,
so on CPU the same recipe is an ``OptimWrapper`` whose step runs under
``torch.autocast(device, dtype=bfloat16)``. :func:`holodrive.engine.cli.prepare_config`
swaps a config's ``AmpOptimWrapper`` (bf16) for this one when CUDA is absent, so the
full-size configs and ``tools/train.py --amp`` run on CPU-only machines.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class Bf16AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` with the forward under bf16 autocast on the model's device type.

    Args:
        device_type (str | None): autocast device; None = the device of the first parameter.
        **kwargs: those of :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self, device_type=None, **kwargs):
        super().__init__(**kwargs)
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model):
        device = self.device_type or next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device_type=device,
                                                          dtype=torch.bfloat16):
            yield
