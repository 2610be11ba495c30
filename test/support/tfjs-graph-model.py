"""Writes a genuine TF.js graph model (model.json with format "graph-model" + one weight shard) of a small seeded
Keras conv net, the way tensorflowjs_converter lays one out, and prints what TensorFlow itself computes for the
given pixels. No converter package installs here, so this does its steps by hand:

1. freeze the Keras model's concrete function (convert_variables_to_constants_v2), weights as Const nodes;
2. optimize it with Grappler as the converter does (constant folding, arithmetic, then the CPU remapper, which fuses
   Conv2D + BiasAdd + activation into _FusedConv2D), then fuse DepthwiseConv2dNative + BiasAdd + activation into
   FusedDepthwiseConv2dNative, the tfjs-only op the converter writes for MobileNets;
3. move every Const's values into a weightsManifest + .bin shard (the Const nodes stay in the topology with their
   tensor's dtype and shape only), and write the GraphDef as JSON (json_format.MessageToDict) beside a signature.

Usage: python tfjs-graph-model.py OUT_DIR PIXELS_F32 SIZE   (pixels: RGB 0..255, little-endian float32, NHWC)
Prints JSON: {"features": [[...]], "imagenet": [[...]], "featureNode": ..., "imagenetNode": ..., "inputNode": ...}.
The network takes x/255, so a test must declare that scaling.
"""

import json
import os
import sys

import numpy as np
import keras
import tensorflow as tf
from google.protobuf.json_format import MessageToDict
from tensorflow.core.protobuf import config_pb2, device_properties_pb2
from tensorflow.python.framework import convert_to_constants
from tensorflow.python.grappler import cluster as grappler_cluster
from tensorflow.python.grappler import tf_optimizer
from tensorflow.python.training.saver import export_meta_graph

out_dir, pixels_path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
pixels = np.fromfile(pixels_path, dtype="<f4").reshape((-1, size, size, 3))

keras.utils.set_random_seed(16)
inputs = keras.Input((None, None, 3), name="pixels")
x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6", name="stem")(inputs)
x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="depthwise")(x)
x = keras.layers.BatchNormalization(name="norm")(x)
x = keras.layers.Conv2D(24, 1, activation="relu", name="pointwise")(x)
features = keras.layers.GlobalAveragePooling2D(name="features")(x)
imagenet = keras.layers.Dense(1000, activation="softmax", name="imagenet")(features)
model = keras.Model(inputs, [features, imagenet])
rng = np.random.default_rng(16)
# Keras starts biases at zero, which Grappler's arithmetic pass would remove along with the BiasAdd the fusions need.
for name in ("stem", "depthwise", "pointwise"):
    kernel, bias = model.get_layer(name).get_weights()
    model.get_layer(name).set_weights([kernel, rng.normal(0, 0.1, bias.shape)])
norm = model.get_layer("norm")
gamma, beta, mean, variance = norm.get_weights()
norm.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape), rng.normal(0, 0.1, mean.shape), rng.uniform(0.05, 0.2, variance.shape)])
model.get_layer("imagenet").set_weights([rng.normal(0, 0.3, (24, 1000)), rng.normal(0, 0.1, (1000,))])


@tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="pixels")])
def serve(images):
    features, imagenet = model(images, training=False)
    return {"features": tf.identity(features, name="features_output"), "imagenet": tf.identity(imagenet, name="imagenet_output")}


concrete = serve.get_concrete_function()
frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
graph_def = frozen.graph.as_graph_def()
output_names = ["features_output", "imagenet_output"]


def grappler(graph_def, optimizers):
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
        for name in output_names:
            graph.add_to_collection("train_op", graph.get_operation_by_name(name))
    config = config_pb2.ConfigProto()
    config.graph_options.rewrite_options.optimizers[:] = optimizers
    # The converter's own cluster: a GPU device, with every Conv2D placed on the CPU, where the remapper fuses it.
    device = device_properties_pb2.NamedDevice(name="/GPU:0")
    device.properties.type = "GPU"
    device.properties.environment["architecture"] = "4"
    return tf_optimizer.OptimizeGraph(config, export_meta_graph(graph_def=graph.as_graph_def(), graph=graph), cluster=grappler_cluster.Cluster(devices=[device]))


