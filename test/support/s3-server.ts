import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { S3BlobStoreOptions } from '../../src/storage/s3-blob-store.js';

export interface TestS3Server {
  /** Options for an `S3BlobStore` on this server's bucket. */
  storeOptions: S3BlobStoreOptions;
  stop(): Promise<void>;
}

const serverScript = fileURLToPath(new URL('./s3rver-process.mjs', import.meta.url));

/**
 * An S3-compatible server for tests: s3rver on 127.0.0.1 with a random port and a temp folder.
 * s3rver writes objects in place, so it cannot show the atomicity of PutObject that real S3 has.
 */
export async function startTestS3Server(bucket = 'catdog-test'): Promise<TestS3Server> {
  const directory = await mkdtemp(path.join(tmpdir(), 'catdog-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', serverScript, directory, bucket], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const [firstLine] = (await Promise.race([
    once(createInterface({ input: child.stdout }), 'line'),
    exited.then(([code]) => {
      throw new Error(`s3rver exited with code ${String(code)} before listening`);
    }),
  ])) as [string];
  const { port } = JSON.parse(firstLine) as { port: number };
  return {
    storeOptions: {
      bucket,
      prefix: 'catdog',
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    },
    async stop() {
      child.stdin.end();
      await exited;
      await rm(directory, { recursive: true, force: true });
    },
  };
}
