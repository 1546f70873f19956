"""Face embedders: an aligned face chip to a unit-length identity vector. No download, ever.

* :class:`DlibFaceEmbedder` (``dlib-face-resnet``, bundled, 128-d): dlib's ResNet converted from
  ``@vladmandic/face-api`` (``resources/embedders/``, MIT; see ``tools/convert_face_api.py``). Chip:
  150x150 with dlib's eye positions (:func:`core.search.align.dlib_chip_eyes`).
* :class:`FacenetEmbedder` (``facenet-vggface2``, 512-d): facenet-pytorch's InceptionResnetV1
  trained on VGGFace2, only when its weights file is already in the torch cache or given by path.
  Chip: the canonical face frame itself at 160x160 (eye-aligned; facenet-pytorch's MTCNN box crops
  frame a face about the same way).

Both map a gallery photo (eyes from MTCNN) and a candidate (a canonical 64x64 frame, eyes known) to
their chip with the same eye-to-eye similarity. Faces are compared by the Euclidean distance in each
embedder's own space: dlib's raw descriptors (the metric it was trained for; dlib calls pairs under
0.6 the same person; on CelebA test faces raw distances separate identities slightly better than
L2-normalised ones, AUC 0.991 vs 0.989), facenet's unit vectors (``d^2 = 2 - 2 cos``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from core.images import sha256_file
from core.model.bundle import resources_dir
from core.search.align import Point, dlib_chip_eyes, frame_eyes, frame_to_chip, warp_eyes, whole_image_as_frame
from core.search.errors import EmbedderError
from core.search.face_detect import Face

DLIB_NAME = "dlib-face-resnet"
FACENET_NAME = "facenet-vggface2"
#: File name facenet-pytorch 2.5.3 downloads its VGGFace2 weights to (under ``<torch home>/checkpoints``).
FACENET_FILE = "20180402-114759-vggface2.pt"
#: Chips embedded per forward pass.
BATCH = 32


def embedders_dir() -> Path:
    return resources_dir() / "embedders"


@runtime_checkable
class Embedder(Protocol):
    """What the gallery, the ranking and the app need from an embedder."""

    name: str
    version: str
    dim: int

    def chip(self, image: Image.Image, face: Face | None) -> Image.Image:
        """The network's input for a photo (``face`` from MTCNN; None: the whole image as the frame)."""
        ...

    def frame_chip(self, frame: torch.Tensor) -> Image.Image:
        """The network's input for a canonical-frame image ``(3, H, W)`` in [0, 1]."""
        ...

    def embed_chips(self, chips: Sequence[Image.Image]) -> np.ndarray:
        """``(N, dim)`` float32 (unit length when the embedder normalises)."""
        ...


