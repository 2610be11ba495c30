// Runs s3rver for tests in its own process: s3rver signs its ListObjectsV2 continuation tokens with DES,
// which OpenSSL 3 only offers with --openssl-legacy-provider, a flag the test process itself must not need.
// Usage: node --openssl-legacy-provider s3rver-process.mjs <directory> <bucket>; prints {"port":N} when ready,
// stops when its stdin closes (so it never outlives the test process).
import S3rver from 's3rver';

const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
});
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.stdin.resume();
process.stdin.on('end', async () => {
  await server.close();
  process.exit(0);
});
