import { CatdogError } from '../../errors.js';
import { type Json, type JsonObject, isJsonObject } from './json.js';

/**
 * One layer class both sides understand. Keras 3 and TensorFlow.js's Python-style ("pythonic") configs share
 * most option names, so a spec lists the shared options (with the value to assume when tfjs leaves one out)
 * and the Keras-only options that catdog can only honour at one value.
 */
interface LayerSpec {
  /** Options both configs carry, in Keras's order; the value is used when the tfjs config omits the option. */
  shared: Record<string, Json | undefined>;
  /** Keras-only options: exported with this value; an imported layer with another value cannot run in tfjs. */
  fixed?: Record<string, Json>;
  /** Keras-only options with no effect on inference: exported with this value, ignored on import. */
  inert?: Record<string, Json>;
  /** Keras 3 writes `build_config` for layers whose `build` creates state or checks shapes. */
  buildConfig: boolean;
  /** The Keras layer's `call` takes `mask`, so Keras records `mask: null` in each inbound node's kwargs. */
  callTakesMask?: true;
}

const convolution = (kernel: 'kernel' | 'depthwise'): Record<string, Json | undefined> => ({
  [`${kernel}_initializer`]: undefined,
  bias_initializer: undefined,
  [`${kernel}_regularizer`]: null,
  bias_regularizer: null,
  activity_regularizer: null,
  [`${kernel}_constraint`]: null,
  bias_constraint: null,
});

const LAYER_SPECS: Record<string, LayerSpec> = {
  Conv2D: {
    shared: {
      filters: undefined,
      kernel_size: undefined,
      strides: [1, 1],
      padding: 'valid',
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      activation: 'linear',
      use_bias: true,
      ...convolution('kernel'),
    },
    fixed: { groups: 1 },
    buildConfig: true,
  },
  DepthwiseConv2D: {
    shared: {
      depth_multiplier: 1,
      kernel_size: undefined,
      strides: [1, 1],
      padding: 'valid',
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      activation: 'linear',
      use_bias: true,
      ...convolution('depthwise'),
    },
    buildConfig: true,
  },
  BatchNormalization: {
    shared: {
      axis: -1,
      momentum: 0.99,
      epsilon: 0.001,
      center: true,
      scale: true,
      beta_initializer: undefined,
      gamma_initializer: undefined,
      moving_mean_initializer: undefined,
      moving_variance_initializer: undefined,
      beta_regularizer: null,
      gamma_regularizer: null,
      beta_constraint: null,
      gamma_constraint: null,
    },
    fixed: { renorm: false },
    inert: { synchronized: false, renorm_clipping: null, renorm_momentum: 0.99 },
    buildConfig: true,
    callTakesMask: true,
  },
  ReLU: { shared: { max_value: null }, fixed: { negative_slope: 0, threshold: 0 }, buildConfig: false },
  ZeroPadding2D: { shared: { padding: undefined, data_format: 'channels_last' }, buildConfig: true },
  MaxPooling2D: {
    shared: { pool_size: [2, 2], padding: 'valid', strides: null, data_format: 'channels_last' },
    buildConfig: false,
  },
  Flatten: { shared: { data_format: 'channels_last' }, buildConfig: true },
  GlobalAveragePooling2D: { shared: { data_format: 'channels_last' }, fixed: { keepdims: false }, buildConfig: false },
  Dense: {
    shared: {
      units: undefined,
      activation: 'linear',
      use_bias: true,
      kernel_initializer: undefined,
      bias_initializer: undefined,
      kernel_regularizer: null,
      bias_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    },
    fixed: { quantization_config: null },
    buildConfig: true,
  },
  Dropout: { shared: { rate: undefined, seed: null, noise_shape: null }, buildConfig: false },
  Activation: { shared: { activation: undefined }, buildConfig: false },
  Reshape: { shared: { target_shape: undefined }, buildConfig: false },
  Rescaling: { shared: { scale: undefined, offset: 0 }, buildConfig: true },
  // Merge layers (MobileNetV2's residual connections, a backbone ensemble's features side by side).
  Add: { shared: {}, buildConfig: true },
  // Squeeze-excite gates (MobileNetV3, EfficientNet): activations times per-channel weights, broadcast.
  Multiply: { shared: {}, buildConfig: true },
  Concatenate: { shared: { axis: -1 }, buildConfig: true },
};

