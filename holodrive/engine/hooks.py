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
