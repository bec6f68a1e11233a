"""Multi-scale deformable attention sampling (Deformable DETR), one function for every device.

The dispatch is explicit: tensors on CUDA go through mmcv's compiled op
(``MultiScaleDeformableAttnFunction``), everything else through an exact
pure-PyTorch path built on ``F.grid_sample`` (bilinear, zero padding,
``align_corners=False``, the op's sampling convention). The import is a plain
import: an mmcv without the op fails loudly here instead of disabling a feature
later. The math always runs in fp32 with autocast off; the result is cast back
to the dtype of ``value``.
"""
import math

import torch
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction


def multi_scale_deformable_attn(value, spatial_shapes, level_start_index, sampling_locations,
                                attention_weights, im2col_step=64):
    """Weighted bilinear sampling of ``value`` at the given locations.

    Args:
        value (Tensor): ``(B, N_kv, heads, d_head)``, the levels flattened one after
            the other, ``N_kv = sum_l h_l * w_l``.
        spatial_shapes (Tensor): ``(L, 2)`` long, ``(h_l, w_l)`` per level.
        level_start_index (Tensor): ``(L,)`` long, offset of each level in ``N_kv``.
        sampling_locations (Tensor): ``(B, N_q, heads, L, P, 2)``, normalised
            ``(x, y)``; ``(0, 0)`` is the top-left corner, ``(1, 1)`` the bottom-right.
        attention_weights (Tensor): ``(B, N_q, heads, L, P)``.
        im2col_step (int): batch chunk of the CUDA op (made to divide ``B``).

    Returns:
        Tensor: ``(B, N_q, heads * d_head)`` in the dtype of ``value``.
    """
    out_dtype = value.dtype
    with torch.autocast(device_type=value.device.type, enabled=False):
        value = value.float().contiguous()
        locations = sampling_locations.float().contiguous()
        weights = attention_weights.float().contiguous()
        if value.is_cuda:
            step = math.gcd(value.shape[0], im2col_step)
            out = MultiScaleDeformableAttnFunction.apply(
                value, spatial_shapes, level_start_index, locations, weights, step)
        else:
            out = _deformable_attn_grid_sample(value, spatial_shapes, locations, weights)
    return out.to(out_dtype)


def _deformable_attn_grid_sample(value, spatial_shapes, locations, weights):
    """Pure-PyTorch path of :func:`multi_scale_deformable_attn` (same args, fp32)."""
    b, _, heads, d_head = value.shape
    _, n_q, _, _, n_points, _ = locations.shape
    shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    grids = 2 * locations - 1                                   # grid_sample's [-1, 1] frame
    out = value.new_zeros(b * heads, d_head, n_q)
    levels = value.split([h * w for h, w in shapes], dim=1)
    for lvl, ((h, w), v) in enumerate(zip(shapes, levels)):
        v = v.permute(0, 2, 3, 1).reshape(b * heads, d_head, h, w)
        grid = grids[:, :, :, lvl].transpose(1, 2).reshape(b * heads, n_q, n_points, 2)
        sampled = F.grid_sample(v, grid, mode='bilinear', padding_mode='zeros',
                                align_corners=False)            # (B*heads, d_head, N_q, P)
        w_l = weights[:, :, :, lvl].transpose(1, 2).reshape(b * heads, 1, n_q, n_points)
        out = out + (sampled * w_l).sum(-1)
    return out.view(b, heads * d_head, n_q).transpose(1, 2).contiguous()
