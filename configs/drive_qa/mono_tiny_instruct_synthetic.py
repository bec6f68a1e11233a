# Stage 3 of the tiny driving-QA head: instruction tuning, everything learns, on the closed
# questions (NuScenes-QA style) of the train scenes.
#   python tools/train.py configs/drive_qa/mono_tiny_instruct_synthetic.py \
#       --cfg-options data_root=DIR/ load_from=WORK_DIR_OF_STAGE_2/epoch_3.pth
# Docs: docs/drive_qa.md.
_base_ = ['./mono_tiny_visual_synthetic.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

model = dict(stage='instruction')
max_epochs = 3
lr = 5e-4
optim_wrapper, param_scheduler = config_utils.adamw_cosine(
    lr, max_epochs, warmup_iters=50, weight_decay=0.01, max_norm=1.0, eta_ratio=0.05)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
