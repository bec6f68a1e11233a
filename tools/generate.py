"""Generate a scene from a layout.

    python tools/generate.py --modality lidar CONFIG CHECKPOINT --data-root DIR \
        (--sample-idx N | --sample-token TOKEN | --layout-json FILE) --out-dir gen/ \
        [--info DIR/nuscenes_infos_val.pkl] [--num-steps 12] [--temperature 1.0] \
        [--guidance-scale 1.0] [--seed 0] [--open3d]

``--modality lidar`` (a ``LiDARGenerator`` config, configs/holodrive/lidar/): the layout of a
keyframe of ``--info`` (its map + boxes, rasterised by the config's test pipeline) or of a
layout JSON (boxes only, LiDAR frame; the map channels stay empty)::

    {"boxes": [{"name": "car", "center": [x, y, z_bottom], "size": [l, w, h], "yaw": 0.0}],
     "caption": "a two-lane road by day, two cars ahead"}

A caption-conditioned generator (``model.text_encoder``) uses the keyframe's caption (the
config's ``GenerateCaption``) or the JSON's ``"caption"`` (``''`` without one); ``--caption``
overrides either.

Writes ``STEM.pcd.bin`` (nuScenes format: x, y, z, intensity, ring), ``STEM_bev.png`` (the
generated points with the conditioning boxes, and the real sweep beside it for a keyframe)
and ``STEM_points3d.png`` (open3d offscreen render with ``--open3d``, else matplotlib).

``--modality camera`` (a ``MultiViewDiffusion`` config, configs/holodrive/camera/): the
conditions of a keyframe of ``--info`` (caption, per-camera layout, calibration; the config's
test pipeline) sampled ``--num-samples`` times (seeds ``--seed + k``) with ``--scheduler``
(ddim, dpm, euler, unipc), ``--steps``, ``--guidance`` and ``--condition-scale c=s``
(text / boxes / map / camera; 0 drops one). Writes per sample ``STEM_sK_<CAMERA>.png``, the
``STEM_sK_grid.png`` (layout blended in, caption, the real views beside),
``STEM_sK_depth.png`` (the depth branch) and ``STEM_sK_conditions.json``. Or the conditions
of a camera layout JSON (boxes, caption, calibration, optional map patch; the format is in
``holodrive/datasets/layout_json.py``): the ``"layout"`` of any ``*_conditions.json`` is one,
so a dataset sample's layout can be edited (move a box, change the caption) and sampled again.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402

from holodrive.engine.cli import UserFileNotFoundError, run_cli  # noqa: E402
from holodrive.engine.config_check import ConfigError  # noqa: E402


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--modality', choices=['lidar', 'camera'], default='lidar')
    p.add_argument('--data-root', help='the nuScenes-format root (maps, sweeps)')
    p.add_argument('--info', help='info .pkl (default DATA_ROOT/nuscenes_infos_val.pkl)')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--sample-idx', type=int)
    src.add_argument('--sample-token')
    src.add_argument('--layout-json')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--num-steps', type=int)
    p.add_argument('--temperature', type=float)
    p.add_argument('--guidance-scale', type=float)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--open3d', action='store_true', help='render the 3D view with open3d')
    p.add_argument('--caption', help='lidar: the caption of a caption-conditioned generator')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config keys (as for tools/train.py), e.g. the model shape '
                        'the checkpoint was trained with')
    cam = p.add_argument_group('camera')
    cam.add_argument('--num-samples', type=int, default=1)
    cam.add_argument('--scheduler', choices=SCHEDULER_NAMES, default='ddim')
    cam.add_argument('--steps', type=int, default=25, help='denoising steps')
    cam.add_argument('--guidance', type=float, default=1.0, help='joint CFG scale (1: off)')
    cam.add_argument('--condition-scale', action='append', default=[], metavar='COND=SCALE',
                     help='per-condition guidance, e.g. boxes=2 or text=0 (repeatable)')
    return p.parse_args(argv)


SCHEDULER_NAMES = ('ddim', 'dpm', 'euler', 'unipc')     # holodrive.pipelines.SCHEDULERS


def load_generator(args, model_type='LiDARGenerator', folder='lidar'):
    """``(model, cfg)``: the config's model with the checkpoint's weights, in eval mode."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from holodrive.engine.cli import prepare_config
    from holodrive.registry import MODELS
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise UserFileNotFoundError(f'{path}: {what} not found')
    init_default_scope('holodrive')
    opts = dict(getattr(args, 'cfg_options', None) or {})
    if args.data_root:
        opts['data_root'] = args.data_root.rstrip('/') + '/'
    cfg = prepare_config(args.config, cfg_options=opts or None, check_paths=False)
    if cfg.model.get('type') != model_type:
        raise ConfigError(f'{args.config}: --modality {args.modality} needs a {model_type} '
                          f'config (configs/holodrive/{folder}/), got '
                          f'model.type={cfg.model.get("type")!r}')
    for key in ('tokenizer_checkpoint', 'vae_checkpoint'):   # the checkpoint holds them
        if key in cfg.model:
            cfg.model[key] = None
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', logger='silent', strict=True)
    return model.eval(), cfg


