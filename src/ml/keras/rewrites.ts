import { type Json, type JsonObject, arrayAt, isJsonObject, objectAt } from './json.js';
import { unsupportedLayers } from './layers.js';

/**
 * Keras 3 layers and ops that TensorFlow.js has no layer for, each written as a few layers it has, computing the
 * same function (what MobileNetV3's hard-swish and squeeze-excite blocks need). Keras 3 function-call (`args`)
 * nodes only; the last layer of each rewrite keeps the original name, so the layers reading it stay as they are.
 */
export function rewriteForTfjs(layer: JsonObject): JsonObject[] {
  const rewrite = rewriteOf(layer);
  if (!rewrite) return [layer];
  const name = String(layer.name ?? objectAt(layer.config, 'layer config').name);
  const nodes = arrayAt(layer.inbound_nodes, `inbound nodes of ${name}`);
  const [node] = nodes;
  // A rewritten layer is called once: each call of a shared one would need its own copy of the chain.
  if (nodes.length !== 1 || !isJsonObject(node)) throw unsupportedLayers([`${String(layer.class_name)} called ${nodes.length} times (${name})`]);
  const args = arrayAt(node.args, `call arguments of ${name}`);
  return rewrite(name, args);
}

type Rewrite = (name: string, args: Json[]) => JsonObject[];

/** Keras 3's hard_sigmoid: relu6(x + 3) / 6 (tfjs's own is the older 0.2x + 0.5). */
const hardSigmoid = (name: string, input: Json, outputName: string): JsonObject[] => [
  entry('Rescaling', `${name}_plus_3`, { scale: 1, offset: 3 }, input),
  entry('ReLU', `${name}_relu6`, { max_value: 6 }, tensor(`${name}_plus_3`)),
  entry('Rescaling', outputName, { scale: 1 / 6, offset: 0 }, tensor(`${name}_relu6`)),
];

const ACTIVATION_REWRITES: Record<string, Rewrite> = {
  hard_sigmoid: (name, [input = null]) => hardSigmoid(name, input, name),
  // hard_silu is Keras 3's name for hard-swish: x · hard_sigmoid(x).
  hard_silu: (name, [input = null]) => [...hardSigmoid(name, input, `${name}_hard_sigmoid`), entry('Multiply', name, {}, [input, tensor(`${name}_hard_sigmoid`)])],
};
ACTIVATION_REWRITES.hard_swish = ACTIVATION_REWRITES.hard_silu!;

function rewriteOf(layer: JsonObject): Rewrite | undefined {
  const className = String(layer.class_name);
  const config = isJsonObject(layer.config) ? layer.config : {};
  if (className === 'Activation' && typeof config.activation === 'string') return ACTIVATION_REWRITES[config.activation];
  // tfjs's pooling always drops the pooled axes: pool, then put them back.
  if (className === 'GlobalAveragePooling2D' && config.keepdims === true) {
    return (name, [input = null]) => {
      // The convolution after it must know its channels: Keras 3 nodes record their input's shape.
      const channels = isJsonObject(input) && isJsonObject(input.config) && Array.isArray(input.config.shape) ? input.config.shape.at(-1) : undefined;
      if (typeof channels !== 'number') throw unsupportedLayers([`GlobalAveragePooling2D(keepdims=True) on an input of unknown channels (${name})`]);
      return [
        entry('GlobalAveragePooling2D', `${name}_pooled`, { data_format: config.data_format ?? 'channels_last' }, input),
        entry('Reshape', name, { target_shape: [1, 1, channels] }, tensor(`${name}_pooled`)),
      ];
    };
  }
  // `x + 3.0`, `x * (1 / 6)` on a Keras 3 tensor: an op node (of keras.src.ops; legacy .h5 configs omit the
  // module) called with one tensor and one number, where the merge layers of the same names take a list.
  if ((className === 'Add' || className === 'Multiply') && isOpCall(layer)) {
    return (name, args) => {
      const constant = args.find((arg): arg is number => typeof arg === 'number');
      const input = args.find((arg) => isJsonObject(arg));
      if (args.length !== 2 || constant === undefined || input === undefined) throw unsupportedLayers([`keras.ops.${className.toLowerCase()} of two tensors (${name})`]);
      return [entry('Rescaling', name, className === 'Add' ? { scale: 1, offset: constant } : { scale: constant, offset: 0 }, input)];
    };
  }
  return undefined;
}

function isOpCall(layer: JsonObject): boolean {
  if (typeof layer.module === 'string' && layer.module.startsWith('keras.src.ops')) return true;
  const nodes = Array.isArray(layer.inbound_nodes) ? layer.inbound_nodes : [];
  return nodes.some((node) => isJsonObject(node) && Array.isArray(node.args) && node.args.some((arg) => typeof arg === 'number'));
}

function tensor(layerName: string): JsonObject {
  return { class_name: '__keras_tensor__', config: { shape: null, dtype: 'float32', keras_history: [layerName, 0, 0] } };
}

function entry(className: string, name: string, options: JsonObject, input: Json): JsonObject {
  return {
    module: 'keras.layers',
    class_name: className,
    config: { name, trainable: false, ...options },
    registered_name: null,
    name,
    inbound_nodes: [{ args: [input], kwargs: {} }],
  };
}
