"""Peer for bench/features.mjs: MobileNet v1 0.75 feature vectors (global average pooling, 768-d) in Keras.

Same weights as catdog (read from the shared tfjs model), same 0..255 input with the scaling inside.
Prints one JSON line: {"value": images/s, "batches": n, "seconds": s}.
"""
import json
import sys
import time

import numpy as np

from tfjs_mobilenet import mobilenet

batch_size, batches = int(sys.argv[1]), int(sys.argv[2])
model = mobilenet(include_top=False, pooling="avg")
x = np.random.default_rng(0).integers(0, 256, size=(batch_size, 224, 224, 3)).astype("float32")
for _ in range(3):
    features = model.predict_on_batch(x)  # warm-up: tracing and memory pools
assert features.shape == (batch_size, 768), features.shape
started = time.perf_counter()
for _ in range(batches):
    model.predict_on_batch(x)
seconds = time.perf_counter() - started
print(json.dumps({"value": batch_size * batches / seconds, "batches": batches, "seconds": seconds}))
