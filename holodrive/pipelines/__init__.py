"""Sampling pipelines that only compose (diffusers ``DiffusionPipeline`` subclasses)."""
from .multiview_pipeline import SCHEDULERS, MultiViewDrivePipeline, make_scheduler

__all__ = ['MultiViewDrivePipeline', 'SCHEDULERS', 'make_scheduler']
