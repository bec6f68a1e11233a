# The tiny driving-QA head reading *oracle object tokens* instead of the camera images: one visual
# token per visible object the questions are about (SceneObjectTokens: class, status and ego
# sector one-hots, ego x / y / distance; nearest first, 48 slots, zero-padded), through the LLM's
# VisualAdapter for the 'bev' source as a 1 x 48 map (fold 1: 48 visual tokens after <BEV>).
# The object-level counterpart of mono_tiny_oracle_bev_synthetic.py (a 32 x 32 raster in 64
# tokens): the same objects, but each in its own token, as a detector's boxes would be given.
# Instruction stage (everything learns), the recipe of mono_tiny_instruct_synthetic.py.
# The language-stage checkpoint has no 'bev' adapter, hence --allow-partial:
#   python tools/train.py configs/drive_qa/mono_tiny_oracle_objects_synthetic.py --allow-partial \
#       --cfg-options data_root=DIR/ load_from=WORK_DIR_OF_THE_LANGUAGE_STAGE/epoch_2.pth
# Docs: docs/drive_qa.md.
_base_ = ['./mono_tiny_instruct_synthetic.py']

max_objects = 48
object_channels = 25                     # 10 classes + 7 statuses + 4 sectors + x, y, d, present
model = dict(use_images=False,
             features=dict(bev=dict(key='object_tokens', shape=(1, max_objects))),
             llm=dict(adapter_in_channels=dict(bev=object_channels), adapter_fold=1))
oracle_pipeline = [
    dict(type='SceneObjectTokens', max_objects=max_objects, radius=40.0),
    dict(type='PackSceneInputs', keys=['object_tokens'], meta_keys={{_base_.qa_meta_keys}})
]
train_dataloader = dict(dataset=dict(pipeline=oracle_pipeline))
val_dataloader = dict(dataset=dict(pipeline=oracle_pipeline))
test_dataloader = val_dataloader
