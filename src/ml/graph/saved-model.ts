import { ProtoWriter } from './protobuf.js';

/**
 * A TensorFlow graph as plain data and its encoding as a SavedModel (`saved_model.pb`) with no variables: every
 * weight is a `Const` node, so TensorFlow's loader restores nothing and the session holds the whole model. Field
 * numbers are those of tensorflow/core/framework/{graph,node_def,attr_value,tensor,tensor_shape}.proto and
 * tensorflow/core/protobuf/{saved_model,meta_graph}.proto.
 */

/** TensorFlow's DataType enum values (types.proto) for the types the graphs use. */
export const DataType = { float32: 1, int32: 3, bool: 10 } as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

/** A constant tensor: its values as little-endian bytes (TensorProto.tensor_content). */
export interface ConstTensor {
  dtype: DataType;
  shape: readonly number[];
  values: Float32Array | Int32Array;
}

export type AttrValue =
  | { type: DataType }
  /** Dimensions, -1 for an unknown one. */
  | { shape: readonly number[] }
  | { ints: readonly number[] }
  | { int: number }
  | { float: number }
  | { bool: boolean }
  | { string: string }
  | { tensor: ConstTensor }
  /** An AttrValue message encoded already (a TF.js graph model's attributes, copied as they are). */
  | { encoded: Uint8Array };

export interface GraphNode {
  name: string;
  op: string;
  /** `node` or `node:output index`. */
  inputs: readonly string[];
  attrs: Readonly<Record<string, AttrValue>>;
}

/** One input or output of a signature: a graph tensor (`node:index`). */
export interface SignatureTensor {
  tensor: string;
  dtype: DataType;
  shape: readonly number[];
}

export interface Signature {
  inputs: Readonly<Record<string, SignatureTensor>>;
  outputs: Readonly<Record<string, SignatureTensor>>;
}

export interface SavedModelGraph {
  nodes: readonly GraphNode[];
  signatures: Readonly<Record<string, Signature>>;
  /** The MetaGraph's tags, which a loader asks for (`serve`). */
  tags: readonly string[];
}

/**
 * The GraphDef version TensorFlow 2.21 writes (the ops are emitted as its op definitions have them). Older
 * TensorFlow builds load it too: a loader refuses only a graph whose min_consumer is above its own version, and
 * min_consumer stays 0.
 */
const GRAPH_PRODUCER_VERSION = 2474;
const SAVED_MODEL_SCHEMA_VERSION = 1;
const PREDICT_METHOD = 'tensorflow/serving/predict';

export function encodeSavedModel({ nodes, signatures, tags }: SavedModelGraph): Uint8Array {
  const graphDef = new ProtoWriter();
  for (const node of nodes) graphDef.message(1, nodeDef(node));
  graphDef.message(4, new ProtoWriter().varint(1, GRAPH_PRODUCER_VERSION));

  const metaInfo = new ProtoWriter();
  for (const tag of tags) metaInfo.string(4, tag);
  const metaGraph = new ProtoWriter().message(1, metaInfo).message(2, graphDef);
  for (const [name, signature] of Object.entries(signatures)) metaGraph.mapEntry(5, name, signatureDef(signature));

  return new ProtoWriter().varint(1, SAVED_MODEL_SCHEMA_VERSION).message(2, metaGraph).finish();
}

function nodeDef({ name, op, inputs, attrs }: GraphNode): ProtoWriter {
  const node = new ProtoWriter().string(1, name).string(2, op);
  for (const input of inputs) node.string(3, input);
  for (const [key, value] of Object.entries(attrs)) node.mapEntry(5, key, attrValue(value));
  return node;
}

function attrValue(value: AttrValue): ProtoWriter {
  const attr = new ProtoWriter();
  if ('encoded' in value) return attr.raw(value.encoded);
  if ('type' in value) return attr.varint(6, value.type);
  if ('shape' in value) return attr.message(7, tensorShape(value.shape));
  if ('ints' in value) return attr.message(1, new ProtoWriter().packedVarints(3, value.ints));
  if ('int' in value) return attr.varint(3, value.int);
  if ('float' in value) return attr.float(4, value.float);
  if ('bool' in value) return attr.varint(5, value.bool);
  if ('string' in value) return attr.string(2, value.string);
  return attr.message(8, tensorProto(value.tensor));
}

function tensorShape(dimensions: readonly number[]): ProtoWriter {
  const shape = new ProtoWriter();
  for (const size of dimensions) shape.message(2, new ProtoWriter().varint(1, size));
  return shape;
}

function tensorProto({ dtype, shape, values }: ConstTensor): ProtoWriter {
  // TensorFlow reads tensor_content as little-endian; typed arrays are in the platform's order, little-endian on
  // every platform tfjs-node ships a TensorFlow binary for.
  const content = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return new ProtoWriter().varint(1, dtype).message(2, tensorShape(shape)).bytes(4, content);
}

function signatureDef({ inputs, outputs }: Signature): ProtoWriter {
  const signature = new ProtoWriter();
  for (const [key, info] of Object.entries(inputs)) signature.mapEntry(1, key, tensorInfo(info));
  for (const [key, info] of Object.entries(outputs)) signature.mapEntry(2, key, tensorInfo(info));
  return signature.string(3, PREDICT_METHOD);
}

function tensorInfo({ tensor, dtype, shape }: SignatureTensor): ProtoWriter {
  return new ProtoWriter().string(1, tensor).varint(2, dtype).message(3, tensorShape(shape));
}
