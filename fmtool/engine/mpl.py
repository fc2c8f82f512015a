"""matplotlib for fmtool: headless (Agg, so plots work over SSH and in CI), and with its
configuration and font cache under fmtool's cache folder (`paths.matplotlib_dir`) rather than
~/.config and ~/.cache, unless the user chose a folder with MPLCONFIGDIR. Modules that draw
import pyplot from here, so the folder is set before matplotlib first loads."""

from __future__ import annotations

from fmtool.engine.paths import use_own_matplotlib_dir

use_own_matplotlib_dir()

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ["FancyArrowPatch", "FancyBboxPatch", "Line2D", "MaxNLocator", "matplotlib", "plt"]
