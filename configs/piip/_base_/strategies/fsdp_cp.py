# Fully sharded data parallel (mmengine FlexibleRunner + FSDPStrategy, ZeRO-3 style) with
# activation checkpointing, for the 6B PIIP variants. Add it to a config's _base_ and run
#   bash tools/dist_train.sh CONFIG NUM_GPUS
# - one FSDP unit per ViT block and per interaction block (piip_det.fsdp); fp32 master
#   weights, gradients and AdamW states are sharded over all ranks;
# - use_orig_params=True keeps the original parameter names, so the layer-decay optimizer
#   constructor builds its per-layer groups on the wrapped model;
# - checkpoints are full state dicts gathered on rank 0 (one file: tools/test.py reads it in
#   one process, and training resumes on any number of GPUs);
# - activation checkpointing on the same blocks (recomputed in backward); keep the
#   backbone's own with_cp=False under this strategy (one checkpointing, not two);
# - bf16: tools/train.py --amp (GPU); the deformable attention stays fp32 inside.
# `python tools/analysis_tools/get_flops.py CONFIG` prints the per-GPU memory estimate.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        auto_wrap_policy=dict(type='piip_det.fsdp.block_wrap_policy'),
        use_orig_params=True,
        sharding_strategy='FULL_SHARD'),
    state_dict_cfg=dict(   # what state_dict_cfg='full' means, spelled out (CPU runs switch
        state_dict_type='FULL_STATE_DICT',  # offload off: FSDP's CPU offload of CPU tensors fails)
        state_dict_config=dict(type='FullStateDictConfig', offload_to_cpu=True, rank0_only=True),
        optim_state_dict_config=dict(type='FullOptimStateDictConfig', offload_to_cpu=True,
                                     rank0_only=True)),
    activation_checkpointing=dict(check_fn='piip_det.fsdp.is_block'))
