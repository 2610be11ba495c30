import { FlatTable } from './flatbuffer.js';

/**
 * A TensorFlow Lite model file (tensorflow/lite/schema/schema.fbs): its first subgraph's tensors and operators,
 * with constant tensors' values dequantized to float32.
 */
export interface TfliteGraph {
  tensors: TfliteTensor[];
  operators: TfliteOperator[];
  inputs: number[];
  outputs: number[];
}

export interface TfliteQuantization {
  scale: number[];
  zeroPoint: number[];
  /** The axis `scale` and `zeroPoint` run along when they hold one value per channel. */
  axis: number;
}

export interface TfliteTensor {
  name: string;
  shape: number[];
  type: TensorTypeName;
  quantization?: TfliteQuantization;
  /** Float values of a constant tensor (weights, biases, axes), dequantized when stored as integers. */
  values?: Float32Array;
}

export interface TfliteOperator {
  op: string;
  inputs: number[];
  outputs: number[];
  options?: FlatTable;
}

// schema.fbs enum TensorType, in order.
const TENSOR_TYPES = ['float32', 'float16', 'int32', 'uint8', 'int64', 'string', 'bool', 'int16', 'complex64', 'int8'] as const;
type TensorTypeName = (typeof TENSOR_TYPES)[number] | 'other';

// schema.fbs enum BuiltinOperator: the codes of the ops that image classifiers and feature extractors use.
const BUILTIN_OPERATORS: Record<number, string> = {
  0: 'ADD',
  1: 'AVERAGE_POOL_2D',
  2: 'CONCATENATION',
  3: 'CONV_2D',
  4: 'DEPTHWISE_CONV_2D',
  6: 'DEQUANTIZE',
  9: 'FULLY_CONNECTED',
  14: 'LOGISTIC',
  17: 'MAX_POOL_2D',
  18: 'MUL',
  19: 'RELU',
  21: 'RELU6',
  22: 'RESHAPE',
  25: 'SOFTMAX',
  34: 'PAD',
  40: 'MEAN',
  43: 'SQUEEZE',
  114: 'QUANTIZE',
  117: 'HARD_SWISH',
};

/** Codes above 126 live in a newer 32-bit field; the old byte then holds this placeholder. */
const PLACEHOLDER_FOR_GREATER_OP_CODES = 127;

const TFLITE_IDENTIFIER = 'TFL3';

export function readTflite(bytes: Uint8Array): TfliteGraph {
  if (new TextDecoder().decode(bytes.subarray(4, 8)) !== TFLITE_IDENTIFIER) {
    throw new Error(`not a TensorFlow Lite model: bytes 4..8 are not "${TFLITE_IDENTIFIER}"`);
  }
  const model = FlatTable.root(bytes);
  // Model: 1 operator_codes, 2 subgraphs, 4 buffers.
  const opNames = model.tables(1).map((code) => {
    const legacy = code.int8(0);
    const builtin = legacy === PLACEHOLDER_FOR_GREATER_OP_CODES ? code.int32(3) : Math.max(legacy, code.int32(3));
    const custom = code.string(1);
    return custom ? `CUSTOM:${custom}` : (BUILTIN_OPERATORS[builtin] ?? `BUILTIN_${builtin}`);
  });
  const buffers = model.tables(4).map((buffer) => buffer.byteVector(0));
  const [graph] = model.tables(2);
  if (!graph) throw new Error('the TensorFlow Lite model has no subgraph');
  // SubGraph: 0 tensors, 1 inputs, 2 outputs, 3 operators.
  const tensors = graph.tables(0).map((tensor) => readTensor(tensor, buffers));
  const operators = graph.tables(3).map((operator) => {
    // Operator: 0 opcode_index, 1 inputs, 2 outputs, 4 builtin_options.
    const op = opNames[operator.uint32(0)];
    if (op === undefined) throw new Error(`an operator names opcode ${operator.uint32(0)}, which the model does not list`);
    const options = operator.table(4);
    return { op, inputs: operator.int32s(1), outputs: operator.int32s(2), ...(options ? { options } : {}) };
  });
  return { tensors, operators, inputs: graph.int32s(1), outputs: graph.int32s(2) };
}

function readTensor(tensor: FlatTable, buffers: Uint8Array[]): TfliteTensor {
  // Tensor: 0 shape, 1 type, 2 buffer, 3 name, 4 quantization.
  const type: TensorTypeName = TENSOR_TYPES[tensor.int8(1)] ?? 'other';
  const name = tensor.string(3) ?? '';
  const shape = tensor.int32s(0);
  const parameters = tensor.table(4);
  // QuantizationParameters: 2 scale, 3 zero_point, 6 quantized_dimension.
  const scale = parameters?.float32s(2) ?? [];
  const quantization = parameters && scale.length > 0 ? { scale, zeroPoint: parameters.int64s(3), axis: parameters.int32(6) } : undefined;
  const data = buffers[tensor.uint32(2)];
  const values = data && data.byteLength > 0 ? dequantize(data, type, shape, quantization, name) : undefined;
  return { name, shape, type, ...(quantization ? { quantization } : {}), ...(values ? { values } : {}) };
}

/** `scale · (q − zeroPoint)` per element, the scale and zero point of its channel along the quantized axis. */
function dequantize(data: Uint8Array, type: TensorTypeName, shape: number[], quantization: TfliteQuantization | undefined, name: string): Float32Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = shape.reduce((product, side) => product * side, 1);
  const raw: (i: number) => number = {
    float32: (i: number) => view.getFloat32(i * 4, true),
    int32: (i: number) => view.getInt32(i * 4, true),
    int64: (i: number) => Number(view.getBigInt64(i * 8, true)),
    uint8: (i: number) => view.getUint8(i),
    int8: (i: number) => view.getInt8(i),
    int16: (i: number) => view.getInt16(i * 2, true),
  }[type as 'float32'];
  if (!raw) throw new Error(`tensor ${name} holds ${type} values, which catdog does not read`);
  const values = new Float32Array(count);
  if (type === 'float32' || !quantization) {
    for (let i = 0; i < count; i++) values[i] = raw(i);
    return values;
  }
  const { scale, zeroPoint, axis } = quantization;
  // Elements of one channel along `axis` repeat every `inner` positions, channels every `inner · channels`.
  const inner = shape.slice(axis + 1).reduce((product, side) => product * side, 1);
  const channels = scale.length;
  for (let i = 0; i < count; i++) {
    const channel = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    values[i] = scale[channel]! * (raw(i) - (zeroPoint[channel] ?? 0));
  }
  return values;
}
