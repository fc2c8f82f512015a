"""The report's 9-convolution CNN for Fashion-MNIST (section 1.1), layers addressable by name.

Two variants of the same topology (`variant`):
- `text`, the network the report's text describes. Where the text leaves room (tested in
  tests/models/test_cnn.py): it counts 7 ReLU/LeakyReLU for 9 convolutions and 2 linear layers, so
  a LeakyReLU follows conv1, conv2, conv4, conv6, conv8 and conv9 and a ReLU follows linear1
  (6 + 1 = 7); conv3, conv5 (the first convolution of each Inception branch) and conv7 (the 1x1
  projection that opens Block 3) are linear projections followed by BatchNorm only, as reduction
  layers often are. Convolutions have no bias (BatchNorm follows each). All three dropouts take
  `dropout`. It reads inputs standardised with the training set's mean and std.
- `code`, the network the author's published code builds (the one behind the report's numbers):
  a LeakyReLU after every one of the nine convolutions (plus the ReLU after linear1),
  convolutions with bias, and dropout 0.5 before the output layer (`dropout`, the report's 0.7,
  stays in Blocks 1 and 2). It reads inputs min-max scaled to [0, 1], not standardised.
Both:
- The third dropout sits between linear1 and the output layer (Blocks 1 and 2 hold the other two).
- Padding keeps the spatial size in every convolution ("same"), so only max-pooling halves it:
  32 -> 16 -> 8 -> 4 (the report's upsampled input), or 28 -> 14 -> 7 -> 4 for Fashion-MNIST's
  own size: pooling rounds an odd side up, so no row of conv9's output is dropped.
- `width` scales every layer's channel count and keeps the topology (1.0 is the report's model).
Each named layer (conv1..conv9, linear1, output) is one module whose output is what that layer
"learns" after its BatchNorm and activation, so a forward hook on it captures the features.
"""

from __future__ import annotations

import torch
from torch import nn

LAYER_NAMES = tuple(f"conv{i}" for i in range(1, 10)) + ("linear1", "output")
DROPOUT = 0.7
CODE_OUTPUT_DROPOUT = 0.5  # the author's code, before the output layer
NEGATIVE_SLOPE = 0.01
VARIANTS = ("text", "code")
# How each variant's inputs are scaled (the names of fmtool.data.fashion.normalise's scalings).
INPUT_SCALING = {"text": "standard", "code": "minmax"}


class ConvUnit(nn.Sequential):
    """Convolution, BatchNorm and (optionally) LeakyReLU: one named 'conv' layer of the report."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, activate: bool,
                 bias: bool = False):
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias),
            nn.BatchNorm2d(out_channels),
        ]
        if activate:
            layers.append(nn.LeakyReLU(NEGATIVE_SLOPE))
        super().__init__(*layers)


def pooled_side(image_size: int) -> int:
    """The side of conv9's pooled output: three halvings, each rounding up."""
    side = image_size
    for _ in range(3):
        side = -(-side // 2)
    return side


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class FashionCNN(nn.Module):
    """Three blocks (the second an Inception-style pair of branches), then two linear layers."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: float = 1.0,
                 image_size: int = 32, dropout: float = DROPOUT, variant: str = "text"):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if image_size % 4 or image_size < 8:
            raise ValueError(f"image_size must be a multiple of 4 from 8, got {image_size}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        self.variant = variant
        code = variant == "code"

        def unit(in_c: int, out_c: int, kernel_size: int, activate: bool) -> ConvUnit:
            return ConvUnit(in_c, out_c, kernel_size, activate=activate or code, bias=code)

        c32, c64, c128, c512 = (_scaled(c, width) for c in (32, 64, 128, 512))
        c256 = 2 * c128
        # Block 1: [1,32,32] -> [64,16,16]
        self.conv1 = unit(in_channels, c32, 3, activate=True)
        self.conv2 = unit(c32, c64, 3, activate=True)
        self.pool1 = nn.MaxPool2d(2, ceil_mode=True)
        self.drop1 = nn.Dropout(dropout)
        # Block 2: two branches of 128 channels, concatenated -> [256,16,16] -> [256,8,8]
        self.conv3 = unit(c64, c128, 3, activate=False)
        self.conv4 = unit(c128, c128, 3, activate=True)
        self.conv5 = unit(c64, c128, 1, activate=False)
        self.conv6 = unit(c128, c128, 5, activate=True)
        self.pool2 = nn.MaxPool2d(2, ceil_mode=True)
        self.drop2 = nn.Dropout(dropout)
        # Block 3: [256,8,8] -> [512,4,4]
        self.conv7 = unit(c256, c512, 1, activate=False)
        self.conv8 = unit(c512, c512, 3, activate=True)
        self.conv9 = unit(c512, c512, 3, activate=True)
        self.pool3 = nn.MaxPool2d(2, ceil_mode=True)
        # Classifier: flatten 512*4*4 = 8192 -> 512 -> classes
        side = pooled_side(image_size)
        self.linear1 = nn.Sequential(nn.Linear(c512 * side * side, c512), nn.ReLU())
        self.drop3 = nn.Dropout(CODE_OUTPUT_DROPOUT if code else dropout)
        self.output = nn.Linear(c512, num_classes)

    @property
    def input_scaling(self) -> str:
        """How this network's inputs must be scaled: "standard" (text) or "minmax" (code)."""
        return INPUT_SCALING[self.variant]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.pool1(self.conv2(self.conv1(x))))
        a = self.conv4(self.conv3(x))
        b = self.conv6(self.conv5(x))
        x = self.drop2(self.pool2(torch.cat([a, b], dim=1)))
        x = self.pool3(self.conv9(self.conv8(self.conv7(x))))
        x = self.linear1(torch.flatten(x, 1))
        return self.output(self.drop3(x))

    def named_layer(self, name: str) -> nn.Module:
        if name not in LAYER_NAMES:
            raise KeyError(f"unknown layer {name!r}; choose from {', '.join(LAYER_NAMES)}")
        return getattr(self, name)
