"""Peer for bench/end-to-end.mjs: the job `catdog train --data DIR` does, as a minimal Keras script.

  keras_end_to_end.py DIR MODEL

Load the photos of DIR/cat and DIR/dog (Pillow, squashed to the backbone's input size like catdog), split them
exactly as catdog does (sha256 of "42:" + the photo's sha256, 10% test / 20% validation / 70% train), the features of
MODEL (the .keras file bench/peer-backbone.mjs writes: catdog's own Keras export of the preset's backbone, the same
weights, the scaling inside), a logistic head (L2 1e-4, Adam 1e-3, batch 32, up to 20 epochs, early stopping with
patience 3 restoring the best epoch), accuracy on the test split. No augmentation, no database, no registry.
Prints one JSON line: {"seconds": wall time from start, "testAccuracy": …, "photos": n, "stages": {stage: seconds}}.
"""
import time

started = time.perf_counter()

import hashlib
import io
import json
import os
import sys

import numpy as np
from PIL import Image, ImageOps

import keras

stages = {}
mark = started


def stage_done(name):
    """Seconds since the previous stage ended, for bench/profile-end-to-end.mjs."""
    global mark
    now = time.perf_counter()
    stages[name] = now - mark
    mark = now


stage_done("start-up (python, tensorflow, keras)")

SEED, TEST, VALIDATION = 42, 0.1, 0.2


def split_of(image_hash):
    digest = hashlib.sha256(f"{SEED}:{image_hash}".encode()).digest()
    uniform = int.from_bytes(digest[:4], "big") / 2**32
    return "test" if uniform < TEST else "validation" if uniform < TEST + VALIDATION else "train"


def load(folder, side):
    pixels, labels, splits = [], [], []
    for label, name in enumerate(("cat", "dog")):
        directory = os.path.join(folder, name)
        for file in sorted(os.listdir(directory)):
            data = open(os.path.join(directory, file), "rb").read()
            image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB").resize((side, side), Image.BILINEAR)
            pixels.append(np.asarray(image, dtype=np.uint8))
            labels.append(label)
            splits.append(split_of(hashlib.sha256(data).hexdigest()))
    return np.stack(pixels), np.array(labels, dtype="float32"), np.array(splits)


backbone = keras.saving.load_model(sys.argv[2])
stage_done("backbone load")
pixels, labels, splits = load(sys.argv[1], backbone.input_shape[1])
stage_done("read, decode, hash, split")
features = backbone.predict(pixels.astype("float32"), batch_size=32, verbose=0)
stage_done("features")
part = {name: splits == name for name in ("train", "validation", "test")}

head = keras.Sequential([
    keras.Input((features.shape[1],)),
    keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=keras.regularizers.L2(1e-4)),
])
head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
head.fit(
    features[part["train"]], labels[part["train"]], batch_size=32, epochs=20, verbose=0,
    validation_data=(features[part["validation"]], labels[part["validation"]]),
    callbacks=[keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)],
)
stage_done("head training")
_, accuracy = head.evaluate(features[part["test"]], labels[part["test"]], verbose=0)
stage_done("test evaluation")
print(json.dumps({"seconds": time.perf_counter() - started, "testAccuracy": accuracy, "photos": len(labels), "testPhotos": int(part["test"].sum()), "stages": stages}))