def sample_batch(model, cfg, args):
    """``(batch of one keyframe through the config's test pipeline, its info, name)``."""
    from mmengine.dataset import pseudo_collate

    from holodrive.registry import DATASETS
    if not args.data_root:
        raise ConfigError('--sample-idx / --sample-token need --data-root')
    info = args.info or osp.join(args.data_root, 'nuscenes_infos_val.pkl')
    if not osp.isfile(info):
        raise UserFileNotFoundError(f'{info}: info file not found (run tools/create_data.py)')
    if cfg.get('generate_pipeline'):        # camera configs: no test loop (sampling metrics)
        ds_cfg = cfg.train_dataloader.dataset.copy()
        ds_cfg.update(pipeline=cfg.generate_pipeline, test_mode=True)
    else:
        ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.update(data_root=args.data_root.rstrip('/') + '/', ann_file=osp.abspath(info))
    dataset = DATASETS.build(ds_cfg)
    if args.sample_token is not None:
        tokens = [dataset.get_data_info(i)['token'] for i in range(len(dataset))]
        if args.sample_token not in tokens:
            raise ConfigError(f'{info}: no sample with token {args.sample_token!r} '
                              f'({len(tokens)} samples; pass --sample-idx or another --info)')
        idx = tokens.index(args.sample_token)
    else:
        idx = args.sample_idx
        if not 0 <= idx < len(dataset):
            raise ConfigError(f'--sample-idx {idx} is outside {info} (0..{len(dataset) - 1})')
    data = model.data_preprocessor(pseudo_collate([dataset[idx]]), training=False)
    info_rec = dataset.get_data_info(idx)
    return data, info_rec, f'{idx:04d}_{info_rec["token"][:8]}'


def layout_from_sample(model, cfg, args):
    """``(layout (1, C, H, W), real points (N, 5), boxes (K, 7) bottom centre, name,
    caption)``."""
    import torch
    data, info_rec, name = sample_batch(model, cfg, args)
    boxes = np.asarray([i['bbox_3d'] for i in info_rec.get('instances', [])
                        if i.get('bbox_label_3d', -1) >= 0], np.float32).reshape(-1, 7)
    boxes[:, 2] -= boxes[:, 5] / 2                   # gravity centre -> bottom centre
    points = data['inputs']['points'][0]
    caption = data['data_samples'][0].metainfo.get('caption', '')
    return model.layout(data['inputs']), torch.as_tensor(points).numpy(), boxes, name, caption


