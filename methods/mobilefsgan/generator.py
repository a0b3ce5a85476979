"""MobileFSGAN generator (paper supplement; module names and state-dict keys follow the public code, so its
checkpoints map one to one).

One width ``N`` everywhere. A shared encoder header feeds two branches: the identity branch (AdaIN blocks —
BatchNorm without affine, scale and shift from the source embedding by two FC layers — going down to 1/32 of the
input and back up to 1/4) and the attribute branch (residual blocks at 1, 1/2 and 1/4 of the input giving 12
maps). The decoder's 12 attention-fusion blocks blend the identity stream with the attribute maps,
``y = M·x + (1 − M)·attr``, and RGB heads (tanh, values in [-1, 1]) sit at 1/4, 1/2 and 1 of the input.
"""
from __future__ import annotations

import torch
from torch import nn

Tensor = torch.Tensor


class IdentityEncoderBlock(nn.Module):
    """AdaIN block: affine-free BN, scale/shift from the embedding, LeakyReLU, 1×1, LeakyReLU, 3×3."""

    def __init__(self, n: int, embedding: int) -> None:
        super().__init__()
        self.normalize = nn.BatchNorm2d(n, affine=False)
        self.fc_mean = nn.Linear(embedding, n)
        self.fc_var = nn.Linear(embedding, n)
        self.nonlinear1 = nn.LeakyReLU()
        self.conv1x1 = nn.Conv2d(n, n, 1)
        self.nonlinear2 = nn.LeakyReLU()
        self.conv3x3 = nn.Conv2d(n, n, 3, 1, 1, bias=False)

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        scale = self.fc_var(embedding)[:, :, None, None]
        shift = self.fc_mean(embedding)[:, :, None, None]
        x = self.nonlinear1(self.normalize(x) * scale + shift)
        return self.conv3x3(self.nonlinear2(self.conv1x1(x)))


class AttributeEncoderBlock(nn.Module):
    """BN, 1×1, LeakyReLU, 3×3 (the residual is added by the caller)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.normalize = nn.BatchNorm2d(n)
        self.conv1x1 = nn.Conv2d(n, n, 1)
        self.nonlinear = nn.LeakyReLU()
        self.conv3x3 = nn.Conv2d(n, n, 3, 1, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3x3(self.nonlinear(self.conv1x1(self.normalize(x))))


class EncoderHead(nn.Module):
    """Shared header: returns (identity-branch input, attribute-branch input)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv_image = nn.Conv2d(3, n, 3, 1, 1)
        self.nonlinear1 = nn.LeakyReLU()
        self.conv1x1 = nn.Conv2d(n, n, 1)
        self.nonlinear2 = nn.LeakyReLU()
        self.conv3x3 = nn.Conv2d(n, n, 3, 1, 1, bias=False)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        attribute = self.nonlinear1(self.conv_image(images))
        return self.conv3x3(self.nonlinear2(self.conv1x1(attribute))), attribute


