# COCO instances (data/coco: annotations/instances_{train,val}2017.json, {train,val}2017/)
# with PIIP's single-scale resize: (real_K, real_K * 800 // 1333) keeping the aspect ratio,
# real_K the top branch resolution (piip.md section 3), then a random flip. A variant at
# another top resolution rebuilds the pipelines with its own img_scale:
#   img_scale = (1120, 1120 * 800 // 1333)
#   (train_pipeline, test_pipeline, train_dataloader, val_dataloader,
#    test_dataloader) = config_utils.resized_data(_base_, img_scale)     (piip_det.config_utils)
_base_ = ['mmdet::_base_/datasets/coco_instance.py']

import piip_det.config_utils as config_utils  # noqa: E402

img_scale = (1568, 1568 * 800 // 1333)
(train_pipeline, test_pipeline, train_dataloader, val_dataloader,
 test_dataloader) = config_utils.resized_data(_base_, img_scale)
