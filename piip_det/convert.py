"""Official PIIP checkpoints -> ours (the logic of ``tools/convert/piip_official.py``).

Formats
- Input checkpoint (:func:`load_checkpoint`): a ``.safetensors`` file, or a torch file read
  with ``torch.load(weights_only=True)`` (never unpickling arbitrary objects): an mmdet 2.x /
  mmseg 0.x checkpoint ``{'state_dict': {'backbone.branch1...': T, 'neck...': T}, 'meta':
  {'config': TEXT, ...}}``, a DeepSpeed ``{'module': ...}``, a plain ViT ``{'model': ...}``
  (DeiT / DeiT III / MAE, timm names) or a bare ``{name: tensor}`` (e.g. HF InternViT-6B).
- Official backbone names are ours (see :mod:`piip_det.models.backbones`); the conversion
  drops what our PIIP does not build (:data:`BACKBONE_DROPS`, and ``fpn1.*`` for a DINO target).
- Plain ViT -> one branch (:func:`convert_plain_vit`): timm / HF InternViT names to ours,
  layer scale named per block type, ``pos_embed`` bicubic-resized to the branch grid (cls
  slot kept / dropped), patch kernel bicubic-resized to the branch patch; layer scales the
  source lacks (DeiT v1, MAE) are filled with the branch's ``init_values`` as the official
  non-strict load leaves them.
- Output: a flat ``{name: tensor}`` safetensors file (:func:`save_safetensors`, atomic).
- Checks (:func:`compare`) against our model built on the meta device (:func:`build_target`)
  from a backbone config (ours, or an official one through :mod:`piip_det.convert_config`).
"""
import contextlib
import math
import os
import pickle
import re
import tempfile

import torch

from .models.backbones.vit import ARCHS, DeiTBlock, resize_patch_kernel, resize_pos_embed


class ConversionError(Exception):
    """A one-line, user-facing conversion error."""


