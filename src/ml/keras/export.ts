import { zipSync } from 'fflate';
import { CatdogError } from '../../errors.js';
import { ensureGroup, writeHdf5 } from './hdf5.js';
import { type Json, type JsonObject, arrayAt, isJsonObject, objectAt, stringAt } from './json.js';
import { callTakesMask, hasBuildConfig, isContainerClass, kerasDtypePolicy, kerasLayer } from './layers.js';
import type { Layer, LayersModel } from './tfjs.js';
import { weightGroups } from './weight-layout.js';

/**
 * The input scaling a Keras user would otherwise have to know about, added in front of the exported model so
 * that it takes raw RGB pixels 0–255:
 * - `mobilenet`: x / 127.5 − 1, for models whose tfjs graph expects already-scaled input because catdog scales
 *   in code before the backbone (a MobileNet trunk plus a head);
 * - `unit`: x / 255;
 * - `none` (default): the model already scales inside (catdog's CNN starts with a Rescaling layer).
 */
export type KerasPreprocessing = 'mobilenet' | 'unit' | 'none';

export interface ExportKerasOptions {
  preprocessing?: KerasPreprocessing;
}

const RESCALING: Record<Exclude<KerasPreprocessing, 'none'>, { scale: number; offset: number }> = {
  mobilenet: { scale: 1 / 127.5, offset: -1 },
  unit: { scale: 1 / 255, offset: 0 },
};

/** The Keras release whose `.keras` layout this exporter reproduces (and is tested against). */
const KERAS_VERSION = '3.15.1';

type Shape = (number | null)[];
/** Each Keras layer entry's variables, in Keras's order (which tfjs's `layer.weights` order matches). */
type Variables = Map<JsonObject, { values: Float32Array; shape: number[] }[]>;

/**
 * A Keras 3 `.keras` file of a tfjs LayersModel: `metadata.json`, `config.json` and `model.weights.h5`, stored
 * uncompressed in that order, as `keras.saving.save_model` writes them (without optimizer state).
 */
export async function exportKeras(model: LayersModel, options: ExportKerasOptions = {}): Promise<Uint8Array> {
  const variables: Variables = new Map();
  const config = kerasModel(model, model.toJSON(null, false) as unknown as JsonObject, variables);
  const preprocessing = options.preprocessing ?? 'none';
  if (preprocessing !== 'none') prependRescaling(config, RESCALING[preprocessing]);

  const weights = await writeHdf5((file) => {
    for (const group of weightGroups(config)) {
      const vars = ensureGroup(file, `${group.path}/vars`);
      vars.create_attribute('name', group.names.at(-1) ?? '');
      for (const [index, variable] of (variables.get(group.layer) ?? []).entries()) {
        vars.create_dataset({ name: String(index), data: variable.values, shape: variable.shape, dtype: '<f' });
      }
    }
    ensureGroup(file, 'vars').create_attribute('name', model.name);
  });

  const metadata = { keras_version: KERAS_VERSION, date_saved: kerasDate(new Date()) };
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  return zipSync(
    { 'metadata.json': encode(metadata), 'config.json': encode(config), 'model.weights.h5': weights },
    { level: 0 },
  );
}

/** Keras's `date_saved`, `%Y-%m-%d@%H:%M:%S`. */
function kerasDate(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', '@');
}

function kerasModel(live: LayersModel, tfjsEntry: JsonObject, variables: Variables): JsonObject {
  const tfjsConfig = objectAt(tfjsEntry.config, `config of model ${live.name}`);
  return tfjsEntry.class_name === 'Sequential'
    ? kerasSequential(live, tfjsConfig, variables)
    : kerasFunctional(live, tfjsConfig, variables);
}

