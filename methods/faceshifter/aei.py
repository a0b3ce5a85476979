"""AEI-Net (FaceShifter, Li et al., CVPR 2020, Fig. 3 and Fig. 12).

* Multi-level attributes encoder: a U-Net, 7 Conv 4×4 s2 (BN, LeakyReLU 0.1) down to a ``size/128`` bottleneck,
  ConvTranspose 4×4 s2 up with skip concatenation; its n = 8 outputs z_att^1 … z_att^8 (z_att^8 is z_att^7
  bilinearly upsampled to full resolution).
* AAD generator: z_id → ConvTranspose to the bottleneck, 8 AAD ResBlks with the paper's channel plan
  (1024,1024) (1024,1024) (1024,1024) (1024,512) (512,256) (256,128) (128,64) (64,3), bilinear ×2 between them.
* AAD layer: h̄ = InstanceNorm(h); A = γ_att ⊙ h̄ + β_att with γ_att, β_att convolved from z_att^k;
  I = γ_id ⊙ h̄ + β_id with γ_id, β_id by FC from z_id; M = σ(conv(h̄)); out = (1 − M) ⊙ A + M ⊙ I.

Images are in [-1, 1] inside the network.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from methods.faceshifter.configs import Architecture

ENCODER_PLAN = (32, 64, 128, 256, 512, 1024, 1024)  # 7 stride-2 convolutions
GENERATOR_PLAN = ((1024, 1024), (1024, 1024), (1024, 1024), (1024, 512), (512, 256), (256, 128), (128, 64), (64, 3))


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1))


def unet_layers(cin: int, plan: list[int]) -> tuple[nn.ModuleList, nn.ModuleList]:
    """The down path over ``plan`` and the up path back to its finest level; every up output is concatenated with
    the encoder map of its size, so the next up layer takes twice that map's channels."""
    down = nn.ModuleList(_down(a, b) for a, b in zip((cin, *plan[:-1]), plan))
    ups, channels = [], plan[-1]
    for skip in reversed(plan[:-1]):
        ups.append(_up(channels, skip))
        channels = 2 * skip
    return down, nn.ModuleList(ups)


