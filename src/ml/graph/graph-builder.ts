import { type AttrValue, DataType, type GraphNode } from './saved-model.js';

export const FLOAT: AttrValue = { type: DataType.float32 };
export const INT: AttrValue = { type: DataType.int32 };

/** tfjs's Adam: the same hyper-parameters give the same updates. */
export interface AdamSettings {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** A resource variable: the handle assignments write through, and its one read, which a step computes from. */
export interface GraphVariable {
  handle: string;
  read: string;
}

/** The nodes of a graph being written, and helpers that append the float32 ops the training graphs use. */
export function graphBuilder() {
  const nodes: GraphNode[] = [];
  const add = (name: string, op: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string => {
    nodes.push({ name, op, inputs, attrs });
    return name;
  };
  const scalar = (name: string, value: number) =>
    add(name, 'Const', [], { dtype: FLOAT, value: { tensor: { dtype: DataType.float32, shape: [], values: Float32Array.of(value) } } });
  const ints = (name: string, values: number[], shape = [values.length]) =>
    add(name, 'Const', [], { dtype: INT, value: { tensor: { dtype: DataType.int32, shape, values: Int32Array.from(values) } } });
  const binary = (op: string) => (name: string, a: string, b: string) => add(name, op, [a, b], { T: FLOAT });
  const unary = (name: string, op: string, input: string) => add(name, op, [input], { T: FLOAT });
  const sum = (name: string, input: string, axes: number[]) =>
    add(name, 'Sum', [input, ints(`${name}/axes`, axes)], { T: FLOAT, Tidx: INT, keep_dims: { bool: false } });
  const variable = (name: string, shape: readonly number[]): GraphVariable => {
    const handle = add(name, 'VarHandleOp', [], { dtype: FLOAT, shape: { shape }, shared_name: { string: name }, container: { string: '' } });
    return { handle, read: add(`${name}/read`, 'ReadVariableOp', [handle], { dtype: FLOAT }) };
  };
  const assign = (name: string, handle: string, value: string) => add(name, 'AssignVariableOp', [handle, value], { dtype: FLOAT });
  const placeholder = (name: string, shape: readonly number[], dtype: AttrValue = FLOAT) => add(name, 'Placeholder', [], { dtype, shape: { shape } });
  /** `value` once every node of `after` has run. */
  const after = (name: string, value: string, afterNodes: readonly string[]) => add(name, 'Identity', [value, ...afterNodes.map((node) => `^${node}`)], { T: FLOAT });
  return {
    nodes,
    add,
    scalar,
    ints,
    mul: binary('Mul'),
    sub: binary('Sub'),
    addV2: binary('AddV2'),
    div: binary('RealDiv'),
    unary,
    sum,
    variable,
    assign,
    placeholder,
    after,
  };
}

export type GraphBuilder = ReturnType<typeof graphBuilder>;

export interface AdamWeight {
  /** Names its moments' nodes. */
  key: string;
  variable: GraphVariable;
  shape: readonly number[];
  /** The node holding d loss / d weight for the step's batch; undefined for a frozen weight, which Adam leaves alone. */
  gradient: string | undefined;
  /** A node of the weight's shape that `reset` runs beside (the weight's initial value): its moments are zeros like it. */
  initial: string;
}

/**
 * Adam's state and update as tfjs's AdamOptimizer applies it, for weights given as (variable, gradient) pairs: the
 * moments of each weight, the powers of β1 and β2, `reset` (moments to zero, powers to β) and `updates` (every
 * assignment of one step). Each update reads a variable through its one ReadVariableOp, which runs before the
 * variable's assignment, so a step computes from the weights and powers it started with, as tfjs's Adam does.
 */
export function adam(graph: GraphBuilder, settings: AdamSettings, weights: readonly AdamWeight[]) {
  const { add, scalar, mul, sub, addV2, div, unary, variable, assign } = graph;
  const beta1Power = variable('adam/beta1_power', []);
  const beta2Power = variable('adam/beta2_power', []);
  const one = scalar('adam/one', 1);
  const oneMinusBeta1Power = sub('adam/one_minus_beta1_power', one, beta1Power.read);
  const oneMinusBeta2Power = sub('adam/one_minus_beta2_power', one, beta2Power.read);
  const constants = {
    beta1: scalar('adam/beta1', settings.beta1),
    oneMinusBeta1: scalar('adam/one_minus_beta1', 1 - settings.beta1),
    beta2: scalar('adam/beta2', settings.beta2),
    oneMinusBeta2: scalar('adam/one_minus_beta2', 1 - settings.beta2),
    epsilon: scalar('adam/epsilon', settings.epsilon),
    negativeLearningRate: scalar('adam/negative_learning_rate', -settings.learningRate),
  };
  const reset: string[] = [
    assign('assign/adam/beta1_power', beta1Power.handle, constants.beta1),
    assign('assign/adam/beta2_power', beta2Power.handle, constants.beta2),
  ];
  const updates: string[] = [];
  for (const weight of weights) {
    if (!weight.gradient) continue;
    const at = (suffix: string) => `adam/${weight.key}/${suffix}`;
    const m = variable(`adam/m/${weight.key}`, weight.shape);
    const v = variable(`adam/v/${weight.key}`, weight.shape);
    const zeros = add(`assign/zeros/${weight.key}`, 'ZerosLike', [weight.initial], { T: FLOAT });
    reset.push(assign(`assign/adam/m/${weight.key}`, m.handle, zeros), assign(`assign/adam/v/${weight.key}`, v.handle, zeros));
    const mNext = addV2(at('m'), mul(at('m_decayed'), m.read, constants.beta1), mul(at('m_step'), weight.gradient, constants.oneMinusBeta1));
    const vNext = addV2(at('v'), mul(at('v_decayed'), v.read, constants.beta2), mul(at('v_step'), unary(at('squared'), 'Square', weight.gradient), constants.oneMinusBeta2));
    const mCorrected = div(at('m_corrected'), mNext, oneMinusBeta1Power);
    const vCorrected = div(at('v_corrected'), vNext, oneMinusBeta2Power);
    const change = mul(at('change'), div(at('ratio'), mCorrected, addV2(at('denominator'), unary(at('sqrt'), 'Sqrt', vCorrected), constants.epsilon)), constants.negativeLearningRate);
    updates.push(
      assign(at('assign_m'), m.handle, mNext),
      assign(at('assign_v'), v.handle, vNext),
      assign(at('assign_weight'), weight.variable.handle, addV2(at('weight'), change, weight.variable.read)),
    );
  }
  updates.push(
    assign('adam/assign_beta1_power', beta1Power.handle, mul('adam/next_beta1_power', beta1Power.read, constants.beta1)),
    assign('adam/assign_beta2_power', beta2Power.handle, mul('adam/next_beta2_power', beta2Power.read, constants.beta2)),
  );
  return { reset, updates };
}
