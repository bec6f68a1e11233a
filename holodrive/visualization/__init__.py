"""HoloDrive visualization."""
