import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { sharedPath, skipWithoutShared } from '../../../test/support/shared.js';
import { CatdogError } from '../../errors.js';
import { checkPipelineSpecReferences, parsePipelineSpec, parsePipelineYaml, type PipelineSpec } from './pipeline-spec.js';

const fixtures = [
  'container_component_with_no_inputs.yaml',
  'container_io.yaml',
  'two_step_pipeline_containerized.yaml',
  'nvidia_gpu_scheduling_check.yaml',
];
const readFixture = (name: string) => fs.readFileSync(sharedPath('kfp-examples', name), 'utf8');
/** The first YAML document as plain data, to mutate before validation. */
const rawSpec = (name: string) => parse(readFixture(name).split(/^---$/m)[0] ?? '') as Record<string, any>;
const specOf = (name: string): PipelineSpec => parsePipelineYaml(readFixture(name), name).pipelineSpec;

function rejection(run: () => unknown): CatdogError {
  try {
    run();
  } catch (error) {
    if (error instanceof CatdogError) return error;
    throw error;
  }
  throw new Error('expected a CatdogError');
}

describe.skipIf(skipWithoutShared)('KFP PipelineSpec schema', () => {
  it.each(fixtures)('accepts %s and finds its references consistent', (name) => {
    const { pipelineSpec, platformSpec } = parsePipelineYaml(readFixture(name), name);
    expect(pipelineSpec.schemaVersion).toBe('2.1.0');
    expect(checkPipelineSpecReferences(pipelineSpec, platformSpec)).toEqual([]);
  });

  it('keeps the platform spec of the nvidia fixture and its accelerator request', () => {
    const { pipelineSpec, platformSpec } = parsePipelineYaml(readFixture('nvidia_gpu_scheduling_check.yaml'));
    expect(pipelineSpec.deploymentSpec.executors['exec-verify-gpu-scheduled']?.container?.resources?.accelerator).toEqual({
      count: '1',
      resourceCount: '1',
      resourceType: 'nvidia.com/gpu',
      type: 'nvidia.com/gpu',
    });
    expect(Object.keys(platformSpec?.platforms ?? {})).toEqual(['kubernetes']);
  });

  it('rejects an unknown key deep inside a task, naming its path', () => {
    const spec = rawSpec('two_step_pipeline_containerized.yaml');
    spec.root.dag.tasks.component2.cachingOptions.enableCaching = true;
    const error = rejection(() => parsePipelineSpec(spec));
    expect(error.code).toBe('invalid_pipeline_spec');
    expect(error.message).toContain('enableCaching');
    expect(error.message).toContain('root.dag.tasks.component2.cachingOptions');
  });

  it('rejects a task input that is both a component input and a constant (proto oneof)', () => {
    const spec = rawSpec('container_io.yaml');
    spec.root.dag.tasks['container-io'].inputs.parameters.text.runtimeValue = { constant: 'hi' };
    expect(rejection(() => parsePipelineSpec(spec)).message).toContain('exactly one of');
  });

  it('rejects a component with neither a DAG nor an executor, and other schema versions', () => {
    const noImplementation = rawSpec('container_io.yaml');
    delete noImplementation.components['comp-container-io'].executorLabel;
    expect(rejection(() => parsePipelineSpec(noImplementation)).message).toContain('found none');
    const oldSchema = rawSpec('container_io.yaml');
    oldSchema.schemaVersion = '2.0.0';
    expect(rejection(() => parsePipelineSpec(oldSchema)).message).toContain('schemaVersion');
  });

  it('checks the Kubernetes executor config: known fields only, secretAsEnv strictly; other platforms stay free-form', () => {
    const text = readFixture('nvidia_gpu_scheduling_check.yaml');
    const withPlatform = (platform: string) => `${text.split(/^---$/m)[0]}---\n${platform}`;
    const secretAsEnv = (entry: string) =>
      withPlatform(`platforms:\n  kubernetes:\n    deploymentSpec:\n      executors:\n        exec-verify-gpu-scheduled:\n          secretAsEnv:\n          - ${entry}\n`);

    const valid = parsePipelineYaml(secretAsEnv('{ secretName: db, keyToEnv: [{ secretKey: url, envVar: DATABASE_URL }], optional: true }'));
    expect(valid.platformSpec?.platforms.kubernetes?.deploymentSpec?.executors?.['exec-verify-gpu-scheduled']?.secretAsEnv).toEqual([
      { secretName: 'db', keyToEnv: [{ secretKey: 'url', envVar: 'DATABASE_URL' }], optional: true },
    ]);
    expect(parsePipelineYaml(secretAsEnv("{ secretNameParameter: { runtimeValue: { constant: db } }, keyToEnv: [] }"))).toBeDefined();

    const misspeltField = rejection(() => parsePipelineYaml(text.replace('tolerations:', 'toleration:')));
    expect(misspeltField.message).toContain('toleration');
    expect(misspeltField.message).toContain('platforms.kubernetes.deploymentSpec.executors["exec-verify-gpu-scheduled"]');
    expect(rejection(() => parsePipelineYaml(secretAsEnv('{ keyToEnv: [{ secretKey: url, envVar: DATABASE_URL }] }'))).message).toContain(
      'secretAsEnv needs secretName or secretNameParameter',
    );
    expect(rejection(() => parsePipelineYaml(secretAsEnv('{ secretName: db, keyToEnv: [{ key: url, envVar: DATABASE_URL }] }'))).message).toContain('key');
    expect(rejection(() => parsePipelineYaml(secretAsEnv('{ secretName: db, keyToEnv: [{ secretKey: url, envVar: "" }] }'))).code).toBe('invalid_pipeline_spec');

    const otherPlatform = parsePipelineYaml(withPlatform('platforms:\n  someCloud:\n    deploymentSpec:\n      executors:\n        exec-verify-gpu-scheduled: { anything: [1, 2] }\n'));
    expect(otherPlatform.platformSpec?.platforms.someCloud?.deploymentSpec?.executors?.['exec-verify-gpu-scheduled']).toEqual({ anything: [1, 2] });
  });

  it('rejects a third document and broken YAML', () => {
    const text = readFixture('nvidia_gpu_scheduling_check.yaml');
    expect(rejection(() => parsePipelineYaml(`${text}\n---\nplatforms: {}\n`)).message).toContain('3 documents');
    expect(rejection(() => parsePipelineYaml('root: [unclosed')).message).toContain('not valid YAML');
    expect(rejection(() => parsePipelineYaml('# nothing but a comment\n')).message).toContain('found 0 documents');
  });
});

