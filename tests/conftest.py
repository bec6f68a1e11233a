"""Shared fixtures: one small synthetic world per test session.

``tiny_world`` is a 2-scene v1.0-mini world with small images, its nuScenes tables,
sensor files, 2D exports, mmdet3d info files (``nuscenes_infos_{train,val}.pkl``) and the
GT database of the tiny CenterPoint config (``nuscenes_dbinfos_train.json``).
Tests must treat it as read-only; a test that corrupts files copies it first
(``copy_world``).
"""
import shutil
import types

import pytest


TINY_CENTERPOINT = 'configs/centerpoint/centerpoint_tiny_synthetic.py'


def build_gt_database(root):
    """The GT database the tiny CenterPoint config pastes from, for the world at ``root``."""
    from pathlib import Path

    from holodrive.datasets.gt_database import gt_database_from_config
    from holodrive.engine.cli import import_project, prepare_config
    import_project()
    config = Path(__file__).resolve().parents[1] / TINY_CENTERPOINT
    cfg = prepare_config(str(config), cfg_options={'data_root': str(root) + '/'},
                         check_paths=False)
    return gt_database_from_config(cfg, progress=False)


@pytest.fixture(scope='session')
def tiny_world(tmp_path_factory):
    from holodrive.datasets.nuscenes_converter import create_nuscenes_infos
    from holodrive.datasets.synthetic import generate_world

    root = tmp_path_factory.mktemp('tiny_world')
    summary = generate_world(root, num_scenes=2, seed=0, samples_per_scene=4,
                             image_size=(320, 180), progress=False)
    infos = create_nuscenes_infos(root, version=summary.version, progress=False)
    build_gt_database(root)
    return types.SimpleNamespace(root=root, version=summary.version,
                                 summary=summary, infos=infos)


@pytest.fixture
def copy_world(tiny_world, tmp_path):
    """A writable copy of ``tiny_world`` (for tests that corrupt files)."""
    dst = tmp_path / 'world'
    shutil.copytree(tiny_world.root, dst)
    return types.SimpleNamespace(root=dst, version=tiny_world.version,
                                 summary=tiny_world.summary,
                                 infos={k: dst / p.relative_to(tiny_world.root)
                                        for k, p in tiny_world.infos.items()})


@pytest.fixture(autouse=True)
def _default_scope_back_to_holodrive():
    """A test that runs a tool in-process (mmdet / mmseg configs) leaves mmengine's global
    default scope at 'mmdet' or 'mmseg'; put it back so later tests in the same worker
    resolve our unscoped names."""
    yield
    import sys
    if 'mmengine.registry' not in sys.modules:
        return
    from mmengine.registry import DefaultScope, init_default_scope
    current = DefaultScope.get_current_instance()
    if current is not None and current.scope_name != 'holodrive':
        import holodrive.registry  # noqa: F401
        init_default_scope('holodrive')


@pytest.fixture
def one_thread():
    """torch on one thread for the test (timing tests), restored afterwards."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
