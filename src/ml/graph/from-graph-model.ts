import { z } from 'zod';
import { CatdogError } from '../../errors.js';
import type { PixelMap } from '../pixel-scaling.js';
import type { LayersGraph } from './from-layers.js';
import { ProtoWriter } from './protobuf.js';
import { type AttrValue, type ConstTensor, DataType, type GraphNode } from './saved-model.js';

/**
 * A TF.js graph model's model.json (tensorflowjs_converter's `format: "graph-model"`): `modelTopology` is a
 * TensorFlow GraphDef as protobuf JSON (`json_format.MessageToDict`), each Const node's values moved into the
 * weight shards under the node's name; `signature`, written by newer converters, names the inputs and outputs.
 */
const jsonNode = z.object({
  name: z.string().min(1),
  op: z.string().min(1),
  input: z.array(z.string()).optional(),
  attr: z.record(z.string(), z.unknown()).optional(),
});
type JsonNode = z.infer<typeof jsonNode>;

const signatureTensors = z.record(z.string(), z.object({ name: z.string().min(1) }).loose()).optional();

export const graphModelJsonSchema = z
  .object({
    format: z.literal('graph-model'),
    modelTopology: z.object({ node: z.array(jsonNode).min(1) }).loose(),
    weightsManifest: z.array(z.object({ paths: z.array(z.string()), weights: z.array(z.object({ name: z.string(), shape: z.array(z.int()), dtype: z.string() }).loose()) })),
    signature: z.object({ inputs: signatureTensors, outputs: signatureTensors }).loose().optional(),
  })
  .loose();
export type GraphModelJson = z.infer<typeof graphModelJsonSchema>;

/** The graph's one image input, as its Placeholder declares it (-1 for an unknown size). */
export interface GraphModelInput {
  name: string;
  shape: number[];
}

/** The node of a tensor name (`node`, `node:1`). */
const nodeOf = (tensor: string): string => tensor.replace(/^\^/, '').split(':')[0]!;
const tensorOf = (name: string): string => (name.includes(':') ? name : `${name}:0`);

export function graphModelInput(model: GraphModelJson, source: string): GraphModelInput {
  const placeholders = model.modelTopology.node.filter((node) => node.op === 'Placeholder');
  const [placeholder] = placeholders;
  if (placeholders.length !== 1 || !placeholder) {
    throw new CatdogError(
      'backbone_unavailable',
      `backbone ${source} is a TF.js graph model with ${placeholders.length} inputs (${placeholders.map((node) => node.name).join(', ') || 'none'}); catdog feeds a backbone one image batch`,
      400,
      { source },
    );
  }
  const shape = shapeOf(placeholder.attr?.shape);
  return { name: placeholder.name, shape };
}

/**
 * The graph's outputs: its signature's, else the nodes whose output nothing reads (Const nodes aside), as names
 * a user may declare in `training.backboneOutputs`.
 */
export function graphModelOutputs(model: GraphModelJson): string[] {
  const declared = Object.values(model.signature?.outputs ?? {}).map((output) => output.name.replace(/:0$/, ''));
  if (declared.length > 0) return declared;
  const read = new Set(model.modelTopology.node.flatMap((node) => (node.input ?? []).map(nodeOf)));
  return model.modelTopology.node.filter((node) => node.op !== 'Const' && node.op !== 'Placeholder' && !read.has(node.name)).map((node) => node.name);
}

/** Nodes that look like pooled features (a Mean over the image's height and width), to name in an error. */
export function poolingCandidates(model: GraphModelJson): string[] {
  return model.modelTopology.node.filter((node) => node.op === 'Mean').map((node) => node.name);
}

export function hasNode(model: GraphModelJson, tensor: string): boolean {
  const name = nodeOf(tensor);
  return model.modelTopology.node.some((node) => node.name === name);
}

/** Raised for what a graph model holds that the GraphDef cannot be rebuilt from: the graph then runs through tfjs. */
class UntranslatableGraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UntranslatableGraphError';
  }
}

export interface GraphModelGraphOptions {
  /** Every Const node's values, by node name (the weight shards decoded, quantized weights dequantized). */
  weights: ReadonlyMap<string, ConstTensor>;
  input: GraphModelInput;
  /** The image side fed. */
  inputSize: number;
  /** What the model wants of the RGB 0..255 pixels, computed in the graph before its input. */
  pixelMap: PixelMap;
  /** Signature output key → tensor name in the model (`node` or `node:index`). */
  outputs: Record<string, string>;
}

const PIXELS_NODE = 'catdog/pixels';

/**
 * The frozen GraphDef of a TF.js graph model for a TensorFlow session: its nodes as they are (Const nodes given
 * their values back), fed by a new pixels input whose declared scaling is computed in the graph (a graph has no
 * first convolution to fold it into), and tfjs's own fused depthwise op rewritten as the TensorFlow ops it fuses.
 */