/** Model classes whose config nests layers: Keras 3 writes Functional, Keras 2 and tfjs write Model. */
const CONTAINER_CLASSES = new Set(['Functional', 'Model', 'Sequential']);

export const SUPPORTED_LAYERS: readonly string[] = ['InputLayer', ...Object.keys(LAYER_SPECS), 'Functional', 'Sequential'];

/**
 * Activations computed identically by Keras 3 and tfjs. Left out on purpose: hard_sigmoid (Keras 3 uses
 * relu6(x + 3) / 6, tfjs 0.2x + 0.5) and gelu (exact in Keras, approximate in tfjs).
 */
const ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'sigmoid', 'softmax', 'tanh', 'elu', 'selu', 'softplus', 'softsign', 'swish']);

export function isContainerClass(className: string): boolean {
  return CONTAINER_CLASSES.has(className);
}

/** Keras's `naming.to_snake_case`, which names a layer's group in `model.weights.h5`. */
export function kerasSnakeCase(className: string): string {
  return className
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

export function unsupportedLayers(classNames: Iterable<string>): CatdogError {
  const unsupported = [...new Set(classNames)].sort();
  return new CatdogError(
    'unsupported_layer',
    `catdog cannot run layer class${unsupported.length > 1 ? 'es' : ''} ${unsupported.join(', ')}; ` +
      `supported layers: ${SUPPORTED_LAYERS.join(', ')}`,
    422,
    { unsupported, supported: SUPPORTED_LAYERS },
  );
}

function unsupportedOption(className: string, layerName: string, detail: string): CatdogError {
  return new CatdogError(
    'unsupported_layer',
    `layer ${layerName} (${className}) uses ${detail}, which catdog cannot run`,
    422,
    { layer: layerName, className, detail },
  );
}

export function hasBuildConfig(className: string): boolean {
  return LAYER_SPECS[className]?.buildConfig ?? false;
}

export function callTakesMask(className: string): boolean {
  return isContainerClass(className) || (LAYER_SPECS[className]?.callTakesMask ?? false);
}

function specOf(className: string): LayerSpec {
  const spec = LAYER_SPECS[className];
  if (!spec) throw unsupportedLayers([className]);
  return spec;
}

const KERAS_FLOAT32_POLICY: JsonObject = {
  module: 'keras',
  class_name: 'DTypePolicy',
  config: { name: 'float32' },
  registered_name: null,
};

export function kerasDtypePolicy(): JsonObject {
  return structuredClone(KERAS_FLOAT32_POLICY);
}

const KERAS_OBJECT_MODULES: Record<string, string> = {
  _initializer: 'keras.initializers',
  _regularizer: 'keras.regularizers',
  _constraint: 'keras.constraints',
};

function kerasObjectModule(option: string): string | undefined {
  return Object.entries(KERAS_OBJECT_MODULES).find(([suffix]) => option.endsWith(suffix))?.[1];
}

/** tfjs serializes every Glorot/He/LeCun initializer as VarianceScaling. */
const VARIANCE_SCALING = new Set(['VarianceScaling', 'GlorotUniform', 'GlorotNormal', 'HeUniform', 'HeNormal', 'LecunUniform', 'LecunNormal']);

/**
 * A tfjs initializer, regularizer or constraint (`{class_name, config}`, already with Keras's class and option
 * names) as Keras 3.15 writes it. Keras 3 calls tfjs's "normal" distribution "truncated_normal" (the same
 * samples) and adds the axes options of 3.15's VarianceScaling.
 */
function kerasObject(module: string, tfjsObject: JsonObject): JsonObject {
  const className = tfjsObject.class_name ?? null;
  const config: JsonObject = { ...(isJsonObject(tfjsObject.config) ? tfjsObject.config : {}) };
  if (typeof className === 'string' && VARIANCE_SCALING.has(className)) {
    if (config.distribution === 'normal') config.distribution = 'truncated_normal';
    Object.assign(config, { input_axes: null, output_axes: null });
  }
  return { module, class_name: className, config, registered_name: null };
}

function checkActivation(className: string, layerName: string, option: string, value: Json): void {
  if (option === 'activation' && !(typeof value === 'string' && ACTIVATIONS.has(value))) {
    throw unsupportedOption(className, layerName, `activation ${JSON.stringify(value)}`);
  }
}

/**
 * A Keras 3 layer entry (`module`, `class_name`, `config`, `registered_name`) from a tfjs pythonic layer config.
 */
export function kerasLayer(className: string, tfjsConfig: JsonObject): JsonObject {
  const spec = specOf(className);
  const name = String(tfjsConfig.name);
  const config: JsonObject = { name, trainable: tfjsConfig.trainable ?? true, dtype: kerasDtypePolicy() };
  for (const [option, fallback] of Object.entries(spec.shared)) {
    const value = tfjsConfig[option] ?? fallback ?? null;
    checkActivation(className, name, option, value);
    const module = kerasObjectModule(option);
    config[option] = module && isJsonObject(value) ? kerasObject(module, value) : value;
  }
  Object.assign(config, structuredClone(spec.fixed ?? {}), structuredClone(spec.inert ?? {}));
  return { module: 'keras.layers', class_name: className, config, registered_name: null };
}

/**
 * The tfjs pythonic config of a Keras 3 (or Keras 2) layer config. Initializers, regularizers and constraints
 * are dropped: an imported model's weights come from the file, and tfjs cannot read Keras 3's objects.
 */
export function tfjsLayerConfig(className: string, kerasConfig: JsonObject): JsonObject {
  const spec = specOf(className);
  const name = String(kerasConfig.name);
  for (const [option, value] of Object.entries(spec.fixed ?? {})) {
    const actual = kerasConfig[option];
    if (actual !== undefined && JSON.stringify(actual) !== JSON.stringify(value)) {
      throw unsupportedOption(className, name, `${option}=${JSON.stringify(actual)}`);
    }
  }
  const config: JsonObject = { name, trainable: kerasConfig.trainable ?? true, dtype: tfjsDtype(className, name, kerasConfig.dtype) };
  for (const option of Object.keys(spec.shared)) {
    // silu is Keras 3's name for swish (x · sigmoid(x)), which tfjs computes alike.
    const value = option === 'activation' && kerasConfig[option] === 'silu' ? 'swish' : kerasConfig[option];
    if (value === undefined || kerasObjectModule(option)) continue;
    checkActivation(className, name, option, value);
    // Keras 2 saved BatchNormalization's axis as a one-element list; tfjs takes the integer.
    if (option === 'axis' && Array.isArray(value) && value.length === 1) config[option] = value[0] ?? null;
    // Keras 3.5 could save Dropout's noise_shape as a bare number, which only matters when training.
    else if (option === 'noise_shape' && !Array.isArray(value)) config[option] = null;
    else config[option] = value;
  }
  return config;
}

/** Keras 3 writes a DTypePolicy object, Keras 2 a string; tfjs layers compute in float32 only. */
export function tfjsDtype(className: string, layerName: string, dtype: Json | undefined): string {
  const name = isJsonObject(dtype) && isJsonObject(dtype.config) ? dtype.config.name : (dtype ?? 'float32');
  if (name !== 'float32') throw unsupportedOption(className, layerName, `dtype ${JSON.stringify(name)}`);
  return name;
}
