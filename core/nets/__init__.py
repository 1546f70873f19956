"""The networks of VarSR: Gaussian encoders, the generator and the WGAN-GP critic."""

from core.nets.critic import Critic
from core.nets.encoder import GaussianEncoder
from core.nets.generator import Generator

__all__ = ["Critic", "GaussianEncoder", "Generator"]
