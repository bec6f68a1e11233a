# Diagnostic (not a detector to ship): the tiny PIIP camera detector lifting with the LiDAR
# depth (one-hot of the nearest LiDAR point's bin at every feature cell that has one, the depth
# net's distribution elsewhere) in training and testing. The gap between this model and
# bev_det_piip_tiny_synthetic.py is what better depth alone could give; the test pipeline
# loads the LiDAR points only to project them into depth targets. Docs: docs/bev_det.md.
_base_ = ['./bev_det_piip_tiny_synthetic.py']

model = dict(view_transform=dict(depth_source='lidar'))

depth_bins = {{_base_.depth_bins}}
# the base's view_transform.downsample (16): the target keys must carry its stride
final_size = {{_base_.final_size}}
resize_test = {{_base_.resize_test}}
input_modality = {{_base_.input_modality}}
test_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='MultiViewImageAug', final_size=final_size,
         resize_range=(resize_test, resize_test), test_mode=True),
    dict(type='ProjectLidarDepth', strides=(16,), depth_bins=depth_bins),
    dict(type='PackSceneInputs', keys=['img', 'depth_bins_s16',
                                       'depth_valid_s16'])
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, modality=input_modality))
test_dataloader = val_dataloader
