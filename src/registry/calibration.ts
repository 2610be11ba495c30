import sharp from 'sharp';
import { applyTemperature, fitTemperature, reliability, type ReliabilityBin } from '../ml/index.js';
import type { BlobStore } from '../storage/index.js';

/** What the card records about how far the model's P(dog) can be trusted. */
export interface ModelCalibration {
  /** Logits are divided by it before every answer (fitted on the validation split). */
  temperature: number;
  eceValidation: number;
  /** Absent for a sweep candidate until it is finalized: the test split is looked at once. */
  eceTest?: number;
  /** Reliability diagram of the test split, after temperature scaling. */
  reliability?: ReliabilityBin[];
}

export interface LabelledScores {
  labels: number[];
  /** P(dog) before temperature scaling. */
  pDog: number[];
}

/** Fits the temperature on the validation split; ECE is reported after scaling. */
export function fitCalibration(validation: LabelledScores): ModelCalibration {
  const temperature = fitTemperature(validation.labels, validation.pDog);
  const tempered = validation.pDog.map((p) => applyTemperature(p, temperature));
  return { temperature, eceValidation: reliability(validation.labels, tempered).ece };
}

/** Adds the test-split figures; `test.pDog` is already tempered (it comes from the calibrated classifier). */
export function withTestReliability(calibration: ModelCalibration, test: LabelledScores): ModelCalibration {
  const { ece, bins } = reliability(test.labels, test.pDog);
  return { ...calibration, eceTest: ece, reliability: bins };
}

export const reliabilityPngKey = (artifactPrefix: string): string => `${artifactPrefix}reliability.png`;

const SIZE = 420;
const MARGIN = 48;
const PLOT = SIZE - 2 * MARGIN;

/**
 * The reliability diagram as a PNG: one bar per non-empty bin at its accuracy, the gap to its mean confidence
 * shaded, the diagonal being perfect calibration. Drawn as SVG and rasterised by sharp (no chart library).
 */
export async function reliabilityPng(bins: readonly ReliabilityBin[], title: string): Promise<Uint8Array> {
  const x = (value: number) => MARGIN + value * PLOT;
  const y = (value: number) => SIZE - MARGIN - value * PLOT;
  const bars = bins
    .filter((bin) => bin.count > 0)
    .map((bin) => {
      const left = x(bin.lower);
      const width = x(bin.upper) - left - 1;
      const top = Math.min(y(bin.accuracy), y(bin.confidence));
      const gap = Math.abs(y(bin.accuracy) - y(bin.confidence));
      return `<rect x="${left}" y="${y(bin.accuracy)}" width="${width}" height="${y(0) - y(bin.accuracy)}" fill="#3b6fd4"/>` +
        `<rect x="${left}" y="${top}" width="${width}" height="${gap}" fill="#e0533d" fill-opacity="0.55"/>`;
    })
    .join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((t) => `<text x="${x(t)}" y="${SIZE - MARGIN + 16}" text-anchor="middle">${t}</text><text x="${MARGIN - 6}" y="${y(t) + 4}" text-anchor="end">${t}</text>`)
    .join('');
  const escaped = title.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}" font-family="sans-serif" font-size="12">
<rect width="${SIZE}" height="${SIZE}" fill="white"/>
<rect x="${MARGIN}" y="${MARGIN}" width="${PLOT}" height="${PLOT}" fill="none" stroke="#888"/>
${bars}
<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#222" stroke-dasharray="4 3"/>
${ticks}
<text x="${SIZE / 2}" y="${SIZE - 10}" text-anchor="middle">confidence</text>
<text x="14" y="${SIZE / 2}" text-anchor="middle" transform="rotate(-90 14 ${SIZE / 2})">accuracy</text>
<text x="${SIZE / 2}" y="${MARGIN - 16}" text-anchor="middle" font-size="13">${escaped}</text>
</svg>`;
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}

export async function writeReliabilityPng(blobs: BlobStore, artifactPrefix: string, calibration: ModelCalibration): Promise<void> {
  if (!calibration.reliability || calibration.eceTest === undefined) return;
  const title = `test split, T = ${calibration.temperature.toFixed(2)}, ECE = ${calibration.eceTest.toFixed(4)}`;
  await blobs.put(reliabilityPngKey(artifactPrefix), await reliabilityPng(calibration.reliability, title));
}
