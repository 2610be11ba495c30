import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { goldenConfigEnv, goldenDatabasePassword, goldenSecret } from '../../../test/support/kfp-golden.js';
import { builtInDefaults, loadConfig } from '../../config/index.js';
import { configSchema } from '../../config/schema.js';
import { CatdogError } from '../../errors.js';
import { catdogPipeline, trainComponent } from '../catdog-pipeline.js';
import type { PipelineDefinition } from '../dag.js';
import { compileToKfp, kubernetesSecretSpec, toYaml } from './compile.js';
import { checkPipelineSpecReferences, parsePipelineSpec, parsePipelineYaml } from './pipeline-spec.js';
import { STEP_SECRET_KEYS, stepEnvironment } from './step-environment.js';

const goldenFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), '__golden__');
const goldenFile = path.join(goldenFolder, 'catdog-pipeline.yaml');
const image = configSchema.parse({}).pipeline.image;

/** The configuration `env` sets (no config file: the golden folder has none). */
const configFrom = (env: Record<string, string>) => loadConfig({ env, cwd: goldenFolder }).config;

describe('compileToKfp', () => {
  const spec = compileToKfp(catdogPipeline(), { image });

  it('passes the strict schema and the reference checks, also after a YAML round trip', () => {
    expect(parsePipelineSpec(spec)).toEqual(spec);
    expect(checkPipelineSpecReferences(spec)).toEqual([]);
    const { pipelineSpec, platformSpec } = parsePipelineYaml(toYaml(spec));
    expect(pipelineSpec).toEqual(spec);
    expect(platformSpec).toBeUndefined();
    expect(Object.values(spec.deploymentSpec.executors).map((executor) => executor.container?.env)).toEqual(Array(5).fill(undefined));
  });

  it('runs every step as `catdog component run` with one flag and placeholder per input and output', () => {
    expect(spec.deploymentSpec.executors['exec-train']?.container).toEqual({
      image,
      command: ['catdog', 'component', 'run', 'train'],
      args: [
        '--input-dataset', "{{$.inputs.artifacts['dataset'].path}}",
        '--input-architecture', "{{$.inputs.parameters['architecture']}}",
        '--input-epochs', "{{$.inputs.parameters['epochs']}}",
        '--input-learningRate', "{{$.inputs.parameters['learningRate']}}",
        '--input-batchSize', "{{$.inputs.parameters['batchSize']}}",
        '--input-imageSize', "{{$.inputs.parameters['imageSize']}}",
        '--output-model', "{{$.outputs.artifacts['model'].path}}",
        '--output-metrics', "{{$.outputs.artifacts['metrics'].path}}",
      ],
    });
    expect(spec.deploymentSpec.executors['exec-ingest']?.container?.args).toContain("{{$.outputs.parameters['count'].output_file}}");
  });

  it('wires data dependencies, parameters and types the way the KFP SDK does', () => {
    const promote = spec.root.dag.tasks.promote;
    expect(promote?.dependentTasks).toEqual(['evaluate', 'train']);
    expect(promote?.inputs?.artifacts?.metrics).toEqual({ taskOutputArtifact: { producerTask: 'evaluate', outputArtifactKey: 'metrics' } });
    expect(spec.root.dag.tasks.train?.inputs?.parameters?.epochs).toEqual({ componentInputParameter: 'epochs' });
    // Image size is a setting of the training run: the train step takes it, build-dataset does not.
    expect(spec.root.dag.tasks.train?.inputs?.parameters?.imageSize).toEqual({ componentInputParameter: 'imageSize' });
    expect(spec.root.dag.tasks['build-dataset']?.inputs?.parameters).not.toHaveProperty('imageSize');
    expect(spec.root.inputDefinitions?.parameters?.epochs).toMatchObject({ parameterType: 'NUMBER_INTEGER', defaultValue: 20 });
    expect(spec.root.inputDefinitions?.parameters?.learningRate).toMatchObject({ parameterType: 'NUMBER_DOUBLE', defaultValue: 0.001 });
    expect(spec.components?.['comp-train']?.outputDefinitions?.artifacts?.model?.artifactType).toEqual({
      schemaTitle: 'system.Model',
      schemaVersion: '0.0.1',
    });
  });

  it('caches only steps whose outputs depend on their inputs alone', () => {
    const caching = Object.fromEntries(Object.entries(spec.root.dag.tasks).map(([name, task]) => [name, task.cachingOptions?.enableCache]));
    expect(caching).toEqual({ ingest: false, 'build-dataset': false, train: true, evaluate: true, promote: false });
  });

  it('compiles constants and task output parameters, and sets the pipeline root', () => {
    const base = catdogPipeline();
    const tuned: PipelineDefinition = {
      ...base,
      tasks: base.tasks.map((task) =>
        task.name === 'train' ? { ...task, inputs: { ...task.inputs, epochs: { fromTask: 'ingest', output: 'count' }, batchSize: { constant: 8 } } } : task,
      ),
    };
    const compiled = compileToKfp(tuned, { image, pipelineRoot: 'gs://catdog-bucket/runs' });
    expect(compiled.defaultPipelineRoot).toBe('gs://catdog-bucket/runs');
    const train = compiled.root.dag.tasks.train;
    expect(train?.inputs?.parameters?.epochs).toEqual({ taskOutputParameter: { producerTask: 'ingest', outputParameterKey: 'count' } });
    expect(train?.inputs?.parameters?.batchSize).toEqual({ runtimeValue: { constant: 8 } });
    expect(train?.dependentTasks).toEqual(['build-dataset', 'ingest']);
    expect(checkPipelineSpecReferences(parsePipelineSpec(compiled))).toEqual([]);
  });

  it('refuses an invalid pipeline and an optional input Kubeflow could not resolve', () => {
    const base = catdogPipeline();
    expect(() => compileToKfp({ ...base, tasks: base.tasks.filter((task) => task.name !== 'build-dataset') }, { image })).toThrow(
      expect.objectContaining({ code: 'invalid_pipeline' }),
    );
    const optionalWarmStart = { ...trainComponent, inputs: { ...trainComponent.inputs, warmStart: { type: 'artifact' as const, optional: true } } };
    const withOptional: PipelineDefinition = {
      ...base,
      tasks: base.tasks.map((task) => (task.name === 'train' ? { ...task, component: optionalWarmStart } : task)),
    };
    let caught: unknown;
    try {
      compileToKfp(withOptional, { image });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CatdogError);
    expect((caught as CatdogError).code).toBe('unsupported_pipeline');
    expect((caught as CatdogError).message).toContain("optional input 'warmStart'");
  });
});

