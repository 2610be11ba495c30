/** Same shape as the `training.augmentation` section of the config schema. */
export interface AugmentationConfig {
  horizontalFlip: { enabled: boolean; probability: number };
  rotation: { enabled: boolean; maxDegrees: number };
  zoom: { enabled: boolean; maxFraction: number };
  brightness: { enabled: boolean; maxDelta: number };
  contrast: { enabled: boolean; maxFraction: number };
  grayscale: { enabled: boolean; probability: number };
}

/** Uniform in [-1, 1) from a draw in [0, 1). */
const symmetric = (draw: number): number => 2 * draw - 1;

/**
 * A random, label-preserving variant of one training sample: `pixels` is size × size × RGB (HWC) and is not
 * modified. Pure given `rng`: the same seed gives the same sample, and a config with everything disabled
 * gives identical pixels. Runs per sample per epoch, hence the flat loops and no per-pixel allocation.
 */
export function augment(
  pixels: Uint8Array,
  size: number,
  augmentation: AugmentationConfig,
  rng: () => number,
): Uint8Array {
  if (pixels.length !== size * size * 3) {
    throw new RangeError(`expected ${size}×${size}×3 = ${size * size * 3} RGB bytes, got ${pixels.length}`);
  }
  // Every parameter is drawn whether or not its augmentation is enabled, so toggling one augmentation
  // leaves the random choices of the others unchanged for the same seed.
  const flipDraw = rng();
  const angleDraw = rng();
  const zoomDraw = rng();
  const zoomXDraw = rng();
  const zoomYDraw = rng();
  const brightnessDraw = rng();
  const contrastDraw = rng();
  const grayscaleDraw = rng();

  const { horizontalFlip, rotation, zoom, brightness, contrast, grayscale } = augmentation;
  const flip = horizontalFlip.enabled && flipDraw < horizontalFlip.probability;
  const degrees = rotation.enabled ? symmetric(angleDraw) * rotation.maxDegrees : 0;
  const cropFraction = zoom.enabled ? zoomDraw * zoom.maxFraction : 0;

  const out = new Uint8ClampedArray(pixels.length);
  if (degrees === 0 && cropFraction === 0) {
    copyMaybeMirrored(pixels, out, size, flip);
  } else {
    const maxShift = (size * cropFraction) / 2;
    resampleAffine(pixels, out, size, {
      radians: (degrees * Math.PI) / 180,
      scale: 1 - cropFraction,
      shiftX: symmetric(zoomXDraw) * maxShift,
      shiftY: symmetric(zoomYDraw) * maxShift,
      mirror: flip,
    });
  }
  if (brightness.enabled) addBrightness(out, symmetric(brightnessDraw) * brightness.maxDelta * 255);
  if (contrast.enabled) scaleContrast(out, 1 + symmetric(contrastDraw) * contrast.maxFraction);
  if (grayscale.enabled && grayscaleDraw < grayscale.probability) toGrayscale(out);
  return new Uint8Array(out.buffer);
}

/** A square RGB image mirrored left to right. */
export function mirrorRgb(pixels: Uint8Array): Uint8Array {
  const size = Math.round(Math.sqrt(pixels.length / 3));
  if (pixels.length !== size * size * 3) throw new RangeError(`expected a square RGB image, got ${pixels.length} bytes`);
  const mirrored = new Uint8Array(pixels.length);
  copyMaybeMirrored(pixels, mirrored, size, true);
  return mirrored;
}

function copyMaybeMirrored(source: Uint8Array, target: Uint8Array | Uint8ClampedArray, size: number, mirror: boolean): void {
  if (!mirror) {
    target.set(source);
    return;
  }
  const rowBytes = size * 3;
  for (let row = 0; row < size; row++) {
    const rowStart = row * rowBytes;
    for (let x = 0; x < size; x++) {
      const from = rowStart + x * 3;
      const to = rowStart + (size - 1 - x) * 3;
      target[to] = source[from]!;
      target[to + 1] = source[from + 1]!;
      target[to + 2] = source[from + 2]!;
    }
  }
}

