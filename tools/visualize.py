"""Write pictures of keyframes: camera views with projected boxes and a LiDAR BEV plot.

    python tools/visualize.py --data-root data/synthetic --info data/synthetic/nuscenes_infos_val.pkl \
        [--results work_dirs/x/results_nusc.json --score-thr 0.3] [--num 3] --out-dir vis/
    python tools/visualize.py --data-root DIR --info DIR/nuscenes_infos_val.pkl --out-dir vis/ \
        --config configs/bev_det/bev_det_piip_tiny_synthetic.py --checkpoint work_dirs/x/epoch_12.pth

Ground truth is green, predictions (a nuScenes results JSON, global frame) red. Below the
camera views: the per-camera layout images (map layers and box classes as the generators see
them, ``ProjectLayoutToCameras``) and the sample's caption (``GenerateCaption``). With
``--open3d`` it also renders the point cloud with open3d's offscreen renderer.

With ``--config`` and ``--checkpoint`` of a camera BEV detector (``BEVDet``) the predictions
come from running the model (instead of ``--results``), and ``*_bev_det.png`` shows the BEV
boxes next to the lifted BEV feature energy and the network input and expected depth of
``--depth-camera`` (``holodrive/visualization/bev_det_views.py``).
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402

from holodrive.engine.cli import UserFileNotFoundError, run_cli  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-root', required=True)
    p.add_argument('--info', required=True, help='mmdet3d info .pkl written by tools/create_data.py')
    p.add_argument('--results', help='nuScenes detection results JSON (global frame)')
    p.add_argument('--score-thr', type=float, default=0.3)
    p.add_argument('--num', type=int, default=3, help='number of keyframes (evenly spaced)')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--open3d', action='store_true', help='also render points with open3d')
    p.add_argument('--config', help='a BEVDet config: run the model for the predictions')
    p.add_argument('--checkpoint', help='checkpoint of --config')
    p.add_argument('--depth-camera', default='CAM_FRONT',
                   help='camera whose predicted depth is drawn (with --config)')
    p.add_argument('--no-layout', action='store_true',
                   help='skip the layout images and captions (no map expansion needed)')
    return p.parse_args(argv)


def global_boxes_to_lidar(results, ego2global, lidar2ego):
    """nuScenes result boxes (global frame) -> ``[N, 7]`` LiDAR boxes (bottom centre)."""
    from pyquaternion import Quaternion
    world2lidar = np.linalg.inv(np.asarray(ego2global) @ np.asarray(lidar2ego))
    boxes = []
    for r in results:
        center = world2lidar[:3, :3] @ np.asarray(r['translation']) + world2lidar[:3, 3]
        rot = world2lidar[:3, :3] @ Quaternion(r['rotation']).rotation_matrix
        w, l, h = r['size']
        boxes.append([center[0], center[1], center[2] - h / 2, l, w, h,
                      np.arctan2(rot[1, 0], rot[0, 0])])
    return np.asarray(boxes, np.float32).reshape(-1, 7)


def main(argv=None):
    args = parse_args(argv)
    import cv2
    import mmengine

    from holodrive.visualization.scene_plots import bev_figure, camera_grid

    if not osp.isfile(args.info):
        raise UserFileNotFoundError(f'{args.info}: info file not found (run tools/create_data.py)')
    infos = mmengine.load(args.info)['data_list']
    results = {}
    if args.results:
        if not osp.isfile(args.results):
            raise UserFileNotFoundError(f'{args.results}: results JSON not found (run tools/test.py)')
        with open(args.results) as f:
            results = json.load(f)['results']
    detector = load_bev_det(args) if args.config else None
    os.makedirs(args.out_dir, exist_ok=True)
    layout_ds = None if args.no_layout else layout_dataset(args.data_root, args.info)
    picks = np.linspace(0, len(infos) - 1, min(args.num, len(infos))).round().astype(int)
    for idx in picks:
        info = infos[idx]
        token = info['token']
        gt = np.asarray([i['bbox_3d'] for i in info['instances'] if i['bbox_label_3d'] >= 0],
                        np.float32).reshape(-1, 7)
        gt[:, 2] -= gt[:, 5] / 2  # gravity centre -> bottom centre
        pred = None
        if token in results:
            kept = [r for r in results[token] if r['detection_score'] >= args.score_thr]
            pred = global_boxes_to_lidar(kept, info['ego2global'], info['lidar_points']['lidar2ego'])
        stem = osp.join(args.out_dir, f'{idx:04d}_{token[:8]}')
        if detector is not None:
            pred = bev_det_views(detector, token, gt, args, stem)
        images, lidar2cam, cam2img = {}, {}, {}
        for cam, cinfo in info['images'].items():
            path = _resolve(args.data_root, 'samples/' + cam, cinfo['img_path'])
            img = cv2.imread(path)
            if img is None:
                raise UserFileNotFoundError(f'{path}: camera image missing or unreadable')
            images[cam] = img[:, :, ::-1]
            lidar2cam[cam] = np.asarray(cinfo['lidar2cam'])
            cam2img[cam] = np.asarray(cinfo['cam2img'])
        grid = camera_grid(images, lidar2cam, cam2img, gt, pred)
        if layout_ds is not None:
            grid = np.concatenate([grid] + layout_rows(layout_ds, idx, grid.shape[1]), 0)
        cv2.imwrite(stem + '_cameras.jpg', grid[:, :, ::-1].copy())
        lidar_path = _resolve(args.data_root, 'samples/LIDAR_TOP', info['lidar_points']['lidar_path'])
        points = np.fromfile(lidar_path, np.float32).reshape(-1, 5)
        fig = bev_figure(points, gt, pred, title=f'{info.get("scene_name", "")} sample {token[:8]}')
        fig.savefig(stem + '_bev.png')
        if args.open3d:
            from holodrive.visualization.open3d_render import render_points
            render_points(points, gt, stem + '_points3d.png', pred_boxes_lidar=pred)
        print(f'wrote {stem}_cameras.jpg, {stem}_bev.png')


def load_bev_det(args):
    """``(model, dataset of --info with the config's test pipeline, {token: index})``."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from holodrive.engine.cli import prepare_config
    from holodrive.registry import DATASETS, MODELS
    if not args.checkpoint:
        raise UserFileNotFoundError('--config needs --checkpoint (a checkpoint of that config)')
    if not osp.isfile(args.checkpoint):
        raise UserFileNotFoundError(f'{args.checkpoint}: checkpoint not found (train with '
                                    'tools/train.py or pass the work dir\'s epoch_N.pth)')
    init_default_scope('holodrive')
    root = args.data_root.rstrip('/') + '/'
    cfg = prepare_config(args.config, cfg_options={'data_root': root}, check_paths=False)
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.update(data_root=root, ann_file=osp.abspath(args.info))
    dataset = DATASETS.build(ds_cfg)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', logger='silent')
    model.eval()
    index = {dataset.get_data_info(i)['token']: i for i in range(len(dataset))}
    return model, dataset, index


def bev_det_views(detector, token, gt, args, stem):
    """Run the detector on ``token``, write ``stem_bev_det.png``; the predicted boxes."""
    from holodrive.visualization.bev_det_views import bev_det_figure, bev_det_outputs
    model, dataset, index = detector
    out = bev_det_outputs(model, dataset[index[token]], score_thr=args.score_thr)
    fig = bev_det_figure(out, gt, camera=args.depth_camera,
                         title=f'sample {token[:8]}: {osp.basename(args.config)}')
    fig.savefig(stem + '_bev_det.png', dpi=90)
    print(f'wrote {stem}_bev_det.png ({len(out["pred_boxes"])} boxes >= {args.score_thr})')
    return out['pred_boxes']


def layout_dataset(data_root, info_path):
    """The scene dataset with the layout + caption pipeline (no augmentation)."""
    from holodrive.datasets import NuScenesSceneDataset
    pipeline = [dict(type='LoadSceneAnnotations3D', with_attr_label=True),
                dict(type='RasterizeMapBEV', resolution=0.25),
                dict(type='ProjectLayoutToCameras', scale=0.5, with_map=True),
                dict(type='GenerateCaption')]
    return NuScenesSceneDataset(data_root, osp.abspath(info_path), pipeline=pipeline,
                                test_mode=True, modality=dict(use_lidar=True, use_camera=True))


def layout_rows(ds, idx, width):
    """Layout images tiled like the camera grid, and the caption strip, ``width`` wide."""
    import cv2

    from holodrive.visualization.scene_plots import caption_strip, layout_to_rgb
    res = ds[idx]
    tiles = [layout_to_rgb(lay, res['layout_channels']) for lay in res['layout_images']]
    half = (len(tiles) + 1) // 2
    tile_w = width // half
    tile_h = int(round(tiles[0].shape[0] * tile_w / tiles[0].shape[1]))
    tiles = [cv2.resize(t, (tile_w, tile_h), interpolation=cv2.INTER_NEAREST) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (2 * half - len(tiles))
    rows = [np.concatenate(tiles[:half], 1), np.concatenate(tiles[half:], 1)]
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return rows + [caption_strip(res['caption'], width)]


def _resolve(root, prefix, path):
    """Info paths are relative to ``root/prefix`` (mmdet3d v2) or to ``root``."""
    for cand in (osp.join(root, prefix, path), osp.join(root, path), path):
        if osp.isfile(cand):
            return cand
    return osp.join(root, prefix, path)


if __name__ == '__main__':
    run_cli(main)
