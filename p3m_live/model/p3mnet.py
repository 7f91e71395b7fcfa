"""P3M-Net with the ResNet-34 backbone, as in "Privacy-Preserving Portrait Matting"
(Li, Ma, Zhang, Tao, ACM MM 2021).

Reads top to bottom: small blocks, the backbone, the three bridge modules (TFI,
sBFI, dBFI), the two decoders, then the network. Parameter names follow the
official release so that its checkpoints load as they are; the backbone lives
only under ``resnet.*`` (the release stores it a second time under
``encoder0..4``, see :mod:`p3m_live.model.checkpoint`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .unpool import SwitchPool, UnpoolMode, unpool


def conv3x3(cin: int, cout: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


def conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, bias=False)


def upsample(x: Tensor, factor: int) -> Tensor:
    """Bilinear upsampling as ``nn.Upsample(scale_factor=f, mode='bilinear')``."""
    return F.interpolate(x, scale_factor=float(factor), mode="bilinear", align_corners=False)


class Upsample(nn.Module):
    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return upsample(x, self.factor)


class BasicBlock(nn.Module):
    """ResNet basic block; stride is always 1 here (the pools downsample)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(conv1x1(cin, cout), nn.BatchNorm2d(cout)) if cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def res_stage(cin: int, cout: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout), *[BasicBlock(cout, cout) for _ in range(blocks - 1)])


