"""Peer for bench/features.mjs: a preset's backbone features in Keras, from catdog's own Keras export of it.

MODEL is the .keras file bench/peer-backbone.mjs writes: the preset's backbone (an ensemble's features concatenated)
with its x/127.5 - 1 scaling in front, so it takes RGB 0..255 pixels like catdog's backbone, with the same weights.

  keras_features.py MODEL BATCH BATCHES
      throughput on random 0..255 pixels; prints {"value": images/s, "batches": n, "seconds": s}
  keras_features.py MODEL --features PIXELS OUT
      the features of PIXELS (float32 NHWC at the model's input size) written to OUT as float32; prints {"images": n}
"""
import json
import sys
import time

import keras
import numpy as np

model = keras.saving.load_model(sys.argv[1])
_, side, _, channels = model.input_shape
feature_size = model.output_shape[-1]

if sys.argv[2] == "--features":
    pixels = np.fromfile(sys.argv[3], dtype="<f4").reshape(-1, side, side, channels)
    model.predict_on_batch(pixels).astype("<f4").tofile(sys.argv[4])
    print(json.dumps({"images": len(pixels)}))
    sys.exit(0)

batch_size, batches = int(sys.argv[2]), int(sys.argv[3])
x = np.random.default_rng(0).integers(0, 256, size=(batch_size, side, side, channels)).astype("float32")
for _ in range(3):
    features = model.predict_on_batch(x)  # warm-up: tracing and memory pools
assert features.shape == (batch_size, feature_size), features.shape
started = time.perf_counter()
for _ in range(batches):
    model.predict_on_batch(x)
seconds = time.perf_counter() - started
print(json.dumps({"value": batch_size * batches / seconds, "batches": batches, "seconds": seconds}))
