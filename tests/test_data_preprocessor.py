"""Model side of the data path: one dataset with every modality under augmentation, batched
by SceneDataPreprocessor; every key arrives with its documented shape and dtype."""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

W, H, S = 192, 96, 16
AUG = [dict(type='GlobalRotScaleTrans', rot_range=[-0.3, 0.3], scale_ratio_range=[0.95, 1.05],
            translation_std=[0.2, 0.2, 0.0]),
       dict(type='RandomFlip3D', flip_ratio_bev_horizontal=0.5),
       dict(type='MultiViewImageAug', final_size=(W, H), resize_range=(0.6, 0.7), flip_prob=0.5,
            rot_range=(-3, 3))]
DERIVED = [dict(type='FilterSceneInstances', point_cloud_range=[-40, -40, -5, 40, 40, 3]),
           dict(type='ProjectLidarDepth', strides=(S,), depth_bins=(1.0, 41.0, 1.0)),
           dict(type='RasterizeMapBEV', resolution=0.5, x_range=(-40, 40), y_range=(-40, 40)),
           dict(type='RasterizeBoxBEV', resolution=0.5, x_range=(-40, 40), y_range=(-40, 40)),
           dict(type='ProjectLayoutToCameras', size=(48, 24)),
           dict(type='GenerateCaption')]
