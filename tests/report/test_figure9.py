"""Figure 9 as the report prints it: 64 faces, 8 a row, above their 64 reconstructions."""

import torch

from fmtool.report.vae_figures import figure9


def test_figure_9_shows_64_faces_above_their_64_reconstructions():
    size, pad = 16, 2
    originals, recons = torch.zeros(96, 3, size, size), torch.ones(96, 3, size, size)
    picture = figure9(originals, recons)
    grid = 8 * (size + pad) + pad  # make_grid: 8 faces a row, 8 rows, 2-pixel padding
    gap = 4
    assert tuple(picture.shape) == (3, 2 * grid + gap, grid)
    top, bottom = picture[:, :grid], picture[:, grid + gap:]
    # Every face of the top grid is an original (black), of the bottom one a reconstruction.
    cells = [(pad + r * (size + pad), pad + c * (size + pad)) for r in range(8) for c in range(8)]
    assert all(top[:, y:y + size, x:x + size].max() == 0 for y, x in cells)
    assert all(bottom[:, y:y + size, x:x + size].min() == 1 for y, x in cells)


def test_fewer_faces_fill_fewer_rows():
    picture = figure9(torch.zeros(10, 3, 8, 8), torch.ones(10, 3, 8, 8))
    grid_height = 2 * (8 + 2) + 2  # 10 faces: two rows of 8
    assert picture.shape[1] == 2 * grid_height + 4
