# The tiny driving-QA head reading an *oracle* BEV map instead of the camera images: the visible
# objects the questions are about (RasterizeSceneObjectsBEV: class + status counts per 2.5 m
# cell of the ego frame, 32 x 32 cells over the 40 m question radius) go through the LLM's
# VisualAdapter for the 'bev' source (4 x 4 fold: 64 visual tokens after a <BEV> tag).
# Instruction stage (everything learns), the recipe of mono_tiny_instruct_synthetic.py.
# A diagnostic: the upper bound of what a BEV perception model could hand the language head,
# which tells the head's reading of visual tokens apart from the features it is given; a
# detector's BEV map takes this map's place through the same adapter.
# The language-stage checkpoint has no 'bev' adapter (7 keys), hence --allow-partial:
#   python tools/train.py configs/drive_qa/mono_tiny_oracle_bev_synthetic.py --allow-partial \
#       --cfg-options data_root=DIR/ load_from=WORK_DIR_OF_THE_LANGUAGE_STAGE/epoch_2.pth
# Docs: docs/drive_qa.md.
_base_ = ['./mono_tiny_instruct_synthetic.py']

bev_grid = dict(x_range=(-40.0, 40.0), y_range=(-40.0, 40.0), resolution=2.5)
bev_channels = 17                        # 10 detection classes + 7 closed-set statuses
model = dict(use_images=False,
             features=dict(bev=dict(key='bev_objects', shape=(32, 32))),
             llm=dict(adapter_in_channels=dict(bev=bev_channels), adapter_fold=4))
oracle_pipeline = [
    dict(type='RasterizeSceneObjectsBEV', **bev_grid),
    dict(type='PackSceneInputs', keys=['bev_objects'], meta_keys={{_base_.qa_meta_keys}})
]
train_dataloader = dict(dataset=dict(pipeline=oracle_pipeline))
val_dataloader = dict(dataset=dict(pipeline=oracle_pipeline))
test_dataloader = val_dataloader
