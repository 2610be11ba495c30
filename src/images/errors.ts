import { CatdogError } from '../errors.js';

export type ImageErrorCode =
  | 'image_empty'
  | 'image_too_large'
  | 'image_unsupported_format'
  | 'image_corrupt'
  | 'image_too_many_pixels'
  | 'image_too_complex';

const httpStatusOf: Record<ImageErrorCode, number> = {
  image_empty: 400,
  image_too_large: 413,
  image_unsupported_format: 415,
  image_corrupt: 422,
  image_too_many_pixels: 413,
  image_too_complex: 422,
};

export const acceptedFormatsText = 'JPEG, PNG, WebP, GIF or AVIF';

/** A photo the user sent cannot be used; the message says why and what is accepted instead. */
export class ImageError extends CatdogError {
  declare readonly code: ImageErrorCode;

  constructor(code: ImageErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, httpStatusOf[code], details);
    this.name = 'ImageError';
  }
}
