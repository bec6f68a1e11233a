"""PIIP backbone parts: branch ViTs, deformable attention, interactions, the N-branch PIIP."""
from .deform_attn import multi_scale_deformable_attn
from .interaction import (BidirectionalInteractionUnit, ConvFFN, InteractionBlock, Injector,
                          MSDeformAttn)
from .piip import OUTPUT_MODES, PIIP
from .vit import ARCHS, BLOCK_TYPES, DeiTBlock, InternViTBlock, RMSNorm, ViT

__all__ = [
    'ARCHS', 'BLOCK_TYPES', 'BidirectionalInteractionUnit', 'ConvFFN', 'DeiTBlock',
    'InteractionBlock', 'Injector', 'InternViTBlock', 'MSDeformAttn', 'OUTPUT_MODES', 'PIIP',
    'RMSNorm', 'ViT', 'multi_scale_deformable_attn',
]
