// Node module hooks that run the TypeScript sources directly, so tests can start child processes on them
// (vitest transforms TypeScript only inside its own workers).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export async function resolve(specifier, context, nextResolve) {
  if (context.parentURL?.endsWith('.ts') && /^\.{1,2}\//.test(specifier) && specifier.endsWith('.js')) {
    const typescriptUrl = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
    if (fs.existsSync(typescriptUrl)) return { url: typescriptUrl.href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.endsWith('.ts')) return nextLoad(url, context);
  const fileName = fileURLToPath(url);
  const { outputText } = ts.transpileModule(fs.readFileSync(fileName, 'utf8'), {
    fileName,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023, sourceMap: false },
  });
  return { format: 'module', source: outputText, shortCircuit: true };
}
