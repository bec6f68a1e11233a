"""HoloDrive models."""
