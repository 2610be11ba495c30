import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goldenConfigEnv, goldenDatabasePassword, goldenSecret } from '../../test/support/kfp-golden.js';
import { builtCli, catdog, execFileAsync } from '../../test/support/cli.js';
import { kaggleFiles, skipWithoutShared } from '../../test/support/shared.js';
import { configSchema } from '../config/schema.js';
import { catdogPipeline } from './catdog-pipeline.js';
import { compileToKfp } from './kfp/compile.js';
import { checkPipelineSpecReferences, parsePipelineYaml } from './kfp/pipeline-spec.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const goldenFile = path.join(repoRoot, 'src', 'pipeline', 'kfp', '__golden__', 'catdog-pipeline.yaml');

describe.skipIf(skipWithoutShared)('catdog component / pipeline commands (built CLI)', () => {
  let home: string;

  beforeAll(() => {
    expect(fs.existsSync(builtCli), `${builtCli} is missing: run npm run build`).toBe(true);
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-cli-'));
  });
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('component run ingest writes the artifact and parameter files KFP reads back', async () => {
    const photos = path.join(home, 'photos');
    for (const label of ['cat', 'dog'] as const) {
      fs.mkdirSync(path.join(photos, label), { recursive: true });
      for (const file of kaggleFiles(label, 3)) fs.symlinkSync(file, path.join(photos, label, path.basename(file)));
    }
    // The paths the KFP launcher substitutes: an artifact path and a parameter's output_file, in folders that do not exist yet.
    const imported = path.join(home, 'kfp', 'outputs', 'artifacts', 'imported');
    const count = path.join(home, 'kfp', 'outputs', 'parameters', 'count', 'data');
    const result = await catdog(home, ['component', 'run', 'ingest', '--input-source', photos, '--output-imported', imported, '--output-count', count]);

    expect(result.stderr).toContain('6 new (3 cats, 3 dogs)');
    expect(result.code).toBe(0);
    expect(fs.readFileSync(count, 'utf8')).toBe('6');
    const artifact = JSON.parse(fs.readFileSync(imported, 'utf8')) as { source: string; images: { hash: string; label: string }[] };
    expect(artifact.source).toBe(photos);
    expect(artifact.images.map((image) => image.label).sort()).toEqual(['cat', 'cat', 'cat', 'dog', 'dog', 'dog']);
    expect(artifact.images.every((image) => /^[0-9a-f]{64}$/.test(image.hash))).toBe(true);

    const again = await catdog(home, ['component', 'run', 'ingest', '--input-source', photos, '--output-imported', imported, '--output-count', count]);
    expect(again.code).toBe(0);
    expect(fs.readFileSync(count, 'utf8')).toBe('0');
  });

  it('pipeline run --target queue on inline jobs runs every step as a job kept in the app database', async () => {
    const queueHome = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-cli-queue-'));
    try {
      const photos = path.join(queueHome, 'photos');
      for (const label of ['cat', 'dog'] as const) {
        fs.mkdirSync(path.join(photos, label), { recursive: true });
        for (const file of kaggleFiles(label, 4)) fs.symlinkSync(file, path.join(photos, label, path.basename(file)));
      }
      const result = await catdog(queueHome, ['pipeline', 'run', '--target', 'queue', '--source', photos, '--param', 'epochs=1', '--json']);
      expect(result.stderr).toContain('jobs.kind is inline');
      expect(result.code, result.stderr).toBe(0);
      const record = JSON.parse(result.stdout) as { status: string; steps: { status: string }[] };
      expect(record.status).toBe('succeeded');

      // The jobs are rows of the app's SQLite database (what the next process would take over), all completed.
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(path.join(queueHome, 'catdog.db'), { readonly: true });
      try {
        const jobs = db.prepare("SELECT state FROM jobs WHERE name = 'pipeline-step'").all() as { state: string }[];
        expect(jobs.length).toBe(record.steps.length);
        expect(new Set(jobs.map((job) => job.state))).toEqual(new Set(['completed']));
      } finally {
        db.close();
      }
    } finally {
      fs.rmSync(queueHome, { recursive: true, force: true });
    }
  });

  it('component run refuses wrong flags with every problem and exit code 1', async () => {
    const result = await catdog(home, ['component', 'run', 'train', '--input-epochs', 'many', '--output-model', '/tmp/x']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("--input-epochs must be an integer, got 'many'");
    expect(result.stderr).toContain('--input-dataset is required');
    expect(result.stderr).toContain('--output-metrics is required');
    const unknown = await catdog(home, ['component', 'run', 'deploy']);
    expect(unknown.stderr).toContain("no component 'deploy' (components: ingest, build-dataset, train, evaluate, promote)");
  });

  it('pipeline compile writes the golden KFP spec, which passes the schema and reference checks and holds no password', async () => {
    const output = path.join(home, 'compiled', 'pipeline.yaml');
    const result = await catdog(home, ['pipeline', 'compile', '--target', 'kfp', '--secret', goldenSecret, '-o', output], goldenConfigEnv);
    expect(result.code).toBe(0);
    const yaml = fs.readFileSync(output, 'utf8');
    expect(yaml).toBe(fs.readFileSync(goldenFile, 'utf8'));
    expect(yaml).not.toContain(goldenDatabasePassword);
    // The backbone this test trains with is a file here, which a pod would not have.
    expect(result.stderr).toContain('not passed to the steps: training.backbone (a file on this machine');
    expect(result.stderr).toContain(`not passed to the steps: database.url (the steps read CATDOG_DATABASE_URL from Secret ${goldenSecret}`);
    const { pipelineSpec, platformSpec } = parsePipelineYaml(yaml);
    expect(checkPipelineSpecReferences(pipelineSpec, platformSpec)).toEqual([]);

    // A step's pod: the spec's variables and the Secret's, and nothing else of this machine.
    const podEnv = {
      ...Object.fromEntries((pipelineSpec.deploymentSpec.executors['exec-train']?.container?.env ?? []).map(({ name, value }) => [name, value ?? ''])),
      CATDOG_DATABASE_URL: goldenConfigEnv.CATDOG_DATABASE_URL!,
    };
    const stepSettings = async (env: Record<string, string>) => {
      const { stdout } = await execFileAsync(process.execPath, [builtCli, 'config', 'show', '--json'], { cwd: home, env: { PATH: process.env.PATH, ...env } });
      const { images, dataset, training, database, storage } = JSON.parse(stdout) as Record<string, unknown>;
      return { images, dataset, training, database, storage };
    };
    expect(await stepSettings(podEnv)).toEqual(await stepSettings(goldenConfigEnv));

    const custom = await catdog(home, ['pipeline', 'compile'], { CATDOG_PIPELINE__IMAGE: 'registry.example/catdog:1.2.3', CATDOG_TRAINING__EPOCHS: '7' });
    const spec = parsePipelineYaml(custom.stdout).pipelineSpec;
    expect(Object.values(spec.deploymentSpec.executors).map((executor) => executor.container?.image)).toEqual(Array(5).fill('registry.example/catdog:1.2.3'));
    expect(spec.root.inputDefinitions?.parameters?.epochs?.defaultValue).toBe(7);
  });

  it('pipeline submit --target kubeflow posts the compiled spec with typed parameters and prints the run id', async () => {
    const received: { url?: string; body?: any } = {};
    const server = http.createServer((request, response) => {
      let text = '';
      request.on('data', (chunk: Buffer) => (text += chunk.toString()));
      request.on('end', () => {
        Object.assign(received, { url: request.url, body: JSON.parse(text) });
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ run_id: 'kfp-run-42', state: 'PENDING' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pipeline`;
      const result = await catdog(home, ['pipeline', 'submit', '--target', 'kubeflow', '--param', 'epochs=5', '--param', 'learningRate=0.01', '--source', '/data/photos', '--display-name', 'nightly'], {
        CATDOG_PIPELINE__KUBEFLOWURL: url,
      });
      // The only note: this test's backbone is a file on this machine, so the steps are not told about it.
      expect(result.stderr.trim().split('\n')).toEqual([expect.stringContaining('not passed to the steps: training.backbone')]);
      expect(result.stdout).toContain('run kfp-run-42 (nightly)');
      expect(received.url).toBe('/pipeline/apis/v2beta1/runs');
      expect(received.body.display_name).toBe('nightly');
      // The CLI tests' preset (test/support/cli.ts) is not the default one, so the steps are told it.
      const env = [{ name: 'CATDOG_TRAINING__PRESET', value: 'fast' }];
      expect(received.body.pipeline_spec).toEqual(compileToKfp(catdogPipeline(), { image: configSchema.parse({}).pipeline.image, env }));
      expect(received.body.runtime_config.parameters).toEqual({ epochs: 5, learningRate: 0.01, source: '/data/photos' });

      const withSecret = await catdog(home, ['pipeline', 'submit', '--target', 'kubeflow', '--secret', goldenSecret], { ...goldenConfigEnv, CATDOG_PIPELINE__KUBEFLOWURL: url });
      expect(withSecret.stdout).toContain('run kfp-run-42');
      const golden = parsePipelineYaml(fs.readFileSync(goldenFile, 'utf8'));
      expect(received.body.pipeline_spec).toEqual({ pipeline_spec: golden.pipelineSpec, platform_spec: golden.platformSpec });
      expect(JSON.stringify(received.body)).not.toContain(goldenDatabasePassword);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('pipeline submit says which setting is missing before contacting anything', async () => {
    const kubeflow = await catdog(home, ['pipeline', 'submit', '--target', 'kubeflow']);
    expect(kubeflow.code).toBe(1);
    expect(kubeflow.stderr).toContain('set pipeline.kubeflowUrl');
    const vertex = await catdog(home, ['pipeline', 'submit', '--target', 'vertex', '--pipeline-root', 'gs://bucket/runs']);
    expect(vertex.code).toBe(1);
    expect(vertex.stderr).toContain('set pipeline.project');
    const noRoot = await catdog(home, ['pipeline', 'submit', '--target', 'vertex'], { CATDOG_PIPELINE__PROJECT: 'my-project' });
    expect(noRoot.stderr).toContain('Vertex AI needs --pipeline-root gs://');
    const secretOnVertex = await catdog(home, ['pipeline', 'submit', '--target', 'vertex', '--secret', goldenSecret]);
    expect(secretOnVertex.stderr).toContain('only Kubeflow reads');
  });
});
