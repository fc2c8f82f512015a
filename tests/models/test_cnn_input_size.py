"""The CNN at Fashion-MNIST's own 28x28 (no upsampling to the report's 32): same weights' shapes,
conv9 keeps every row, and sizes pooling cannot take are refused."""

import pytest
import torch

from fmtool.models.cnn import FashionCNN, pooled_side


def conv9_and_pooled_shapes(model: FashionCNN, size: int) -> tuple[tuple[int, ...], ...]:
    seen: dict[str, tuple[int, ...]] = {}
    for name in ("conv9", "pool3"):
        getattr(model, name).register_forward_hook(
            lambda module, inputs, output, name=name: seen.update({name: tuple(output.shape)}))
    assert model(torch.randn(2, 1, size, size)).shape == (2, 10)
    return seen["conv9"], seen["pool3"]


def test_28_pixels_pool_to_the_same_4x4_as_32_so_the_weights_have_the_same_shapes():
    small, report = FashionCNN(width=0.25, image_size=28).eval(), FashionCNN(width=0.25).eval()
    assert conv9_and_pooled_shapes(small, 28) == ((2, 128, 7, 7), (2, 128, 4, 4))
    assert conv9_and_pooled_shapes(report, 32) == ((2, 128, 8, 8), (2, 128, 4, 4))
    shapes = {k: v.shape for k, v in small.state_dict().items()}
    assert shapes == {k: v.shape for k, v in report.state_dict().items()}


def test_the_reports_32_pixels_pool_exactly_as_before():
    """Rounding up changes nothing for even sides (the bundled model was trained with plain
    flooring pools)."""
    torch.manual_seed(0)
    model = FashionCNN(width=0.25).eval()
    x = torch.randn(3, 1, 32, 32)
    rounded_up = model(x)
    for pool in (model.pool1, model.pool2, model.pool3):
        pool.ceil_mode = False
    assert torch.equal(rounded_up, model(x))


@pytest.mark.parametrize(("size", "side"), [(32, 4), (28, 4), (24, 3), (20, 3), (16, 2), (8, 1)])
def test_pooled_side_rounds_each_halving_up(size: int, side: int):
    assert pooled_side(size) == side
    assert FashionCNN(width=0.1, image_size=size).linear1[0].in_features == 51 * side * side


@pytest.mark.parametrize("size", [30, 6, 0])
def test_sizes_that_are_not_multiples_of_4_from_8_are_refused(size: int):
    with pytest.raises(ValueError, match="multiple of 4"):
        FashionCNN(image_size=size)
