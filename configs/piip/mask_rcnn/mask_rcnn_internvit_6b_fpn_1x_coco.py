# InternViT-6B baseline, Mask R-CNN 1x on COCO with multi-scale training (official
# mmdetection/configs/piip/baseline/mask_rcnn_internvit_6b_fpn_1x_coco_bs16_ms.py): one
# InternViT-6B on the image, global attention, drop path 0.4 ramped over depth, activation
# checkpointing; the data and schedule of PIIP-H6B; layer decay 0.95 over 48 layers.
_base_ = ['./mask_rcnn_piip_h6b_1024_512_fpn_1x_coco.py']

model = dict(backbone=dict(
    _delete_=True, type='piip_det.ViTBaseline', arch='internvit-6b', drop_path_rate=0.4,
    drop_path_schedule='linear', with_cp=True, real_size=1024))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=48, layer_decay_rate=0.95, skip_stride=1))
