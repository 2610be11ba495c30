import { InvalidArgumentError, type Command } from 'commander';
import { openApp } from '../../app/context.js';
import { loadConfig } from '../../config/index.js';
import { startServer } from '../../server/index.js';
import { webUi } from '../../web/index.js';
import type { GlobalOptions } from '../app-runner.js';

/** 0 asks the system for a free port (the start-up line tells which). */
const port = (value: string): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) throw new InvalidArgumentError(`expected a port 0..65535, got "${value}"`);
  return parsed;
};

export function registerServeCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('serve')
    .description('web UI and REST API (/api/v1, docs at /api/docs); hot-reloads the promoted model')
    .option('--port <n>', 'TCP port (default: server.port, 8080; 0 = any free port)', port)
    .option('--host <host>', 'interface to listen on, the same as CATDOG_HOST (default: server.host, 127.0.0.1; 0.0.0.0 exposes it)')
    .action(async (options: { port?: number; host?: string }) => {
      // --host is CATDOG_HOST under another name: what the server derives from its host (local viewer, allowed
      // hosts) must follow the address it listens on, whichever way it was given.
      const loaded = loadConfig({ file: globals().config, env: options.host === undefined ? process.env : { ...process.env, CATDOG_HOST: options.host } });
      // Unlike one-shot commands, the app stays open: startServer closes it on SIGTERM / SIGINT.
      const app = await openApp(loaded, { checkBackbones: true });
      try {
        const configFile = loaded.file;
        // The same CLI, config and environment (with --host as CATDOG_HOST): the worker opens the same database and blob store.
        const env = options.host === undefined ? process.env : { ...process.env, CATDOG_HOST: options.host };
        const worker = { command: process.execPath, args: [...process.execArgv, process.argv[1]!, ...(configFile ? ['--config', configFile] : []), 'worker'], env };
        const running = await startServer(app, { web: webUi, worker, port: options.port ?? app.config.server.port });
        const model = running.servingModel;
        const modelText = model ? `${model.id}${model.version === null ? '' : ` (v${model.version})`}` : 'none (see the log)';
        process.stdout.write(`catdog listening on ${running.url} — serving model ${modelText}\n`);
      } catch (error) {
        await app.close();
        throw error;
      }
    });
}
