# COCO instances (data/coco: annotations/instances_{train,val}2017.json, {train,val}2017/)
# with PIIP's single-scale resize: (real_K, real_K * 800 // 1333) keeping the aspect ratio,
# real_K the top branch resolution (piip.md section 3), then a random flip. A variant at
# another top resolution rebuilds the two pipelines with its own img_scale, e.g.
#   img_scale = (1120, 1120 * 800 // 1333)
#   train_pipeline = [dict(t, scale=img_scale) if t['type'] == 'Resize' else t
#                     for t in _base_.train_pipeline]                      (and test_pipeline)
_base_ = ['mmdet::_base_/datasets/coco_instance.py']

img_scale = (1568, 1568 * 800 // 1333)
train_pipeline = [dict(t, scale=img_scale) if t['type'] == 'Resize' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, scale=img_scale) if t['type'] == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
