// The layering of docs/architecture.md, checked by `npm run depcheck` in CI (.ci/run).
const adapters = '^src/(db|storage|ml|images|config)/';
const services = '^src/(datasets|training|registry|serving|pipeline|jobs)/';
const entryPoints = '^src/(cli|server|web)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-folder-cycles',
      comment: 'Two folders that import each other, directly or through others, cannot be understood or changed apart.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/([^/]+)' },
      to: { circular: true, pathNot: '^src/$1(/|$)' },
    },
    {
      name: 'no-file-cycles-across-folders',
      comment: 'The file-level view of a folder cycle: which imports close the loop.',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { circular: true, via: { pathNot: '^src/$1/' } },
    },
    {
      name: 'adapters-import-no-services',
      comment: 'Adapters (SQL, blobs, TensorFlow, pixels, settings) know nothing of the product built on them.',
      severity: 'error',
      from: { path: adapters },
      to: { path: [services, entryPoints] },
    },
    {
      name: 'composition-root-imports-no-services',
      comment: 'app/ opens the adapters every entry point passes to the services; it must not need the services itself.',
      severity: 'error',
      from: { path: '^src/app/' },
      to: { path: [services, entryPoints] },
    },
    {
      name: 'services-import-no-entry-points',
      comment: 'A service never imports a route, a page or a command.',
      severity: 'error',
      from: { path: services },
      to: { path: entryPoints },
    },
    {
      name: 'src-imports-no-test-code',
      comment: 'The build ships src/ alone; only the tests beside the code may use test/support.',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Tests beside the code may import anything; the rules are about what the build ships.
    exclude: { path: '\\.test\\.ts$' },
    // Type-only imports count: a type from another folder is a dependency on it all the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