export function graphModelGraph(model: GraphModelJson, { weights, input, inputSize, pixelMap, outputs }: GraphModelGraphOptions): LayersGraph {
  const float: AttrValue = { type: DataType.float32 };
  const imageShape = [-1, inputSize, inputSize, 3];
  const nodes: GraphNode[] = [{ name: PIXELS_NODE, op: 'Placeholder', inputs: [], attrs: { dtype: float, shape: { shape: imageShape } } }];
  const constant = (name: string, tensor: ConstTensor): GraphNode => ({ name, op: 'Const', inputs: [], attrs: { dtype: { type: tensor.dtype }, value: { tensor } } });
  const floats = (name: string, values: readonly number[]) => constant(name, { dtype: DataType.float32, shape: [values.length], values: Float32Array.from(values) });
  let scaled = PIXELS_NODE;
  if (pixelMap.from.some((from, channel) => from !== channel)) {
    nodes.push(
      constant('catdog/scaling/channels', { dtype: DataType.int32, shape: [3], values: Int32Array.from(pixelMap.from) }),
      constant('catdog/scaling/channel_axis', { dtype: DataType.int32, shape: [], values: Int32Array.of(3) }),
      {
        name: 'catdog/scaling/reordered',
        op: 'GatherV2',
        inputs: [PIXELS_NODE, 'catdog/scaling/channels', 'catdog/scaling/channel_axis'],
        attrs: { Tparams: float, Tindices: { type: DataType.int32 }, Taxis: { type: DataType.int32 }, batch_dims: { int: 0 } },
      },
    );
    scaled = 'catdog/scaling/reordered';
  }
  nodes.push(
    floats('catdog/scaling/scale', pixelMap.scale),
    floats('catdog/scaling/offset', pixelMap.offset),
    { name: 'catdog/scaling/multiply', op: 'Mul', inputs: [scaled, 'catdog/scaling/scale'], attrs: { T: float } },
    // The model's own input node becomes the scaled pixels, so every node reading it is left as it is.
    { name: input.name, op: 'AddV2', inputs: ['catdog/scaling/multiply', 'catdog/scaling/offset'], attrs: { T: float } },
  );
  for (const node of model.modelTopology.node) {
    if (node.name === input.name) continue;
    if (node.op === 'Const') {
      const tensor = weights.get(node.name);
      if (!tensor) throw new UntranslatableGraphError(`its Const node ${node.name} has no weights in the manifest`);
      nodes.push(constant(node.name, tensor));
    } else if (node.op === 'FusedDepthwiseConv2dNative') {
      nodes.push(...unfusedDepthwise(node));
    } else {
      nodes.push({ name: node.name, op: node.op, inputs: node.input ?? [], attrs: encodedAttrs(node) });
    }
  }
  return {
    nodes,
    input: { tensor: `${PIXELS_NODE}:0`, dtype: DataType.float32, shape: imageShape },
    outputs: Object.fromEntries(Object.entries(outputs).map(([key, tensor]) => [key, { tensor: tensorOf(tensor), dtype: DataType.float32, shape: [-1, -1] }])),
  };
}

const FUSED_ACTIVATIONS: Record<string, string> = { Relu: 'Relu', Relu6: 'Relu6', Elu: 'Elu', Sigmoid: 'Sigmoid', LeakyRelu: 'LeakyRelu' };
const DEPTHWISE_ATTRS = ['T', 'strides', 'padding', 'explicit_paddings', 'data_format', 'dilations'];

/**
 * tfjs-converter's FusedDepthwiseConv2dNative (a depthwise convolution, its BiasAdd and activation as one node,
 * which only tfjs runs) as those TensorFlow ops; the last keeps the node's name, so its readers are unchanged.
 */
function unfusedDepthwise(node: JsonNode): GraphNode[] {
  const attrs = encodedAttrs(node);
  const fusedOps = stringList(node.attr?.fused_ops);
  const [x, filter, bias, ...extra] = node.input ?? [];
  if (!x || !filter) throw new UntranslatableGraphError(`its node ${node.name} (FusedDepthwiseConv2dNative) has no input or filter`);
  const [first, activation, ...more] = fusedOps;
  if (first !== 'BiasAdd' || !bias || more.length > 0 || extra.length > 0 || (activation !== undefined && !FUSED_ACTIVATIONS[activation])) {
    throw new UntranslatableGraphError(`its node ${node.name} fuses ${fusedOps.join(' + ')} into a depthwise convolution, which catdog does not rewrite as TensorFlow ops`);
  }
  const depthwise: GraphNode = {
    name: `${node.name}/catdog_depthwise`,
    op: 'DepthwiseConv2dNative',
    inputs: [x, filter],
    attrs: Object.fromEntries(Object.entries(attrs).filter(([key]) => DEPTHWISE_ATTRS.includes(key))),
  };
  const biasAttrs = { T: attrs.T ?? { type: DataType.float32 }, ...(attrs.data_format ? { data_format: attrs.data_format } : {}) };
  if (!activation) return [depthwise, { name: node.name, op: 'BiasAdd', inputs: [depthwise.name, bias], attrs: biasAttrs }];
  const biased: GraphNode = { name: `${node.name}/catdog_bias_add`, op: 'BiasAdd', inputs: [depthwise.name, bias], attrs: biasAttrs };
  const activationAttrs: Record<string, AttrValue> = { T: biasAttrs.T };
  if (activation === 'LeakyRelu' && attrs.leakyrelu_alpha) activationAttrs.alpha = attrs.leakyrelu_alpha;
  return [depthwise, biased, { name: node.name, op: FUSED_ACTIVATIONS[activation]!, inputs: [biased.name], attrs: activationAttrs }];
}

