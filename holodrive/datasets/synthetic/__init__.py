"""Procedurally generated driving world written in the real nuScenes format.

Usage::

    from holodrive.datasets.synthetic import generate_world
    summary = generate_world('data/synthetic', num_scenes=2, seed=0)
"""
from .world import WORLD_FORMAT_VERSION, WorldSummary, generate_world

__all__ = ['generate_world', 'WorldSummary', 'WORLD_FORMAT_VERSION']
