"""PIIP optimizer parts: the layer-wise lr decay constructor (registers on import)."""
from .layer_decay import PIIPLayerDecayOptimizerConstructor, layer_id, no_weight_decay

__all__ = ['PIIPLayerDecayOptimizerConstructor', 'layer_id', 'no_weight_decay']
