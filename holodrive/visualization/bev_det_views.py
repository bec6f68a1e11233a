"""Pictures of what a camera BEV detector (``BEVDet``) sees: its boxes, its lifted BEV
features and its depth.

:func:`bev_det_outputs` runs a built model on one packed sample and returns numpy arrays;
:func:`bev_det_figure` draws, side by side, the BEV with ground-truth (green) and predicted
(red) boxes, the lifted BEV feature energy (L2 norm over channels of the view transform's
``bev_feats``, log scale, boxes overlaid) and, for one camera, the network input image next to
the expected depth ``sum_d P(d) * d_centre`` in metres. ``tools/visualize.py --config
--checkpoint`` calls both (and draws the predictions into the six camera images).
"""
from typing import Optional, Sequence

import numpy as np

from .scene_plots import box_corners


def bev_det_outputs(model, sample: dict, score_thr: float = 0.3) -> dict:
    """Run ``model`` (``BEVDet``, eval mode) on one dataset item (``{'inputs', 'data_samples'}``).

    Returns:
        dict with ``pred_boxes`` ``(N, 7)`` LiDAR frame, bottom centre (x, y, z, l, w, h, yaw),
        ``scores`` ``(N,)``, ``labels`` ``(N,)`` (scores >= ``score_thr``), ``bev_energy``
        ``(H, W)`` (row i at ``y_min + (i + 0.5) res``), ``bev_extent`` (x_min, x_max, y_min,
        y_max) metres, ``depth_m`` ``(V, h, w)`` expected depth, ``images`` ``(V, H, W, 3)``
        uint8 RGB network inputs and ``camera_names``.
    """
    import torch
    from mmengine.dataset import pseudo_collate

    data = model.data_preprocessor(pseudo_collate([sample]), training=False)
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        feats, vt_out = model.extract_feat(inputs, samples)
        result = model.bbox_head.predict(feats, samples)[0]
    keep = result.scores_3d >= score_thr
    boxes = result.bboxes_3d.tensor[keep][:, :7].cpu().numpy()
    vt = model.view_transform
    centres = vt.depth_centres.to(vt_out['depth_probs'].device)
    depth_m = (vt_out['depth_probs'][0] * centres[None, :, None, None]).sum(1)
    grid = vt.grid
    images = sample['inputs']['img']
    images = images.permute(0, 2, 3, 1).cpu().numpy()
    if images.dtype != np.uint8:
        images = np.clip(images, 0, 255).astype(np.uint8)
    if getattr(model.data_preprocessor, '_channel_conversion', False):
        images = images[..., ::-1]          # loaded BGR, the model sees RGB
    return dict(pred_boxes=boxes, scores=result.scores_3d[keep].cpu().numpy(),
                labels=result.labels_3d[keep].cpu().numpy(),
                bev_energy=vt_out['bev_feats'][0].float().norm(dim=0).cpu().numpy(),
                bev_extent=(grid.x_range[0], grid.x_range[1], grid.y_range[0], grid.y_range[1]),
                depth_m=depth_m.cpu().numpy(), images=np.ascontiguousarray(images),
                camera_names=list(samples[0].metainfo.get(
                    'camera_names', [f'camera {i}' for i in range(len(images))])))


def _draw_boxes(ax, boxes: Optional[np.ndarray], color: str) -> None:
    if boxes is None or len(boxes) == 0:
        return
    for footprint in box_corners(boxes)[:, [0, 3, 7, 4, 0], :2]:   # bottom face, closed
        ax.plot(footprint[:, 0], footprint[:, 1], color=color, lw=0.8)


def bev_det_figure(out: dict, gt_boxes: Optional[np.ndarray] = None,
                   camera: Sequence = ('CAM_FRONT',), title: str = ''):
    """One row: BEV boxes | lifted BEV energy | ``camera`` input | its expected depth (m).

    ``out`` from :func:`bev_det_outputs`; ``gt_boxes`` ``(M, 7)`` LiDAR bottom-centre boxes;
    ``camera`` a camera name or index. Returns the matplotlib figure.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    cam = camera[0] if isinstance(camera, (list, tuple)) else camera
    names = out['camera_names']
    if isinstance(cam, str):
        if cam not in names:
            raise ValueError(f'camera {cam!r} is not one of the sample cameras {names}')
        cam = names.index(cam)
    x0, x1, y0, y1 = out['bev_extent']
    fig, axes = plt.subplots(1, 4, figsize=(22, 5.5),
                             gridspec_kw=dict(width_ratios=[1, 1, 1.4, 1.4]))
    ax = axes[0]
    ax.set_facecolor('black')
    _draw_boxes(ax, gt_boxes, 'lime')
    _draw_boxes(ax, out['pred_boxes'], 'red')
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect('equal')
    ax.set_title(f'boxes in BEV (x forward, y left; m): {len(out["pred_boxes"])} predicted (red), '
                 f'{0 if gt_boxes is None else len(gt_boxes)} GT (green)', fontsize=8)
    ax = axes[1]
    ax.imshow(np.log1p(out['bev_energy']), origin='lower', extent=(x0, x1, y0, y1),
              cmap='magma')
    _draw_boxes(ax, gt_boxes, 'lime')
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title('lifted BEV feature energy log(1 + |f|)', fontsize=8)
    axes[2].imshow(out['images'][cam])
    axes[2].set_title(f'{names[cam]} network input', fontsize=8)
    im = axes[3].imshow(out['depth_m'][cam], cmap='turbo_r')
    axes[3].set_title(f'{names[cam]} expected depth (m, stride '
                      f'{out["images"].shape[1] // out["depth_m"].shape[1]})', fontsize=8)
    fig.colorbar(im, ax=axes[3], fraction=0.03)
    for a in axes[2:]:
        a.axis('off')
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
