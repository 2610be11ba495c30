import { CatdogError } from '../errors.js';
import type { ImageError } from '../images/index.js';
import type { PhotoUpload } from '../serving/predict.js';

export interface Upload extends PhotoUpload {
  fileName: string;
}

/** Refuses more than `maxFiles` before reading any: each photo costs a full decode and room in a model call. */
export async function readUploads(files: readonly File[], maxFiles: number): Promise<Upload[]> {
  if (files.length > maxFiles) {
    throw new CatdogError(
      'too_many_files',
      `this request carries ${files.length} files; at most ${maxFiles} are accepted per request (server.maxFilesPerRequest): send them in several requests`,
      413,
    );
  }
  return Promise.all(files.map(async (file) => ({ bytes: new Uint8Array(await file.arrayBuffer()), fileName: file.name || 'upload' })));
}

/** The same image error, told about the file it concerns so a client uploading many knows which one to fix. */
export function namingFile(error: ImageError, fileName: string): CatdogError {
  return new CatdogError(error.code, `${fileName}: ${error.message}`, error.httpStatus, { file: fileName });
}