function kerasSequential(live: LayersModel, tfjsConfig: JsonObject, variables: Variables): JsonObject {
  const input = live.inputs[0];
  if (!input || live.inputs.length > 1) throw new Error(`Sequential model ${live.name} must have one input`);
  const layers: Json[] = [kerasInputLayer(input.sourceLayer.name, input.shape)];
  for (const entry of arrayAt(tfjsConfig.layers, 'Sequential layers')) {
    const layer = objectAt(entry, 'Sequential layer');
    if (layer.class_name === 'InputLayer') continue;
    const name = stringAt(objectAt(layer.config, 'layer config').name, 'layer name');
    layers.push(kerasEntry(live.getLayer(name), layer, variables));
  }
  return {
    module: 'keras',
    class_name: 'Sequential',
    config: { name: live.name, trainable: live.trainable, dtype: kerasDtypePolicy(), layers, build_input_shape: input.shape },
    registered_name: null,
    build_config: { input_shape: input.shape },
    compile_config: {},
  };
}

function kerasFunctional(live: LayersModel, tfjsConfig: JsonObject, variables: Variables): JsonObject {
  const entries = arrayAt(tfjsConfig.layers, 'model layers').map((entry) => objectAt(entry, 'model layer'));
  const containers = new Set(entries.filter((layer) => isContainerClass(String(layer.class_name))).map((layer) => layer.name));
  const layers = entries.map((layer) => {
    const name = stringAt(layer.name, 'layer name');
    const keras = kerasEntry(live.getLayer(name), layer, variables);
    keras.name = name;
    const kwargs: JsonObject = callTakesMask(stringAt(layer.class_name, 'layer class_name')) ? { mask: null } : {};
    keras.inbound_nodes = arrayAt(layer.inbound_nodes, `inbound nodes of ${name}`).map((node) =>
      kerasNode(arrayAt(node, `inbound node of ${name}`), live, kwargs, containers),
    );
    return keras;
  });
  return {
    module: 'keras.src.models.functional',
    class_name: 'Functional',
    config: {
      name: live.name,
      trainable: live.trainable,
      layers,
      input_layers: kerasEndpoints(tfjsConfig.input_layers, containers),
      output_layers: kerasEndpoints(tfjsConfig.output_layers, containers),
    },
    registered_name: 'Functional',
    build_config: { input_shape: null },
    compile_config: {},
  };
}

function kerasEntry(live: Layer, tfjsEntry: JsonObject, variables: Variables): JsonObject {
  const className = stringAt(tfjsEntry.class_name, 'layer class_name');
  if (isContainerClass(className)) return kerasModel(live as LayersModel, tfjsEntry, variables);
  const tfjsConfig = objectAt(tfjsEntry.config, `config of layer ${live.name}`);
  if (className === 'InputLayer') return kerasInputLayer(live.name, tfjsConfig.batch_input_shape as Shape);
  const keras = kerasLayer(className, tfjsConfig);
  if (hasBuildConfig(className)) keras.build_config = { input_shape: inputShapeOf(live) };
  variables.set(
    keras,
    live.weights.map((weight) => ({ values: weight.read().dataSync() as Float32Array, shape: weight.shape as number[] })),
  );
  return keras;
}

function kerasInputLayer(name: string, batchShape: Shape): JsonObject {
  return {
    module: 'keras.layers',
    class_name: 'InputLayer',
    config: { batch_shape: batchShape, dtype: 'float32', sparse: false, ragged: false, name, optional: false },
    registered_name: null,
  };
}

/**
 * tfjs writes a node as `[[layer, nodeIndex, tensorIndex, kwargs], …]`; Keras 3 as call arguments. A model used
 * as a layer has a node 0 of its own in tfjs (as in Keras 2), so its calls start at 1; Keras 3 counts calls only.
 */
function kerasNode(tfjsNode: Json[], live: LayersModel, kwargs: JsonObject, containers: Set<Json | undefined>): JsonObject {
  const tensors = tfjsNode.map((inbound) => {
    const [layerName, nodeIndex, tensorIndex] = arrayAt(inbound, 'inbound tensor');
    const name = stringAt(layerName, 'inbound layer name');
    const kerasNodeIndex = Number(nodeIndex) - (containers.has(name) ? 1 : 0);
    return kerasTensor(name, outputShapeOf(live.getLayer(name), Number(tensorIndex)), kerasNodeIndex, Number(tensorIndex));
  });
  return { args: tensors.length === 1 ? tensors : [tensors], kwargs: structuredClone(kwargs) };
}

