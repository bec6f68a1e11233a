# Baseline: the tiny LLM without visual input, tuned on the same questions (stage 3 recipe, no
# images): what the answers are worth when they cannot come from the scene.
#   python tools/train.py configs/drive_qa/mono_tiny_novision_synthetic.py \
#       --cfg-options data_root=DIR/ load_from=WORK_DIR_OF_STAGE_1/epoch_2.pth
_base_ = ['./mono_tiny_instruct_synthetic.py']

model = dict(use_images=False)
no_image_pipeline = [dict(type='PackSceneInputs', keys=[], meta_keys={{_base_.qa_meta_keys}})]
train_dataloader = dict(dataset=dict(pipeline=no_image_pipeline))
val_dataloader = dict(dataset=dict(pipeline=no_image_pipeline))
test_dataloader = val_dataloader
