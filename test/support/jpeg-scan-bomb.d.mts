/** A valid progressive JPEG of flat grey with 1 + components × 63 × 14 scans (see jpeg-scan-bomb.mjs). */
export function progressiveScanBomb(options?: { width?: number; height?: number; components?: 1 | 3 }): Uint8Array;
