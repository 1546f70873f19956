"""The networks: VarSR's Gaussian encoders, generator and WGAN-GP critic (imported here), and the small
networks beside them, each in its own module: the character classifier (:mod:`core.nets.classifier`),
the face attribute classifier (:mod:`core.nets.attribute_classifier`), LPIPS (:mod:`core.nets.lpips`)
and the face embedder (:mod:`core.nets.face_resnet`); the small ones share :mod:`core.nets.sidecar`."""

from core.nets.critic import Critic
from core.nets.encoder import GaussianEncoder
from core.nets.generator import Generator

__all__ = ["Critic", "GaussianEncoder", "Generator"]
