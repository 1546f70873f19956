"""dlib's face-recognition ResNet (128-d descriptor) as face-api's ``FaceRecognitionNet`` computes it.

A port of ``src/faceRecognitionNet/`` of the npm package ``@vladmandic/face-api`` 1.7.15 (MIT),
which runs dlib's ``dlib_face_recognition_resnet_model_v1`` (Davis King, MIT) in TF.js. Every layer
is a convolution with bias followed by dlib's affine "scale" layer (folded batch norm):
``(conv(x) + bias) * scale_weight + scale_bias``. Shapes for a 150x150 input::

    conv 7x7/2 valid (32) -> 72, maxpool 3/2 valid -> 35
    3 x residual(32)                          35
    residual_down(64) + 3 x residual(64)      17
    residual_down(128) + 2 x residual(128)     8
    residual_down(256) + 2 x residual(256)     4
    residual_down(256)                         2
    global mean -> fc 256 -> 128 (no bias)

Residual blocks use 3x3 'same' convolutions; a down block uses a 3x3/2 'valid' convolution and adds
a 2x2/2 average pool of its input, zero-padded in channels (and the convolution's output padded by
one zero row/column at the bottom/right where the pooled map is larger), exactly as face-api does.

Input: RGB in [0, 255] (``N, 3, H, W``), normalised as ``(x - mean_rgb) / input_scale``. dlib's own
input layer divides by 256; face-api divides by 255 (``input_scale=255`` reproduces it exactly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: dlib's per-channel mean (R, G, B) of its training chips.
MEAN_RGB: tuple[float, float, float] = (122.782, 117.001, 104.298)
#: Side of the square face chip the network was trained on.
CHIP_SIZE = 150
#: Descriptor length.
DESCRIPTOR_DIM = 128


class ConvScale(nn.Module):
    """Convolution (with bias) then a per-channel affine: face-api's ``convLayer`` without the ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, same: bool = True) -> None:
        super().__init__()
        # 'same' with stride 1 and an odd kernel pads (k - 1) / 2 on every side; 'valid' pads nothing.
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2 if same else 0)
        self.scale_weight = nn.Parameter(torch.ones(out_ch))
        self.scale_bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.scale_weight[:, None, None] + self.scale_bias[:, None, None]


class Residual(nn.Module):
    """``relu(x + conv2(relu(conv1(x))))`` with 3x3 'same' convolutions."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = ConvScale(ch, ch, 3)
        self.conv2 = ConvScale(ch, ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class ResidualDown(nn.Module):
    """Halves the resolution: a 3x3/2 'valid' branch plus a zero-padded 2x2 average pool shortcut."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = ConvScale(in_ch, out_ch, 3, stride=2, same=False)
        self.conv2 = ConvScale(out_ch, out_ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        pooled = F.avg_pool2d(x, 2, 2)
        dh, dw = pooled.shape[-2] - out.shape[-2], pooled.shape[-1] - out.shape[-1]
        if dh or dw:  # face-api appends zero rows/columns at the bottom/right of the conv branch
            out = F.pad(out, (0, dw, 0, dh))
        dc = out.shape[1] - pooled.shape[1]
        if dc:
            pooled = F.pad(pooled, (0, 0, 0, 0, 0, dc))
        return F.relu(pooled + out)


class FaceResNet(nn.Module):
    """dlib's 29-layer face ResNet; ``forward`` maps RGB ``(N, 3, H, W)`` in [0, 255] to ``(N, 128)``.

    The descriptors are not normalised (dlib compares them by Euclidean distance, 0.6 being its
    same-person threshold); the network is size-agnostic but was trained on 150x150 chips.
    """

    mean_rgb: torch.Tensor  # a buffer (register_buffer), typed for the checker

    def __init__(self, input_scale: float = 256.0, mean_rgb: tuple[float, float, float] = MEAN_RGB) -> None:
        super().__init__()
        if input_scale <= 0:
            raise ValueError(f"input_scale must be positive, not {input_scale}")
        self.input_scale = float(input_scale)
        self.register_buffer("mean_rgb", torch.tensor(mean_rgb, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.conv32_down = ConvScale(3, 32, 7, stride=2, same=False)
        self.conv32_1, self.conv32_2, self.conv32_3 = Residual(32), Residual(32), Residual(32)
        self.conv64_down = ResidualDown(32, 64)
        self.conv64_1, self.conv64_2, self.conv64_3 = Residual(64), Residual(64), Residual(64)
        self.conv128_down = ResidualDown(64, 128)
        self.conv128_1, self.conv128_2 = Residual(128), Residual(128)
        self.conv256_down = ResidualDown(128, 256)
        self.conv256_1, self.conv256_2 = Residual(256), Residual(256)
        self.conv256_down_out = ResidualDown(256, 256)
        self.fc = nn.Linear(256, DESCRIPTOR_DIM, bias=False)

    def forward(self, rgb255: torch.Tensor) -> torch.Tensor:
        x = (rgb255 - self.mean_rgb) / self.input_scale
        x = F.max_pool2d(F.relu(self.conv32_down(x)), 3, 2)
        for block in (self.conv32_1, self.conv32_2, self.conv32_3,
                      self.conv64_down, self.conv64_1, self.conv64_2, self.conv64_3,
                      self.conv128_down, self.conv128_1, self.conv128_2,
                      self.conv256_down, self.conv256_1, self.conv256_2, self.conv256_down_out):
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


def state_from_stored(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A float32 state dict from the stored tensors (see ``tools/convert_face_api.py``).

    A tensor with companions ``<name>.q_scale`` and ``<name>.q_min`` holds integer codes and becomes
    ``q * scale + min`` (computed in float64, rounded once to float32, as TF.js decodes them).
    """
    state: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name.endswith((".q_scale", ".q_min")):
            continue
        scale, low = tensors.get(name + ".q_scale"), tensors.get(name + ".q_min")
        if scale is not None and low is not None:
            state[name] = (t.double() * scale.double().reshape(()) + low.double().reshape(())).float()
        else:
            state[name] = t.float()
    return state
