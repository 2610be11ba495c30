"""Peer for bench/train-cnn.mjs: the same CNN in Keras 3 on TensorFlow, model.fit on the same in-memory data.

Prints one JSON line: {"imagesPerSecond": …, "epochs": [seconds…]}. The network mirrors src/ml/models.ts buildCnn.
"""
import json
import sys
import time

import numpy as np
import keras
from keras import layers

image_size, count, batch_size, epochs = (int(v) for v in sys.argv[1:5])
rng = np.random.default_rng(0)
x = rng.integers(0, 256, size=(count, image_size, image_size, 3)).astype("float32")
y = rng.integers(0, 2, size=(count, 1)).astype("float32")

model = keras.Sequential([
    keras.Input((image_size, image_size, 3)),
    layers.Rescaling(1 / 255),
    layers.Conv2D(32, 3, activation="relu"), layers.BatchNormalization(), layers.MaxPooling2D(),
    layers.Conv2D(64, 3, activation="relu"), layers.BatchNormalization(), layers.MaxPooling2D(),
    layers.Conv2D(128, 3, activation="relu"), layers.BatchNormalization(), layers.MaxPooling2D(),
    layers.Flatten(),
    layers.Dense(128, activation="relu"), layers.Dropout(0.5),
    layers.Dense(64, activation="relu"), layers.Dropout(0.5),
    layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        durations.append(time.perf_counter() - self.started)


durations = []
model.fit(x, y, batch_size=batch_size, epochs=epochs + 1, verbose=0, shuffle=True, callbacks=[EpochTimer()])
measured = durations[1:]  # the first epoch includes graph tracing
print(json.dumps({"imagesPerSecond": count * len(measured) / sum(measured), "epochs": measured}))