/** A node's attributes encoded as AttrValue messages; `_`-prefixed ones are hints (shapes) a session needs not. */
function encodedAttrs(node: JsonNode): Record<string, AttrValue> {
  return Object.fromEntries(
    Object.entries(node.attr ?? {})
      .filter(([key]) => !key.startsWith('_'))
      .map(([key, value]) => {
        try {
          return [key, { encoded: attrValue(value) }];
        } catch (error) {
          throw new UntranslatableGraphError(`attribute ${key} of its node ${node.name} (${node.op}): ${error instanceof Error ? error.message : String(error)}`);
        }
      }),
  );
}

/** TensorFlow's DataType enum (types.proto) by its JSON name. */
const DATA_TYPES: Record<string, number> = {
  DT_FLOAT: 1, DT_DOUBLE: 2, DT_INT32: 3, DT_UINT8: 4, DT_INT16: 5, DT_INT8: 6, DT_STRING: 7, DT_COMPLEX64: 8, DT_INT64: 9, DT_BOOL: 10,
  DT_BFLOAT16: 14, DT_UINT16: 17, DT_COMPLEX128: 18, DT_HALF: 19, DT_RESOURCE: 20, DT_VARIANT: 21, DT_UINT32: 22, DT_UINT64: 23,
};

function dataType(value: unknown): number {
  if (typeof value === 'number') return value;
  const known = typeof value === 'string' ? DATA_TYPES[value] : undefined;
  if (known === undefined) throw new Error(`unknown data type ${JSON.stringify(value)}`);
  return known;
}

const int = (value: unknown): number => {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw new Error(`${JSON.stringify(value)} is not an integer`);
  return number;
};
const bytes = (value: unknown): Uint8Array => Buffer.from(String(value), 'base64');
const array = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** An AttrValue (attr_value.proto) from its protobuf JSON form, as the fields of the message. */
function attrValue(json: unknown): Uint8Array {
  if (typeof json !== 'object' || json === null) throw new Error(`${JSON.stringify(json)} is not an attribute value`);
  const attr = new ProtoWriter();
  const entries = Object.entries(json);
  if (entries.length === 0) return attr.finish();
  const [[kind, value]] = entries as [[string, unknown]];
  switch (kind) {
    case 's':
      return attr.bytes(2, bytes(value)).finish();
    case 'i':
      return attr.varint(3, int(value)).finish();
    case 'f':
      return attr.float(4, Number(value)).finish();
    case 'b':
      return attr.varint(5, value === true).finish();
    case 'type':
      return attr.varint(6, dataType(value)).finish();
    case 'shape':
      return attr.message(7, shapeMessage(value)).finish();
    case 'list': {
      const list = new ProtoWriter();
      const fields = (value ?? {}) as Record<string, unknown>;
      for (const item of array(fields.s)) list.bytes(2, bytes(item));
      if (fields.i) list.packedVarints(3, array(fields.i).map(int));
      if (fields.f) list.packedFloats(4, array(fields.f).map(Number));
      if (fields.b) list.packedVarints(5, array(fields.b).map((item) => (item === true ? 1 : 0)));
      if (fields.type) list.packedVarints(6, array(fields.type).map(dataType));
      for (const shape of array(fields.shape)) list.message(7, shapeMessage(shape));
      const other = Object.keys(fields).filter((key) => !['s', 'i', 'f', 'b', 'type', 'shape'].includes(key));
      if (other.length > 0) throw new Error(`lists of ${other.join(', ')} are not translated`);
      return attr.message(1, list).finish();
    }
    default:
      throw new Error(`values of kind ${kind} are not translated`);
  }
}

function shapeMessage(json: unknown): ProtoWriter {
  const shape = new ProtoWriter();
  const fields = (json ?? {}) as { dim?: unknown; unknownRank?: unknown };
  for (const dim of array(fields.dim)) shape.message(2, new ProtoWriter().varint(1, int((dim as { size?: unknown }).size ?? 0)));
  if (fields.unknownRank === true) shape.varint(3, true);
  return shape;
}

function shapeOf(json: unknown): number[] {
  const shape = (json as { shape?: { dim?: unknown } } | undefined)?.shape;
  return array(shape?.dim).map((dim) => int((dim as { size?: unknown }).size ?? 0));
}

function stringList(json: unknown): string[] {
  const list = (json as { list?: { s?: unknown } } | undefined)?.list;
  return array(list?.s).map((item) => Buffer.from(String(item), 'base64').toString('utf8'));
}
