"""VarSR Studio's core: the VarSR model, its data, trainer, evaluation and search. No Qt here.

The small public API::

    model = core.load_model("face-8")            # a bundled name or a bundle folder
    lr = model.degrade(hr)                       # what the model sees
    cands = model.sample(lr[0], n=16, seed=0)    # (16, C, H, W) in [0, 1]
    mu, logvar = model.encode_lr(lr)
    img = model.generate(lr, z)

Every candidate is a synthetic, plausible image: an investigative lead, never evidence.
"""

from core.bundle import list_models, load_model, save_bundle
from core.config import ModelConfig
from core.degrade import degrade
from core.errors import BundleError, DataError, ImageLoadError, VarSRError
from core.export import NOTICE as LEAD_NOTICE
from core.model import VarSR
from core.version import __version__ as __version__

__all__ = [
    "LEAD_NOTICE",
    "BundleError",
    "DataError",
    "ImageLoadError",
    "ModelConfig",
    "VarSR",
    "VarSRError",
    "degrade",
    "list_models",
    "load_model",
    "save_bundle",
]
