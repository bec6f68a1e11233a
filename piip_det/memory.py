"""Estimated per-GPU training memory of a PIIP / ViT detector config, under its strategy.

Two parts, both for ``num_gpus`` data-parallel ranks:

- **model states** from the parameter count ``P`` of the whole model (built on meta):
  fp32 weights (4 B), fp32 gradients (4 B) and the two AdamW moments (8 B) per parameter.
  Under FSDP (``FULL_SHARD``, ZeRO-3) each is divided by ``num_gpus``; on top, the gathered
  fp32 copy of the units being computed is resident: the root unit (every parameter that is
  not in a block: embeddings, merges, FPN, neck, heads) plus two blocks (the running one and
  the prefetched one), and the unsharded gradient of one block. Under DDP every rank holds
  all of it.
- **activations**, *measured*: the backbone is run forward on the meta device at
  ``(batch, 3, H, W)`` with grads enabled, and every tensor autograd saves for backward is
  summed once per storage (parameters excluded; floating tensors at ``act_bytes`` per element,
  2 for bf16 training). Attention is counted as a memory-efficient kernel stores it (q, k, v,
  out and a per-row logsumexp; no ``N x N`` matrix), as SDPA's flash / efficient kernels do on
  GPU. With activation checkpointing on every block, a block keeps only its input, and the
  largest block's saved tensors exist once more during its recomputation.

Not counted (stated in the output): neck / head activations, the CUDA context, allocator
fragmentation, communication buffers and the data pipeline.
"""
import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

GIB = 1024 ** 3


@dataclass
class ActivationReport:
    """Saved-for-backward bytes of one forward (see module docstring)."""
    total: int            # every saved tensor, no checkpointing
    per_block: list       # [(saved bytes inside the block, bytes of the block's input)]

    @property
    def checkpointed(self) -> int:
        """Bytes kept with every block checkpointed, plus one block's recomputation."""
        inside = sum(s for s, _ in self.per_block)
        inputs = sum(i for _, i in self.per_block)
        peak = max((s for s, _ in self.per_block), default=0)
        return self.total - inside + inputs + peak


class _SavedTensorMeter:
    """Sums the bytes of tensors saved for backward, once per storage, per running block."""

    def __init__(self, model, block_types, act_bytes):
        self.params = {p.untyped_storage()._cdata for p in model.parameters()}
        self.seen, self.act_bytes, self.total = set(), act_bytes, 0
        self.current, self.blocks, self.handles = None, [], []
        for m in model.modules():
            if isinstance(m, block_types):
                self.handles += [m.register_forward_pre_hook(self._enter),
                                 m.register_forward_hook(self._leave)]

    def _bytes(self, t):
        size = self.act_bytes if t.is_floating_point() else t.element_size()
        return t.numel() * size

    def _enter(self, module, args):
        if self.current is None:
            x = next((a for a in args if torch.is_tensor(a)), None)
            self.current = [0, 0 if x is None else self._bytes(x)]

    def _leave(self, module, args, out):
        if self.current is not None:
            self.blocks.append(tuple(self.current))
            self.current = None

    def pack(self, t):
        key = t.untyped_storage()._cdata
        if key not in self.params and key not in self.seen:
            self.seen.add(key)
            n = self._bytes(t)
            self.total += n
            if self.current is not None:
                self.current[0] += n
        return t

    def add(self, nbytes):
        self.total += nbytes
        if self.current is not None:
            self.current[0] += nbytes

    def remove(self):
        for h in self.handles:
            h.remove()


@contextlib.contextmanager
def _efficient_attention(meter):
    """SDPA as a shape-only op that records what a memory-efficient kernel saves."""
    original = F.scaled_dot_product_attention

    def sdpa(q, k, v, *args, **kwargs):
        out = q.new_empty(*q.shape[:-1], v.shape[-1])
        lse = q.new_empty(*q.shape[:-1])
        meter.add(sum(meter._bytes(t) for t in (q, k, v, out)) + lse.numel() * 4)
        return out + 0 * q.sum()   # keeps q in the graph so later ops still see a grad input

    F.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def measure_activations(backbone, input_shape, act_bytes=2):
    """Saved-for-backward bytes of ``backbone`` (built on meta) at ``input_shape``
    ``(B, 3, H, W)``; ``act_bytes`` per floating element (2 = bf16)."""
    from .flops import meta_forward
    from .fsdp import block_types
    backbone = backbone.train()
    for p in backbone.parameters():
        p.requires_grad_(True)
    meter = _SavedTensorMeter(backbone, block_types(), act_bytes)
    x = torch.empty(*input_shape, device='meta')
    try:
        with meta_forward(), _efficient_attention(meter), torch.enable_grad(), \
                torch.autograd.graph.saved_tensors_hooks(meter.pack, lambda t: t):
            backbone(x)
    finally:
        meter.remove()
    return ActivationReport(meter.total, meter.blocks)


