"""The report's CNN: layer counts from section 1.1 (text) and the author's code (code), shapes,
named layers, width scaling."""

import pytest
import torch
from torch import nn

from fmtool.models.cnn import LAYER_NAMES, FashionCNN


def count(model: nn.Module, *types: type) -> int:
    return sum(isinstance(m, types) for m in model.modules())


def test_layer_counts_match_the_report():
    model = FashionCNN()
    assert count(model, nn.Conv2d) == 9
    assert count(model, nn.MaxPool2d) == 3
    assert count(model, nn.BatchNorm2d) == 9
    assert count(model, nn.ReLU, nn.LeakyReLU) == 7
    assert count(model, nn.Linear) == 2
    assert count(model, nn.Dropout) == 3
    assert all(m.p == 0.7 for m in model.modules() if isinstance(m, nn.Dropout))
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert model.variant == "text" and model.input_scaling == "standard"


@pytest.mark.parametrize("dropout", [0.7, 0.3])
def test_the_code_variant_is_the_authors_network(dropout: float):
    model = FashionCNN(variant="code", dropout=dropout)
    assert count(model, nn.Conv2d) == 9 and count(model, nn.BatchNorm2d) == 9
    assert count(model, nn.LeakyReLU) == 9 and count(model, nn.ReLU) == 1  # after linear1
    assert all(any(isinstance(m, nn.LeakyReLU) for m in model.named_layer(f"conv{i}").modules())
               for i in range(1, 10))
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert [model.drop1.p, model.drop2.p, model.drop3.p] == [dropout, dropout, 0.5]
    assert model.input_scaling == "minmax"


def test_both_variants_have_the_same_shapes_and_an_unknown_one_is_refused():
    x = torch.randn(2, 1, 32, 32)
    text, code = FashionCNN(width=0.25).eval(), FashionCNN(width=0.25, variant="code").eval()
    assert text(x).shape == code(x).shape == (2, 10)
    extra = set(code.state_dict()) - set(text.state_dict())
    assert extra == {f"conv{i}.0.bias" for i in range(1, 10)}
    with pytest.raises(ValueError, match="variant"):
        FashionCNN(variant="paper")


def test_activation_placement_is_the_documented_choice():
    model = FashionCNN()
    activated = {name for name in LAYER_NAMES[:9]
                 if any(isinstance(m, nn.LeakyReLU) for m in model.named_layer(name).modules())}
    assert activated == {"conv1", "conv2", "conv4", "conv6", "conv8", "conv9"}
    assert isinstance(model.linear1[1], nn.ReLU)


def test_named_layer_shapes_follow_section_1_1():
    model = FashionCNN().eval()
    shapes = {}
    hooks = [model.named_layer(n).register_forward_hook(
        lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:]))) for n in LAYER_NAMES]
    with torch.no_grad():
        logits = model(torch.randn(2, 1, 32, 32))
    for hook in hooks:
        hook.remove()
    assert logits.shape == (2, 10)
    assert shapes["conv2"] == (64, 32, 32)  # Block 1 ends [64,16,16] after pooling
    assert shapes["conv4"] == shapes["conv6"] == (128, 16, 16)  # two branches -> [256,16,16]
    assert shapes["conv7"] == (512, 8, 8)
    assert shapes["conv9"] == (512, 8, 8)  # pooled to [512,4,4] -> flatten 8192
    assert model.linear1[0].in_features == 8192
    assert shapes["linear1"] == (512,)
    assert shapes["output"] == (10,)


def test_width_scales_channels_and_keeps_topology():
    small = FashionCNN(width=0.25)
    assert count(small, nn.Conv2d) == 9
    assert small.conv9[0].out_channels == 128
    assert small(torch.randn(1, 1, 32, 32)).shape == (1, 10)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in FashionCNN().parameters()) / 8


def test_unknown_layer_name_is_refused():
    with pytest.raises(KeyError, match="conv1"):
        FashionCNN().named_layer("conv10")
