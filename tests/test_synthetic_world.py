"""Tests of the procedurally generated nuScenes-format world."""
import pytest

from holodrive.datasets.constants import CAMERA_NAMES, LIDAR_NAME


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    from holodrive.datasets.synthetic import generate_world
    root = tmp_path_factory.mktemp('synthetic_world')
    summary = generate_world(root, num_scenes=2, seed=0, samples_per_scene=4, image_size=(320, 180),
                             progress=False)
    return summary


@pytest.fixture(scope='module')
def nusc(world):
    from nuscenes.nuscenes import NuScenes
    return NuScenes(version=world.version, dataroot=world.root, verbose=False)


def test_nuscenes_loads(world, nusc):
    from nuscenes.utils.splits import mini_train, mini_val
    assert world.version == 'v1.0-mini'
    assert len(nusc.scene) == 2
    for scene in nusc.scene:
        assert scene['name'] in mini_train + mini_val
    for sample in nusc.sample:
        assert set(sample['data']) == set(CAMERA_NAMES) | {LIDAR_NAME}
