import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet import ResidualBlock


class ModernCNN(nn.Module):
    """Modern CNN template incorporating best practices"""

    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(512, num_classes)
        self.stem = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=True)
        self.stem_bn = nn.BatchNorm2d(64)
        plan = [(64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2), (512, 512, 1)]
        self.blocks = nn.ModuleList(ResidualBlock(i, o, s) for i, o, s in plan)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        x = F.dropout(x, p=0.5, training=self.training)
        return self.fc(x)
