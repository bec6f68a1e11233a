"""HoloDrive Suite: world model, datasets and shared driving utilities."""
__version__ = "0.1.0"
