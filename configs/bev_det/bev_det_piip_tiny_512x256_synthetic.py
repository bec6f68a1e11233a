# The teacher-forced tiny PIIP camera detector at twice the image resolution: 6 views of a
# 640x360 world (tools/create_data.py synthetic --image-size 640 360), resized by 0.8 and
# bottom-cropped to 512x256 (branches at 256 and 512 wide; 16x32 stride-16 cells per view).
# On the 320x180 world a far car is ~10 px wide and its depth is out of reach of the tiny
# net; at 512x256 it is twice as wide. The CenterHead's 36 branch convs are 16 wide instead of
# 64 (they were ~80 % of a training step at 256x128), which pays for the larger images.
# A world of another resolution is one error line (LoadMultiViewImagesChecked.source_size).
#   python tools/train.py configs/bev_det/bev_det_piip_tiny_512x256_synthetic.py \
#       --cfg-options data_root=DIR/        (a 640x360 world)
# Docs: docs/bev_det.md.
_base_ = ['./bev_det_piip_tiny_teacher_forcing_synthetic.py']
import holodrive.engine.config_utils as config_utils  # noqa: E402

source_size = (640, 360)              # (W, H) of the world's camera images
image_size = (256, 512)               # (H, W) network input of every view
final_size = (512, 256)               # (W, H) for MultiViewImageAug
resize_test = 0.8                     # 640x360 -> 512x288, bottom crop -> 512x256

model = dict(
    img_backbone=dict(
        _delete_=True, type='piip_det.PIIP', deform_num_heads=4,
        interaction_drop_path_rate=0.1, branches=[
            dict(embed_dim=64, depth=2, num_heads=2, real_size=256, pretrain_img_size=64,
                 drop_path_rate=0.1, interaction_indexes=[[0, 0], [1, 1]]),
            dict(embed_dim=32, depth=2, num_heads=2, real_size=512, pretrain_img_size=64,
                 window_attn=[True, False], window_size=8, drop_path_rate=0.05,
                 interaction_indexes=[[0, 0], [1, 1]])]),
    view_transform=dict(image_size=image_size),
    bbox_head=dict(separate_head=dict(head_conv=16)))

(train_pipeline, test_pipeline, train_dataloader, val_dataloader,
 test_dataloader) = config_utils.camera_aug_data(_base_, final_size, (0.75, 0.85), resize_test,
                                                 wrapped=False, source_size=source_size)