def block_params(model):
    """``(parameters in blocks, largest block's parameters)`` of a model."""
    from .fsdp import block_types
    sizes = [sum(p.numel() for p in m.parameters()) for m in model.modules()
             if isinstance(m, block_types())]
    return sum(sizes), max(sizes, default=0)


def per_gpu_memory(num_params, blocks_total, block_max, activations, num_gpus, batch_per_gpu,
                   sharded):
    """Bytes per GPU: a dict of model-state parts and activations with / without checkpointing.

    Args:
        num_params (int): parameters of the whole model.
        blocks_total, block_max (int): parameters in all blocks / in the largest block.
        activations (ActivationReport): measured at batch 1.
        num_gpus (int): data-parallel ranks.
        batch_per_gpu (int): images per rank.
        sharded (bool): FSDP FULL_SHARD (True) or DDP (False).
    """
    n = num_gpus if sharded else 1
    root = num_params - blocks_total
    rows = dict(weights=4 * num_params / n, grads=4 * num_params / n,
                adamw=8 * num_params / n)
    if sharded:
        rows['gathered'] = 4 * (root + 2 * block_max) + 4 * block_max   # weights + one grad
    rows['activations'] = batch_per_gpu * activations.total
    rows['activations_checkpointed'] = batch_per_gpu * activations.checkpointed
    states = sum(v for k, v in rows.items() if not k.startswith('activations'))
    rows['total'] = states + rows['activations']
    rows['total_checkpointed'] = states + rows['activations_checkpointed']
    return rows


def memory_lines(cfg, model, backbone, input_shape, gpus=(8, 64)):
    """The printed memory section of ``get_flops.py`` for a built (meta) model and backbone."""
    strategy = cfg.get('strategy') or {}
    sharded = cfg.get('runner_type') == 'FlexibleRunner' and 'FSDP' in str(strategy.get('type'))
    optim = cfg.get('optim_wrapper') or {}
    bf16 = 'Amp' in str(optim.get('type', '')) or 'Bf16' in str(optim.get('type', ''))
    batch = int((cfg.get('train_dataloader') or {}).get('batch_size', 1))
    acts = measure_activations(backbone, (1, 3) + tuple(input_shape), 2 if bf16 else 4)
    params = sum(p.numel() for p in model.parameters())
    blocks_total, block_max = block_params(model)
    kind = 'FSDP FULL_SHARD (ZeRO-3)' if sharded else 'DDP (every rank holds all states)'
    lines = [f'training memory per GPU, estimated ({kind}; AdamW; {batch} image(s) per GPU at '
             f'3x{input_shape[0]}x{input_shape[1]}; activations in {"bf16" if bf16 else "fp32"}):']
    for g in gpus:
        r = per_gpu_memory(params, blocks_total, block_max, acts, g, batch, sharded)
        parts = f"weights {r['weights'] / GIB:.2f} + grads {r['grads'] / GIB:.2f} + " \
                f"AdamW {r['adamw'] / GIB:.2f}"
        if sharded:
            parts += f" + gathered units {r['gathered'] / GIB:.2f}"
        lines.append(f'  {g:>2} GPUs: {parts} GiB; backbone activations '
                     f"{r['activations'] / GIB:.2f} GiB ({r['activations_checkpointed'] / GIB:.2f}"
                     f" with checkpointing) -> total {r['total'] / GIB:.1f} GiB "
                     f"({r['total_checkpointed'] / GIB:.1f} GiB with checkpointing)")
    lines.append('  [model states: fp32 weights + grads + 2 AdamW moments = 16 B/parameter'
                 + (', sharded over the GPUs, plus the gathered root unit and 2 blocks' if sharded
                    else '') + '; activations measured on meta (saved-for-backward tensors of the'
                 ' backbone, memory-efficient attention); neck/head activations, CUDA context,'
                 ' fragmentation and communication buffers not counted]')
    return lines
