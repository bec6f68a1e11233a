# Full size: the Mono-InternVL-2B shape (InternLM2-chat-1.8B with a visual FFN expert in each of
# its 24 layers; 3.1B parameters, 1.8B active) on nuScenes camera images, 448 x 252 -> crop
# 448 x 224 = 16 x 8 tokens per view. Load the official weights with
#   python tools/convert/mono_internvl.py MONO_INTERNVL_DIR OUT_DIR
# and set model.pretrained=OUT_DIR (the converted tokenizer is saved with it). GPU only.
_base_ = ['./mono_tiny_instruct_synthetic.py']

data_root = 'data/nuscenes/'
image_size = (448, 224)
model = dict(_delete_=True, type='DriveQAModel', pretrained='data/pretrained/mono-internvl-2b',
             image_size=image_size, stage='instruction', max_new_tokens=64,
             gradient_checkpointing=True)
# the InternLM2-1.8B decoder of Mono-InternVL-2B (for a from-scratch build: model.llm = this)
internlm2_1_8b = dict(vocab_size=92553, hidden_size=2048, intermediate_size=8192,
                      num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=8,
                      max_position_embeddings=32768, rms_norm_eps=1e-5,
                      rope_parameters=dict(rope_type='default', rope_theta=1000000.0),
                      tie_word_embeddings=False, vision_hidden_size=2048,
                      vision_base_grid=32)
qa_pipeline = [
    dict(type='LoadMultiViewImagesChecked'),
    dict(type='MultiViewImageAug', final_size=image_size, resize_range=(0.28, 0.28),
         test_mode=True),
    dict(type='PackSceneInputs', keys=['img'], meta_keys={{_base_.qa_meta_keys}})
]
train_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root, pipeline=qa_pipeline))
val_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root, pipeline=qa_pipeline))
test_dataloader = val_dataloader
max_epochs = 1
