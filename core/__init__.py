"""VarSR Studio's core: the VarSR model, its data, trainer, evaluation and search. No Qt here.

Wings (each package's ``__init__`` says what it holds and what it may import):

- foundation modules here: ``errors``, ``version``, ``images`` (hostile-file loading), ``fileio``
  (atomic writes), ``jsonchecks``, ``perf``; they import no other wing;
- ``model`` (VarSR, config, bundles, degradations, face frame, attributes) and ``nets`` (networks);
- ``data`` (data sets and splits), ``training`` (trainer, losses, run configs), ``evaluation``;
- ``workbench`` (the session, evidence, candidates, recipes, catalogue, export), ``case``;
- ``search`` (faces, plates, galleries), ``plates`` (real plates, reading), ``video``;
- ``cli``: the command-line tools, the only wing that may import all the others.

The small public API::

    model = core.load_model("face-8")            # a bundled name or a bundle folder
    lr = model.degrade(hr)                       # what the model sees
    cands = model.sample(lr[0], n=16, seed=0)    # (16, C, H, W) in [0, 1]
    mu, logvar = model.encode_lr(lr)
    img = model.generate(lr, z)

Every candidate is a synthetic, plausible image: an investigative lead, never evidence.
"""

from core.errors import BundleError, DataError, ImageLoadError, VarSRError
from core.model.bundle import list_models, load_model, save_bundle
from core.model.config import ModelConfig
from core.model.degrade import degrade
from core.model.varsr import VarSR
from core.version import __version__ as __version__
from core.workbench.export import NOTICE as LEAD_NOTICE

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
