"""Backbone GFLOPs under the PIIP paper's convention, full-model MACs and parameters of a config.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--cfg-options key=value ...]

CONFIG defines ``model`` (a detector / segmentor whose ``model.backbone`` is a
``piip_det.PIIP`` or a single ``ViT``) or only ``backbone = dict(...)`` (as
``tools/convert/piip_official.py --out-config`` writes). Everything is counted
on the meta device (no weight is allocated; 6B models are fine on a laptop).

Printed, with the conventions spelled out (:mod:`piip_det.flops`):

- backbone GFLOPs, paper convention: MACs, batch 1, a square ``S x S`` input at
  the top resolution (the last branch's ``real_size``; ``--shape`` overrides),
  backbone only up to branch merging plus the light merge;
- backbone GMACs as built (every matmul / conv that runs, conv merges and
  simple FPN included);
- full-model GMACs as built at the same input: backbone + neck + the dense
  heads (``rpn_head``, a dense ``bbox_head``, ``decode_head``) on the feature
  maps, and the RoI heads of a two-stage detector on ``test_cfg.rpn.max_per_img``
  RoIs (bbox) and ``test_cfg.rcnn.max_per_img`` RoIs (mask); RoI extraction,
  NMS and post-processing are not counted, and any part that cannot run on
  meta tensors (e.g. DETR-style transformers) is listed as not counted;
- parameters of the backbone and of the full model;
- the estimated per-GPU training memory for 8 and 64 GPUs under the config's strategy
  (FSDP for ``runner_type='FlexibleRunner'`` with ``FSDPStrategy``, DDP otherwise): weights,
  gradients, AdamW states, and backbone activations with and without activation
  checkpointing (:mod:`piip_det.memory` states the assumptions).
"""
import argparse
import importlib
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file path')
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=None,
                   help='input size (default: square at the top real_size)')
    p.add_argument('--no-memory', action='store_true',
                   help='skip the per-GPU training memory estimate (8 and 64 GPUs)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                   help='override config keys, e.g. model.backbone.branches.0.real_size=448')
    return p.parse_args(argv)


def _pipeline_side(cfg):
    """The longest side of the first ``Resize`` ``scale`` in the test pipeline, or None."""
    pipeline = cfg.get('test_pipeline') or \
        cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline') or []
    for step in pipeline:
        scale = step.get('scale') if 'Resize' in str(step.get('type', '')) else None
        if scale:
            return max(scale) if isinstance(scale, (list, tuple)) else int(scale)
    return None


def input_shape(cfg, backbone_cfg, shape):
    """``(H, W)``: ``--shape``, else square at the backbone's top resolution, else the test
    pipeline's Resize scale; a ConfigError naming ``--shape`` when none says."""
    from holodrive.engine.config_check import ConfigError
    from piip_det.flops import top_resolution
    if shape:
        return tuple(shape)
    side = top_resolution(backbone_cfg) or _pipeline_side(cfg)
    if not side:
        raise ConfigError('cannot tell the input size: the backbone has no real_size and the '
                          'test pipeline no Resize scale; pass --shape H W')
    return side, side


def import_for(cfg):
    """Register the modules a ``model`` config needs (light path for mmdet / mmseg scopes)."""
    import piip_det.models  # noqa: F401
    scope = cfg.get('default_scope')
    if scope in ('mmdet', 'mmseg', None):
        importlib.import_module(f'{scope or "mmdet"}.utils').register_all_modules(
            init_default_scope=False)
    else:
        from holodrive.engine.cli import import_project
        import_project()
    return scope or 'mmdet'


def build_model(cfg):
    """The whole ``cfg.model`` on the meta device."""
    from mmengine.registry import MODELS, DefaultScope

    from piip_det.flops import empty_weights
    scope = import_for(cfg)
    with DefaultScope.overwrite_default_scope(scope), empty_weights():
        return MODELS.build(cfg.model)


def _roi_parts(model, feats):
    """``(name, fn)`` for the RoI heads of a two-stage detector, on RoI feature tensors."""
    import torch
    roi = getattr(model, 'roi_head', None)
    test_cfg = getattr(model, 'test_cfg', None) or {}
    counts = {'bbox': (test_cfg.get('rpn') or {}).get('max_per_img', 1000),
              'mask': (test_cfg.get('rcnn') or {}).get('max_per_img', 100)}
    for kind, n in counts.items():
        head = getattr(roi, f'{kind}_head', None)
        extractor = getattr(roi, f'{kind}_roi_extractor', None)
        if head is None or extractor is None:
            continue
        extractors = extractor if isinstance(extractor, torch.nn.ModuleList) else [extractor]
        heads = head if isinstance(head, torch.nn.ModuleList) else [head]
        for stage, (ext, h) in enumerate(zip(extractors, heads)):
            size = ext.roi_layers[0].output_size
            size = (size, size) if isinstance(size, int) else tuple(size)
            rois = torch.empty(n, ext.out_channels, *size, device='meta')
            tag = f'[{stage}]' if len(heads) > 1 else ''
            yield f'roi_head.{kind}_head{tag} ({n} RoIs)', (lambda h=h, rois=rois: h(rois))


def count_full_model(model, shape):
    """As-built MACs of the parts that run on meta; returns ``(macs, counted, not_counted)``."""
    import torch

    from piip_det.flops import count_as_built
    model = model.eval()
    x = torch.empty(1, 3, *shape, device='meta')
    counted, missing, total = [], [], 0
    with torch.no_grad():
        feats, macs, _ = count_as_built(model.extract_feat, x)
        total += macs
        counted += [n for n in ('backbone', 'neck') if getattr(model, n, None) is not None]
        parts = [(n, (lambda head=getattr(model, n): head(feats)))
                 for n in ('rpn_head', 'bbox_head', 'decode_head') if getattr(model, n, None)]
        parts += list(_roi_parts(model, feats))
        for name, fn in parts:
            try:
                _, macs, _ = count_as_built(fn)
            except Exception as err:   # noqa: BLE001  (a head that cannot run on meta is listed)
                missing.append(f'{name} ({type(err).__name__}: {str(err).splitlines()[0][:80]})')
                continue
            total += macs
            counted.append(name)
    covered = {n.split(' ')[0].split('.')[0].split('[')[0] for n in counted}
    for name, child in model.named_children():
        if name in covered or name == 'data_preprocessor' or not any(True for _ in child.parameters()):
            continue
        reason = 'training only' if name == 'auxiliary_head' else 'not run'
        if not any(m.startswith(name) for m in missing):
            missing.append(f'{name} ({reason})')
    return total, counted, missing


def main(argv=None):
    args = parse_args(argv)
    from holodrive.engine.config_check import ConfigError, load_config
    cfg = load_config(args.config, args.cfg_options)
    if 'model' in cfg:
        backbone_cfg = cfg.model.get('backbone')
    else:
        backbone_cfg = cfg.get('backbone')
    if not backbone_cfg:
        raise ConfigError(f'{args.config}: defines neither model.backbone nor backbone')
    backbone_cfg = backbone_cfg.to_dict() if hasattr(backbone_cfg, 'to_dict') else dict(backbone_cfg)
    shape = input_shape(cfg, backbone_cfg, args.shape)

    import piip_det.models  # noqa: F401
    from piip_det.flops import build_backbone, count_backbone, gmacs
    report = count_backbone(build_backbone(backbone_cfg), shape)
    print(f'config: {args.config}')
    print(f'backbone: {backbone_cfg["type"]}')
    for line in report.lines():
        print(line)
    if 'model' in cfg:
        model = build_model(cfg)
        macs, counted, missing = count_full_model(model, shape)
        params = sum(p.numel() for p in model.parameters())
        print(f'full model GMACs as built: {gmacs(macs)} at 1x3x{shape[0]}x{shape[1]} '
              f'(counted: {", ".join(counted)})')
        if missing:
            print('  not counted: ' + '; '.join(missing))
        print('  [RoI extraction, NMS and post-processing are not counted]')
        print(f'full model parameters: {params / 1e6:.2f} M')
        if not args.no_memory:
            from piip_det.memory import memory_lines
            for line in memory_lines(cfg, model, model.backbone, shape):
                print(line)
    else:
        print('full model: the config defines a backbone only (no model); '
              'full model = backbone as built')
    return report


if __name__ == '__main__':
    from holodrive.engine.cli import run_cli
    run_cli(main)
