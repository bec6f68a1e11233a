"""A test hook: after each training iteration, the loss averaged over all ranks, with the
model wrapper and world size, written by rank 0 to ``WORK_DIR/global_losses.json``
(mmengine logs rank 0's own loss only)."""
import json
import os.path as osp

import torch
from mmengine.dist import all_reduce, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class GlobalLossRecorderHook(Hook):
    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        loss = torch.tensor(float(outputs['loss'].detach()), dtype=torch.float64)
        all_reduce(loss, op='mean')
        if get_rank() == 0:
            path = osp.join(runner.work_dir, 'global_losses.json')
            record = json.load(open(path)) if osp.exists(path) else dict(losses=[])
            record.update(wrapper=type(runner.model).__name__, world_size=get_world_size())
            record['losses'].append(loss.item())
            with open(path, 'w') as f:
                json.dump(record, f)