interface AffineSampling {
  /** Counter-clockwise on screen. */
  radians: number;
  /** Source pixels per output pixel: below 1 zooms in on a crop. */
  scale: number;
  /** Offset of the crop's centre from the image centre, in source pixels. */
  shiftX: number;
  shiftY: number;
  /** Sample the horizontally mirrored source, so a flip costs nothing extra. */
  mirror: boolean;
}

/** Maps a coordinate outside [0, last] back inside by mirroring at the borders, so rotated corners show image, not black. */
function reflect(coordinate: number, last: number): number {
  if (coordinate >= 0 && coordinate <= last) return coordinate;
  if (last === 0) return 0;
  const period = 2 * last;
  const wrapped = ((coordinate % period) + period) % period;
  return wrapped > last ? period - wrapped : wrapped;
}

/**
 * Each output pixel samples the source bilinearly at centre + shift + scale · R(−θ) · (pixel − centre):
 * one pass for rotation, zoom and flip together.
 */
function resampleAffine(source: Uint8Array, target: Uint8ClampedArray, size: number, sampling: AffineSampling): void {
  const last = size - 1;
  const centre = last / 2;
  const cos = Math.cos(sampling.radians) * sampling.scale;
  const sin = Math.sin(sampling.radians) * sampling.scale;
  const originX = centre + sampling.shiftX;
  const originY = centre + sampling.shiftY;
  const rowBytes = size * 3;
  let to = 0;
  for (let y = 0; y < size; y++) {
    const dy = y - centre;
    for (let x = 0; x < size; x++) {
      const dx = x - centre;
      let sourceX = reflect(originX + dx * cos - dy * sin, last);
      const sourceY = reflect(originY + dx * sin + dy * cos, last);
      if (sampling.mirror) sourceX = last - sourceX;
      const x0 = Math.floor(sourceX);
      const y0 = Math.floor(sourceY);
      const fx = sourceX - x0;
      const fy = sourceY - y0;
      const topLeft = y0 * rowBytes + x0 * 3;
      const topRight = x0 < last ? topLeft + 3 : topLeft;
      const down = y0 < last ? rowBytes : 0;
      const bottomLeft = topLeft + down;
      const bottomRight = topRight + down;
      // Weights of the four neighbours, shared by the three channels.
      const wTopLeft = (1 - fx) * (1 - fy);
      const wTopRight = fx * (1 - fy);
      const wBottomLeft = (1 - fx) * fy;
      const wBottomRight = fx * fy;
      for (let channel = 0; channel < 3; channel++) {
        target[to++] =
          source[topLeft + channel]! * wTopLeft +
          source[topRight + channel]! * wTopRight +
          source[bottomLeft + channel]! * wBottomLeft +
          source[bottomRight + channel]! * wBottomRight;
      }
    }
  }
}

function addBrightness(pixels: Uint8ClampedArray, delta: number): void {
  for (let i = 0; i < pixels.length; i++) pixels[i] = pixels[i]! + delta;
}

/** Stretches each channel around its own mean (as tf.image.adjust_contrast does), so the mean colour stays. */
function scaleContrast(pixels: Uint8ClampedArray, factor: number): void {
  const sums = [0, 0, 0];
  for (let i = 0; i < pixels.length; i += 3) {
    sums[0]! += pixels[i]!;
    sums[1]! += pixels[i + 1]!;
    sums[2]! += pixels[i + 2]!;
  }
  const count = pixels.length / 3;
  for (let channel = 0; channel < 3; channel++) {
    const mean = sums[channel]! / count;
    for (let i = channel; i < pixels.length; i += 3) pixels[i] = mean + (pixels[i]! - mean) * factor;
  }
}

/** ITU-R BT.601 luma in all three channels, keeping the 3-channel layout the model expects. */
function toGrayscale(pixels: Uint8ClampedArray): void {
  for (let i = 0; i < pixels.length; i += 3) {
    const luma = 0.299 * pixels[i]! + 0.587 * pixels[i + 1]! + 0.114 * pixels[i + 2]!;
    pixels[i] = luma;
    pixels[i + 1] = luma;
    pixels[i + 2] = luma;
  }
}
