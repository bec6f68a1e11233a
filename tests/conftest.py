"""Shared fixtures: one small synthetic world per test session.

``tiny_world`` is a 2-scene v1.0-mini world with small images, its nuScenes tables,
sensor files, 2D exports and mmdet3d info files (``nuscenes_infos_{train,val}.pkl``).
Tests must treat it as read-only; a test that corrupts files copies it first
(``copy_world``).
"""
import shutil
import types

import pytest


@pytest.fixture(scope='session')
def tiny_world(tmp_path_factory):
    from holodrive.datasets.nuscenes_converter import create_nuscenes_infos
    from holodrive.datasets.synthetic import generate_world

    root = tmp_path_factory.mktemp('tiny_world')
    summary = generate_world(root, num_scenes=2, seed=0, samples_per_scene=4,
                             image_size=(320, 180), progress=False)
    infos = create_nuscenes_infos(root, version=summary.version, progress=False)
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