class ResNet34Backbone(nn.Module):
    """ResNet-34 as P3M-Net modifies it: 7x7 stride-1 stem, no strided convs.

    Downsampling is done by the five switch pools owned by :class:`P3MNet`.
    ``fc`` is absent: the release checkpoint carries an unused 1000-class head,
    which the loader drops.
    """

    def __init__(self, stages: tuple[int, int, int, int] = (3, 4, 6, 3)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = res_stage(64, 64, stages[0])
        self.layer2 = res_stage(64, 128, stages[1])
        self.layer3 = res_stage(128, 256, stages[2])
        self.layer4 = res_stage(256, 512, stages[3])

    def stem(self, x: Tensor) -> Tensor:
        return self.relu(self.bn1(self.conv1(x)))


class TFI(nn.Module):
    """Tripartite-feature integration: semantic guidance + detail decoder + encoder."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.transform = conv1x1(planes, planes // 2)
        self.conv1 = conv3x3(planes // 2 * 3, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, guidance: Tensor, decoder: Tensor, encoder: Tensor) -> Tensor:
        t = self.transform
        x = torch.cat((t(guidance), t(decoder), t(encoder)), 1)
        return self.relu(self.bn1(self.conv1(x)))


class SBFI(nn.Module):
    """Shallow bipartite-feature integration: detail decoder + pooled stem features."""

    def __init__(self, planes: int, stem_planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.transform1 = conv1x1(planes, planes // 2)
        self.transform2 = conv1x1(stem_planes, planes // 2)
        self.conv1 = conv3x3(planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, decoder: Tensor, e0: Tensor) -> Tensor:
        pooled = F.max_pool2d(e0, 2, stride=self.stride)
        x = torch.cat((self.transform1(decoder), self.transform2(pooled)), 1)
        return self.relu(self.bn1(self.conv1(x))) + decoder


class DBFI(nn.Module):
    """Deep bipartite-feature integration: semantic decoder + deepest encoder features.

    Also returns a 3-class side output at input resolution (used as a training
    loss; the official forward returns it, so ours does too).
    """

    def __init__(self, planes: int, deep_planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.transform1 = conv1x1(planes, planes // 2)
        self.transform2 = conv1x1(deep_planes, planes // 2)
        self.conv1 = conv3x3(planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, 3)

    def forward(self, decoder: Tensor, e4: Tensor, side: bool = True) -> tuple[Tensor, Tensor | None]:
        deep = upsample(self.transform2(e4), self.stride)
        x = torch.cat((self.transform1(decoder), deep), 1)
        out = self.relu(self.bn1(self.conv1(x))) + decoder
        side_out = upsample(self.conv2(out), 32 // self.stride) if side else None
        return out, side_out


def decoder_stage(cin: int, cmid: int, cout: int, up: bool) -> nn.Sequential:
    """Three conv-BN-ReLU layers (cin -> cmid -> cmid -> cout), optionally x2 bilinear."""
    layers: list[nn.Module] = []
    for a, b in ((cin, cmid), (cmid, cmid), (cmid, cout)):
        layers += [conv3x3(a, b, bias=True), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
    if up:
        layers.append(Upsample(2))
    return nn.Sequential(*layers)


class P3MOutputs(NamedTuple):
    """The six outputs of the official forward, in its order."""

    semantic: Tensor  # (B, 3, H, W) logits: background, unknown, foreground
    detail: Tensor  # (B, 1, H, W) detail alpha (sigmoid)
    fused: Tensor  # (B, 1, H, W) fused alpha
    side2: Tensor
    side1: Tensor
    side0: Tensor


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def fuse(semantic: Tensor, detail: Tensor) -> Tensor:
    """Official fusion: argmax trimap of the logits; detail alpha in the unknown band.

    Ties between logits resolve to the lower class, as ``torch.max`` does.
    """
    cls = semantic.argmax(dim=1, keepdim=True)
    unknown = (cls == 1).to(detail.dtype)
    fg = (cls == 2).to(detail.dtype)
    return detail * unknown + fg


class P3MNet(nn.Module):
    """P3M-Net (ResNet-34). Input: ImageNet-normalised RGB, sides multiples of 32."""

    def __init__(self, unpool: UnpoolMode = "native") -> None:
        super().__init__()
        self.unpool_mode = unpool
        self._normalisation: dict[torch.device, tuple[Tensor, Tensor]] = {}  # (see imagenet_normalisation)
        self.resnet = ResNet34Backbone()
        self.mp0, self.mp1, self.mp2, self.mp3, self.mp4 = (SwitchPool(unpool) for _ in range(5))

        self.tfi_3 = TFI(256)
        self.tfi_2 = TFI(128)
        self.tfi_1 = TFI(64)
        self.tfi_0 = TFI(64)
        self.sbfi_2 = SBFI(128, 64, 8)
        self.sbfi_1 = SBFI(64, 64, 4)
        self.sbfi_0 = SBFI(64, 64, 2)
        self.dbfi_2 = DBFI(128, 512, 4)
        self.dbfi_1 = DBFI(64, 512, 8)
        self.dbfi_0 = DBFI(64, 512, 16)

        self.decoder4_g = decoder_stage(512, 512, 256, up=True)
        self.decoder3_g = decoder_stage(256, 256, 128, up=True)
        self.decoder2_g = decoder_stage(128, 128, 64, up=True)
        self.decoder1_g = decoder_stage(64, 64, 64, up=True)
        self.decoder0_g = nn.Sequential(
            conv3x3(64, 64, bias=True), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            conv3x3(64, 64, bias=True), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            conv3x3(64, 3, bias=True), Upsample(2),
        )  # fmt: skip

        self.decoder4_l = decoder_stage(512, 512, 256, up=False)
        self.decoder3_l = decoder_stage(256, 256, 128, up=False)
        self.decoder2_l = decoder_stage(128, 128, 64, up=False)
        self.decoder1_l = decoder_stage(64, 64, 64, up=False)
        self.decoder0_l = nn.Sequential(
            conv3x3(64, 64, bias=True), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            conv3x3(64, 64, bias=True), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.decoder_final_l = conv3x3(64, 1, bias=True)

    def _unpool(self, y: Tensor, switches: Tensor) -> Tensor:
        return unpool(y, switches, self.unpool_mode)

    def run(self, x: Tensor, sides: bool = True) -> P3MOutputs:
        """The whole network; ``sides=False`` skips the training-only side outputs."""
        r = self.resnet
        e0 = r.stem(x)
        e0p, s0 = self.mp0(e0)
        e1p, s1 = self.mp1(e0p)
        e1 = r.layer1(e1p)
        e2p, s2 = self.mp2(e1)
        e2 = r.layer2(e2p)
        e3p, s3 = self.mp3(e2)
        e3 = r.layer3(e3p)
        e4p, s4 = self.mp4(e3)
        e4 = r.layer4(e4p)

        # Semantic (global) decoder.
        d4_g = self.decoder4_g(e4)
        d3_g = self.decoder3_g(d4_g)
        d2_g, side2 = self.dbfi_2(d3_g, e4, sides)
        d2_g = self.decoder2_g(d2_g)
        d1_g, side1 = self.dbfi_1(d2_g, e4, sides)
        d1_g = self.decoder1_g(d1_g)
        d0_g, side0 = self.dbfi_0(d1_g, e4, sides)
        semantic = self.decoder0_g(d0_g)

        # Detail (local) decoder.
        d4_l = self._unpool(self.decoder4_l(e4), s4)
        d3_l = self._unpool(self.decoder3_l(self.tfi_3(d4_g, d4_l, e3)), s3)
        d2_l = self.sbfi_2(self.tfi_2(d3_g, d3_l, e2), e0)
        d2_l = self._unpool(self.decoder2_l(d2_l), s2)
        d1_l = self.sbfi_1(self.tfi_1(d2_g, d2_l, e1), e0)
        d1_l = self._unpool(self.decoder1_l(d1_l), s1)
        d0_l = self.sbfi_0(self.tfi_0(d1_g, d1_l, e0p), e0)
        d0_l = self._unpool(self.decoder0_l(d0_l), s0)
        detail = torch.sigmoid(self.decoder_final_l(d0_l))

        fused = fuse(semantic, detail)
        empty = semantic[:, :0]
        return P3MOutputs(
            semantic, detail, fused,
            side2 if side2 is not None else empty,
            side1 if side1 is not None else empty,
            side0 if side0 is not None else empty,
        )  # fmt: skip

    def forward(self, x: Tensor) -> P3MOutputs:
        return self.run(x, sides=True)

    def imagenet_normalisation(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """ImageNet's mean and std, (1, 3, 1, 1) float32 on ``device``, made on the first call
        there and kept. A tensor made from host data is a copy that a CUDA graph capture
        cannot hold, so the capture finds them made by the warm-up call before it. They are
        not buffers, which ``.half()`` would turn to FP16."""
        if device not in self._normalisation:
            with torch.inference_mode(False):  # (usable inside and outside inference mode)
                made = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
                self._normalisation[device] = tuple(made)  # type: ignore[assignment]
        return self._normalisation[device]

    def matte(self, rgb: Tensor) -> Tensor:
        """Float32 RGB in [0, 1] at the model size -> fused alpha (B, 1, h, w), float32.

        The official preprocessing (ImageNet mean and std) and the argmax fusion stay in
        float32; only the network runs in the module's own precision (FP16 after ``.half()``).
        """
        mean, std = self.imagenet_normalisation(rgb.device)
        dtype = self.decoder_final_l.weight.dtype
        out = self.run(((rgb - mean) / std).to(dtype), sides=False)
        return fuse(out.semantic.float(), out.detail.float())
