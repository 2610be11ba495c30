import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { NotFoundError } from '../errors.js';
import { assertValidBlobKey, assertValidBlobPrefix, type BlobStore } from './blob-store.js';

export interface S3BlobStoreOptions {
  bucket: string;
  /** Folder inside the bucket; '' for the bucket root. */
  prefix: string;
  region: string;
  /** For S3-compatible services: MinIO, R2, GCS interoperability, s3rver in tests. */
  endpoint?: string;
  /** MinIO and most self-hosted services need path-style URLs (`endpoint/bucket/key`). */
  forcePathStyle: boolean;
  /** Without it the SDK's default chain applies (environment, shared config, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

function isNotFound(error: unknown): boolean {
  const { name, $metadata } = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return name === 'NoSuchKey' || name === 'NotFound' || $metadata?.httpStatusCode === 404;
}

/** PutObject replaces an object atomically, so puts need no temp-and-rename here. */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly keyPrefix: string;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    const folder = options.prefix.replace(/^\/+|\/+$/g, '');
    this.keyPrefix = folder === '' ? '' : `${folder}/`;
    this.client = new S3Client({
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
      ...(options.credentials !== undefined && { credentials: options.credentials }),
    });
  }

  describe(): string {
    return `s3://${this.bucket}/${this.keyPrefix}`;
  }

  private objectKey(key: string): string {
    assertValidBlobKey(key);
    return this.keyPrefix + key;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: bytes }));
  }

  async get(key: string): Promise<Uint8Array> {
    const bytes = await this.getOrUndefined(key);
    if (bytes === undefined) throw new NotFoundError('blob', key);
    return bytes;
  }

  async getOrUndefined(key: string): Promise<Uint8Array | undefined> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return response.Body === undefined ? new Uint8Array() : await response.Body.transformToByteArray();
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async has(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async list(prefix: string): Promise<string[]> {
    assertValidBlobPrefix(prefix);
    const keys: string[] = [];
    let continuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.keyPrefix + prefix,
          ...(continuationToken !== undefined && { ContinuationToken: continuationToken }),
        }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) keys.push(object.Key.slice(this.keyPrefix.length));
      }
      continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
    return keys.sort();
  }

  /** Releases the SDK's sockets so a CLI command can exit promptly. */
  close(): void {
    this.client.destroy();
  }
}