class ChipEmbedder:
    """Shared machinery: eye-aligned chips of ``chip_size`` px, batched forward, optional L2 normalisation."""

    name = "chip"
    version = ""
    dim = 0
    chip_size = 0
    normalize = True
    chip_eyes: tuple[Point, Point] = ((0.0, 0.0), (1.0, 0.0))

    def __init__(self, net: torch.nn.Module, threads: int | None = None) -> None:
        self.net = net.eval()
        self.threads = threads

    def chip(self, image: Image.Image, face: Face | None) -> Image.Image:
        if face is None:
            return frame_to_chip(whole_image_as_frame(image), self.chip_eyes, self.chip_size)
        return warp_eyes(image, (face.left_eye, face.right_eye), self.chip_eyes, self.chip_size)

    def frame_chip(self, frame: torch.Tensor) -> Image.Image:
        a = frame.detach().float().clamp(0, 1).mul(255).round().byte().cpu()
        if a.shape[0] == 1:
            a = a.repeat(3, 1, 1)
        img = Image.fromarray(a.permute(1, 2, 0).numpy(), "RGB")
        return frame_to_chip(img, self.chip_eyes, self.chip_size)

    def _forward(self, rgb255: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def embed_chips(self, chips: Sequence[Image.Image]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = torch.from_numpy(np.stack([np.asarray(c.convert("RGB"), dtype=np.float32) for c in chips]))
        return self._embed(x.permute(0, 3, 1, 2))

    def _embed(self, rgb255: torch.Tensor) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(rgb255), BATCH):
                out.append(self._forward(rgb255[i : i + BATCH].contiguous()).float())
        e = torch.cat(out) if out else torch.zeros(0, self.dim)
        if self.normalize:
            e = torch.nn.functional.normalize(e, dim=1)
        return np.ascontiguousarray(e.numpy(), dtype=np.float32)

    def frames_to_chips(self, frames: torch.Tensor, chip_size: int | None = None,
                        keep_grad: bool = False) -> torch.Tensor:
        """Canonical frames ``(N, C, H, W)`` in [0, 1] to chips ``(N, 3, S, S)`` in [0, 255], batched.

        The same eye-to-eye similarity as :meth:`frame_chip`, done with ``grid_sample`` (bicubic, edge
        pixels repeated outside the frame) and without rounding to 8 bits. ``chip_size`` scales the
        chip (the eyes keep their relative place); ``keep_grad`` lets gradients reach ``frames``.
        """
        x = frames.float() if keep_grad else frames.detach().float()
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        s = chip_size or self.chip_size
        grid = torch.nn.functional.affine_grid(chip_theta(x.shape[-1], self.chip_eyes, self.chip_size, s)
                                               .to(x.device).expand(len(x), 2, 3),
                                               [len(x), 3, s, s], align_corners=False)
        chips = torch.nn.functional.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=False)
        return chips.clamp(0, 1) * 255

    def identity_loss_net(self, chip_size: int | None = None) -> FrameIdentity:
        """A frozen, differentiable frames-to-descriptor module for training (see :class:`FrameIdentity`)."""
        return FrameIdentity(self, chip_size or self.chip_size)

    def embed_frames(self, frames: torch.Tensor) -> np.ndarray:
        """Embeddings of canonical-frame images ``(N, 3, H, W)`` in [0, 1] (e.g. model candidates)."""
        if len(frames) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._embed(torch.cat([self.frames_to_chips(frames[i : i + 256]) for i in range(0, len(frames), 256)]))

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """``core.evaluation.evaluate``'s embedder hook: frames ``(N, 3, H, W)`` -> ``(N, dim)`` tensor."""
        return torch.from_numpy(self.embed_frames(frames))


def chip_theta(frame_size: int, chip_eyes: tuple[Point, Point], chip_size: int, out_size: int) -> torch.Tensor:
    """``affine_grid``'s ``(1, 2, 3)`` matrix mapping a chip of ``out_size`` px (the eyes where a
    ``chip_size`` chip has ``chip_eyes``, scaled) to a canonical frame of ``frame_size`` px."""
    (l_src, r_src) = (complex(*p) for p in frame_eyes(frame_size))
    (l_dst, r_dst) = (complex(*p) for p in chip_eyes)
    inv = (r_src - l_src) / (r_dst - l_dst)  # chip px -> frame px: src = inv * p + off
    off = l_src - l_dst * inv
    a = torch.tensor([[inv.real, -inv.imag], [inv.imag, inv.real]], dtype=torch.float64)
    b = torch.tensor([off.real, off.imag], dtype=torch.float64)
    # normalised coordinates (align_corners=False): pixel p = (o + 1) * size / 2
    lin = a * (chip_size / frame_size)
    return torch.cat([lin, (lin.sum(1) + 2 * b / frame_size - 1)[:, None]], 1).float()[None]


class FrameIdentity(torch.nn.Module):
    """Canonical frames ``(N, 3, H, W)`` in [0, 1] -> raw descriptors ``(N, dim)``, differentiable in
    the frames and frozen in the network: the identity term of training (``train.lambda_identity``).

    A ``chip_size`` under the embedder's own (e.g. 112 for dlib's 150) trades fidelity to the search's
    descriptors for speed; the network is size-agnostic.
    """

    def __init__(self, embedder: ChipEmbedder, chip_size: int) -> None:
        super().__init__()
        self.embedder = embedder
        self.net = embedder.net.eval().requires_grad_(False)
        self.chip_size = int(chip_size)

    def train(self, mode: bool = True) -> FrameIdentity:
        super().train(mode)
        self.net.eval()  # batch statistics never change
        return self

    def forward(self, frames: torch.Tensor, chip_size: int | None = None) -> torch.Tensor:
        """Descriptors of ``frames``; ``chip_size`` overrides the module's chip size for this call."""
        return self.embedder._forward(self.embedder.frames_to_chips(frames, chip_size or self.chip_size,
                                                                    keep_grad=True))


