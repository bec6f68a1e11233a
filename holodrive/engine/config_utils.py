"""Helpers for Python configs: a base config's pipelines with one knob changed, and the
CenterPoint nuScenes head shared by the LiDAR and camera detectors.

Used in Python configs (mmengine exposes the base's variables as ``_base_.NAME``)::

    (train_pipeline, test_pipeline, train_dataloader, val_dataloader,
     test_dataloader) = config_utils.camera_aug_data(_base_, (704, 256), (0.38, 0.55), 0.44)
"""


def camera_aug_data(base, final_size, resize_train, resize_test, wrapped=True,
                    source_size=None):
    """The data keys of a camera config whose ``MultiViewImageAug`` steps use another output
    size and resize ranges than the base's.

    Args:
        base: the config's ``_base_`` (``train_pipeline`` / ``test_pipeline``).
        final_size: ``(W, H)`` of the network input.
        resize_train: ``(min, max)`` training resize factors.
        resize_test: the test resize factor.
        wrapped: the train dataset is a wrapper (``CBGSDataset``) around the scene dataset.
        source_size: optional ``(W, H)`` camera resolution the config is made for, set on
            ``LoadMultiViewImagesChecked`` (a world of another resolution is then one error).

    Returns:
        ``(train_pipeline, test_pipeline, train_dataloader, val_dataloader, test_dataloader)``,
        the dataloaders as overrides that only replace the pipelines.
    """
    def resized(pipeline, resize_range):
        out = []
        for t in pipeline:
            if t['type'] == 'MultiViewImageAug':
                t = dict(t, final_size=tuple(final_size), resize_range=tuple(resize_range))
            elif t['type'] == 'LoadMultiViewImagesChecked' and source_size is not None:
                t = dict(t, source_size=tuple(source_size))
            out.append(t)
        return out

    train = resized(base.train_pipeline, resize_train)
    test = resized(base.test_pipeline, (resize_test, resize_test))
    train_ds = dict(dataset=dict(pipeline=train)) if wrapped else dict(pipeline=train)
    return (train, test, dict(dataset=train_ds), dict(dataset=dict(pipeline=test)),
            dict(dataset=dict(pipeline=test)))


#: CenterPoint's six nuScenes tasks (classes grouped by size and shape)
NUS_CENTER_TASKS = (('car',), ('truck', 'construction_vehicle'), ('bus', 'trailer'),
                    ('barrier',), ('motorcycle', 'bicycle'), ('pedestrian', 'traffic_cone'))


def center_head_nus(in_channels, point_cloud_range, voxel_size, out_size_factor,
                    share_conv_channel=64, max_num=500, head_conv=64):
    """``(bbox_head, train_cfg, test_cfg)`` of mmdet3d's ``CenterHead`` with CenterPoint's
    nuScenes recipe (the six tasks, Gaussian focal + L1 losses, rotated-NMS decoding) on the
    head grid ``(point_cloud_range[3:5] - [0:2]) / voxel_size / out_size_factor``.

    Args:
        in_channels: width of the BEV features the head sees.
        point_cloud_range: ``[x_min, y_min, z_min, x_max, y_max, z_max]`` metres.
        voxel_size: ``[x, y, z]`` metres of the target grid (``grid_size`` follows).
        out_size_factor: target grid cells per head cell.
        share_conv_channel: width of the head's shared conv.
        max_num: boxes kept per sample (coder ``max_num``, ``max_objs``, ``max_per_img``).
        head_conv: width of each ``SeparateHead`` branch's hidden conv (mmdet3d's default 64).
            The head has 36 such branches (6 tasks x reg / height / dim / rot / vel /
            heatmap) at the full head grid, so on a small BEV model they are most of its cost.
    """
    grid_size = [round((point_cloud_range[i + 3] - point_cloud_range[i]) / voxel_size[i])
                 for i in range(3)]
    post_range = [-61.2, -61.2, -10.0, 61.2, 61.2, 10.0]
    bbox_head = dict(
        type='CenterHead', in_channels=in_channels,
        tasks=[dict(num_class=len(names), class_names=list(names))
               for names in NUS_CENTER_TASKS],
        common_heads=dict(reg=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2)),
        share_conv_channel=share_conv_channel,
        bbox_coder=dict(
            type='CenterPointBBoxCoder', pc_range=point_cloud_range[:2],
            post_center_range=post_range, max_num=max_num, score_threshold=0.1,
            out_size_factor=out_size_factor, voxel_size=voxel_size[:2], code_size=9),
        separate_head=dict(type='SeparateHead', init_bias=-2.19, final_kernel=3,
                           head_conv=head_conv),
        loss_cls=dict(type='mmdet.GaussianFocalLoss', reduction='mean'),
        loss_bbox=dict(type='mmdet.L1Loss', reduction='mean', loss_weight=0.25),
        norm_bbox=True)
    train_cfg = dict(
        grid_size=grid_size, voxel_size=voxel_size, out_size_factor=out_size_factor,
        point_cloud_range=point_cloud_range, dense_reg=1, gaussian_overlap=0.1,
        max_objs=max_num, min_radius=2,
        code_weights=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2])
    test_cfg = dict(
        pc_range=point_cloud_range[:2], post_center_limit_range=post_range,
        max_per_img=max_num, max_pool_nms=False, min_radius=[4, 12, 10, 1, 0.85, 0.175],
        score_threshold=0.1, out_size_factor=out_size_factor, voxel_size=voxel_size[:2],
        nms_type='rotate', pre_max_size=1000, post_max_size=83, nms_thr=0.2)
    return bbox_head, train_cfg, test_cfg


def model_of(config_path: str) -> dict:
    """The ``model`` dict of another config file (e.g. the tokenizer a generator freezes),
    marked ``_delete_`` so it replaces, not merges into, the inheriting config's value."""
    from mmengine.config import Config
    model = Config.fromfile(config_path).model.to_dict()
    model['_delete_'] = True
    return model


def adamw_cosine(lr: float, max_epochs: int, warmup_iters: int, weight_decay: float,
                 max_norm: float, eta_ratio: float = 0.05):
    """``(optim_wrapper, param_scheduler)``: AdamW with gradient clipping, a linear warm-up
    over ``warmup_iters`` iterations from ``0.1 lr``, then a per-iteration cosine decay to
    ``eta_ratio * lr`` at ``max_epochs`` (the schedule of the tiny configs)."""
    optim_wrapper = dict(type='OptimWrapper',
                         optimizer=dict(type='AdamW', lr=lr, weight_decay=weight_decay),
                         clip_grad=dict(max_norm=max_norm, norm_type=2))
    param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup_iters),
        dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=lr * eta_ratio, by_epoch=True,
             begin=0, end=max_epochs, convert_to_iter_based=True),
    ]
    return optim_wrapper, param_scheduler
