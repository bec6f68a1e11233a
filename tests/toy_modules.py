"""A toy regression model and dataset for testing the training machinery (DDP, resume).

Registered in the holodrive registries; configs import this module with
``custom_imports=dict(imports=['tests.toy_modules'])``.
"""
import torch
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModel

from holodrive.registry import DATASETS, MODELS


@DATASETS.register_module()
class ToyRegressionDataset(BaseDataset):
    """``num`` samples ``x ~ N(0, 1)^4``, ``y = x @ [1, -2, 3, 0.5] + 0.1``; fixed by index."""

    def __init__(self, num: int = 16, **kwargs):
        self.num = num
        super().__init__(ann_file='', serialize_data=False, **kwargs)

    def load_data_list(self):
        gen = torch.Generator().manual_seed(1234)
        x = torch.randn(self.num, 4, generator=gen)
        y = x @ torch.tensor([1.0, -2.0, 3.0, 0.5]) + 0.1
        return [dict(inputs=x[i], target=y[i]) for i in range(self.num)]


@MODELS.register_module()
class ToyRegressor(BaseModel):
    """Two-layer MLP, per-sample mean squared error (so DDP gradient averaging is exact)."""

    def __init__(self, hidden: int = 8, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Tanh(),
                                       torch.nn.Linear(hidden, 1))

    def forward(self, inputs, target=None, mode='tensor', **meta):
        pred = self.net(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((pred - target) ** 2).mean())
        return pred