class Upsample(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.normalize = nn.BatchNorm2d(n)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(n, n, 3, 1, 0, bias=False)
        self.nonlinear = nn.LeakyReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlinear(self.conv(self.pad(self.upsample(self.normalize(x)))))


class Downsample(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.normalize = nn.BatchNorm2d(n)
        self.conv = nn.Conv2d(n, n, 4, 2, 1, bias=False)
        self.nonlinear = nn.LeakyReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlinear(self.conv(self.normalize(x)))


# attribute maps per resolution (full, 1/2, 1/4): the first of each level is the level's input
ATTRIBUTE_BLOCKS = (("256", 2), ("128", 3), ("64", 4))


class AttributeEncoderBody(nn.Module):
    """Residual blocks at full, 1/2 and 1/4 resolution; two downsamplings (the header is the third level)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        for level, (tag, blocks) in enumerate(ATTRIBUTE_BLOCKS):
            if level:
                self.add_module(f"downsample{tag}", Downsample(n))
            for i in range(1, blocks + 1):
                self.add_module(f"b{tag}_{i}", AttributeEncoderBlock(n))

    def forward(self, x: Tensor) -> list[Tensor]:
        maps = []
        for level, (tag, blocks) in enumerate(ATTRIBUTE_BLOCKS):
            if level:
                x = getattr(self, f"downsample{tag}")(x)
            maps.append(x)
            for i in range(1, blocks + 1):
                x = x + getattr(self, f"b{tag}_{i}")(x)
                maps.append(x)
        return maps  # 12 maps: 3 at full, 4 at 1/2, 5 at 1/4 resolution


_DOWN = ("128", "64", "32", "16", "8")
_UP = ("16", "32", "64")


class IdentityEncoderBody(nn.Module):
    """AdaIN U-Net: full → 1/32 → 1/4 of the input, every block driven by the source embedding."""

    def __init__(self, n: int, embedding: int) -> None:
        super().__init__()
        self.b256_down = IdentityEncoderBlock(n, embedding)
        for tag in _DOWN:
            self.add_module(f"down{tag}", Downsample(n))
            self.add_module(f"b{tag}_down", IdentityEncoderBlock(n, embedding))
        for tag in _UP:
            self.add_module(f"up{tag}", Upsample(n))
            self.add_module(f"b{tag}_up", IdentityEncoderBlock(n, embedding))

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        x = x + self.b256_down(x, embedding)
        skips = {}
        for tag in _DOWN:
            x = getattr(self, f"down{tag}")(x)
            x = x + getattr(self, f"b{tag}_down")(x, embedding)
            skips[tag] = x
        for tag in _UP:
            x = getattr(self, f"up{tag}")(x) + skips[tag]
            x = x + getattr(self, f"b{tag}_up")(x, embedding)
        return x


class DecoderBlock(nn.Module):
    """Attention fusion: M = conv1×1(x); x = M·x + (1 − M)·attribute; then a basic block."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv_attention = nn.Conv2d(n, 1, 1)
        self.basic_block = AttributeEncoderBlock(n)

    def forward(self, x: Tensor, attribute: Tensor) -> Tensor:
        m = self.conv_attention(x)
        return self.basic_block(m * x + (1.0 - m) * attribute)


class DecoderImageOutput(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n, 3, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.conv(x))


class Decoder(nn.Module):
    """12 fusion blocks, deepest attribute map first; RGB heads after the 1/4, 1/2 and full-size stages."""

    def __init__(self, n: int) -> None:
        super().__init__()
        for tag, blocks in reversed(ATTRIBUTE_BLOCKS):
            if tag != "64":
                self.add_module(f"up{tag}", Upsample(n))
            for i in reversed(range(blocks + 1)):
                self.add_module(f"b{tag}_{i}", DecoderBlock(n))
            self.add_module(f"image{tag}_output", DecoderImageOutput(n))

    def forward(self, x: Tensor, attributes: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        images = []
        start = len(attributes)
        for tag, blocks in reversed(ATTRIBUTE_BLOCKS):
            if tag != "64":
                x = getattr(self, f"up{tag}")(x)
            start -= blocks + 1
            for i in reversed(range(blocks + 1)):
                x = x + getattr(self, f"b{tag}_{i}")(x, attributes[start + i])
            images.append(getattr(self, f"image{tag}_output")(x))
        return images[2], images[1], images[0]


class EncoderDecoder(nn.Module):
    """``forward(target in [-1, 1], embedding) -> (full, 1/2, 1/4 images in [-1, 1])``."""

    def __init__(self, num_channels: int = 64, embedding_size: int = 512) -> None:
        super().__init__()
        self.encoder_head = EncoderHead(num_channels)
        self.identity_encoder = IdentityEncoderBody(num_channels, embedding_size)
        self.attribute_encoder = AttributeEncoderBody(num_channels)
        self.decoder = Decoder(num_channels)

    def forward(self, target: Tensor, embedding: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        identity_x, attribute_x = self.encoder_head(target)
        attributes = self.attribute_encoder(attribute_x)
        return self.decoder(self.identity_encoder(identity_x, embedding), attributes)

    def attributes(self, target: Tensor) -> list[Tensor]:
        """The 12 attribute maps of a target (for the attribute-preservation loss)."""
        return self.attribute_encoder(self.encoder_head(target)[1])