function kerasTensor(layerName: string, shape: Shape, nodeIndex = 0, tensorIndex = 0): JsonObject {
  return {
    class_name: '__keras_tensor__',
    config: { shape, dtype: 'float32', keras_history: [layerName, nodeIndex, tensorIndex] },
  };
}

/**
 * Keras 3 writes a single endpoint as `[name, 0, 0]` and several as a list of those; an endpoint on a nested
 * model names its call as in `kerasNode`.
 */
function kerasEndpoints(tfjsEndpoints: Json | undefined, containers: Set<Json | undefined>): Json {
  const endpoints = arrayAt(tfjsEndpoints, 'model endpoints').map((endpoint) => {
    const [name = null, nodeIndex, tensorIndex = 0] = arrayAt(endpoint, 'endpoint');
    return [name, Number(nodeIndex) - (containers.has(name) ? 1 : 0), tensorIndex];
  });
  return endpoints.length === 1 ? (endpoints[0] ?? null) : endpoints;
}

/** The shape a layer was called on; a merge layer's list of shapes, as Keras records it. */
function inputShapeOf(layer: Layer): Shape | Shape[] {
  const node = layer.inboundNodes[0];
  const shapes = node?.inputShapes;
  if (!shapes) throw new Error(`layer ${layer.name} was never called, so its input shape is unknown`);
  if (node.inboundLayers.length > 1) return shapes as Shape[];
  return (Array.isArray(shapes[0]) ? shapes[0] : shapes) as Shape;
}

function outputShapeOf(layer: Layer, tensorIndex: number): Shape {
  const shapes = layer.outputShape;
  return (Array.isArray(shapes[0]) ? shapes[tensorIndex] : shapes) as Shape;
}

/** Puts a Rescaling layer between the model's single input and everything that read that input. */
function prependRescaling(model: JsonObject, rescaling: { scale: number; offset: number }): void {
  const config = objectAt(model.config, 'model config');
  const layers = arrayAt(config.layers, 'model layers').map((entry) => objectAt(entry, 'layer'));
  const names = new Set(layers.map((layer) => String(objectAt(layer.config, 'layer config').name)));
  let name = 'preprocessing';
  for (let suffix = 1; names.has(name); suffix += 1) name = `preprocessing_${suffix}`;

  const inputIndex = layers.findIndex((layer) => layer.class_name === 'InputLayer');
  const input = layers[inputIndex];
  const endpoints = config.input_layers;
  if (!input || (Array.isArray(endpoints) && Array.isArray(endpoints[0]))) {
    throw new CatdogError('invalid_model', 'input preprocessing can only be added to a model with one input');
  }
  const inputConfig = objectAt(input.config, 'input config');
  const inputName = String(inputConfig.name);
  const batchShape = inputConfig.batch_shape as Shape;
  const layer = kerasLayer('Rescaling', { name, trainable: true, ...rescaling });
  layer.build_config = { input_shape: batchShape };

  if (model.class_name === 'Functional') {
    for (const other of layers) renameInboundLayer(other.inbound_nodes ?? null, inputName, name);
    layer.name = name;
    layer.inbound_nodes = [{ args: [kerasTensor(inputName, batchShape)], kwargs: {} }];
  }
  config.layers = [...layers.slice(0, inputIndex + 1), layer, ...layers.slice(inputIndex + 1)];
}

function renameInboundLayer(value: Json, from: string, to: string): void {
  if (Array.isArray(value)) {
    for (const item of value) renameInboundLayer(item, from, to);
  } else if (isJsonObject(value)) {
    const history = isJsonObject(value.config) ? value.config.keras_history : undefined;
    if (value.class_name === '__keras_tensor__' && Array.isArray(history) && history[0] === from) history[0] = to;
    else for (const item of Object.values(value)) renameInboundLayer(item, from, to);
  }
}
