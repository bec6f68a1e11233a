"""``LiDARGenMetric``: reconstruction / generation quality of LiDAR sweeps, run by
``tools/test.py``; the protocol is printed with the scores.

Each data sample must carry ``pred_occupancy`` / ``gt_occupancy`` (``(M, 3)`` occupied cells on
the model's grid), ``gt_points`` (the real sweep) and, for Chamfer / MMD / JSD,
``pred_points`` (the scan-sampled sweep; ``LiDARTokenizer.predict`` and the generator's
``predict`` fill them). Scores:

- ``voxel_iou``: sum of intersections / sum of unions over the split (and ``voxel_iou_mean``,
  the per-sweep mean);
- ``chamfer``: mean over sweeps of the bidirectional Chamfer distance (metres) in ``roi``;
- ``mmd``, ``jsd``: between the BEV histograms of all predicted and all real sweeps
  (``hist_field``, ``hist_bins``, ``mmd_sigma``), see :mod:`.lidar_metrics`.
"""
import math
from typing import Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from holodrive.registry import METRICS
from .lidar_metrics import CHAMFER_ROI, bev_histogram, chamfer_distance, jsd, mmd, voxel_iou


@METRICS.register_module()
class LiDARGenMetric(BaseMetric):
    """Voxel IoU, Chamfer, MMD and JSD of predicted vs real sweeps (module docstring)."""

    default_prefix = 'lidar'

    def __init__(self, roi: Sequence[float] = CHAMFER_ROI, hist_field: float = 50.0,
                 hist_bins: int = 100, mmd_sigma: float = 0.5,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.roi, self.hist_field = list(roi), float(hist_field)
        self.hist_bins, self.mmd_sigma = int(hist_bins), float(mmd_sigma)

    def protocol(self) -> str:
        return (f'voxel IoU on the model grid (sum of intersections / sum of unions); Chamfer: '
                f'bidirectional mean Euclidean nearest distance / 2 in metres, ROI {self.roi}; '
                f'MMD^2: Gaussian kernel sigma {self.mmd_sigma} on BEV histograms '
                f'{self.hist_bins}x{self.hist_bins} over +-{self.hist_field} m (sum 1); JSD: '
                'scipy jensenshannon (base 2) of the mean histograms')

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            get = sample.get if isinstance(sample, dict) else lambda k, d=None: getattr(
                sample, k, d)
            for key in ('pred_occupancy', 'gt_occupancy', 'gt_points'):
                if get(key) is None:
                    raise KeyError(f'LiDARGenMetric: data sample lacks {key!r}: the model\'s '
                                   'predict() must set it (LiDARTokenizer / LiDARGenerator do)')
            inter, union = voxel_iou(get('pred_occupancy').cpu(), get('gt_occupancy').cpu())
            row = dict(inter=inter, union=union)
            pred_points = get('pred_points')
            if pred_points is not None:
                gt = get('gt_points').cpu()
                row.update(chamfer=chamfer_distance(pred_points.cpu(), gt, self.roi),
                           hist_pred=bev_histogram(pred_points, self.hist_field, self.hist_bins),
                           hist_gt=bev_histogram(gt, self.hist_field, self.hist_bins))
            self.results.append(row)

    def compute_metrics(self, results: list) -> dict:
        union = sum(r['union'] for r in results)
        metrics = dict(voxel_iou=sum(r['inter'] for r in results) / max(union, 1),
                       voxel_iou_mean=sum(r['inter'] / max(r['union'], 1) for r in results)
                       / max(len(results), 1))
        with_points = [r for r in results if 'chamfer' in r]
        if with_points:
            finite = [r['chamfer'] for r in with_points if math.isfinite(r['chamfer'])]
            metrics['chamfer'] = sum(finite) / len(finite) if finite else float('inf')
            metrics['mmd'] = mmd([r['hist_pred'] for r in with_points],
                                 [r['hist_gt'] for r in with_points], self.mmd_sigma)
            metrics['jsd'] = jsd([r['hist_pred'] for r in with_points],
                                 [r['hist_gt'] for r in with_points])
        print_log(f'LiDARGenMetric protocol ({len(results)} sweeps): {self.protocol()}',
                  logger='current')
        return metrics