describe.skipIf(skipWithoutShared)('checkPipelineSpecReferences', () => {
  const mutated = (name: string, mutate: (spec: PipelineSpec) => void) => {
    const spec = structuredClone(specOf(name));
    mutate(spec);
    return checkPipelineSpecReferences(spec);
  };
  const twoStep = 'two_step_pipeline_containerized.yaml';

  it('finds a componentRef to a missing component', () => {
    expect(mutated(twoStep, (spec) => (spec.root.dag.tasks.component1!.componentRef.name = 'comp-missing'))).toEqual([
      "root: task 'component1': componentRef 'comp-missing' is not a component",
    ]);
  });

  it('finds an executorLabel without an executor', () => {
    expect(mutated(twoStep, (spec) => (spec.components!['comp-component2']!.executorLabel = 'exec-gone'))).toEqual([
      "comp-component2: executorLabel 'exec-gone' is not in deploymentSpec.executors",
    ]);
  });

  it('finds unknown dependent and producer tasks', () => {
    const problems = mutated(twoStep, (spec) => {
      const task = spec.root.dag.tasks.component2!;
      task.dependentTasks = ['component0'];
      task.inputs!.artifacts!.input_gcs!.taskOutputArtifact!.producerTask = 'component0';
    });
    expect(problems).toEqual([
      "root: task 'component2': dependentTasks names unknown task 'component0'",
      "root: task 'component2': artifact 'input_gcs' names unknown task 'component0'",
    ]);
  });

  it('finds an output artifact the producer does not declare', () => {
    const problems = mutated(twoStep, (spec) => {
      spec.root.dag.tasks.component2!.inputs!.artifacts!.input_gcs!.taskOutputArtifact!.outputArtifactKey = 'output_s3';
    });
    expect(problems).toEqual([
      "root: task 'component2': artifact 'input_gcs' reads output artifact 'output_s3' that task 'component1' does not declare",
    ]);
  });

  it('finds a componentInputParameter the enclosing component does not declare', () => {
    const problems = mutated('container_io.yaml', (spec) => {
      spec.root.dag.tasks['container-io']!.inputs!.parameters!.text!.componentInputParameter = 'message';
    });
    expect(problems).toEqual([
      "root: task 'container-io': parameter 'text' reads 'message', which is not an input parameter of root",
    ]);
  });

  it('finds a DAG output read from an unknown task', () => {
    const problems = mutated('container_io.yaml', (spec) => {
      spec.root.dag.outputs!.parameters!.output_path!.valueFromParameter!.producerSubtask = 'container-oi';
    });
    expect(problems).toEqual(["root: DAG output reads unknown task 'container-oi'"]);
  });

  it('finds placeholders naming undeclared inputs and outputs', () => {
    const problems = mutated(twoStep, (spec) => {
      const container = spec.deploymentSpec.executors['exec-component1']!.container!;
      container.args = ["{{$.inputs.parameters['txt']}}", "{{$.outputs.artifacts['output_gcs'].path}}"];
      spec.deploymentSpec.executors['exec-component2']!.container!.args = ["{{$.outputs.parameters['size'].output_file}}"];
    });
    expect(problems).toEqual([
      "comp-component1: executor 'exec-component1' uses {{$.inputs.parameters['txt']}} but comp-component1 declares no input parameter 'txt'",
      "comp-component2: executor 'exec-component2' uses {{$.outputs.parameters['size'].output_file}} but comp-component2 declares no output parameter 'size'",
    ]);
  });

  it('finds a platform executor config for an executor that does not exist', () => {
    const { pipelineSpec, platformSpec } = parsePipelineYaml(readFixture('nvidia_gpu_scheduling_check.yaml'));
    const renamed = structuredClone(pipelineSpec);
    const executor = renamed.deploymentSpec.executors['exec-verify-gpu-scheduled']!;
    renamed.deploymentSpec.executors = { 'exec-verify-gpu': executor };
    renamed.components!['comp-verify-gpu-scheduled']!.executorLabel = 'exec-verify-gpu';
    expect(checkPipelineSpecReferences(renamed, platformSpec)).toEqual([
      "platform 'kubernetes': executor 'exec-verify-gpu-scheduled' is not in deploymentSpec.executors",
    ]);
  });
});
