"""Peer for bench/train-cnn.mjs: the same networks in Keras 3 on TensorFlow, model.fit on in-memory random data.

Usage: keras_cnn_train.py IMAGE_SIZE COUNT BATCH EPOCHS [cnn|head]. `cnn` mirrors src/ml/models.ts buildCnn; `head`
is the logistic head (buildHead('logistic', 768)) on 768-d features. Prints one JSON line:
{"imagesPerSecond": …, "value": …, "epochs": [seconds…]}.
"""
import json
import sys
import time

import numpy as np
import keras
from keras import layers

image_size, count, batch_size, epochs = (int(v) for v in sys.argv[1:5])
kind = sys.argv[5] if len(sys.argv) > 5 else "cnn"
FEATURES = 768
rng = np.random.default_rng(0)
shape = (count, image_size, image_size, 3) if kind == "cnn" else (count, FEATURES)
x = rng.integers(0, 256, size=shape).astype("float32")
y = rng.integers(0, 2, size=(count, 1)).astype("float32")

head = keras.Sequential([
    keras.Input((FEATURES,)),
    layers.Dense(1, activation="sigmoid", kernel_regularizer=keras.regularizers.L2(1e-4)),
])
cnn = lambda: keras.Sequential([
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
model = cnn() if kind == "cnn" else head
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        durations.append(time.perf_counter() - self.started)


durations = []
model.fit(x, y, batch_size=batch_size, epochs=epochs + 1, verbose=0, shuffle=True, callbacks=[EpochTimer()])
measured = durations[1:]  # the first epoch includes graph tracing
images_per_second = count * len(measured) / sum(measured)
print(json.dumps({"imagesPerSecond": images_per_second, "value": images_per_second, "epochs": measured}))