describe('compiled steps get catdog\'s configuration', () => {
  const config = configFrom(goldenConfigEnv);
  const environment = stepEnvironment(config, goldenSecret);
  const spec = compileToKfp(catdogPipeline(config), { image, env: environment.env });
  const platformSpec = kubernetesSecretSpec(spec, environment.secrets);
  const yaml = toYaml(spec, platformSpec);

  it('produces the pinned YAML (UPDATE_GOLDEN=1 rewrites it after an intended change)', () => {
    if (process.env.UPDATE_GOLDEN === '1') {
      fs.mkdirSync(goldenFolder, { recursive: true });
      fs.writeFileSync(goldenFile, yaml);
    }
    expect(fs.existsSync(goldenFile), `${goldenFile} is missing; run with UPDATE_GOLDEN=1`).toBe(true);
    expect(yaml).toBe(fs.readFileSync(goldenFile, 'utf8'));
  });

  it('passes the strict schemas and the reference checks as two YAML documents', () => {
    const parsed = parsePipelineYaml(yaml);
    expect(parsed).toEqual({ pipelineSpec: spec, platformSpec });
    expect(checkPipelineSpecReferences(parsed.pipelineSpec, parsed.platformSpec)).toEqual([]);
  });

  it('gives every executor the changed settings as variables and the Secret\'s keys, never the password', () => {
    const executors = Object.keys(spec.deploymentSpec.executors);
    expect(executors).toHaveLength(5);
    for (const label of executors) {
      expect(spec.deploymentSpec.executors[label]?.container?.env).toEqual([
        { name: 'CATDOG_IMAGES__MAX_BYTES', value: '10485760' },
        // Not the default preset: passed, and what it sets (its backbone, side, ensemble) follows from it.
        { name: 'CATDOG_TRAINING__PRESET', value: 'fast' },
        { name: 'CATDOG_TRAINING__HEAD', value: 'mlp' },
        { name: 'CATDOG_STORAGE__KIND', value: 's3' },
        { name: 'CATDOG_STORAGE__BUCKET', value: 'catdog-blobs' },
        { name: 'CATDOG_STORAGE__PREFIX', value: '' },
        { name: 'CATDOG_STORAGE__REGION', value: 'us-east-1' },
        { name: 'CATDOG_STORAGE__ENDPOINT', value: 'http://minio.catdog.svc:9000' },
        { name: 'CATDOG_STORAGE__FORCE_PATH_STYLE', value: 'true' },
      ]);
      expect(platformSpec.platforms.kubernetes?.deploymentSpec?.executors?.[label]?.secretAsEnv).toEqual([
        {
          secretName: goldenSecret,
          secretNameParameter: { runtimeValue: { constant: goldenSecret } },
          keyToEnv: [{ secretKey: 'database-url', envVar: 'CATDOG_DATABASE_URL' }],
        },
        {
          secretName: goldenSecret,
          secretNameParameter: { runtimeValue: { constant: goldenSecret } },
          keyToEnv: [
            { secretKey: 'aws-access-key-id', envVar: 'AWS_ACCESS_KEY_ID' },
            { secretKey: 'aws-secret-access-key', envVar: 'AWS_SECRET_ACCESS_KEY' },
          ],
          optional: true,
        },
      ]);
    }
    expect(yaml).not.toContain(goldenDatabasePassword);
    expect(yaml).not.toContain('db.catdog.svc');
    expect(environment.notPassed).toEqual([{ key: 'database.url', reason: `the steps read CATDOG_DATABASE_URL from Secret ${goldenSecret} (key database-url)` }]);
  });

  it('loads back into the same settings in the step, as `catdog component run` reads its environment', () => {
    const podEnv = {
      ...Object.fromEntries(environment.env.map(({ name, value }) => [name, value ?? ''])),
      // What Kubernetes puts in from the Secret.
      [STEP_SECRET_KEYS.databaseUrl.envVar]: goldenConfigEnv.CATDOG_DATABASE_URL!,
    };
    const inPod = configFrom(podEnv);
    for (const section of ['images', 'dataset', 'training', 'database', 'storage'] as const) expect(inPod[section]).toEqual(config[section]);
  });

  it('without a Secret, leaves out the password and what only this machine has, and says why', () => {
    const local = configFrom({
      CATDOG_DATABASE_URL: `mysql://catdog:${goldenDatabasePassword}@db/catdog`,
      CATDOG_STORAGE__KIND: 'local',
      CATDOG_STORAGE__PATH: 'blobs',
      CATDOG_BACKBONE_URL: 'models/mobilenet/model.json',
      CATDOG_TRAINING__EPOCHS: '7',
      CATDOG_SERVER__PORT: '9000',
    });
    const { env, secrets, notPassed } = stepEnvironment(local);
    // A backbone named without a preset stands alone at its own size: the side goes as a variable, the (empty)
    // ensemble cannot, and is said so beside the backbone file itself.
    expect(env).toEqual([
      { name: 'CATDOG_TRAINING__BACKBONE_IMAGE_SIZE', value: 'null' },
      { name: 'CATDOG_TRAINING__EPOCHS', value: '7' },
    ]);
    expect(secrets).toEqual([]);
    expect(notPassed.map((entry) => entry.key)).toEqual(['training.backbone', 'training.ensemble', 'database.url', 'storage.path']);
    expect(notPassed.find((entry) => entry.key === 'database.url')?.reason).toContain('pass --secret NAME');
    expect(toYaml(compileToKfp(catdogPipeline(local), { image, env }))).not.toContain(goldenDatabasePassword);

    expect(stepEnvironment(configFrom({ CATDOG_DATABASE_URL: 'sqlite:catdog.db' })).notPassed[0]?.reason).toContain('SQLite file on this machine');
    expect(stepEnvironment(configFrom({ CATDOG_DATABASE_URL: 'postgres://db.catdog.svc/catdog?password=x' })).env).toEqual([]);
    expect(stepEnvironment(configFrom({ CATDOG_DATABASE_URL: 'postgres://catdog@db.catdog.svc/catdog' })).env).toEqual([
      { name: 'CATDOG_DATABASE_URL', value: 'postgres://catdog@db.catdog.svc/catdog' },
    ]);
    expect(stepEnvironment(builtInDefaults())).toEqual({ env: [], secrets: [], notPassed: [] });
  });

  it('refuses a Secret name Kubernetes would refuse', () => {
    for (const name of ['Catdog', 'catdog_secrets', '-catdog', '']) {
      expect(() => kubernetesSecretSpec(spec, [{ secretName: name, keyToEnv: [] }])).toThrow(expect.objectContaining({ code: 'invalid_secret_name' }));
    }
  });
});
