"""Load the neighbouring keyframes attached by ``NuScenesSceneDataset(adjacent_frames=...)``."""
import numpy as np
from mmcv.transforms import BaseTransform, Compose

from holodrive.registry import TRANSFORMS
from .builder import build_pipeline


@TRANSFORMS.register_module()
class LoadAdjacentFrames(BaseTransform):
    """Run a loading sub-pipeline on every attached neighbour keyframe.

    The dataset puts ``results['adjacent_frames']``: a list of dicts with ``offset``,
    ``actual_offset``, ``valid``, ``info`` (the neighbour's parsed info, with
    ``ann_info``), ``adj2cur_lidar`` / ``cur2adj_lidar`` / ``adj2cur_ego`` (4x4) and
    ``time_delta`` (s). This transform runs ``pipeline`` on a copy of each ``info``
    and stores the output as ``entry['results']`` (images, points, boxes, BEV
    rasters... in the neighbour's own frames).

    Args:
        pipeline (list[dict]): loading transforms for a neighbour (no augmentation
            that must be shared with the current frame, no packing).
        points_to_current (bool): also add ``entry['results']['points_in_current']``:
            the neighbour's points moved into the current LiDAR frame.
    """

    def __init__(self, pipeline, points_to_current: bool = False):
        self.pipeline = Compose(build_pipeline(pipeline))
        self.points_to_current = points_to_current

    def transform(self, results: dict) -> dict:
        if 'adjacent_frames' not in results:
            raise KeyError('LoadAdjacentFrames needs results["adjacent_frames"]: build '
                           'NuScenesSceneDataset with adjacent_frames=(-1, 1) (or similar)')
        for entry in results['adjacent_frames']:
            adj = dict(entry['info'])
            for key in ('box_type_3d', 'box_mode_3d'):
                if key in results:
                    adj.setdefault(key, results[key])
            out = self.pipeline(adj)
            if out is None:
                raise ValueError(f'the adjacent-frame pipeline dropped neighbour '
                                 f'{entry["offset"]} (token {adj.get("token")}); it must '
                                 'not filter frames')
            if self.points_to_current and 'points' in out:
                pts = out['points'].clone()
                mat = np.asarray(entry['adj2cur_lidar'], dtype=np.float32)
                xyz = pts.tensor[:, :3]
                pts.tensor[:, :3] = xyz @ xyz.new_tensor(mat[:3, :3]).T + \
                    xyz.new_tensor(mat[:3, 3])
                out['points_in_current'] = pts
            entry['results'] = out
        return results

    def __repr__(self):
        return f'{type(self).__name__}(pipeline={self.pipeline}, ' \
               f'points_to_current={self.points_to_current})'