KEYS = ['points', 'img', 'depth_maps', f'depth_s{S}', f'depth_bins_s{S}', f'depth_valid_s{S}',
        'map_bev', 'box_bev', 'layout_images', 'ego_fut_traj', 'ego_fut_valid', 'ego_past_traj',
        'ego_past_valid', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_instance_ids']


@pytest.fixture(scope='module')
def batch(tiny_world):
    import holodrive.models  # noqa: F401
    from holodrive.datasets import NuScenesSceneDataset
    from holodrive.registry import MODELS
    pipeline = [dict(type='LoadPointsChecked'), dict(type='LoadMultiViewImagesChecked'),
                dict(type='LoadSceneAnnotations3D', with_attr_label=True)] + AUG + DERIVED + [
        dict(type='LoadAdjacentFrames', pipeline=[
            dict(type='LoadPointsChecked'), dict(type='LoadMultiViewImagesChecked'),
            dict(type='MultiViewImageAug', final_size=(W, H), resize_range=(0.6, 0.7),
                 test_mode=True)]),
        dict(type='PackSceneInputs', keys=KEYS)]
    ds = NuScenesSceneDataset(str(tiny_world.root), 'nuscenes_infos_train.pkl',
                              pipeline=pipeline, adjacent_frames=(-1, 1), filter_empty_gt=False)
    np.random.seed(0)
    items = [ds[i] for i in range(2)]
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('holodrive'):   # whatever an earlier test set
        pre = MODELS.build(dict(type='SceneDataPreprocessor', mean=[123.675, 116.28, 103.53],
                                std=[58.395, 57.12, 57.375], bgr_to_rgb=True))
    return pre(pseudo_collate(items), training=True), items


def test_every_key_arrives_batched_with_its_shape(batch):
    out, items = batch
    x = out['inputs']
    n_map = 6
    expect = {
        'imgs': ((2, 6, 3, H, W), torch.float32),
        'depth_maps': ((2, 6, H, W), torch.float32),
        f'depth_s{S}': ((2, 6, H // S, W // S), torch.float32),
        f'depth_bins_s{S}': ((2, 6, 40, H // S, W // S), torch.uint8),
        f'depth_valid_s{S}': ((2, 6, H // S, W // S), torch.bool),
        'map_bev': ((2, n_map, 160, 160), torch.uint8),
        'box_bev': ((2, 4, 160, 160), torch.uint8),
        'layout_images': ((2, 6, n_map + 4, 24, 48), torch.uint8),
        'ego_fut_traj': ((2, 6, 2), torch.float32),
        'ego_fut_valid': ((2, 6), torch.bool),
        'ego_past_traj': ((2, 4, 2), torch.float32),
        'ego_past_valid': ((2, 4), torch.bool),
        'cam2img': ((2, 6, 4, 4), torch.float32),
        'lidar2cam': ((2, 6, 4, 4), torch.float32),
        'lidar2img': ((2, 6, 4, 4), torch.float32),
        'cam2lidar': ((2, 6, 4, 4), torch.float32),
        'img_aug_matrix': ((2, 6, 4, 4), torch.float32),
        'lidar_aug_matrix': ((2, 4, 4), torch.float32),
        'ego2global': ((2, 4, 4), torch.float32),
        'camera_ring': ((2, 6), torch.int64),
        'camera_adjacency': ((2, 6, 2), torch.int64),
    }
    for key, (shape, dtype) in expect.items():
        assert key in x, key
        assert tuple(x[key].shape) == shape and x[key].dtype == dtype, \
            (key, tuple(x[key].shape), x[key].dtype)
    assert isinstance(x['points'], list) and x['points'][0].shape[1] == 5
    # images normalised, matrices consistent: lidar2img = img_aug @ cam2img @ lidar2cam
    assert abs(float(x['imgs'].mean())) < 3
    recon = x['img_aug_matrix'].double() @ x['cam2img'].double() @ x['lidar2cam'].double()
    assert torch.allclose(recon, x['lidar2img'].double(), rtol=1e-4, atol=1e-3)
    eye = x['lidar2cam'].double() @ x['cam2lidar'].double()
    assert torch.allclose(eye, torch.eye(4, dtype=torch.float64).expand_as(eye), atol=1e-4)
    # the ring is derived from the calibration: FRONT_LEFT, FRONT, FRONT_RIGHT, BACK_RIGHT ...
    assert x['camera_ring'][0].tolist() == [2, 0, 1, 5, 3, 4]
    # neighbours at the left / right image edge; swapped where the view's image is mirrored
    mirrored = torch.linalg.det(x['img_aug_matrix'][..., :2, :2].double()) < 0
    assert mirrored.any() and not mirrored.all()      # flip_prob 0.5 over 12 views
    for b in range(2):
        for pos, view in enumerate(x['camera_ring'][b].tolist()):
            sides = [(pos - 1) % 6, (pos + 1) % 6]
            assert x['camera_adjacency'][b, pos].tolist() == (
                sides[::-1] if mirrored[b, view] else sides)
    # the layout and depth targets are not empty
    assert x['layout_images'][:, :, n_map:].sum() > 0 and x['layout_images'][:, :, 0].sum() > 0
    assert x[f'depth_valid_s{S}'].any()


def test_adjacent_frames_are_batched_the_same_way(batch):
    out, items = batch
    adj = out['inputs']['adjacent']
    assert len(adj) == 2
    for a in adj:
        assert tuple(a['imgs'].shape) == (2, 6, 3, H, W)
        assert tuple(a['lidar2img'].shape) == (2, 6, 4, 4)
        assert len(a['points']) == 2
    meta = out['data_samples'][0].metainfo
    assert meta['adjacent_offsets'] == [-1, 1]
    assert len(out['data_samples'][0].adjacent) == 2


def test_captions_and_instances_reach_the_samples(batch):
    out, _ = batch
    for sample in out['data_samples']:
        caption = sample.metainfo['caption']
        assert isinstance(caption, str) and caption.startswith('a ')
        assert len(sample.gt_instances_3d.instance_ids) == len(sample.gt_instances_3d.labels_3d)


def test_mixed_sizes_give_a_clear_error(tiny_world):
    import holodrive.models  # noqa: F401
    from holodrive.registry import MODELS
    pre = MODELS.build(dict(type='SceneDataPreprocessor'))
    data = dict(inputs=dict(depth_maps=[torch.zeros(6, 4, 4), torch.zeros(6, 5, 4)]),
                data_samples=None)
    with pytest.raises(ValueError, match="depth_maps.*MultiViewImageAug"):
        pre(data)
