"""A camera model of degradation: what CCTV or a phone records of a face or a plate.

The box filter of :mod:`core.model.degrade` is an ideal sensor. Real footage adds, in this order
(each step optional and drawn at random from a :class:`CameraModel`):

1. **optics**: a Gaussian, a defocus disc or a short motion streak (sizes in camera pixels);
2. **sensor sampling**: each camera pixel integrates the scene over its own square footprint,
   at a sub-pixel offset and at a pitch that rarely makes the frame exactly the model's size
   (``capture``: camera pixels across the frame divided by the model's input size);
3. **noise**: Gaussian read noise plus signal-dependent shot noise;
4. **compression**: JPEG of the camera image *inside a larger frame*, at a random offset, so the
   8x8 blocks do not line up with the face or plate (as in a video frame);
5. optionally a **second order** (Real-ESRGAN): blur, noise and JPEG once more (re-encoding);
6. the app's own step: the analyst's crop (``round(capture * size)`` camera pixels) is reduced to
   the model's input with the area (box) filter, never enlarged, and stored as 8 bits.

Everything is seeded: :meth:`CameraModel.draw` takes a ``random.Random`` and returns
:class:`CameraParams` (plain numbers, JSON-able), and :func:`apply_camera` is a deterministic
function of the HR images and those parameters. The linear part (optics + sampling + area
resize) is written as kernels and separable area matrices in torch, so a batch runs on the
training device; only the JPEG round trip goes through Pillow's libjpeg (the real codec, not a
differentiable approximation; it costs ~40 us per 32x32 image).

Named conditions (:data:`CONDITIONS`): ``ideal`` (the box filter, exactly :func:`core.model.degrade.degrade`),
``blur`` (Gaussian, 0.6 LR px, deterministic), ``camera`` (blur, sub-pixel shift, noise, JPEG) and
``mixture`` (the training mixture of all of them plus second-order and size jitter).

Consistency needs a deterministic operator: each condition names a ``nominal_sigma`` (the
Gaussian its optics average to), and :func:`nominal_degrade` is that blur followed by the box
filter; :func:`project_nominal` finds the nearest image it maps onto the evidence.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.model.degrade import degrade, gaussian_blur, project_consistent

Range = tuple[float, float]


@dataclass(frozen=True)
class CameraParams:
    """One draw of the camera: every number needed to repeat the degradation exactly."""

    blur: str = "none"  # none | gaussian | defocus | motion
    blur_size: float = 0.0  # sigma / radius / length, in camera pixels
    blur_angle: float = 0.0  # motion direction in degrees
    capture: float = 1.0  # camera pixels across the frame / model input size (>= 1: never enlarged)
    shift: tuple[float, float] = (0.0, 0.0)  # sub-pixel offset of the sensor grid (camera px)
    noise_std: float = 0.0  # Gaussian read noise (0-1 intensity)
    shot_gain: float = 0.0  # signal-dependent noise: variance = gain * intensity
    jpeg_quality: int = 0  # 0: no compression
    jpeg_offset: tuple[int, int] = (0, 0)  # where the crop sits in the compressed frame (mod 8)
    second: tuple[float, float, int] = (0.0, 0.0, 0)  # second order: blur sigma, noise std, JPEG quality
    noise_seed: int = 0
    ideal: bool = False  # the box filter only (no quantisation): exactly core.model.degrade.degrade

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CameraModel:
    """A named distribution over :class:`CameraParams`."""

    name: str
    p_blur: float = 0.0
    blur_kinds: tuple[str, ...] = ("gaussian",)
    gaussian: Range = (0.3, 1.0)
    defocus: Range = (0.5, 1.2)
    motion: Range = (1.0, 2.5)
    capture: Range = (1.0, 1.0)
    shift: float = 0.0
    p_noise: float = 0.0
    noise_std: Range = (0.0, 0.03)
    shot_gain: Range = (0.0, 0.002)
    p_jpeg: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 95)
    p_second: float = 0.0
    nominal_sigma: float = 0.0
    ideal: bool = False

    def draw(self, rng: random.Random) -> CameraParams:
        """One random camera; every random number comes from ``rng``."""
        if self.ideal:
            return CameraParams(ideal=True)
        blur, size, angle = "none", 0.0, 0.0
        if rng.random() < self.p_blur:
            blur = rng.choice(self.blur_kinds)
            size = rng.uniform(*{"gaussian": self.gaussian, "defocus": self.defocus, "motion": self.motion}[blur])
            angle = rng.uniform(0.0, 180.0)
        capture = rng.uniform(*self.capture)
        shift = (rng.uniform(-self.shift, self.shift), rng.uniform(-self.shift, self.shift))
        noise_std = shot = 0.0
        if rng.random() < self.p_noise:
            noise_std, shot = rng.uniform(*self.noise_std), rng.uniform(*self.shot_gain)
        quality = rng.randint(*self.jpeg_quality) if rng.random() < self.p_jpeg else 0
        offset = (rng.randrange(8), rng.randrange(8))
        second = (0.0, 0.0, 0)
        if rng.random() < self.p_second:
            second = (rng.uniform(0.2, 0.8), rng.uniform(0.0, 0.02), rng.randint(*self.jpeg_quality))
        return CameraParams(blur, size, angle, capture, shift, noise_std, shot, quality, offset, second,
                            rng.getrandbits(31))


@dataclass(frozen=True)
class Mixture:
    """Draw each image's camera from one of several models, with the given weights."""

    name: str
    components: tuple[tuple[float, CameraModel], ...] = field(default_factory=tuple)
    nominal_sigma: float = 0.0

    def draw(self, rng: random.Random) -> CameraParams:
        weights = [w for w, _ in self.components]
        model = rng.choices([m for _, m in self.components], weights=weights)[0]
        return model.draw(rng)


