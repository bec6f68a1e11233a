# The SmolLM2-135M-Instruct driving-QA head, visual stage: the LLM frozen (its language
# ability kept), patch model + mlp1 + visual FFN experts (initialised from SmolLM2's MLPs) learn.
#   bash tools/install.sh --with-smollm2      (writes data/pretrained/smollm2-drive-head)
#   python tools/train.py configs/drive_qa/mono_smollm2_visual_synthetic.py \
#       --cfg-options data_root=DIR/
# Docs: docs/drive_qa.md.
_base_ = ['./mono_tiny_visual_synthetic.py']

model = dict(_delete_=True, type='DriveQAModel', pretrained='data/pretrained/smollm2-drive-head',
             image_size={{_base_.image_size}}, stage='visual', max_new_tokens=8)
train_dataloader = dict(batch_size=4)
val_dataloader = dict(batch_size=8)
max_epochs = 1
