"""The default network: a small residual CNN ending in global-average-pool + linear.

That ending is what makes class activation maps free: ``cam = conv1x1(features, fc.weight)`` and
``logits = mean(cam) + fc.bias``, both computed in the graph, so every backend outputs the CAM
directly (no gradients, which TensorRT does not have).
"""

from __future__ import annotations

from typing import Any

from authentiq.modelling.training import require_torch

require_torch()  # an actionable message if the [train] extra is missing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Any) -> Any:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.skip(x))


class AuthentiqNet(nn.Module):
    def __init__(self, width: int = 32, embedding_size: int = 128) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        )
        self.stages = nn.Sequential(
            Block(w, w * 3 // 2, 2), Block(w * 3 // 2, w * 3, 2), Block(w * 3, w * 5, 2),
            Block(w * 5, w * 8, 1),
        )
        self.channels = w * 8
        self.fc = nn.Linear(self.channels, 2)
        self.embed = nn.Linear(self.channels, embedding_size)

    def forward(self, x: Any) -> tuple[Any, Any, Any]:
        feats = self.stages(self.stem(x))  # [B, C, H/16, W/16]
        cam = torch.einsum("bchw,kc->bkhw", feats, self.fc.weight)
        logits = cam.mean(dim=(2, 3)) + self.fc.bias
        pooled = feats.mean(dim=(2, 3))
        embedding = F.normalize(self.embed(pooled), dim=1)
        return logits, embedding, cam
