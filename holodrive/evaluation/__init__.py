"""HoloDrive evaluation."""