# ----------------------------------------------------------------------------- files
def load_checkpoint(path):
    """Read ``path`` -> ``(tensors {name: Tensor}, meta dict)``; see the module docstring."""
    if os.path.isdir(path):
        raise ConversionError(f'{path} is a folder (a DeepSpeed checkpoint?): give its '
                              'mp_rank_00_model_states.pt, or merge ZeRO shards with its '
                              'zero_to_fp32.py first')
    if not os.path.isfile(path):
        raise ConversionError(f'{path}: no such file')
    if path.endswith('.safetensors'):
        from safetensors import safe_open
        from safetensors.torch import load_file
        with safe_open(path, 'pt') as f:
            meta = f.metadata() or {}
        return load_file(path), meta
    with open(path, 'rb') as f:
        is_zip = f.read(4) == b'PK\x03\x04'
    kind = 'torch zip checkpoint' if is_zip else 'legacy (non-zip) torch pickle'
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as err:
        detail = ' '.join(str(err).split())
        what = detail[detail.find('GLOBAL'):].split(' was not')[0] if 'GLOBAL' in detail \
            else detail[:100]
        raise ConversionError(
            f'{path} is a {kind} holding pickled objects that weights_only loading refuses '
            f'({what}); if you trust the file, re-save its tensors once with python -c "import '
            f"torch; c = torch.load('{path}', map_location='cpu', weights_only=False); "
            f"torch.save({{'state_dict': c.get('state_dict', c.get('model', c))}}, "
            f"'{path}.weights.pth')\" and convert that file") from None
    except Exception as err:  # truncated / not a torch file: one line, not a traceback
        raise ConversionError(f'{path} is not a readable torch checkpoint ({kind}: '
                              f'{" ".join(str(err).split())[:160]})') from None
    meta = obj.get('meta') if isinstance(obj, dict) and isinstance(obj.get('meta'), dict) else {}
    for key in ('state_dict', 'module', 'model'):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    tensors = {k: v for k, v in obj.items() if torch.is_tensor(v)} if isinstance(obj, dict) else {}
    if not tensors:
        top = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise ConversionError(f'{path} ({kind}) holds no tensors (top level: {top})')
    if all(k.startswith('module.') for k in tensors):
        tensors = {k[len('module.'):]: v for k, v in tensors.items()}
    return tensors, meta


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed over
    ``path`` (umask permissions), so a kill leaves the old file or the new one."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_safetensors(tensors, path, metadata=None):
    """Write ``{name: Tensor}`` to ``path`` atomically; ``metadata`` values become strings."""
    from safetensors.torch import save_file
    seen, out = set(), {}
    for k, v in tensors.items():   # safetensors refuses shared storage: copy the repeats
        v = v.detach().contiguous()
        ptr = v.untyped_storage().data_ptr() if v.numel() else None
        out[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    with atomic_path(path) as tmp:
        save_file(out, tmp, metadata={k: str(v) for k, v in (metadata or {}).items()})


# ----------------------------------------------------------------------------- target model
@contextlib.contextmanager
def _meta_device():
    """Build on the meta device (shapes only, no memory); ViT's drop-path ``linspace`` becomes
    Python floats, so that one call stays on the CPU."""
    linspace = torch.linspace

    def cpu_linspace(*args, **kwargs):
        kwargs.setdefault('device', 'cpu')
        return linspace(*args, **kwargs)
    torch.linspace = cpu_linspace
    try:
        with torch.device('meta'):
            yield
    finally:
        torch.linspace = linspace


def build_target(cfg):
    """Our PIIP from a backbone config dict, on the meta device (for names and shapes)."""
    from .registry import MODELS
    try:
        with _meta_device():
            return MODELS.build(dict(cfg))
    except (ValueError, TypeError, KeyError) as err:
        raise ConversionError(f'the target config does not build: {err}') from None


# ----------------------------------------------------------------------------- key mapping
BACKBONE_DROPS = [
    (r'branch\d+\.cls_token', 'a branch cls token: detection feeds none'),
    (r'branch\d+\.up[1-4]\..*', "a branch's own with_fpn upsamplers: PIIP never runs them"),
]
_OURS = re.compile(r'^(?:branch\d+\.(?:patch_embed\.proj\.(?:weight|bias)|pos_embed|'
                   r'blocks\.\d+\.(?:'
                   r'norm[12]\.(?:weight|bias)|attn\.(?:qkv|proj|[qk]_norm)\.(?:weight|bias)|'
                   r'mlp\.fc[12]\.(?:weight|bias)|gamma_[12]|ls[12]\.gamma))|'
                   r'interactions\.\d+\.interaction_units_\d\d\.branch(?:2to1|1to2)_(?:proj\.'
                   r'(?:weight|bias)|injector\.(?:(?:query_norm|feat_norm|ffn_norm|ffn\.fc[12]|'
                   r'ffn\.dwconv\.dwconv|attn\.(?:sampling_offsets|attention_weights|value_proj|'
                   r'output_proj))\.(?:weight|bias)|ca_gamma|cffn_gamma))|'
                   r'(?:intermediate_merging_\d+_|merge_)branch\d+\.\d+\.(?:weight|bias)|'
                   r'(?:intermediate_merging_\d+_)?w\d+|fpn[12]\.\d+\.(?:weight|bias))$')


def convert_piip(backbone, target=None):
    """Official PIIP backbone tensors (``backbone.`` stripped) -> ``(ours, dropped)``.

    ``ours`` maps our names to ``(source name, tensor)``; ``dropped`` is ``[(name, why)]``.
    Without a ``target`` model the names are checked against our layout only.
    """
    drops = list(BACKBONE_DROPS)
    if target is not None and target.output_mode == 'dino':
        drops.append((r'fpn1\..*', 'fpn1: the DINO output mode builds no fpn1'))
    ours, dropped = {}, []
    for name, tensor in backbone.items():
        why = next((w for pattern, w in drops if re.fullmatch(pattern, name)), None)
        if why:
            dropped.append((name, why))
        else:
            if tensor.dim() == 0 and re.fullmatch(r'(?:intermediate_merging_\d+_)?w\d+', name):
                tensor = tensor.reshape(1)   # our merge weights are (1,): FSDP shards no 0-D
            ours[name] = (name, tensor)
    return ours, dropped


_PLAIN_DROPS = [
    (r'(cls_token|dist_token|mask_token|embeddings\.class_embedding)',
     'class / distillation / mask token: detection uses none'),
    (r'(norm|fc_norm|head|head_dist|pre_logits\.fc)\.(weight|bias)',
     'final norm / classifier head: a PIIP branch ends at its last block'),
    (r'decoder.*', 'MAE decoder'),
]
_PLAIN_RENAMES = [
    (r'^vision_model\.', ''),                                # InternVL: the ViT inside
    (r'^embeddings\.patch_embedding\.', 'patch_embed.proj.'),  # HF InternViT
    (r'^embeddings\.position_embedding$', 'pos_embed'),
    (r'^encoder\.layers\.', 'blocks.'),
    (r'^(blocks\.\d+)\.ls([12])$', r'\1.ls\2.gamma'),         # HF stores the layer scale bare
]


def _resize_pos(pos, branch):
    """``(1, extra + g0*g0, C)`` -> the branch's ``(1, [1 +] g*g, C)`` (extra = cls/dist slots)."""
    n = pos.shape[1]
    extra = n - math.isqrt(n) ** 2
    grid = resize_pos_embed(pos[:, extra:], (branch.pos_grid,) * 2)
    if branch.cls_slot:
        cls = pos[:, :1] if extra else grid.new_zeros(1, 1, grid.shape[-1])
        grid = torch.cat([cls, grid], dim=1)
    return grid


def convert_plain_vit(tensors, target, branch_index, branch_cfg):
    """A plain ViT state dict -> ``(ours, dropped, notes)`` for ``branch{branch_index}``
    (1-based) of ``target``; ``branch_cfg`` is that branch's config dict (for init_values)."""
    branch = target.branches[branch_index - 1]
    prefix, internvit = f'branch{branch_index}.', not isinstance(branch.blocks[0], DeiTBlock)
    ours, dropped, notes = {}, [], []
    for src, tensor in tensors.items():
        name = src
        for pattern, repl in _PLAIN_RENAMES:
            name = re.sub(pattern, repl, name)
        why = next((w for pattern, w in _PLAIN_DROPS if re.fullmatch(pattern, name)), None)
        if why:
            dropped.append((src, why))
            continue
        if internvit:
            name = re.sub(r'\.gamma_([12])$', r'.ls\1.gamma', name)
        else:
            name = re.sub(r'\.ls([12])\.gamma$', r'.gamma_\1', name)
        if name == 'pos_embed' and tensor.dim() == 3:
            resized = _resize_pos(tensor, branch)
            if resized.shape != tensor.shape:
                notes.append(f'{src} {tuple(tensor.shape)} resized to {tuple(resized.shape)}')
            tensor = resized
        elif name == 'patch_embed.proj.weight' and tensor.dim() == 4 \
                and tensor.shape[-1] != branch.patch_size:
            notes.append(f'{src} kernel {tensor.shape[-1]} resized to {branch.patch_size}')
            tensor = resize_patch_kernel(tensor, branch.patch_size)
        ours[prefix + name] = (src, tensor)
    kwargs = {**ARCHS.get(branch_cfg.get('arch'), {}), **branch_cfg}
    init = kwargs.get('init_values')
    init = (0.1 if internvit else 1.0) if init is None else init
    dtype = next((t.dtype for t in tensors.values() if t.is_floating_point()), torch.float32)
    filled = 0
    for name, p in target.state_dict().items():
        if name.startswith(prefix) and name not in ours \
                and re.search(r'\.(gamma_[12]|ls[12]\.gamma)$', name):
            ours[name] = ('(filled)', torch.full(tuple(p.shape), float(init), dtype=dtype))
            filled += 1
    if filled:
        notes.append(f'{filled} layer scales the source lacks filled with init_values={init} '
                     '(what the official non-strict load leaves)')
    return ours, dropped, notes


def compare(ours, target=None, scope=''):
    """Problems of a conversion as ``[(kind, our name, source name, detail)]``.

    With a target model: unmatched names, missing names (within ``scope``, a name prefix)
    and shape mismatches; without one: names outside our layout.
    """
    if target is None:
        return [('unmatched', k, src, 'not a name of our PIIP layout')
                for k, (src, _) in sorted(ours.items()) if not _OURS.match(k)]
    shapes = {k: tuple(v.shape) for k, v in target.state_dict().items() if k.startswith(scope)}
    problems = []
    for k, (src, t) in sorted(ours.items()):
        if k not in shapes:
            problems.append(('unmatched', k, src, 'our PIIP has no such parameter'))
        elif tuple(t.shape) != shapes[k]:
            problems.append(('shape mismatch', k, src,
                             f'checkpoint {tuple(t.shape)} vs our model {shapes[k]}'))
    problems += [('missing', k, None, 'the checkpoint has no value for it')
                 for k in sorted(set(shapes) - set(ours))]
    return problems
