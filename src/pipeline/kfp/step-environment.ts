import { isDeepStrictEqual } from 'node:util';
import { builtInDefaults, envVarName, type CatdogConfig } from '../../config/index.js';
import { catalogueBackbone } from '../../ml/catalogue.js';
import { isUrl } from '../../config/schema.js';
import type { SecretEnv } from './compile.js';
import type { ContainerEnvVar } from './pipeline-spec.js';

/**
 * The catdog configuration a compiled pipeline's steps run with. Each step is `catdog component run` in a pod, which
 * loads its configuration like any catdog command: defaults < config file in the image < CATDOG_* variables. The
 * compiler passes the settings of this machine that differ from the defaults as CATDOG_* variables, but only those a
 * step reads, only those that mean the same thing in a pod, and never a password: secrets come from a Kubernetes
 * Secret instead (`--secret NAME`).
 */

/** The sections the components read: photo limits, dataset augmentation, training settings, database, blob store. */
const STEP_SECTIONS = ['images', 'dataset', 'training', 'database', 'storage'] as const;

/** What `--secret NAME` reads from the Secret: its keys and the variables they become in every step. */
export const STEP_SECRET_KEYS = {
  /** Required: a step without the shared database would write to a SQLite file inside its own pod. */
  databaseUrl: { secretKey: 'database-url', envVar: envVarName(['database', 'url']) },
  /** Optional, for a bucket reached without workload identity: the AWS SDK inside the step reads these. */
  s3: [
    { secretKey: 'aws-access-key-id', envVar: 'AWS_ACCESS_KEY_ID' },
    { secretKey: 'aws-secret-access-key', envVar: 'AWS_SECRET_ACCESS_KEY' },
  ],
} as const;

export interface StepEnvironment {
  /** Plain container variables, in key order. */
  env: ContainerEnvVar[];
  /** The Secret-backed variables, when a Secret was named. */
  secrets: SecretEnv[];
  /** Settings that differ from the defaults but are not passed, each with why: for the user to provide otherwise. */
  notPassed: { key: string; reason: string }[];
}

type Leaf = string | number | boolean | null | readonly unknown[];

/** Every leaf of the step sections by dotted key (a list counts as one leaf). */
function stepLeaves(config: CatdogConfig): Map<string, Leaf> {
  const leaves = new Map<string, Leaf>();
  const visit = (value: unknown, key: string): void => {
    if (value === undefined) return;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [child, childValue] of Object.entries(value)) visit(childValue, `${key}.${child}`);
    } else {
      leaves.set(key, value as Leaf);
    }
  };
  for (const section of STEP_SECTIONS) visit(config[section], section);
  return leaves;
}

/** A URL with a password in it, in its user part or its query (`?password=`). */
function holdsPassword(value: Leaf): boolean {
  if (typeof value !== 'string' || !isUrl(value)) return false;
  try {
    const url = new URL(value);
    return url.password !== '' || url.searchParams.has('password');
  } catch {
    return false;
  }
}

/** Why a setting stays out of the spec, or undefined when it is passed as a plain variable. */
function notPassedReason(key: string, value: Leaf, secretName: string | undefined): string | undefined {
  if (key === 'database.url') {
    if (secretName !== undefined) return `the steps read ${STEP_SECRET_KEYS.databaseUrl.envVar} from Secret ${secretName} (key ${STEP_SECRET_KEYS.databaseUrl.secretKey})`;
    if (typeof value === 'string' && value.startsWith('sqlite:')) return 'a SQLite file on this machine, which the pods cannot share: use a postgres:// or mysql:// server';
  }
  if (holdsPassword(value)) return 'it holds a password, which is never written into the spec: pass --secret NAME';
  if (key === 'storage.path') return 'a folder on this machine, which the pods do not see: use storage.kind s3';
  if (key === 'training.backbone' && typeof value === 'string' && !isUrl(value) && !catalogueBackbone(value)) return 'a file on this machine: give an http(s):// URL, or set it in the image';
  if (Array.isArray(value)) return 'a list, which CATDOG_* variables cannot carry: set it in a config file in the image';
  return undefined;
}

/**
 * The configuration `config` passes to the steps of a compiled pipeline: the step settings whose value differs from
 * the built-in default (the same rule for every setting, so the spec does not depend on whether a value came from a
 * file or an environment variable), and with `secretName` the Secret-backed database URL and S3 credentials.
 */
export function stepEnvironment(config: CatdogConfig, secretName?: string): StepEnvironment {
  // What the config's preset sets follows from passing the preset itself (when it is not the default one): a step
  // loads it as this machine did.
  const defaults = stepLeaves(builtInDefaults(config.training.preset));
  defaults.set('training.preset', builtInDefaults().training.preset);
  const env: ContainerEnvVar[] = [];
  const notPassed: StepEnvironment['notPassed'] = [];
  for (const [key, value] of stepLeaves(config)) {
    if (defaults.has(key) && isDeepStrictEqual(defaults.get(key), value)) continue;
    const reason = notPassedReason(key, value, secretName);
    if (reason !== undefined) notPassed.push({ key, reason });
    else env.push({ name: envVarName(key.split('.')), value: String(value) });
  }
  const secrets: SecretEnv[] = secretName === undefined
    ? []
    : [
        { secretName, keyToEnv: [STEP_SECRET_KEYS.databaseUrl] },
        { secretName, keyToEnv: [...STEP_SECRET_KEYS.s3], optional: true },
      ];
  return { env, secrets, notPassed };
}
