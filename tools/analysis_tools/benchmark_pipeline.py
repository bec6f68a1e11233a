"""Time the scene data path per item: the augmented camera + LiDAR pipeline with depth
targets, map / box rasters, per-camera layout images and captions (docs/data_pipeline.md).

    python tools/analysis_tools/benchmark_pipeline.py --data-root data/synthetic [--items 20]

Prints the first item's time (loads the map expansion, imports open3d) and the mean of the
others, per stage (cumulative seconds of each transform over the timed items).
"""
import argparse
import os.path as osp
import sys
import time
from collections import defaultdict

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-root', required=True)
    p.add_argument('--ann-file', default='nuscenes_infos_train.pkl')
    p.add_argument('--items', type=int, default=20)
    p.add_argument('--size', type=int, nargs=2, default=(704, 256), metavar=('W', 'H'))
    args = p.parse_args(argv)
    import numpy as np

    from holodrive.datasets import NuScenesSceneDataset
    from holodrive.datasets.transforms.builder import build_pipeline
    w, h = args.size
    cfg = [dict(type='LoadPointsChecked'), dict(type='LoadMultiViewImagesChecked'),
           dict(type='LoadSceneAnnotations3D', with_attr_label=True),
           dict(type='GlobalRotScaleTrans', rot_range=[-0.39, 0.39],
                scale_ratio_range=[0.95, 1.05]),
           dict(type='RandomFlip3D', flip_ratio_bev_horizontal=0.5),
           dict(type='MultiViewImageAug', final_size=(w, h), resize_range=(0.8, 1.0),
                flip_prob=0.5, rot_range=(-5.4, 5.4)),
           dict(type='FilterSceneInstances', point_cloud_range=[-50, -50, -5, 50, 50, 3]),
           dict(type='ProjectLidarDepth', strides=(16,), depth_bins=(1.0, 60.0, 1.0)),
           dict(type='RasterizeMapBEV', resolution=0.25),
           dict(type='RasterizeBoxBEV', resolution=0.25),
           dict(type='ProjectLayoutToCameras', scale=0.25),
           dict(type='GenerateCaption')]
    ds = NuScenesSceneDataset(args.data_root, args.ann_file, pipeline=[], filter_empty_gt=False)
    transforms = build_pipeline(cfg)
    stage = defaultdict(float)
    times = []
    np.random.seed(0)
    for i in range(min(args.items, len(ds))):
        t0 = time.perf_counter()
        res = ds.get_data_info(i)
        res['box_type_3d'], res['box_mode_3d'] = ds.box_type_3d, ds.box_mode_3d
        for t in transforms:
            t1 = time.perf_counter()
            res = t(res)
            if i:
                stage[type(t).__name__] += time.perf_counter() - t1
        times.append(time.perf_counter() - t0)
    n = len(times) - 1
    print(f'first item {times[0]:.2f} s; next {n} items: mean {np.mean(times[1:]):.3f} s/item '
          f'({w}x{h} output images)')
    for name, sec in stage.items():
        print(f'  {name:28s} {sec / max(n, 1) * 1000:7.1f} ms/item')


if __name__ == '__main__':
    main()
