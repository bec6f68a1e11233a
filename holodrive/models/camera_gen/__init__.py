"""HoloDrive camera branch: autoencoder, multi-view denoiser, generator (docs/camera_gen.md)."""
from .autoencoder import CameraAutoencoder, CameraGenConfigError, check_image_size, latent_factor

__all__ = ['CameraAutoencoder', 'CameraGenConfigError', 'check_image_size', 'latent_factor']
from .generator import CONDITIONS, MultiViewDiffusion  # noqa: E402
from .layout_adapter import LayoutAdapter  # noqa: E402
from .multiview_unet import CrossViewAttention, MultiViewUNet, neighbour_views  # noqa: E402
from .text_encoder import CaptionEncoder, train_caption_tokenizer  # noqa: E402

__all__ += ['CONDITIONS', 'MultiViewDiffusion', 'LayoutAdapter', 'CrossViewAttention',
            'MultiViewUNet', 'neighbour_views', 'CaptionEncoder', 'train_caption_tokenizer']