graph_def = grappler(graph_def, ["pruning", "constfold", "arithmetic", "dependency", "pruning", "constfold", "arithmetic", "dependency"])
for node in graph_def.node:
    if node.op == "Conv2D":
        node.device = "/device:CPU:0"
graph_def = grappler(graph_def, ["remap", "constfold", "arithmetic", "dependency"])
for node in graph_def.node:
    node.device = ""


def fuse_depthwise(graph_def):
    """DepthwiseConv2dNative → BiasAdd (→ Relu/Relu6) as one FusedDepthwiseConv2dNative, as the converter fuses it."""
    by_name = {node.name: node for node in graph_def.node}
    consumers = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(name.split(":")[0], []).append(node)
    removed, renamed = set(), {}
    for node in list(graph_def.node):
        if node.op != "DepthwiseConv2dNative" or len(consumers.get(node.name, [])) != 1:
            continue
        bias = consumers[node.name][0]
        if bias.op != "BiasAdd":
            continue
        fused_ops, last = [b"BiasAdd"], bias
        after = consumers.get(bias.name, [])
        if len(after) == 1 and after[0].op in ("Relu", "Relu6"):
            fused_ops.append(after[0].op.encode())
            last = after[0]
        node.op = "FusedDepthwiseConv2dNative"
        node.input.append(bias.input[1])
        node.attr["fused_ops"].list.s.extend(fused_ops)
        node.attr["num_args"].i = 1
        for skipped in {bias.name, last.name}:
            removed.add(skipped)
            renamed[skipped] = node.name
    kept = [node for node in graph_def.node if node.name not in removed]
    for node in kept:
        node.input[:] = [renamed.get(name, name) for name in node.input]
    del graph_def.node[:]
    graph_def.node.extend(kept)
    return graph_def


graph_def = fuse_depthwise(graph_def)
ops = sorted({node.op for node in graph_def.node})
assert "FusedDepthwiseConv2dNative" in ops and "_FusedConv2D" in ops, f"the converter's fusions did not happen: {ops}"

# Weights out of the graph, in node order, into one shard (the converter groups them into 4 MB shards).
weights, shard = [], bytearray()
for node in graph_def.node:
    if node.op != "Const":
        continue
    value = tf.make_ndarray(node.attr["value"].tensor)
    dtype = {np.dtype("float32"): "float32", np.dtype("int32"): "int32"}[value.dtype]
    weights.append({"name": node.name, "shape": list(value.shape), "dtype": dtype})
    shard += value.astype(value.dtype.newbyteorder("<")).tobytes()
    tensor = node.attr["value"].tensor
    for field in ("tensor_content", "float_val", "int_val", "half_val", "double_val", "int64_val", "bool_val", "string_val"):
        tensor.ClearField(field)

os.makedirs(out_dir, exist_ok=True)
with open(os.path.join(out_dir, "group1-shard1of1.bin"), "wb") as f:
    f.write(bytes(shard))
signature = {
    "inputs": {"pixels": {"name": "pixels:0", "dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "-1"}, {"size": str(size)}, {"size": str(size)}, {"size": "3"}]}}},
    "outputs": {
        "features": {"name": "features_output:0", "dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "-1"}, {"size": "24"}]}},
        "imagenet": {"name": "imagenet_output:0", "dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "-1"}, {"size": "1000"}]}},
    },
}
model_json = {
    "format": "graph-model",
    "generatedBy": tf.__version__,
    "convertedBy": "catdog test/support/tfjs-graph-model.py",
    "modelTopology": MessageToDict(graph_def),
    "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": weights}],
    "signature": signature,
}
with open(os.path.join(out_dir, "model.json"), "w") as f:
    json.dump(model_json, f)

computed = concrete(tf.constant(pixels / 255.0, tf.float32))
print(json.dumps({
    "features": computed["features"].numpy().tolist(),
    "imagenet": computed["imagenet"].numpy().tolist(),
    "inputNode": "pixels",
    "featureNode": "features_output",
    "imagenetNode": "imagenet_output",
    "ops": ops,
}))
