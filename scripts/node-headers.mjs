// Shared by the install scripts that compile native addons (setup-tensorflow.mjs, build-native.mjs).
import fs from 'node:fs';
import path from 'node:path';

/** node-gyp downloads Node's headers unless told where they are; offline that fails, so point it at the local ones. */
export function localNodeHeaders() {
  if (process.env.npm_config_nodedir) return {};
  const prefix = path.dirname(path.dirname(process.execPath));
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? { npm_config_nodedir: prefix } : {};
}