IDEAL = CameraModel("ideal", ideal=True)
BLUR = CameraModel("blur", p_blur=1.0, gaussian=(0.6, 0.6), nominal_sigma=0.6)
CAMERA = CameraModel("camera", p_blur=0.9, blur_kinds=("gaussian", "gaussian", "defocus", "motion"),
                     shift=0.5, p_noise=0.9, noise_std=(0.005, 0.03), shot_gain=(0.0, 0.002),
                     p_jpeg=0.9, jpeg_quality=(30, 95), nominal_sigma=0.6)
#: The training mixture: every condition, sizes 1-1.25x the model input, and second-order re-encoding.
MIXTURE = Mixture("mixture", (
    (0.15, IDEAL),
    (0.15, CameraModel("blur-jitter", p_blur=1.0, gaussian=(0.3, 1.0), capture=(1.0, 1.25), shift=0.5)),
    (0.5, CameraModel("camera-jitter", p_blur=0.9, blur_kinds=CAMERA.blur_kinds, capture=(1.0, 1.25), shift=0.5,
                      p_noise=0.9, noise_std=(0.005, 0.04), shot_gain=(0.0, 0.003), p_jpeg=0.9)),
    (0.2, CameraModel("camera-second", p_blur=0.9, blur_kinds=CAMERA.blur_kinds, capture=(1.0, 1.25), shift=0.5,
                      p_noise=0.9, noise_std=(0.005, 0.04), shot_gain=(0.0, 0.003), p_jpeg=1.0, p_second=1.0)),
), nominal_sigma=0.5)

#: Half ideal, half camera: for a model that must stay as good as before on clean crops (a
#: camera-heavy mixture learns a deblurring prior that costs clean inputs about 10 search points).
BALANCED = Mixture("balanced", (
    (0.5, IDEAL),
    (0.1, MIXTURE.components[1][1]),
    (0.3, MIXTURE.components[2][1]),
    (0.1, MIXTURE.components[3][1]),
), nominal_sigma=0.3)
CONDITIONS: dict[str, CameraModel | Mixture] = {m.name: m for m in (IDEAL, BLUR, CAMERA, MIXTURE, BALANCED)}


def condition(name: str) -> CameraModel | Mixture:
    """A named condition; a clear error naming the known ones otherwise."""
    try:
        return CONDITIONS[name]
    except KeyError:
        raise ValueError(f"unknown degradation {name!r}; known: {', '.join(CONDITIONS)}") from None


