# Stage 3 of the tiny driving-QA head with LoRA (peft) instead of full tuning: the decoder's
# weights stay those of stage 2, rank-8 adapters on its attention and FFN projections learn,
# with the patch model, mlp1 and the adapters (holodrive/models/drive_qa/lora.py).
#   python tools/train.py configs/drive_qa/mono_tiny_instruct_lora_synthetic.py \
#       --cfg-options data_root=DIR/ load_from=WORK_DIR_OF_STAGE_2/epoch_3.pth
# load_from a checkpoint without LoRA fills the base weights; tools/qa.py takes the checkpoint
# of this run, or the merged directory that DriveQAModel.save_pretrained writes.
# Docs: docs/drive_qa.md.
_base_ = ['./mono_tiny_instruct_synthetic.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

model = dict(stage='instruction_lora', lora=dict(r=8, lora_alpha=16))
max_epochs = 3
lr = 2e-3  # LoRA usually takes a few times the full-tuning rate (5e-4 here)
optim_wrapper, param_scheduler = config_utils.adamw_cosine(
    lr, max_epochs, warmup_iters=50, weight_decay=0.01, max_norm=1.0, eta_ratio=0.05)
