"""PIIP models."""
