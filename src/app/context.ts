import path from 'node:path';
import { blobRoot, databaseUrl, type CatdogConfig, type LoadedConfig } from '../config/index.js';
import { openDatabase, type Database } from '../db/index.js';
import { BackboneProvider } from '../ml/backbone-provider.js';
import { createBlobStore, LocalBlobStore, type BlobStore } from '../storage/index.js';
import { createLogger, type Logger } from './logger.js';
import { ownerIsGone } from './process-owner.js';
import { codeVersion } from './version.js';

/**
 * How old a blob folder's temporary file must be before start-up deletes it: a put takes seconds at most, so an
 * hour leaves another process's write in flight alone.
 */
const ABANDONED_WRITE_AGE_MS = 60 * 60 * 1000;

/** The composition root: every entry point (CLI, server, worker) gets its adapters from here. */
export interface AppContext {
  loaded: LoadedConfig;
  config: CatdogConfig;
  logger: Logger;
  db: Database;
  blobs: BlobStore;
  backbones: BackboneProvider;
  codeVersion: string;
  cacheDir: string;
  close(): Promise<void>;
}

export interface OpenAppOptions {
  logger?: Logger;
  onBackboneDownload?: (received: number, total: number | undefined) => void;
  /**
   * Check every backbone in a child process before loading it here (once per backbone content): what the CLI's
   * serve and worker processes do, so that a backbone that crashes TensorFlow cannot take them down. Off for
   * foreground commands (`withApp`: only the command itself would die) and for in-process callers (tests) that run
   * from the TypeScript sources, since the check runs the built `dist/`.
   */
  checkBackbones?: boolean;
}

export async function openApp(loaded: LoadedConfig, options: OpenAppOptions = {}): Promise<AppContext> {
  const { config } = loaded;
  const logger = options.logger ?? createLogger();
  const db = await openDatabase(databaseUrl(config));
  await db.migrate();
  const interrupted = await db.runs.failInterrupted(ownerIsGone);
  if (interrupted > 0) logger.warn({ interrupted }, 'marked training runs interrupted by a previous crash as failed');
  const blobs = config.storage.kind === 'local'
    ? createBlobStore({ kind: 'local', path: blobRoot(config)! })
    : createBlobStore(config.storage);
  if (blobs instanceof LocalBlobStore) {
    const removed = await blobs.removeAbandonedWrites(ABANDONED_WRITE_AGE_MS);
    if (removed > 0) logger.info({ removed }, 'removed temporary files of blob writes a killed process left behind');
  }
  const cacheDir = path.join(path.resolve(config.home), 'cache');
  return {
    loaded,
    config,
    logger,
    db,
    blobs,
    backbones: new BackboneProvider({
      cacheDir,
      onDownload: options.onBackboneDownload,
      logger,
      resolution: { backboneDir: config.training.backboneDir, scaling: config.training.backboneScaling, outputs: config.training.backboneOutputs },
      ...(options.checkBackbones ? { check: {} } : {}),
    }),
    codeVersion: codeVersion(),
    cacheDir,
    close: () => db.close(),
  };
}
