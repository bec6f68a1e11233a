# The synthetic world's ADE20K-layout export (DIR/ade/{images,annotations}/{training,
# validation}/, labels 0 = other (ignored, reduce_zero_label), then the 17 classes below),
# small images for CPU runs; --cfg-options data_root=DIR/ switches every path. Evaluator:
# mmseg's IoUMetric (mIoU).
dataset_type = 'BaseSegDataset'
data_root = 'data/synthetic/'
metainfo = dict(classes=('road', 'sidewalk', 'lane_marking', 'terrain', 'building',
                         'vegetation', 'sky', 'car', 'truck', 'trailer', 'bus',
                         'construction_vehicle', 'bicycle', 'motorcycle', 'pedestrian',
                         'traffic_cone', 'barrier'))
img_scale = (256, 144)      # the 320 x 180 camera images at 0.8
ade_dataset = dict(type=dataset_type, data_root=data_root + 'ade/', metainfo=metainfo,
                   img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(ade_dataset, pipeline=train_pipeline,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training')))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(ade_dataset, pipeline=test_pipeline,
                 data_prefix=dict(img_path='images/validation',
                                  seg_map_path='annotations/validation')))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