# -- the linear part: kernels and area matrices ----------------------------------------------------
def area_matrix(n_in: int, n_out: int, start: float, pitch: float) -> torch.Tensor:
    """``(n_out, n_in)`` weights: output pixel j integrates input pixels over [start + j*pitch, +pitch].

    Coordinates are in input pixels (pixel i covers [i, i + 1]); parts outside the image are dropped
    and the row renormalised (the sensor sees the edge pixels continue).
    """
    lo = start + pitch * np.arange(n_out)[:, None]
    hi = lo + pitch
    i = np.arange(n_in)[None, :]
    w = np.clip(np.minimum(hi, i + 1) - np.maximum(lo, i), 0, None)
    empty = w.sum(1) == 0
    if empty.any():  # a pixel wholly outside: take the nearest edge pixel
        w[empty, np.clip(np.round(lo[empty, 0]).astype(int), 0, n_in - 1)] = 1.0
    return torch.from_numpy(w / w.sum(1, keepdims=True)).float()


def blur_kernel(kind: str, size: float, angle: float, px: float) -> torch.Tensor:
    """A normalised 2-D optical kernel on the HR grid; ``size`` in camera px, ``px`` HR px per camera px."""
    s = size * px
    if kind == "none" or s <= 1e-3:
        return torch.ones(1, 1)
    if kind == "gaussian":
        r = max(1, math.ceil(3 * s))
        t = torch.arange(-r, r + 1, dtype=torch.float64)
        g = torch.exp(-0.5 * (t / s) ** 2)
        k = g[:, None] * g[None, :]
    elif kind == "defocus":  # a uniform disc, antialiased by 4x4 supersampling
        r = max(1, math.ceil(s))
        t = (torch.arange(-r * 4, r * 4 + 4, dtype=torch.float64) + 0.5) / 4 - 0.5
        yy, xx = torch.meshgrid(t, t, indexing="ij")
        k = ((yy**2 + xx**2) <= s * s).double().reshape(2 * r + 1, 4, 2 * r + 1, 4).mean((1, 3))
    elif kind == "motion":  # a straight streak of length s, splatted bilinearly
        r = max(1, math.ceil(s / 2) + 1)
        k = torch.zeros(2 * r + 1, 2 * r + 1, dtype=torch.float64)
        a = math.radians(angle)
        for u in np.linspace(-s / 2, s / 2, max(2, int(s * 4))):
            x, y = r + u * math.cos(a), r + u * math.sin(a)
            x0, y0 = int(math.floor(x)), int(math.floor(y))
            fx, fy = x - x0, y - y0
            for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy),
                              (1, 1, fx * fy)):
                if 0 <= y0 + dy <= 2 * r and 0 <= x0 + dx <= 2 * r:
                    k[y0 + dy, x0 + dx] += w
    else:
        raise ValueError(f"unknown blur kind {kind!r}")
    return (k / k.sum()).float()


def _convolve_each(x: torch.Tensor, kernels: Sequence[torch.Tensor]) -> torch.Tensor:
    """Blur image i of ``x (N, C, H, W)`` with ``kernels[i]`` (reflect padding), in one grouped conv."""
    n, c, h, w = x.shape
    r = max(max(k.shape) for k in kernels) // 2
    if r == 0:
        return x
    r = min(r, h - 1, w - 1)
    size = 2 * r + 1
    weight = torch.zeros(n, size, size, dtype=x.dtype, device=x.device)
    for i, k in enumerate(kernels):
        kh, kw = k.shape
        if kh > size or kw > size:  # kernels wider than the image are cropped
            k = k[(kh - size) // 2 if kh > size else 0:, (kw - size) // 2 if kw > size else 0:][:size, :size]
            k = k / k.sum()
            kh, kw = k.shape
        top, left = (size - kh) // 2, (size - kw) // 2
        weight[i, top:top + kh, left:left + kw] = k.to(x.device, x.dtype)
    weight = weight.repeat_interleave(c, 0)[:, None]
    y = F.conv2d(F.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode="reflect"), weight, groups=n * c)
    return y.reshape(n, c, h, w)


