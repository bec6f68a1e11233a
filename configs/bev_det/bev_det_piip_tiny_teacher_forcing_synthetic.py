# The tiny PIIP camera detector trained with an annealed LiDAR teacher for its lift: during the
# first half of training the depth used to lift the context features at cells with a LiDAR
# point goes linearly from the LiDAR one-hot to the depth net's distribution
# (DepthTeacherForcingHook), so the BEV encoder and head first learn on sharp depth; the second
# half and every test lift with the net's depth alone, so this is a camera-only detector (same
# test pipeline as the base). Depth loss weight 10. Docs: docs/bev_det.md.
_base_ = ['./bev_det_piip_tiny_synthetic.py']

model = dict(depth_loss=dict(loss_weight=10.0))
custom_hooks = [dict(type='StepSeedHook'),
                dict(type='DepthTeacherForcingHook', start=1.0, end=0.0, anneal_ratio=0.5)]
