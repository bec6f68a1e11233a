"""Sampling pipelines that only compose (diffusers ``DiffusionPipeline`` subclasses)."""
from .multiview_pipeline import MultiViewDrivePipeline

__all__ = ['MultiViewDrivePipeline']
