import { CatdogError } from '../errors.js';
import { ImageError, inspectImage, type ImageLimits } from '../images/index.js';

export interface Upload {
  bytes: Uint8Array;
  fileName: string;
}

export async function readUploads(files: readonly File[]): Promise<Upload[]> {
  return Promise.all(files.map(async (file) => ({ bytes: new Uint8Array(await file.arrayBuffer()), fileName: file.name || 'upload' })));
}

/** The same image error, told about the file it concerns so a client uploading many knows which one to fix. */
export function namingFile(error: ImageError, fileName: string): CatdogError {
  return new CatdogError(error.code, `${fileName}: ${error.message}`, error.httpStatus, { file: fileName });
}

/**
 * Runs `work` on a batch; when it rejects a photo without saying which, finds the culprit. Checking every file
 * up front would decode each photo twice on the common, valid path.
 */
export async function withFileBlame<T>(uploads: readonly Upload[], limits: ImageLimits, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof ImageError)) throw error;
    for (const upload of uploads.length === 1 ? [] : uploads) {
      const problem = await inspectImage(upload.bytes, limits).then(
        () => undefined,
        (cause: unknown) => cause,
      );
      if (problem instanceof ImageError) throw namingFile(problem, upload.fileName);
    }
    throw namingFile(error, uploads[0]?.fileName ?? 'upload');
  }
}
