import path from 'node:path';
import { unzipSync } from 'fflate';
import { CatdogError } from '../../errors.js';
import { type Group, isDataset, isGroup, readHdf5 } from './hdf5.js';
import { type Json, type JsonObject, arrayAt, invalidModel, isJsonObject, objectAt, parseJson, stringAt } from './json.js';
import { SUPPORTED_LAYERS, isContainerClass, tfjsDtype, tfjsLayerConfig, unsupportedLayers } from './layers.js';
import { rewriteForTfjs } from './rewrites.js';
import { type Layer, type LayersModel, type ModelTopology, type WeightsManifestEntry, initTensorflow, tensorflow } from './tfjs.js';
import { weightGroups } from './weight-layout.js';

/** A TensorFlow.js layers model: its model.json and either all weight bytes in manifest order or each shard by file name. */
export interface TfjsModelFiles {
  modelJson: string | Uint8Array | JsonObject;
  weights: Uint8Array | Record<string, Uint8Array>;
}

interface WeightArray {
  data: Float32Array;
  shape: number[];
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
const startsWith = (bytes: Uint8Array, magic: number[]) => magic.every((byte, index) => bytes[index] === byte);

/**
 * A tfjs LayersModel from a Keras 3 `.keras` file or a legacy Keras `.h5` full model (Keras 2, or Keras 3's
 * legacy writer), told apart by their bytes; `fileName` only names the file in errors. Initializers,
 * regularizers and constraints are not carried over: the weights come from the file.
 */
export async function importKerasModel(bytes: Uint8Array, fileName: string): Promise<LayersModel> {
  if (startsWith(bytes, ZIP_MAGIC)) return importKeras3(bytes, fileName);
  if (startsWith(bytes, HDF5_MAGIC)) return importLegacyHdf5(bytes, fileName);
  if (new TextDecoder().decode(bytes.subarray(0, 64)).trimStart().startsWith('{')) {
    throw new CatdogError(
      'tfjs_weights_required',
      `${fileName} looks like a TensorFlow.js model.json: import it together with its weight files`,
    );
  }
  throw new CatdogError(
    'unsupported_model_format',
    `${fileName} is neither a Keras 3 .keras file, a Keras .h5 model nor a TensorFlow.js model.json`,
  );
}

async function importKeras3(bytes: Uint8Array, fileName: string): Promise<LayersModel> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (error) {
    throw invalidModel(`${fileName} is not a readable zip archive (${error instanceof Error ? error.message : String(error)})`);
  }
  const configBytes = entries['config.json'];
  const weightBytes = entries['model.weights.h5'];
  if (!configBytes || !weightBytes) {
    throw invalidModel(`${fileName} is not a Keras 3 .keras file: it lacks config.json or model.weights.h5`);
  }
  const config = objectAt(parseJson(new TextDecoder().decode(configBytes), `${fileName}: config.json`), 'config.json');
  const model = await tfjsModelFromKeras(config);
  const groups = [...weightGroups(config)];
  const weights = await readHdf5(weightBytes, (file) =>
    groups.map((group) => {
      const vars = file.get(`${group.path}/vars`);
      return isGroup(vars) ? datasetsByIndex(vars) : [];
    }),
  );
  for (const [index, group] of groups.entries()) {
    const layer = layerAt(model, group.names);
    if (!isContainer(layer)) assignWeights(layer, weights[index] ?? [], `${fileName}: ${group.path}`);
  }
  return model;
}

