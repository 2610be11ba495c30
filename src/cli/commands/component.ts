import type { Command } from 'commander';
import { componentNamed, runComponent } from '../../pipeline/components.js';
import { withApp, type GlobalOptions } from '../app-runner.js';

export function registerComponentCommands(program: Command, globals: () => GlobalOptions): void {
  const component = program.command('component').description('pipeline steps, one at a time (what Kubeflow and Vertex AI containers run)');

  component
    .command('run')
    .description('runs one pipeline component: catdog component run NAME --input-<name> VALUE … --output-<name> PATH …')
    .argument('<name>', 'ingest, build-dataset, train, evaluate or promote')
    .argument('[flags...]', '--input-<name> VALUE and --output-<name> PATH for every input and output of the component')
    // The flags depend on the component, so they are parsed by the component's own definition.
    .allowUnknownOption()
    .helpOption(false)
    .action(async (name: string, flags: string[]) => {
      const definition = componentNamed(name);
      await withApp(globals(), async (app) => {
        const outputs = await runComponent(app, definition, flags, (line) => process.stderr.write(`${line}\n`));
        process.stderr.write(`${name} done${Object.keys(outputs).length > 0 ? `: ${JSON.stringify(outputs)}` : ''}\n`);
      });
    });
}
