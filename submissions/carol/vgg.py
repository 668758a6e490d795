"""VGG (Day 9) -- Carol."""

from torch import nn


class VGGBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_convs: int) -> None:
        super().__init__()
        mods = []
        c = in_channels
        for _ in range(num_convs):
            mods.extend([nn.Conv2d(c, out_channels, 3, padding=1), nn.ReLU()])
            c = out_channels
        self.body = nn.Sequential(*mods)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(self.body(x))


class SimplifiedVGG(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        cfg = [(3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3)]
        self.features = nn.Sequential(*[VGGBlock(*c) for c in cfg])
        self.flatten = nn.Flatten()
        self.mlp = nn.Sequential(
            nn.Linear(2048, 512), nn.ReLU(), nn.Dropout(),
            nn.Linear(512, 512), nn.ReLU(), nn.Dropout(),
            nn.Linear(512, num_classes),
        )

    def forward(self, x):
        return self.mlp(self.flatten(self.features(x)))
