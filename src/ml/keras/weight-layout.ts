import { type JsonObject, arrayAt, objectAt, stringAt } from './json.js';
import { isContainerClass, kerasSnakeCase } from './layers.js';

export interface WeightGroup {
  /** The layer's group in `model.weights.h5`; its variables are `${path}/vars/0`, `/1`, … */
  path: string;
  /** The layer's entry in config.json. */
  layer: JsonObject;
  /** Layer names from the outermost model down to this layer (nested models are layers too). */
  names: string[];
}

/**
 * Where Keras 3's saving_lib puts every layer of a model config: `layers/<key>` with `<key>` the layer class in
 * snake_case plus a counter per class within its model (`conv2d`, `conv2d_1`…), never the layer's own name.
 * A nested model's layers live under its own `layers/<key>/layers/…`. Sequential models do not list their
 * InputLayer (Keras's `Sequential.layers` hides it); functional models do.
 */
export function* weightGroups(model: JsonObject, prefix = ''): Generator<WeightGroup> {
  const sequential = model.class_name === 'Sequential';
  const used = new Map<string, number>();
  for (const entry of arrayAt(objectAt(model.config, 'model config').layers, 'model layers')) {
    const layer = objectAt(entry, 'layer entry');
    const className = stringAt(layer.class_name, 'layer class_name');
    // Keras saves the weights of layers only: ops called on tensors (`x + 3.0`) are nodes of the model, not layers.
    if ((sequential && className === 'InputLayer') || String(layer.module ?? '').startsWith('keras.src.ops')) continue;
    const base = kerasSnakeCase(className);
    const count = used.get(base);
    used.set(base, count === undefined ? 0 : count + 1);
    const path = `${prefix}layers/${count === undefined ? base : `${base}_${count + 1}`}`;
    const name = stringAt(objectAt(layer.config, 'layer config').name, 'layer name');
    yield { path, layer, names: [name] };
    if (isContainerClass(className)) {
      for (const inner of weightGroups(layer, `${path}/`)) yield { ...inner, names: [name, ...inner.names] };
    }
  }
}
