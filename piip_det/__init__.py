"""PIIP perception backbones for mmdet / mmseg / mmdet3d."""