async function importLegacyHdf5(bytes: Uint8Array, fileName: string): Promise<LayersModel> {
  const { config, layerWeights } = await readHdf5(bytes, (file) => {
    const modelConfig = file.attrs.model_config?.value;
    if (typeof modelConfig !== 'string') {
      throw invalidModel(`${fileName} holds only weights (no model_config): save the whole model, or use a .keras file`);
    }
    const weightsRoot = file.get('model_weights');
    const root = isGroup(weightsRoot) ? weightsRoot : file;
    const layerWeights = new Map<string, { name: string; array: WeightArray }[]>();
    for (const layerName of stringList(root.attrs.layer_names?.value)) {
      const group = root.get(layerName);
      if (!isGroup(group)) continue;
      const names = stringList(group.attrs.weight_names?.value);
      layerWeights.set(
        layerName,
        names.map((name) => ({ name, array: datasetArray(group.get(name), `${fileName}: ${layerName}/${name}`) })),
      );
    }
    return { config: objectAt(parseJson(modelConfig, `${fileName}: model_config`), 'model_config'), layerWeights };
  });
  const model = await tfjsModelFromKeras(config);
  for (const [layerName, weights] of layerWeights) {
    if (weights.length > 0) assignLegacyWeights(model.getLayer(layerName), weights, fileName);
  }
  return model;
}

/**
 * Legacy files list a nested model's weights under the nested model, each named `<inner layer>/<variable>`,
 * in Keras's variable order within each inner layer.
 */
function assignLegacyWeights(layer: Layer, weights: { name: string; array: WeightArray }[], fileName: string): void {
  if (!isContainer(layer)) {
    assignWeights(layer, weights.map((weight) => weight.array), `${fileName}: ${layer.name}`);
    return;
  }
  const byInnerLayer = new Map<string, typeof weights>();
  for (const weight of weights) {
    const innerName = weight.name.split('/').at(-2) ?? '';
    byInnerLayer.set(innerName, [...(byInnerLayer.get(innerName) ?? []), weight]);
  }
  for (const [innerName, innerWeights] of byInnerLayer) assignLegacyWeights(layer.getLayer(innerName), innerWeights, fileName);
}

/** A tfjs model from a tfjs model.json and its weights. */
export async function importTfjsModel(files: TfjsModelFiles): Promise<LayersModel> {
  const json =
    typeof files.modelJson === 'string' || files.modelJson instanceof Uint8Array
      ? parseJson(typeof files.modelJson === 'string' ? files.modelJson : new TextDecoder().decode(files.modelJson), 'model.json')
      : files.modelJson;
  const modelJson = objectAt(json, 'model.json');
  const topology = objectAt(modelJson.modelTopology, 'model.json modelTopology');
  const modelConfig = objectAt(topology.model_config ?? topology, 'model.json model_config');
  const unsupported = unsupportedClasses(modelConfig);
  if (unsupported.length > 0) throw unsupportedLayers(unsupported);

  const weightSpecs: WeightsManifestEntry[] = [];
  const shards: Uint8Array[] = [];
  for (const entry of arrayAt(modelJson.weightsManifest, 'model.json weightsManifest')) {
    const group = objectAt(entry, 'weightsManifest entry');
    weightSpecs.push(...(arrayAt(group.weights, 'weightsManifest weights') as unknown as WeightsManifestEntry[]));
    for (const shardPath of arrayAt(group.paths, 'weightsManifest paths')) {
      if (!(files.weights instanceof Uint8Array)) shards.push(weightShard(files.weights, stringAt(shardPath, 'weight path')));
    }
  }
  const weightData = files.weights instanceof Uint8Array ? files.weights : concatenate(shards);
  const { tf } = await initTensorflow();
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: topology as unknown as ModelTopology,
      weightSpecs,
      weightData: weightData.slice().buffer,
    }),
  );
}

function weightShard(shards: Record<string, Uint8Array>, shardPath: string): Uint8Array {
  const shard = shards[shardPath] ?? shards[path.posix.basename(shardPath)];
  if (!shard) {
    throw new CatdogError('missing_weights', `model.json needs the weight file ${shardPath}, which was not given`, 400, {
      missing: shardPath,
    });
  }
  return shard;
}

