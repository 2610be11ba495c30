import { describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.js';
import { CatdogError } from '../errors.js';
import { catdogComponents, catdogPipeline, evaluateComponent, trainComponent } from './catdog-pipeline.js';
import { type PipelineDefinition, pipelineProblems, type TaskDefinition, topologicalOrder, validatePipeline } from './dag.js';

/** The catdog pipeline with one task replaced (or appended when the name is new). */
function withTask(task: TaskDefinition, base: PipelineDefinition = catdogPipeline()): PipelineDefinition {
  const replaced = base.tasks.some(({ name }) => name === task.name);
  return { ...base, tasks: replaced ? base.tasks.map((old) => (old.name === task.name ? task : old)) : [...base.tasks, task] };
}

const trainTask = (inputs: TaskDefinition['inputs']): TaskDefinition => ({
  name: 'train',
  component: trainComponent,
  inputs: {
    dataset: { fromTask: 'build-dataset', output: 'dataset' },
    architecture: { parameter: 'architecture' },
    epochs: { parameter: 'epochs' },
    learningRate: { parameter: 'learningRate' },
    batchSize: { parameter: 'batchSize' },
    imageSize: { parameter: 'imageSize' },
    ...inputs,
  },
});

describe('the catdog pipeline', () => {
  it('is valid and runs its steps in data order', () => {
    expect(pipelineProblems(catdogPipeline())).toEqual([]);
    expect(topologicalOrder(catdogPipeline()).map((task) => task.name)).toEqual(['ingest', 'build-dataset', 'train', 'evaluate', 'promote']);
  });

  it('takes its parameter defaults from the configuration', () => {
    const builtIn = catdogPipeline().parameters;
    expect(Object.fromEntries(Object.entries(builtIn).map(([name, parameter]) => [name, parameter.default]))).toEqual({
      source: '',
      imageSize: 224,
      seed: 42,
      trainSplit: 0.7,
      validationSplit: 0.2,
      testSplit: 0.1,
      architecture: 'mobilenet',
      epochs: 20,
      learningRate: 0.001,
      batchSize: 32,
    });
    const cnn = catdogPipeline(configSchema.parse({ training: { architecture: 'cnn', epochs: 3 } })).parameters;
    expect([cnn.architecture?.default, cnn.epochs?.default, cnn.imageSize?.default]).toEqual(['cnn', 3, 128]);
  });

  it('lists every component it uses by name', () => {
    expect([...catdogComponents.keys()].sort()).toEqual(['build-dataset', 'evaluate', 'ingest', 'promote', 'train']);
    for (const task of catdogPipeline().tasks) expect(catdogComponents.get(task.component.name)).toBe(task.component);
  });
});

describe('validatePipeline', () => {
  it('reports every problem at once as invalid_pipeline', () => {
    const broken = withTask(trainTask({ epochs: { constant: 2.5 }, architecture: { parameter: 'arch' } }));
    let caught: unknown;
    try {
      validatePipeline(broken);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CatdogError);
    expect((caught as CatdogError).code).toBe('invalid_pipeline');
    expect((caught as CatdogError).details?.problems).toEqual([
      "task 'train': input 'architecture' (string) is bound to unknown pipeline parameter 'arch'",
      "task 'train': input 'epochs' (integer) is bound to constant 2.5",
    ]);
  });

  it('finds an unbound required input, and accepts an unbound optional or defaulted one', () => {
    const { batchSize: _omitted, ...inputs } = trainTask({}).inputs;
    expect(pipelineProblems(withTask({ ...trainTask({}), inputs }))).toEqual([
      "task 'train': required input 'batchSize' of component 'train' is not bound",
    ]);
    const relaxed = { ...trainComponent, inputs: { ...trainComponent.inputs, batchSize: { type: 'integer' as const, default: 16 } } };
    expect(pipelineProblems(withTask({ ...trainTask({}), component: relaxed, inputs }))).toEqual([]);
  });

  it('checks types: artifact kinds, parameters, constants, widening integer to number', () => {
    expect(pipelineProblems(withTask(trainTask({ dataset: { fromTask: 'train', output: 'model' } })))).toContain(
      "task 'train': input 'dataset' (artifact Dataset) reads output 'model' of task 'train' (artifact Model)",
    );
    expect(pipelineProblems(withTask(trainTask({ epochs: { parameter: 'learningRate' } })))).toEqual([
      "task 'train': input 'epochs' (integer) is bound to pipeline parameter 'learningRate' of type number",
    ]);
    expect(pipelineProblems(withTask(trainTask({ learningRate: { parameter: 'epochs' } })))).toEqual([]);
    expect(pipelineProblems(withTask(trainTask({ dataset: { constant: 'gs://bucket/dataset' } })))).toEqual([
      "task 'train': input 'dataset' (artifact Dataset) cannot be a constant",
    ]);
  });

  it('finds dangling references and unknown inputs', () => {
    expect(pipelineProblems(withTask(trainTask({ dataset: { fromTask: 'build-datasets', output: 'dataset' } })))).toEqual([
      "task 'train': input 'dataset' (artifact Dataset) reads from unknown task 'build-datasets'",
    ]);
    expect(pipelineProblems(withTask(trainTask({ dataset: { fromTask: 'build-dataset', output: 'data' } })))).toEqual([
      "task 'train': input 'dataset' (artifact Dataset) reads unknown output 'data' of task 'build-dataset'",
    ]);
    expect(pipelineProblems(withTask(trainTask({ optimizer: { constant: 'sgd' } })))).toEqual([
      "task 'train': component 'train' has no input 'optimizer'",
    ]);
  });

  it('finds a cycle and names its tasks', () => {
    const cyclic = withTask(trainTask({ dataset: { fromTask: 'evaluate-again', output: 'metrics' } }));
    const again: TaskDefinition = {
      name: 'evaluate-again',
      component: evaluateComponent,
      inputs: { model: { fromTask: 'train', output: 'model' }, dataset: { fromTask: 'build-dataset', output: 'dataset' } },
    };
    const problems = pipelineProblems(withTask(again, cyclic));
    expect(problems).toContain('tasks form a cycle: train → evaluate-again → train');
    expect(() => topologicalOrder(withTask(again, cyclic))).toThrow(/cycle/);
  });

  it('finds duplicate task names, bad names and clashing component definitions', () => {
    const duplicate = { ...catdogPipeline(), tasks: [...catdogPipeline().tasks, { ...trainTask({}) }] };
    expect(pipelineProblems(duplicate)).toEqual(["task name 'train' is used more than once"]);
    const impostor = { ...trainComponent, description: 'another train' };
    expect(pipelineProblems(withTask({ ...trainTask({}), name: 'Train_2', component: impostor }))).toEqual([
      "task 'Train_2': name must be lowercase letters, digits and '-'",
      "two different components are named 'train'",
    ]);
  });

  it('checks parameter defaults against their types', () => {
    const def = catdogPipeline();
    const wrong = { ...def, parameters: { ...def.parameters, epochs: { type: 'integer' as const, default: '20' } } };
    expect(pipelineProblems(wrong)).toEqual([`parameter 'epochs': default "20" is not of type integer`]);
  });
});
