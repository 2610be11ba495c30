import { createHash } from 'node:crypto';

/** The content address of an image: lowercase hex SHA-256 of its exact bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
