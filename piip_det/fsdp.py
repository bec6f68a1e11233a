"""FSDP unit boundaries for PIIP models (used by ``configs/piip/_base_/strategies/fsdp_cp.py``).

mmengine's ``FSDPStrategy`` resolves ``auto_wrap_policy`` and the activation-checkpointing
``check_fn`` by name through its ``FUNCTIONS`` registry (dotted import paths work), so both
are plain module-level functions here. The unit is one transformer block of any branch
(``DeiTBlock``, ``InternViTBlock``) and one interaction block: the largest pieces that are
gathered at once, and the pieces whose activations are recomputed in backward.
"""
from torch import nn


def block_types():
    """The classes that form one FSDP unit / one checkpointed region."""
    from piip_det.models.backbones.interaction import InteractionBlock
    from piip_det.models.backbones.vit import DeiTBlock, InternViTBlock
    return DeiTBlock, InternViTBlock, InteractionBlock


def is_block(module: nn.Module) -> bool:
    """``check_fn`` of ``activation_checkpointing``: True for a ViT or interaction block."""
    return isinstance(module, block_types())


def block_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """``auto_wrap_policy`` of ``MMFullyShardedDataParallel``: one FSDP unit per block (the rest
    of the model -- embeddings, merges, neck, heads -- stays in the root unit)."""
    return True if recurse else is_block(module)
