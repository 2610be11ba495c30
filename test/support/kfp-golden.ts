/**
 * The configuration the golden KFP file (`src/pipeline/kfp/__golden__/catdog-pipeline.yaml`) is compiled with, by
 * `compileToKfp` in its unit test and by the built CLI: a database server with a password, an S3-compatible bucket
 * and two changed step settings, with the Secret the password must come from instead.
 */
export const goldenDatabasePassword = 'Pa55-never-in-yaml';

export const goldenConfigEnv: Record<string, string> = {
  CATDOG_DATABASE_URL: `postgres://catdog:${goldenDatabasePassword}@db.catdog.svc:5432/catdog`,
  CATDOG_STORAGE__KIND: 's3',
  CATDOG_STORAGE__BUCKET: 'catdog-blobs',
  CATDOG_STORAGE__ENDPOINT: 'http://minio.catdog.svc:9000',
  CATDOG_STORAGE__FORCE_PATH_STYLE: 'true',
  // The preset the CLI tests train with (test/support/cli.ts), so the compiled spec is the same from both.
  CATDOG_TRAINING__PRESET: 'fast',
  CATDOG_TRAINING__HEAD: 'mlp',
  CATDOG_IMAGES__MAX_BYTES: '10485760',
};

export const goldenSecret = 'catdog-secrets';