def _jpeg(img: torch.Tensor, quality: int, offset: tuple[int, int]) -> torch.Tensor:
    """JPEG round trip of one ``(C, h, w)`` image placed at ``offset`` inside a larger reflected frame."""
    c, h, w = img.shape
    oy, ox = offset
    fh, fw = 8 * math.ceil((h + oy + 8) / 8), 8 * math.ceil((w + ox + 8) / 8)
    a = img.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    frame = np.pad(a, ((oy, fh - h - oy), (ox, fw - w - ox), (0, 0)), mode="symmetric")
    pil = Image.fromarray(frame[:, :, 0], "L") if c == 1 else Image.fromarray(frame, "RGB")
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=int(quality))
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert(pil.mode)).reshape(fh, fw, c)
    out = torch.from_numpy(back[oy:oy + h, ox:ox + w].copy()).permute(2, 0, 1).float() / 255
    return out.to(img.device, img.dtype)


def _noise(x: torch.Tensor, std: float, gain: float, gen: torch.Generator) -> torch.Tensor:
    if std <= 0 and gain <= 0:
        return x
    e = torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
    sigma = torch.sqrt(std**2 + gain * x.clamp(0, 1))
    return (x + sigma * e).clamp(0, 1)


def apply_camera(hr: torch.Tensor, lr_size: tuple[int, int], params: Sequence[CameraParams]) -> torch.Tensor:
    """Degrade ``hr (N, C, H, W)`` in [0, 1] to ``(N, C, h, w)``, image i with ``params[i]``."""
    n, c, hh, ww = hr.shape
    h, w = lr_size
    if len(params) != n:
        raise ValueError(f"{len(params)} camera draws for {n} images")
    hr = hr.float()
    out = torch.empty(n, c, h, w, dtype=hr.dtype, device=hr.device)
    ideal = [i for i, p in enumerate(params) if p.ideal]
    if ideal:
        out[ideal] = degrade(hr[ideal], hh // h)
    rest = [i for i, p in enumerate(params) if not p.ideal]
    if not rest:
        return out
    # optics, on the HR grid (sizes in camera px = HR px / (H / (capture * h)))
    kernels = [blur_kernel(params[i].blur, params[i].blur_size, params[i].blur_angle,
                           hh / (params[i].capture * h)) for i in rest]
    x = _convolve_each(hr[rest], kernels)
    for j, i in enumerate(rest):
        p = params[i]
        # sensor: n_c camera pixels across the frame, each integrating its footprint, at a sub-pixel shift
        ch, cw = max(h, round(p.capture * h)), max(w, round(p.capture * w))
        pitch_y, pitch_x = hh / (p.capture * h), ww / (p.capture * w)
        sy = area_matrix(hh, ch, (hh - ch * pitch_y) / 2 + p.shift[0] * pitch_y, pitch_y).to(x.device)
        sx = area_matrix(ww, cw, (ww - cw * pitch_x) / 2 + p.shift[1] * pitch_x, pitch_x).to(x.device)
        cam = sy @ x[j] @ sx.T
        gen = torch.Generator().manual_seed(p.noise_seed)
        cam = _noise(cam[None], p.noise_std, p.shot_gain, gen)[0]
        if p.jpeg_quality:
            cam = _jpeg(cam, p.jpeg_quality, p.jpeg_offset)
        s_blur, s_noise, s_q = p.second
        if s_q:
            cam = gaussian_blur(cam[None], s_blur)[0] if s_blur > 0 else cam
            cam = _noise(cam[None], s_noise, 0.0, gen)[0]
            cam = _jpeg(cam, s_q, ((p.jpeg_offset[0] + 3) % 8, (p.jpeg_offset[1] + 5) % 8))
        cam = cam.clamp(0, 1).mul(255).round().div(255)  # the frame is 8-bit
        if (ch, cw) != (h, w):  # the app reduces the crop to the model's input with the box filter
            cam = area_matrix(ch, h, 0.0, ch / h).to(x.device) @ cam @ area_matrix(cw, w, 0.0, cw / w).to(x.device).T
            cam = cam.mul(255).round().div(255)
        out[i] = cam
    return out


class CameraDegradation:
    """Training-time degradation: each image of a batch gets its own draw from ``model``."""

    def __init__(self, model: CameraModel | Mixture, lr_size: tuple[int, int]) -> None:
        self.model, self.lr_size = model, lr_size

    def __call__(self, hr: torch.Tensor, rng: random.Random) -> torch.Tensor:
        return apply_camera(hr, self.lr_size, [self.model.draw(rng) for _ in range(hr.shape[0])])


def degrade_seeded(hr: torch.Tensor, lr_size: tuple[int, int], name: str, seeds: Sequence[int]) -> torch.Tensor:
    """Degrade a batch under a named condition, image ``i``'s camera drawn from ``Random(seeds[i])``.

    ``lr_size`` is (height, width) of the model input. Evaluations give every image its own seed so
    that every model and method sees the same inputs.
    """
    model = condition(name)
    return apply_camera(hr, lr_size, [model.draw(random.Random(s)) for s in seeds])


def degrade_condition(hr: torch.Tensor, lr_size: tuple[int, int], name: str, seed: int) -> torch.Tensor:
    """:func:`degrade_seeded` with image ``i`` seeded from ``seed * 100_003 + i``."""
    return degrade_seeded(hr, lr_size, name, [seed * 100_003 + i for i in range(hr.shape[0])])


# -- the deterministic operator for consistency -----------------------------------------------------
def nominal_degrade(hr: torch.Tensor, scale: int, sigma: float) -> torch.Tensor:
    """The condition's deterministic operator: Gaussian optics (``sigma`` LR px), then the box filter."""
    if sigma <= 0:
        return degrade(hr, scale)
    one = hr.dim() == 3
    x = hr[None] if one else hr
    y = degrade(gaussian_blur(x, sigma * scale), scale)
    return y[0] if one else y


def nominal_matrix(n_hr: int, scale: int, sigma: float) -> torch.Tensor:
    """The 1-D matrix ``(n_hr // scale, n_hr)`` of :func:`nominal_degrade` along one axis (it is separable)."""
    eye = torch.eye(n_hr, dtype=torch.float64)[:, None, None, :]  # n_hr images of 1 x n_hr
    # one row high, so gaussian_blur's vertical pass is the identity: row i is the blur of basis vector i
    blurred = gaussian_blur(eye, sigma * scale)[:, 0, 0, :]
    box = blurred.reshape(n_hr, n_hr // scale, scale).mean(-1)  # (n_hr, n_lr): response to basis i
    return box.T.contiguous()


def project_nominal(sr: torch.Tensor, lr: torch.Tensor, scale: int, sigma: float, iters: int = 50) -> torch.Tensor:
    """An image near ``sr`` (in [0, 1]) that :func:`nominal_degrade` maps onto ``lr``.

    For the box filter this is :func:`core.model.degrade.project_consistent` (exact nearest, closed form).
    With optics the operator is ``A = A_y (x) A_x`` (separable, exact matrices from
    :func:`nominal_matrix`); the affine projection ``x + A^T (A A^T)^-1 (lr - A x)`` is exact and is
    alternated with clamping to [0, 1] until the residual is below 1e-7 (or ``iters``).
    """
    if sigma <= 0:
        return project_consistent(sr, lr, scale)
    one = sr.dim() == 3
    x = (sr[None] if one else sr).double()
    target = (lr[None] if one else lr).double().clamp(0, 1)
    ay, ax = nominal_matrix(x.shape[-2], scale, sigma), nominal_matrix(x.shape[-1], scale, sigma)
    my, mx = torch.linalg.inv(ay @ ay.T), torch.linalg.inv(ax @ ax.T)
    for _ in range(iters):
        resid = target - ay @ x @ ax.T
        if resid.abs().max() < 1e-7:
            break
        x = (x + ay.T @ (my @ resid @ mx) @ ax).clamp(0, 1)
    out = x.to(sr.dtype)
    return out[0] if one else out