def layout_from_json(model, path):
    """``(layout (1, C, H, W), None, boxes (K, 7), name, caption)`` from a layout JSON
    (docstring)."""
    import torch
    from mmdet3d.structures import LiDARInstance3DBoxes

    from holodrive.datasets.layout_json import layout_boxes, read_layout_json
    from holodrive.datasets.transforms.bev import RasterizeBoxBEV
    layout = read_layout_json(path)
    boxes, labels = layout_boxes(layout, path)
    grid = model.tokenizer.grid
    res = grid.voxel_size[0]
    raster = RasterizeBoxBEV(x_range=grid.point_cloud_range[0::3],
                             y_range=grid.point_cloud_range[1::3], resolution=res)
    out = raster.transform(dict(gt_bboxes_3d=LiDARInstance3DBoxes(boxes),
                                gt_labels_3d=labels))
    parts = []
    for key in model.layout_keys:
        if key == 'box_bev':
            parts.append(torch.from_numpy(out['box_bev']).float()[None])
        else:   # no map in a JSON layout: those channels stay empty
            n = model.transformer.layout_adapter.stem[0].in_channels - out['box_bev'].shape[0]
            parts.append(torch.zeros(1, n, *out['box_bev'].shape[1:]))
    return (torch.cat(parts, 1), None, boxes, osp.splitext(osp.basename(path))[0],
            str(layout.get('caption', '')))


#: transforms a layout JSON replaces (files and annotations come from the JSON)
_LOADERS = ('LoadMultiViewImagesChecked', 'LoadPointsChecked', 'LoadSceneAnnotations3D',
            'GenerateCaption')


def camera_batch_from_json(model, cfg, args):
    """``(batch, layout record, name)`` of a camera layout JSON: the config's generate
    pipeline without its loaders on :func:`camera_layout_results` (black views stand in for
    the images; without a map patch the map channels are empty)."""
    from mmengine.dataset import Compose, pseudo_collate

    from holodrive.datasets.layout_json import camera_layout_results, read_layout_json
    from holodrive.registry import TRANSFORMS
    path = args.layout_json
    layout = read_layout_json(path)
    root = args.data_root.rstrip('/') + '/' if args.data_root else None
    results = camera_layout_results(layout, path, root)
    steps = []
    for t in cfg.generate_pipeline:
        if t['type'] in _LOADERS:
            continue
        raster = TRANSFORMS.build(t)
        no_map = t['type'] == 'RasterizeMapBEV' and 'location' not in results
        steps.append(_empty_map(raster) if no_map else raster)
    data = model.data_preprocessor(pseudo_collate([Compose(steps)(results)]), training=False)
    return data, layout, osp.splitext(osp.basename(path))[0]


def _empty_map(raster):
    """A stand-in for a ``RasterizeMapBEV``: its grid and layer names, all cells empty."""
    def transform(results):
        results.update(map_bev=np.zeros((len(raster.layers),) + raster.grid.shape, np.uint8),
                       map_bev_layers=raster.layers, map_bev_frame=raster.frame,
                       map_bev_grid=raster.grid, bev_grid=raster.grid)
        return results
    return transform


