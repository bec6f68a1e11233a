"""Broken inputs fail with ONE specific exception that names the file and the fix.

Each test corrupts a copy of the tiny world (``copy_world``) and checks the error
type, that the message names the offending path and a fix, and that the error is
not chained to a deep library traceback.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from holodrive.datasets import (CorruptSampleError, InfoFileError, MissingSampleError,
                                NuScenesSceneDataset, NuScenesTableError,
                                create_nuscenes_infos, load_nuscenes)


def _dataset(world, pipeline, ann='nuscenes_infos_train.pkl'):
    return NuScenesSceneDataset(str(world.root), ann, pipeline=pipeline,
                                filter_empty_gt=False, test_mode=True)


def _info(world, idx=0):
    return _dataset(world, []).get_data_info(idx)


def _check(excinfo, path, *phrases):
    err = excinfo.value
    msg = str(err)
    assert str(path) in msg and err.path == str(path), msg
    assert 'fix:' in msg and err.hint, msg
    for phrase in phrases:
        assert phrase in msg, msg
    assert err.__cause__ is None and len(msg.splitlines()) <= 3, msg


# ------------------------------------------------------------------------ LiDAR files
def test_truncated_lidar_file(copy_world):
    path = Path(_info(copy_world)['lidar_points']['lidar_path'])
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(CorruptSampleError) as excinfo:
        _dataset(copy_world, [dict(type='LoadPointsChecked')])[0]
    _check(excinfo, path, 'not a multiple of 20')


def test_lidar_file_with_nan(copy_world):
    path = Path(_info(copy_world)['lidar_points']['lidar_path'])
    points = np.fromfile(path, dtype=np.float32)
    points[[3, 11]] = [np.nan, np.inf]
    points.tofile(path)
    with pytest.raises(CorruptSampleError) as excinfo:
        _dataset(copy_world, [dict(type='LoadPointsChecked')])[0]
    _check(excinfo, path, '2 point(s) with NaN/inf')


def test_missing_lidar_file(copy_world):
    path = Path(_info(copy_world)['lidar_points']['lidar_path'])
    path.unlink()
    with pytest.raises(MissingSampleError) as excinfo:
        _dataset(copy_world, [dict(type='LoadPointsChecked')])[0]
    _check(excinfo, path, 'LiDAR file not found')
    assert isinstance(excinfo.value, FileNotFoundError)


def test_corrupt_sweep_file(copy_world):
    ds = _dataset(copy_world, [
        dict(type='LoadPointsChecked'),
        dict(type='LoadSweepsChecked', sweeps_num=10, use_dim=[0, 1, 2, 3, 4],
             test_mode=True)])
    info = ds.get_data_info(len(ds) - 1)
    path = Path(info['lidar_sweeps'][0]['lidar_points']['lidar_path'])
    path.write_bytes(b'\0' * 13)
    with pytest.raises(CorruptSampleError) as excinfo:
        ds[len(ds) - 1]
    _check(excinfo, path)


# ------------------------------------------------------------------------ images
def test_missing_image(copy_world):
    path = Path(_info(copy_world)['images']['CAM_BACK']['img_path'])
    path.unlink()
    with pytest.raises(MissingSampleError) as excinfo:
        _dataset(copy_world, [dict(type='LoadMultiViewImagesChecked')])[0]
    _check(excinfo, path, 'camera image not found')


def test_undecodable_image(copy_world):
    path = Path(_info(copy_world)['images']['CAM_FRONT_LEFT']['img_path'])
    path.write_bytes(b'this is not a jpeg')
    with pytest.raises(CorruptSampleError) as excinfo:
        _dataset(copy_world, [dict(type='LoadMultiViewImagesChecked')])[0]
    _check(excinfo, path, 'cannot be decoded')


def test_image_with_wrong_size(copy_world):
    from PIL import Image

    path = Path(_info(copy_world)['images']['CAM_FRONT']['img_path'])
    Image.new('RGB', (64, 36)).save(path, format='JPEG')
    with pytest.raises(CorruptSampleError) as excinfo:
        _dataset(copy_world, [dict(type='LoadMultiViewImagesChecked')])[0]
    _check(excinfo, path, 'is 64x36')


def test_world_resolution_other_than_the_configs_is_one_line(tiny_world):
    from holodrive.engine.config_check import ConfigError

    cam = _info(tiny_world)['images']['CAM_FRONT']
    w, h = int(cam['width']), int(cam['height'])
    ok = _dataset(tiny_world, [dict(type='LoadMultiViewImagesChecked', source_size=(w, h))])
    assert ok[0]['img'][0].shape[:2] == (h, w)
    wrong = _dataset(tiny_world, [dict(type='LoadMultiViewImagesChecked',
                                       source_size=(2 * w, 2 * h))])
    with pytest.raises(ConfigError) as excinfo:
        wrong[0]
    msg = str(excinfo.value)
    assert f'is {w}x{h}, the config expects {2 * w}x{2 * h}' in msg, msg
    assert f'--image-size {2 * w} {2 * h}' in msg and len(msg.splitlines()) == 1, msg


# ------------------------------------------------------------------------ tables
def _table(world, name):
    return Path(world.root) / world.version / f'{name}.json'


def test_malformed_json_table(copy_world):
    path = _table(copy_world, 'sample')
    path.write_text(path.read_text()[:200])
    with pytest.raises(NuScenesTableError) as excinfo:
        load_nuscenes(copy_world.root, copy_world.version)
    _check(excinfo, path, 'malformed JSON', "'sample'")
    with pytest.raises(NuScenesTableError):   # the converter says the same
        create_nuscenes_infos(copy_world.root, copy_world.version, progress=False)


def test_table_record_missing_a_field(copy_world):
    path = _table(copy_world, 'sample_annotation')
    records = json.loads(path.read_text())
    del records[3]['translation']
    path.write_text(json.dumps(records))
    with pytest.raises(NuScenesTableError) as excinfo:
        create_nuscenes_infos(copy_world.root, copy_world.version, progress=False)
    _check(excinfo, path, 'record 3', "['translation']")


def test_missing_table_and_version_folder(copy_world):
    path = _table(copy_world, 'visibility')
    path.unlink()
    with pytest.raises(NuScenesTableError) as excinfo:
        load_nuscenes(copy_world.root, copy_world.version)
    _check(excinfo, path, 'missing nuScenes table')
    with pytest.raises(NuScenesTableError) as excinfo:
        load_nuscenes(copy_world.root, 'v1.0-trainval')
    _check(excinfo, Path(copy_world.root) / 'v1.0-trainval', copy_world.version)


def test_dangling_token(copy_world):
    path = _table(copy_world, 'instance')
    records = json.loads(path.read_text())
    records[0]['category_token'] = 'does-not-exist'
    path.write_text(json.dumps(records))
    with pytest.raises(NuScenesTableError) as excinfo:
        load_nuscenes(copy_world.root, copy_world.version)
    _check(excinfo, path, 'record 0', "'does-not-exist' is not a token of table 'category'")


# ------------------------------------------------------------------------ info + map
def test_truncated_info_file(copy_world):
    path = copy_world.infos['train']
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(InfoFileError) as excinfo:
        _dataset(copy_world, [])
    _check(excinfo, path, 'not a readable pickle')


def test_missing_map_expansion(copy_world):
    info = _info(copy_world)
    path = Path(copy_world.root) / 'maps' / 'expansion' / f'{info["location"]}.json'
    path.unlink()
    with pytest.raises(MissingSampleError) as excinfo:
        _dataset(copy_world, [dict(type='RasterizeMapBEV')])[0]
    _check(excinfo, path, 'map expansion')
