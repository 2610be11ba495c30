import type { Command } from 'commander';
import { createToken, parseRole, revokeToken, ROLE_ABILITIES, ROLES } from '../../auth/index.js';
import { printJson, printTable, withApp, type GlobalOptions } from '../app-runner.js';

/** Works on the database directly, offline: the first admin token of a new installation comes from here. */
export function registerTokenCommands(program: Command, globals: () => GlobalOptions): void {
  const token = program.command('token').description('API tokens with roles (viewer, curator, admin) for the REST API and the web UI');

  token
    .command('create')
    .description('create a token and print its secret (shown once: only its sha256 is stored)')
    .requiredOption('--role <role>', ROLES.map((role) => `${role}: ${ROLE_ABILITIES[role]}`).join('; '))
    .option('--name <name>', 'who or what uses it, shown in token list')
    .option('--json', 'print JSON')
    .action(async (options: { role: string; name?: string; json?: boolean }) => {
      const role = parseRole(options.role);
      await withApp(globals(), async (app) => {
        const { token: row, secret } = await createToken(app.db, role, options.name);
        if (options.json) return printJson({ ...row, secret });
        process.stdout.write(`created ${row.id} (${row.role}, "${row.name}")\n${secret}\n`);
        process.stderr.write('Keep this secret now: it cannot be shown again. Use it as "Authorization: Bearer <secret>" or sign in at /signin.\n');
      });
    });

  token
    .command('list')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withApp(globals(), async (app) => {
        const tokens = await app.db.tokens.list();
        if (options.json) return printJson(tokens);
        printTable(tokens.map((row) => ({ id: row.id, role: row.role, name: row.name, created: row.createdAt, lastUsed: row.lastUsedAt, revoked: row.revokedAt })));
      });
    });

  token
    .command('revoke')
    .argument('<id>', 'token id (tok_…), from token list')
    .action(async (id: string) => {
      await withApp(globals(), async (app) => {
        await revokeToken(app.db, id);
        process.stdout.write(`revoked ${id}\n`);
      });
    });
}
