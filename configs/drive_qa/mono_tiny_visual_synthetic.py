# Stage 2 of the tiny driving-QA head: visual pre-training with the LLM frozen. Only the patch
# model, mlp1 and the visual FFN experts learn (Mono-InternVL's EViP stage 1), on the closed
# questions of the train scenes with their six camera images.
#   python tools/train.py configs/drive_qa/mono_tiny_visual_synthetic.py \
#       --cfg-options data_root=DIR/ load_from=WORK_DIR_OF_STAGE_1/epoch_2.pth
# Next: mono_tiny_instruct_synthetic.py (everything learns). Docs: docs/drive_qa.md.
_base_ = ['./mono_tiny_language_synthetic.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

model = dict(stage='visual')
train_dataloader = dict(
    _delete_=True, batch_size=8, num_workers=1, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='DriveQADataset', data_root={{_base_.data_root}},
                 ann_file='nuscenes_infos_train.pkl', qa_file='drive_qa/nuscenes_qa_train.json',
                 qa_types={{_base_.qa_types}}, pipeline={{_base_.qa_pipeline}},
                 modality={{_base_.qa_modality}}, test_mode=False))
max_epochs = 3
lr = 1e-3
optim_wrapper, param_scheduler = config_utils.adamw_cosine(
    lr, max_epochs, warmup_iters=50, weight_decay=0.01, max_norm=1.0, eta_ratio=0.05)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
