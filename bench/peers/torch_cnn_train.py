"""Peer for bench/train-cnn.mjs: PyTorch twins of catdog's CNN (src/ml/models.ts buildCnn) and logistic head.

Usage: torch_cnn_train.py IMAGE_SIZE COUNT BATCH EPOCHS [cnn|head]. Adam 1e-3, binary cross-entropy, in-memory
random data, shuffled each epoch; the first epoch is a warm-up. Prints one JSON line:
{"imagesPerSecond": …, "value": …, "epochs": [seconds…]}.
"""
import json
import sys
import time

import torch
from torch import nn

image_size, count, batch_size, epochs = (int(v) for v in sys.argv[1:5])
kind = sys.argv[5] if len(sys.argv) > 5 else "cnn"
FEATURES = 768
torch.manual_seed(0)


class Rescale(nn.Module):
    def forward(self, x):
        return x / 255


def conv_block(inputs, filters):
    # Keras's order: convolution with ReLU, then batch norm, then pooling.
    return [nn.Conv2d(inputs, filters, 3), nn.ReLU(), nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01), nn.MaxPool2d(2)]


def cnn():
    side = image_size
    for _ in range(3):
        side = (side - 2) // 2
    return nn.Sequential(
        Rescale(), *conv_block(3, 32), *conv_block(32, 64), *conv_block(64, 128), nn.Flatten(),
        nn.Linear(128 * side * side, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(64, 1),
    )


if kind == "cnn":
    model, x = cnn(), torch.randint(0, 256, (count, 3, image_size, image_size)).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
else:
    model, x = nn.Linear(FEATURES, 1), torch.randint(0, 256, (count, FEATURES)).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=2e-4)  # Keras's l2=1e-4 penalty, as a gradient
y = torch.randint(0, 2, (count, 1)).float()
loss_fn = nn.BCEWithLogitsLoss()  # the sigmoid output unit, fused into the loss as PyTorch code does

durations = []
model.train()
for epoch in range(epochs + 1):
    started = time.perf_counter()
    order = torch.randperm(count)
    for start in range(0, count, batch_size):
        index = order[start:start + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(x[index]), y[index])
        loss.backward()
        optimizer.step()
    durations.append(time.perf_counter() - started)
measured = durations[1:]
images_per_second = count * len(measured) / sum(measured)
print(json.dumps({"imagesPerSecond": images_per_second, "value": images_per_second, "epochs": measured, "threads": torch.get_num_threads()}))
