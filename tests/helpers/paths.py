"""Where the repository is, for tests that read its files (README, man page, completions)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
