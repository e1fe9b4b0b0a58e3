"""A network of a few hundred parameters that stands in for AlexNet where a test needs real
checkpoints small enough to keep in the repository (the legacy run-folder fixture)."""

from __future__ import annotations

from torch import nn


class TinyNet(nn.Module):
    """AlexNet's two parts, `features` and `classifier`, so the freeze policies still apply."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=5, stride=4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def build_tiny_model(model: str, num_classes: int, weights: str = "none") -> nn.Module:
    """Drop-in for the engine's `build_model`: a TinyNet whatever the config's model says."""
    return TinyNet(num_classes)
