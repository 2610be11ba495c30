import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../config/schema.js';
import { CatdogError } from '../../errors.js';
import { catdogPipeline, trainComponent } from '../catdog-pipeline.js';
import type { PipelineDefinition } from '../dag.js';
import { compileToKfp, toYaml } from './compile.js';
import { checkPipelineSpecReferences, parsePipelineSpec, parsePipelineYaml } from './pipeline-spec.js';

const goldenFile = path.join(path.dirname(fileURLToPath(import.meta.url)), '__golden__', 'catdog-pipeline.yaml');
const image = configSchema.parse({}).pipeline.image;

describe('compileToKfp', () => {
  const spec = compileToKfp(catdogPipeline(), { image });

  it('produces the pinned YAML (UPDATE_GOLDEN=1 rewrites it after an intended change)', () => {
    const yaml = toYaml(spec);
    if (process.env.UPDATE_GOLDEN === '1') {
      fs.mkdirSync(path.dirname(goldenFile), { recursive: true });
      fs.writeFileSync(goldenFile, yaml);
    }
    expect(fs.existsSync(goldenFile), `${goldenFile} is missing; run with UPDATE_GOLDEN=1`).toBe(true);
    expect(yaml).toBe(fs.readFileSync(goldenFile, 'utf8'));
  });

  it('passes the strict schema and the reference checks, also after a YAML round trip', () => {
    expect(parsePipelineSpec(spec)).toEqual(spec);
    expect(checkPipelineSpecReferences(spec)).toEqual([]);
    const { pipelineSpec, platformSpec } = parsePipelineYaml(toYaml(spec));
    expect(pipelineSpec).toEqual(spec);
    expect(platformSpec).toBeUndefined();
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
