export { augment, mirrorRgb, type AugmentationConfig } from './augment.js';
export { DecodeSlots } from './decode-slots.js';
export {
  DECODE_ID,
  decodeToRgb,
  encodeJpeg,
  inspectAndDecodeToRgb,
  inspectImage,
  thumbnailJpeg,
  type DecodeTurn,
  type ImageInfo,
  type ImageLimits,
  type InspectOptions,
  type RgbImage,
} from './decode.js';
export { ImageError, type ImageErrorCode } from './errors.js';
export { sniffImageFormat, type ImageFormat } from './format.js';
export { sha256Hex } from './hash.js';
export { hammingDistance, NEAR_DUPLICATE_DISTANCE, nearDuplicateGroups, perceptualHash, type PerceptualHash } from './perceptual-hash.js';
export { seededRandom } from './random.js';
export { withoutMetadata } from './metadata.js';
