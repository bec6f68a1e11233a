# The SmolLM2-135M-Instruct driving-QA head reading *oracle object tokens* (SceneObjectTokens:
# one visual token per visible object; mono_tiny_oracle_objects_synthetic.py is its tiny
# twin), visual stage: the LLM frozen, the new 'bev' adapter and the visual FFN experts
# (initialised from SmolLM2's MLPs) learn. The upper bound of what a BEV detector's boxes could
# give the pretrained head, and the check that it learns to read visual tokens at all.
#   bash tools/install.sh --with-smollm2      (writes data/pretrained/smollm2-drive-head)
#   python tools/train.py configs/drive_qa/mono_smollm2_oracle_objects_synthetic.py \
#       --cfg-options data_root=DIR/        (add --amp only on a CPU with native bf16)
# Docs: docs/drive_qa.md.
_base_ = ['./mono_smollm2_visual_synthetic.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

max_objects = 48
object_channels = 25                     # 10 classes + 7 statuses + 4 sectors + x, y, d, present
model = dict(use_images=False,
             pretrained_overrides=dict(adapter_in_channels=dict(bev=object_channels),
                                       adapter_fold=1),
             features=dict(bev=dict(key='object_tokens', shape=(1, max_objects))),
             system='Answer with one word or one number.')
oracle_pipeline = [
    dict(type='SceneObjectTokens', max_objects=max_objects, radius=40.0),
    dict(type='PackSceneInputs', keys=['object_tokens'], meta_keys={{_base_.qa_meta_keys}})
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=oracle_pipeline))
val_dataloader = dict(batch_size=16, dataset=dict(pipeline=oracle_pipeline))
test_dataloader = val_dataloader
max_epochs = 2
lr = 1e-3
optim_wrapper, param_scheduler = config_utils.adamw_cosine(
    lr, max_epochs, warmup_iters=50, weight_decay=0.01, max_norm=1.0, eta_ratio=0.05)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