def unet_levels(down: nn.ModuleList, up: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
    """The bottleneck, then every up level with its skip concatenated: coarsest first."""
    feats = []
    for layer in down:
        x = layer(x)
        feats.append(x)
    levels = [x]
    for layer, skip in zip(up, reversed(feats[:-1])):
        x = torch.cat([layer(x), skip], dim=1)
        levels.append(x)
    return levels


class AttributeEncoder(nn.Module):
    """U-Net giving the 8 attribute maps, coarsest first."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        # decoder: from the bottleneck up to size/2
        self.down, self.up = unet_layers(3, [arch.channels(c) for c in ENCODER_PLAN])

    def channels(self) -> list[int]:
        """Channels of z_att^1 … z_att^8."""
        enc = [m[0].out_channels for m in self.down]
        cat = [2 * c for c in reversed(enc[:-1])]
        return [enc[-1], *cat, cat[-1]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        z = unet_levels(self.down, self.up, x)
        return [*z, F.interpolate(z[-1], scale_factor=2, mode="bilinear", align_corners=False)]


def _instance_norm(h: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm without affine parameters, as group norm with one channel per group (the same function; on the
    CPU 5× faster than torch's instance norm). A 1×1 map (the bottleneck at 128 px, which torch refuses) normalises
    to 0, exactly: the first AAD block then sees only β_att and β_id."""
    if h.shape[2] * h.shape[3] == 1:
        return h * 0  # zeros still in the graph: under DDP every parameter must receive a (here zero) gradient
    return F.group_norm(h, h.shape[1], eps=eps)


class Pointwise(nn.Conv2d):
    """A 1×1 convolution computed as one batched matrix product: the same function as ``nn.Conv2d(cin, cout, 1)``
    (and the same state-dict keys), but torch runs 1×1 convolutions on the CPU through its slow im2col path (a
    third of AEI-Net's time at 256 px otherwise)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.flatten(1)
        out = torch.baddbmm(self.bias[None, :, None], w.expand(x.shape[0], *w.shape), x.flatten(2))
        return out.view(x.shape[0], -1, *x.shape[2:])


class AAD(nn.Module):
    """Adaptive Attentional Denormalization layer."""

    def __init__(self, ch: int, att_ch: int, id_dim: int) -> None:
        super().__init__()
        self.att = Pointwise(att_ch, 2 * ch)  # γ_att and β_att in one convolution
        self.id = nn.Linear(id_dim, 2 * ch)  # γ_id and β_id in one FC
        self.mask = Pointwise(ch, 1)

    def forward(self, h: torch.Tensor, z_att: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        h = _instance_norm(h)
        m = torch.sigmoid(self.mask(h))
        g_att, b_att = self.att(z_att).chunk(2, dim=1)
        g_id, b_id = self.id(z_id)[..., None, None].chunk(2, dim=1)
        # r identities per target (FaceShifterNet): the attribute modulations are computed once and broadcast over
        # a leading r axis (rows of h are identity-major), not repeated in memory
        shape, r = h.shape, len(h) // len(z_att)
        h, m, g_id, b_id = (t.view(r, len(z_att), *t.shape[1:]) for t in (h, m, g_id, b_id))
        # (1 − M) ⊙ A + M ⊙ I as A + M ⊙ (I − A), with A = γ_att ⊙ h̄ + β_att and I = γ_id ⊙ h̄ + β_id
        return torch.lerp(torch.addcmul(b_att, g_att, h), torch.addcmul(b_id, g_id, h), m).view(shape)

    def attention(self, h: torch.Tensor) -> torch.Tensor:
        """The mask M (for inspection and tests)."""
        return torch.sigmoid(self.mask(_instance_norm(h)))


class AADResBlk(nn.Module):
    """AAD → ReLU → Conv 3×3, twice; a third AAD → ReLU → Conv on the shortcut when the width changes."""

    def __init__(self, cin: int, cout: int, att_ch: int, id_dim: int) -> None:
        super().__init__()
        self.aad1, self.conv1 = AAD(cin, att_ch, id_dim), nn.Conv2d(cin, cin, 3, 1, 1)
        self.aad2, self.conv2 = AAD(cin, att_ch, id_dim), nn.Conv2d(cin, cout, 3, 1, 1)
        self.shortcut = None
        if cin != cout:
            self.aad3, self.shortcut = AAD(cin, att_ch, id_dim), nn.Conv2d(cin, cout, 3, 1, 1)

    def forward(self, h: torch.Tensor, z_att: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.relu(self.aad1(h, z_att, z_id)))
        x = self.conv2(F.relu(self.aad2(x, z_att, z_id)))
        skip = h if self.shortcut is None else self.shortcut(F.relu(self.aad3(h, z_att, z_id)))
        return x + skip


class AADGenerator(nn.Module):
    def __init__(self, arch: Architecture, att_channels: list[int]) -> None:
        super().__init__()
        plan = [(arch.channels(a), 3 if b == 3 else arch.channels(b)) for a, b in GENERATOR_PLAN]
        self.init = nn.ConvTranspose2d(arch.id_dim, plan[0][0], arch.size // 128)
        self.blocks = nn.ModuleList(AADResBlk(cin, cout, att, arch.id_dim)
                                    for (cin, cout), att in zip(plan, att_channels))

    def forward(self, z_att: list[torch.Tensor], z_id: torch.Tensor) -> torch.Tensor:
        h = self.init(z_id[..., None, None])
        for k, (block, z) in enumerate(zip(self.blocks, z_att)):
            if k:
                h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = block(h, z, z_id)
        return torch.tanh(h)


class AEINet(nn.Module):
    """Ŷ_s,t = AEI(z_id(X_s), X_t); images in [-1, 1]."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.encoder = AttributeEncoder(arch)
        self.generator = AADGenerator(arch, self.encoder.channels())

    def forward(self, target: torch.Tensor, z_id: torch.Tensor, output_attributes: bool = False
                ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor] | None]:
        """(swapped, z_att(target), z_att(swapped) if ``output_attributes``): the attribute loss needs the last,
        computed inside one forward so that DDP sees every use of the encoder."""
        z_att = self.encoder(target)
        swapped = self.generator(z_att, z_id)
        return swapped, z_att, self.encoder(swapped) if output_attributes else None