function concatenate(parts: Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/** Builds the tfjs model of a Keras 3 or Keras 2 model config (weights still initial). */
async function tfjsModelFromKeras(kerasModel: JsonObject): Promise<LayersModel> {
  const unsupported = unsupportedClasses(kerasModel);
  if (unsupported.length > 0) throw unsupportedLayers(unsupported);
  const modelTopology = tfjsEntry(kerasModel);
  const { tf } = await initTensorflow();
  try {
    return await tf.models.modelFromJSON({ modelTopology } as unknown as Parameters<typeof tf.models.modelFromJSON>[0]);
  } catch (error) {
    if (error instanceof CatdogError) throw error;
    throw invalidModel(`TensorFlow.js cannot build this model: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Layer classes catdog cannot run, including custom layers registered under a built-in class name. */
function unsupportedClasses(model: JsonObject): string[] {
  const found = new Set<string>();
  const visit = (entry: JsonObject) => {
    const className = String(entry.class_name);
    const registered = entry.registered_name;
    if (typeof registered === 'string' && registered !== className) found.add(registered);
    else if (!SUPPORTED_LAYERS.includes(className) && !isContainerClass(className)) found.add(className);
    if (isContainerClass(className)) {
      for (const layer of arrayAt(objectAt(entry.config, 'model config').layers, 'model layers')) visit(objectAt(layer, 'layer'));
    }
  };
  visit(model);
  return [...found];
}

/** The tfjs (Keras 2 style) entry of one Keras layer or model entry. */
function tfjsEntry(entry: JsonObject): JsonObject {
  const className = stringAt(entry.class_name, 'layer class_name');
  const config = objectAt(entry.config, `config of ${className}`);
  if (className === 'Sequential') return tfjsSequential(config);
  if (isContainerClass(className)) return tfjsFunctional(config);
  if (className === 'InputLayer') {
    const name = stringAt(config.name, 'InputLayer name');
    return {
      class_name: 'InputLayer',
      config: {
        name,
        batch_input_shape: config.batch_shape ?? config.batch_input_shape ?? null,
        dtype: tfjsDtype(className, name, config.dtype),
        sparse: false,
      },
    };
  }
  const tfjsConfig = tfjsLayerConfig(className, config);
  // Keras 2 Sequential models put the input shape on their first layer.
  if (config.batch_input_shape !== undefined) tfjsConfig.batch_input_shape = config.batch_input_shape;
  return { class_name: className, config: tfjsConfig };
}

/** Keras 3 Sequential configs start with an InputLayer; tfjs wants its shape on the first real layer. */
function tfjsSequential(config: JsonObject): JsonObject {
  let inputShape: Json | undefined = config.build_input_shape;
  const layers: JsonObject[] = [];
  for (const entry of arrayAt(config.layers, 'Sequential layers')) {
    const layer = objectAt(entry, 'Sequential layer');
    const converted = tfjsEntry(layer);
    if (layer.class_name === 'InputLayer') {
      inputShape = objectAt(converted.config, 'InputLayer config').batch_input_shape;
      continue;
    }
    const convertedConfig = objectAt(converted.config, 'layer config');
    if (layers.length === 0 && inputShape != null && !isContainerClass(String(layer.class_name))) {
      convertedConfig.batch_input_shape ??= inputShape;
    }
    layers.push(converted);
  }
  return { class_name: 'Sequential', config: { name: config.name ?? 'sequential', layers } };
}

function tfjsFunctional(config: JsonObject): JsonObject {
  const entries = arrayAt(config.layers, 'model layers').flatMap((entry) => rewriteForTfjs(objectAt(entry, 'model layer')));
  const nameOf = (layer: JsonObject) => layer.name ?? objectAt(layer.config, 'layer config').name ?? null;
  const containers = new Set(entries.filter((layer) => isContainerClass(String(layer.class_name))).map(nameOf));
  // Keras 3 writes each node as an object of call arguments, Keras 2 as a list of inbound tensors.
  const keras3 = entries.some((layer) => Array.isArray(layer.inbound_nodes) && layer.inbound_nodes.some((node) => isJsonObject(node)));
  const layers = entries.map((layer) => {
    const name = nameOf(layer);
    const nodes = arrayAt(layer.inbound_nodes, `inbound nodes of ${String(name)}`).map((node) => tfjsNode(node, containers));
    return { ...tfjsEntry(layer), name, inbound_nodes: nodes };
  });
  return {
    class_name: 'Model',
    config: {
      name: config.name ?? 'model',
      layers,
      input_layers: tfjsEndpoints(config.input_layers, containers, keras3),
      output_layers: tfjsEndpoints(config.output_layers, containers, keras3),
    },
  };
}

/**
 * Keras 2 nodes are already tfjs's `[[layer, node, tensor, kwargs], …]`. Keras 3 nodes are call arguments whose
 * tensors name their source node counting calls only, while a tfjs (and Keras 2) model used as a layer has an
 * extra node 0 of its own: its calls start at node 1.
 */
function tfjsNode(node: Json, containers: Set<Json>): Json {
  if (Array.isArray(node)) return node;
  const tensors: Json[] = [];
  const collect = (value: Json | undefined) => {
    if (Array.isArray(value)) value.forEach(collect);
    else if (isJsonObject(value) && value.class_name === '__keras_tensor__') {
      const [layerName = null, nodeIndex = 0, tensorIndex = 0] = arrayAt(objectAt(value.config, 'keras tensor').keras_history, 'keras_history');
      tensors.push([layerName, Number(nodeIndex) + (containers.has(layerName) ? 1 : 0), tensorIndex, {}]);
    }
  };
  collect(objectAt(node, 'inbound node').args);
  return tensors;
}

/**
 * Keras 3 writes a single endpoint as `[name, 0, 0]`; tfjs always wants a list of them. A Keras 3 endpoint on a
 * nested model counts calls only, as in `tfjsNode`; Keras 2 endpoints are already tfjs's.
 */
function tfjsEndpoints(endpoints: Json | undefined, containers: Set<Json>, keras3: boolean): Json {
  const list = arrayAt(endpoints, 'model endpoints');
  const endpointList = typeof list[0] === 'string' ? [list] : list;
  if (!keras3) return endpointList;
  return endpointList.map((endpoint) => {
    const [name = null, nodeIndex = 0, tensorIndex = 0] = arrayAt(endpoint, 'endpoint');
    return [name, Number(nodeIndex) + (containers.has(name) ? 1 : 0), tensorIndex];
  });
}

function isContainer(layer: Layer): layer is LayersModel {
  return layer instanceof tensorflow().LayersModel;
}

function layerAt(model: LayersModel, names: string[]): Layer {
  let layer: Layer = model;
  for (const name of names) {
    if (!isContainer(layer)) throw invalidModel(`layer ${layer.name} has no inner layer ${name}`);
    layer = layer.getLayer(name);
  }
  return layer;
}

/** `vars/0`, `vars/1`, … in numeric order (HDF5 lists names alphabetically: 0, 1, 10, 11, 2…). */
function datasetsByIndex(vars: Group): WeightArray[] {
  return vars
    .keys()
    .filter((key) => /^\d+$/.test(key))
    .sort((a, b) => Number(a) - Number(b))
    .map((key) => datasetArray(vars.get(key), `${vars.path}/${key}`));
}

function datasetArray(entity: unknown, where: string): WeightArray {
  if (!isDataset(entity)) throw invalidModel(`${where} is not an HDF5 dataset`);
  const value = entity.value;
  if (!ArrayBuffer.isView(value) || value instanceof DataView || typeof (value as Float32Array)[0] === 'bigint') {
    throw invalidModel(`${where} does not hold floating-point weights`);
  }
  return { data: Float32Array.from(value as Float32Array), shape: entity.shape ?? [] };
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** Keras's variable order equals tfjs's `layer.weights` order for every supported layer. */
function assignWeights(layer: Layer, arrays: WeightArray[], where: string): void {
  const expected = layer.weights.map((weight) => weight.shape);
  const actual = arrays.map((array) => array.shape);
  if (JSON.stringify(expected) !== JSON.stringify(actual)) {
    throw invalidModel(
      `${where}: layer ${layer.name} needs weights of shapes ${JSON.stringify(expected)}, the file holds ${JSON.stringify(actual)}`,
    );
  }
  if (arrays.length === 0) return;
  const tf = tensorflow();
  const tensors = arrays.map((array) => tf.tensor(array.data, array.shape));
  layer.setWeights(tensors);
  tf.dispose(tensors);
}
