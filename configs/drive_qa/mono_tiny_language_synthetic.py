# Stage 1 of the tiny driving-QA head: language-only pre-training of a from-scratch LLM on the
# world's text corpus (captions + questions + answers of the train split).
#   python tools/create_data.py drive_qa --root-path DIR          (QA files, corpus, tokenizer)
#   python tools/train.py configs/drive_qa/mono_tiny_language_synthetic.py \
#       --cfg-options data_root=DIR/
# Next: mono_tiny_visual_synthetic.py with load_from=<this work_dir>/epoch_N.pth.
# Docs: docs/drive_qa.md.
_base_ = ['../_base_/datasets/synthetic_drive_qa.py', '../_base_/default_runtime.py']
data_root = 'data/synthetic/'          # the base's; repeated to build paths from it
import holodrive.engine.config_utils as config_utils  # noqa: E402

# Qwen2/Llama-style tiny decoder (RMSNorm, RoPE, GQA, SwiGLU) with visual FFN experts.
tiny_llm = dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4,
                num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=1024,
                tie_word_embeddings=True, rope_parameters=dict(rope_type='default',
                                                              rope_theta=10000.0),
                vision_hidden_size=96, vision_base_grid=16, initializer_range=0.02)
model = dict(type='DriveQAModel', tokenizer=data_root + 'drive_qa/tokenizer', llm=tiny_llm,
             image_size={{_base_.image_size}}, stage='language', max_new_tokens=16)

train_dataloader = dict(
    _delete_=True, batch_size=16, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='DriveQATextDataset', data_root=data_root,
                 text_files=['drive_qa/corpus_train.txt']))
# val / test: the closed questions of the val scenes (the base's), not run during this stage
val_cfg = dict()
test_cfg = dict()

max_epochs = 2
lr = 2e-3
optim_wrapper, param_scheduler = config_utils.adamw_cosine(
    lr, max_epochs, warmup_iters=50, weight_decay=0.01, max_norm=1.0, eta_ratio=0.05)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1000)
