"""Where the checkout is."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
