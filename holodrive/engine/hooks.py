"""Training hooks that mmengine lacks."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook

from holodrive.registry import HOOKS


def _seed_all(seed: int) -> None:
    seed %= 2**31
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


@HOOKS.register_module()
class StepSeedHook(Hook):
    """Re-seed python / numpy / torch at every epoch start and every train iteration from
    ``(runner.seed, epoch)`` and ``(runner.seed, iter)``.

    The random stream of a step then depends only on the seed and the step number, not on
    what ran before it in this process (validation, checkpoint loading, a restart). So a
    run killed with SIGKILL and resumed from its last checkpoint ends with exactly the
    weights of an uninterrupted run; mmengine checkpoints carry no RNG state.
    Limitation: with an iteration-based loop and ``num_workers=0``, augmentation of the
    first batch after a resume is drawn before the first re-seed; use epoch-based loops
    (our configs) or ``num_workers >= 1`` for bit-exact resumes.
    """
    priority = 'VERY_HIGH'

    def _base(self, runner) -> int:
        return int(runner.seed if runner.seed is not None else 0)

    def before_train_epoch(self, runner) -> None:
        _seed_all(self._base(runner) * 1_000_003 + 7919 * (runner.epoch + 1))

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        _seed_all(self._base(runner) * 1_000_003 + 104_729 * (runner.iter + 1) + 1)


@HOOKS.register_module()
class DepthTeacherForcingHook(Hook):
    """Anneal ``teacher_forcing`` of every ``LSSViewTransform`` in the model: before train
    iteration ``i`` it is set to ``start + (end - start) * min(1, i / (anneal_ratio *
    max_iters))``, so the lift starts from the LiDAR depth (where a cell has a point) and
    ends on the depth net's own distribution. The value depends only on ``runner.iter``, so a
    resumed run anneals exactly like an uninterrupted one; it is logged as
    ``depth_teacher_forcing``.

    Args:
        start, end: weights of the LiDAR one-hot at the first and the last annealed iteration.
        anneal_ratio: fraction of the training iterations over which it goes from start to end.
    """
    priority = 'NORMAL'

    def __init__(self, start: float = 1.0, end: float = 0.0, anneal_ratio: float = 0.5):
        if not (0 <= start <= 1 and 0 <= end <= 1 and 0 < anneal_ratio <= 1):
            raise ValueError(f'DepthTeacherForcingHook: start={start}, end={end} must be in '
                             f'[0, 1] and anneal_ratio={anneal_ratio} in (0, 1]')
        self.start, self.end, self.anneal_ratio = float(start), float(end), float(anneal_ratio)

    def value(self, cur_iter: int, max_iters: int) -> float:
        progress = min(1.0, cur_iter / max(1.0, self.anneal_ratio * max_iters))
        return self.start + (self.end - self.start) * progress

    def _transforms(self, runner) -> list:
        from holodrive.models.view_transforms import LSSViewTransform
        found = [m for m in runner.model.modules() if isinstance(m, LSSViewTransform)
                 and m.depth_net is not None]
        if not found:
            raise ValueError('DepthTeacherForcingHook: the model has no LSSViewTransform with a '
                             'depth_net; remove the hook from custom_hooks')
        if any(m.depth_source != 'net' for m in found):
            raise ValueError("DepthTeacherForcingHook: teacher forcing needs "
                             "view_transform.depth_source='net' (the oracle already lifts "
                             'with LiDAR depth)')
        return found

    def before_train(self, runner) -> None:
        self._modules = self._transforms(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        r = self.value(runner.iter, runner.max_iters)
        for m in self._modules:
            m.teacher_forcing = r
        runner.message_hub.update_scalar('train/depth_teacher_forcing', r)
