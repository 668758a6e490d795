from torch import nn


def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGGBlock(nn.Module):
    def __init__(self, in_channels, out_channels, num_convs):
        super().__init__()
        self.body = vgg_block(num_convs, out_channels)

    def forward(self, x):
        return self.body(x)


class SimplifiedVGG(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        blocks, channels = [], 3
        for num_convs, out_channels in ((2, 64), (2, 128), (3, 256), (3, 512)):
            blocks.append(VGGBlock(channels, out_channels, num_convs))
            channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.LazyLinear(512), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(512), nn.ReLU(), nn.Dropout(0.5), nn.LazyLinear(num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