class DlibFaceEmbedder(ChipEmbedder):
    """dlib's 128-d face ResNet from ``resources/embedders/dlib-face-resnet.safetensors`` (checked)."""

    name = DLIB_NAME
    dim = 128
    chip_size = 150
    normalize = False
    chip_eyes = dlib_chip_eyes(150)

    def __init__(self, path: str | Path | None = None, input_scale: float = 256.0) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from core.nets.face_resnet import FaceResNet, state_from_stored

        path = Path(path) if path else embedders_dir() / f"{DLIB_NAME}.safetensors"
        if not path.is_file():
            raise EmbedderError(f"{path}: the bundled face embedder is missing (regenerate it with "
                                "tools/convert_face_api.py)")
        digest = sha256_file(path)
        card = path.with_suffix(".json")
        if card.is_file():
            try:
                expected = json.loads(card.read_text(encoding="utf-8")).get("weights_sha256")
            except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
                raise EmbedderError(f"{card}: not a readable model card ({e})") from e
            if expected and expected != digest:
                raise EmbedderError(f"{path}: SHA-256 does not match the one recorded in {card.name} "
                                    "(altered or corrupt)")
        try:
            stored = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise EmbedderError(f"{path}: not a readable safetensors file ({e})") from e
        net = FaceResNet(input_scale=input_scale)
        try:
            net.load_state_dict(state_from_stored(stored))
        except RuntimeError as e:
            raise EmbedderError(f"{path}: tensors do not match the face ResNet ({str(e).splitlines()[0]})") from e
        super().__init__(net)
        self.version = digest
        self.path = path

    def _forward(self, rgb255: torch.Tensor) -> torch.Tensor:
        return self.net(rgb255)


def facenet_weights_candidates() -> list[Path]:
    """Where facenet-pytorch's VGGFace2 weights may already be: its own cache and torch hub's."""
    home = Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"),
                                                                         "torch"))))
    out = [home / "checkpoints" / FACENET_FILE]
    try:
        hub = Path(torch.hub.get_dir()) / "checkpoints" / FACENET_FILE
    except Exception:  # pragma: no cover - torch hub misconfigured
        hub = None
    if hub is not None and hub not in out:
        out.append(hub)
    return out


class FacenetEmbedder(ChipEmbedder):
    """facenet-pytorch's InceptionResnetV1 (VGGFace2), 512-d; never downloads.

    ``path``: the ``20180402-114759-vggface2.pt`` state dict; default: the torch cache. Missing ->
    :class:`EmbedderError` at once. The file is read with ``torch.load(weights_only=True)`` (tensors
    only, no arbitrary objects).
    """

    name = FACENET_NAME
    dim = 512
    chip_size = 160
    chip_eyes = frame_eyes(160)

    def __init__(self, path: str | Path | None = None) -> None:
        if path is not None:
            weights = Path(path)
            if not weights.is_file():
                raise EmbedderError(f"{weights}: no such facenet weights file")
        else:
            found = [p for p in facenet_weights_candidates() if p.is_file()]
            if not found:
                where = " or ".join(str(p) for p in facenet_weights_candidates())
                raise EmbedderError(f"the facenet-pytorch VGGFace2 weights are not on this machine (looked for "
                                    f"{where}); this program never downloads them: copy {FACENET_FILE} there "
                                    f"or pass its path, or use the bundled '{DLIB_NAME}' embedder")
            weights = found[0]
        from facenet_pytorch import InceptionResnetV1

        net = InceptionResnetV1(pretrained=None, classify=False)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as e:
            raise EmbedderError(f"{weights}: not a readable facenet state dict ({e.__class__.__name__})") from e
        if not isinstance(state, dict):
            raise EmbedderError(f"{weights}: not a state dict")
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise EmbedderError(f"{weights}: tensors do not match InceptionResnetV1 "
                                f"({str(e).splitlines()[0]})") from e
        super().__init__(net)
        self.version = sha256_file(weights)
        self.path = weights

    def _forward(self, rgb255: torch.Tensor) -> torch.Tensor:
        return self.net((rgb255 - 127.5) / 128.0)  # facenet-pytorch's fixed_image_standardization


EMBEDDERS = (DLIB_NAME, FACENET_NAME)


def load_embedder(name: str = DLIB_NAME, path: str | Path | None = None) -> ChipEmbedder:
    """An embedder by name (``dlib-face-resnet``, the default, or ``facenet-vggface2``)."""
    if name == DLIB_NAME:
        return DlibFaceEmbedder(path)
    if name == FACENET_NAME:
        return FacenetEmbedder(path)
    raise EmbedderError(f"unknown embedder '{name}' (known: {', '.join(EMBEDDERS)})")
