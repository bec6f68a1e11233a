# The tiny LiDAR generator conditioned on the caption as well as the BEV layout:
#   python tools/create_data.py captions --root-path DIR          (caption tokenizer, once)
#   python tools/train.py configs/holodrive/lidar/lidar_generator_tiny_caption_synthetic.py \
#       --cfg-options data_root=DIR/ model.tokenizer_checkpoint=TOKENIZER.pth
# The keyframe caption (GenerateCaption, after the flip: "a two-lane road at dusk, three
# parked cars on the right, ...") -> the camera branch's tiny CaptionEncoder (a 2-layer
# CLIPTextModel trained with the generator) -> cross-attention in every transformer layer
# (zero-initialised output). Caption and layout are dropped independently with probability
# 0.1 for guidance. Otherwise lidar_generator_tiny_synthetic.py. Docs: docs/lidar_gen.md.
_base_ = ['./lidar_generator_tiny_synthetic.py']

data_root = 'data/synthetic/'         # the caption tokenizer lives here (create_data captions)
text_dim = 64
model = dict(
    transformer=dict(context_dim=text_dim),
    text_encoder=dict(type='CaptionEncoder', tokenizer=data_root + 'caption_tokenizer',
                      max_length=48,
                      text_model=dict(hidden_size=text_dim, intermediate_size=4 * text_dim,
                                      num_hidden_layers=2, num_attention_heads=2)))

map_layers = ['drivable_area', 'lane', 'ped_crossing', 'walkway', 'lane_divider',
              'road_divider']
bev_raster = dict(x_range=(-51.2, 51.2), y_range=(-51.2, 51.2), resolution=0.8)
point_cloud_range = {{_base_.point_cloud_range}}
train_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadSceneAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='RandomFlip3D', sync_2d=False, flip_ratio_bev_horizontal=0.5,
         flip_ratio_bev_vertical=0.0),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='RasterizeMapBEV', layers=map_layers, **bev_raster),
    dict(type='RasterizeBoxBEV', **bev_raster),
    dict(type='GenerateCaption'),         # after the flip: left / right follow the layout
    dict(type='PackSceneInputs', keys=['points', 'map_bev', 'box_bev'])
]
test_pipeline = [
    dict(type='LoadPointsChecked', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='RasterizeMapBEV', layers=map_layers, **bev_raster),
    dict(type='RasterizeBoxBEV', **bev_raster),
    dict(type='GenerateCaption'),
    dict(type='PackSceneInputs', keys=['points', 'map_bev', 'box_bev'])
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
