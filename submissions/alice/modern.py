import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet import ResidualBlock


class ModernCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)
        self.bn = nn.BatchNorm2d(64)
        plan = [(64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2), (512, 512, 1)]
        self.res = nn.ModuleList([ResidualBlock(i, o, stride=s) for i, o, s in plan])
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        for block in self.res:
            x = block(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        x = F.dropout(x, p=0.5, training=self.training)
        return self.fc(x)