def generate_camera(args):
    """``--modality camera`` (module docstring)."""
    import torch
    from tqdm import tqdm

    from holodrive.models.camera_gen import CONDITIONS, neighbour_views
    from holodrive.pipelines import MultiViewDrivePipeline, make_scheduler
    from holodrive.visualization.camera_gen_views import write_camera_outputs
    scales = {}
    for item in args.condition_scale:
        cond, _, value = item.partition('=')
        if cond not in CONDITIONS or not value:
            raise ConfigError(f'--condition-scale {item!r}: use COND=SCALE with COND one of '
                              f'{list(CONDITIONS)}')
        scales[cond] = float(value)
    model, cfg = load_generator(args, 'MultiViewDiffusion', 'camera')
    from holodrive.datasets.layout_json import camera_layout_record
    if args.layout_json:
        data, layout, name = camera_batch_from_json(model, cfg, args)
    else:
        data, info_rec, name = sample_batch(model, cfg, args)
    inp, meta = data['inputs'], data['data_samples'][0].metainfo
    if not args.layout_json:
        layout = camera_layout_record(info_rec, meta.get('caption', ''))
    pipe = MultiViewDrivePipeline.from_model(
        model, scheduler=make_scheduler(args.scheduler, model.scheduler.config))
    kw = dict(cam2img=inp['cam2img'], cam2lidar=inp['cam2lidar'],
              img_aug_matrix=inp['img_aug_matrix'], layout_images=inp['layout_images'],
              captions=[meta.get('caption', '')],
              neighbours=neighbour_views(inp['camera_ring'], inp['camera_adjacency']))
    os.makedirs(args.out_dir, exist_ok=True)
    real = ((inp['imgs'][0] + 1) / 2).clamp(0, 1).numpy() \
        if 'imgs' in inp and not args.layout_json else None
    depth_bins = None
    if model.depth_loss is not None:
        for t in cfg.train_dataloader.dataset.pipeline:
            if t['type'] == 'ProjectLidarDepth':
                depth_bins = tuple(t['depth_bins'])
    for k in tqdm(range(args.num_samples), desc='camera samples', unit='sample'):
        out = pipe(**kw, num_inference_steps=args.steps, guidance_scale=args.guidance,
                   condition_scales=scales,
                   generator=torch.Generator().manual_seed(args.seed + k))
        stem = osp.join(args.out_dir, f'{name}_s{k}')
        depth = out['depth_logits']
        written = write_camera_outputs(
            stem, out['images'][0].numpy(), list(meta['camera_names']),
            inp['camera_ring'][0].tolist(), inp['layout_images'][0].numpy(),
            meta.get('layout_channels'), meta.get('caption', ''), real,
            None if depth is None else depth[0].numpy(), depth_bins,
            dict(sample_token=layout.get('sample_token', ''), scheduler=args.scheduler,
                 steps=args.steps, guidance=args.guidance, condition_scales=scales,
                 seed=args.seed + k, config=args.config, checkpoint=args.checkpoint,
                 layout_json=args.layout_json, layout=layout))
        print(f'sample {k}: ' + ', '.join(written))


def main(argv=None):
    args = parse_args(argv)
    if args.modality == 'camera':
        return generate_camera(args)
    import torch
    from tqdm import tqdm

    from holodrive.models.lidar_gen import write_pcd_bin
    from holodrive.visualization.lidar_gen_views import write_views
    model, cfg = load_generator(args)
    if args.layout_json:
        layout, real, boxes, name, caption = layout_from_json(model, args.layout_json)
    else:
        layout, real, boxes, name, caption = layout_from_sample(model, cfg, args)
    caption = caption if args.caption is None else args.caption
    captions = None
    if model.text_encoder is not None:
        captions = [caption]
        print(f'caption: {caption!r}')
    if layout is not None:
        from holodrive.models.lidar_gen import LayoutError
        try:
            model.check_layout(layout)
        except LayoutError as e:
            raise LayoutError(f'{args.layout_json or name}: {e}') from None
    steps = args.num_steps or model.num_steps
    gen = torch.Generator().manual_seed(args.seed)
    with tqdm(total=steps, desc='MaskGIT steps', unit='step') as bar:
        tokens = model.sample(layout, num_steps=steps, temperature=args.temperature,
                              guidance_scale=args.guidance_scale, generator=gen,
                              progress=bar.update, captions=captions)
    points = model.generate_points(tokens)[0].numpy()
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, name)
    write_pcd_bin(stem + '.pcd.bin', points)
    written = write_views(stem, points, boxes, real, use_open3d=args.open3d)
    print(f'wrote {stem}.pcd.bin ({len(points)} points), ' + ', '.join(written))


if __name__ == '__main__':
    run_cli(main)
