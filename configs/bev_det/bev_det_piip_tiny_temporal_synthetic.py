# The tiny PIIP camera BEV detector with temporal fusion of the previous keyframe switched on:
# the previous keyframe's six images go through the same camera path (no gradients), its BEV
# is warped into the current (augmented) LiDAR frame by the ego motion and fused with the
# current BEV (TemporalBEVFusion, docs/bev_det.md). At a scene start the frame is its own
# neighbour (adjacent_policy='clamp'). Twice the camera cost of the base config.
_base_ = ['./bev_det_piip_tiny_synthetic.py']

model = dict(temporal_fusion=dict(_delete_=True, type='TemporalBEVFusion',
                                  in_channels=_base_.bev_channels,
                                  bev_grid=_base_.bev_grid))
# the neighbour's images at the test-time resize (its own img_aug_matrix is packed with it)
load_previous = dict(type='LoadAdjacentFrames', pipeline=[
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='MultiViewImageAug', final_size=_base_.final_size,
         resize_range=(_base_.resize_test, _base_.resize_test), test_mode=True)])
train_pipeline = _base_.train_pipeline[:-1] + [load_previous, _base_.train_pipeline[-1]]
test_pipeline = _base_.test_pipeline[:-1] + [load_previous, _base_.test_pipeline[-1]]
temporal = dict(adjacent_frames=(-1,), adjacent_policy='clamp')
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, **temporal))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, **temporal))
test_dataloader = val_dataloader
