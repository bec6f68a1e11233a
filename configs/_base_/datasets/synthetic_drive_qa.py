# Driving QA on a nuScenes-format world (synthetic by default): the questions of
# tools/create_data.py drive_qa (DATA_ROOT/drive_qa/) on their keyframes' six camera images.
# Images: 320x180 -> resize 0.7 (224x126) -> bottom crop 224x112 = 8 x 4 visual tokens per view
# (one per 28 x 28 px), 192 for the six views.
data_root = 'data/synthetic/'
image_size = (224, 112)                  # (W, H), multiples of 28
image_resize = 0.7
qa_modality = dict(use_lidar=False, use_camera=True)
qa_meta_keys = ('sample_idx', 'token', 'qa')
qa_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='MultiViewImageAug', final_size=image_size,
         resize_range=(image_resize, image_resize), test_mode=True),
    dict(type='PackSceneInputs', keys=['img'], meta_keys=qa_meta_keys)
]
qa_types = ('closed',)                   # NuScenes-QA-style closed questions
train_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='DriveQADataset', data_root=data_root,
                 ann_file='nuscenes_infos_train.pkl', qa_file='drive_qa/nuscenes_qa_train.json',
                 qa_types=qa_types, pipeline=qa_pipeline, modality=qa_modality,
                 test_mode=False))
val_dataloader = dict(
    batch_size=16, num_workers=1, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='DriveQADataset', data_root=data_root,
                 ann_file='nuscenes_infos_val.pkl', qa_file='drive_qa/nuscenes_qa_val.json',
                 qa_types=qa_types, pipeline=qa_pipeline, modality=qa_modality,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='DriveQAMetric')
test_evaluator = val_evaluator
