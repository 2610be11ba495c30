"""Keras MobileNet v1 with the weights of a TensorFlow.js layers model (the same file catdog loads).

The tfjs model was converted from Keras, so its weight names are Keras's `layer/variable` paths: no
network download, and the Python peers compute with the very same weights as catdog.
"""
import json
import os

import numpy as np


def shared_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("CATDOG_SHARED", os.path.join(here, "..", "..", "..", "shared"))


def default_model_dir():
    return os.path.join(shared_dir(), "models", "mobilenet_v1_0.75_224")


def read_tfjs_weights(model_dir):
    manifest = json.load(open(os.path.join(model_dir, "model.json")))["weightsManifest"]
    weights = {}
    for group in manifest:
        data = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            weights[spec["name"]] = np.frombuffer(data, np.float32, count, offset).reshape(spec["shape"])
            offset += 4 * count
    return weights


def tfjs_name(layer, variable):
    # Keras 3 calls a depthwise kernel "kernel"; Keras 2, which the tfjs file came from, "depthwise_kernel".
    if type(layer).__name__ == "DepthwiseConv2D" and variable.name == "kernel":
        return f"{layer.name}/depthwise_kernel"
    return f"{layer.name}/{variable.name}"


def mobilenet(alpha=0.75, model_dir=None, include_top=True, pooling=None):
    """MobileNet v1 taking RGB 0..255 (the x/127.5 - 1 scaling is its first layer), with the tfjs weights."""
    import keras

    trunk = keras.applications.MobileNet(input_shape=(224, 224, 3), alpha=alpha, weights=None, include_top=include_top, pooling=pooling)
    weights = read_tfjs_weights(model_dir or default_model_dir())
    for layer in trunk.layers:
        if layer.weights:
            layer.set_weights([weights[tfjs_name(layer, variable)] for variable in layer.weights])
    inputs = keras.Input((224, 224, 3))
    return keras.Model(inputs, trunk(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)))
