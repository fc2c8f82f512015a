"""What fmtool holds of the report's own numbers, once, as plain data: the study sets each of
fmtool's measurements beside the report's, and says "none recorded" where this module has none
rather than making one up. Tables 1 and 3 (the recipes) are the `paper` recipes in
`fmtool.cnn.recipes` and `fmtool.vae.recipes`.
"""

from __future__ import annotations

# The report's test accuracy as printed, and what it is: its code divides the number of right
# answers by 157 batches x 64 = 10,048 instead of the 10,000 test images.
PRINTED_ACCURACY = 0.9372
CORRECT = 9417
PRINTED_DIVISOR = 10048
TEST_IMAGES = 10000
TRUE_ACCURACY = CORRECT / TEST_IMAGES  # 94.17%, the figure to compare with

# Table 2: the report's comparison of its CNN with published models (test accuracy as printed).
# Source of the three published models' figures: fmtool's issue tracker, issue 6 ("Beyond the
# report's accuracy"), which quotes them from the report: "places its CNN between VGG16 (93.5%)
# and ResNet18 (94.9%) and MobileNet (95.0%) in its Table 2". fmtool holds no copy of the report
# to check them against, and the report's own sources for them are not recorded here.
TABLE2 = (
    ("VGG16", 0.935),
    ("ResNet18", 0.949),
    ("MobileNet", 0.950),
)
TABLE2_SOURCE = "as quoted in fmtool's issue tracker (issue 6)"
TABLE2_NOTE = ("VGG16, ResNet18 and MobileNet: the report's Table 2 figures as quoted in fmtool's "
               "issue tracker (issue 6); fmtool has not checked them against the report or "
               "the models' own publications.")
REPORT_MODEL = "the report's CNN"

# What the report says of Figures 5-7, in words; it gives no separation score.
SEPARATION_CLAIM = "the classes separate better towards the output (pictures, no score)"
