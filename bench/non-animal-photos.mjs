// Photos that show neither a cat nor a dog, for measuring "neither": catdog has none from outside, so these are made
// here, deterministically, as JPEGs the way a camera or a screenshot would deliver them (640 × 480): smooth colour
// gradients, noise textures at several scales, stripes and checkerboards, and synthetic scenes (sky, ground,
// buildings, a sun, a road), plus the kaggle-dev photos known to show no animal (cat.4338, a logo; cat.4992, a
// shelter lobby). Honest stand-ins, not a sample of what users upload: the figure says how many of these are caught.
// Imports catdog's TypeScript sources: load it after registering test/support/typescript-hooks.mjs.
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { seededRandom as random } from '../src/images/random.ts';
import { sharedDir } from './lib.mjs';

const WIDTH = 640;
const HEIGHT = 480;

function image(pixel) {
  const data = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const [r, g, b] = pixel(x, y);
      const at = (y * WIDTH + x) * 3;
      data[at] = Math.max(0, Math.min(255, r));
      data[at + 1] = Math.max(0, Math.min(255, g));
      data[at + 2] = Math.max(0, Math.min(255, b));
    }
  }
  return sharp(data, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/** Smooth value noise: random values on a grid `cell` pixels apart, bilinearly interpolated. */
function valueNoise(seed, cell) {
  const next = random(seed);
  const columns = Math.ceil(WIDTH / cell) + 2;
  const rows = Math.ceil(HEIGHT / cell) + 2;
  const grid = Array.from({ length: columns * rows }, next);
  const at = (i, j) => grid[j * columns + i];
  return (x, y) => {
    const i = Math.floor(x / cell);
    const j = Math.floor(y / cell);
    const u = x / cell - i;
    const v = y / cell - j;
    return (at(i, j) * (1 - u) + at(i + 1, j) * u) * (1 - v) + (at(i, j + 1) * (1 - u) + at(i + 1, j + 1) * u) * v;
  };
}

const mix = (a, b, t) => a.map((value, i) => value + (b[i] - value) * t);

function scene(seed) {
  const next = random(seed);
  const horizon = HEIGHT * (0.45 + 0.2 * next());
  const sky = [[70 + 80 * next(), 120 + 80 * next(), 200 + 55 * next()], [200 + 55 * next(), 210 + 45 * next(), 230]];
  const ground = [60 + 80 * next(), 90 + 80 * next(), 40 + 50 * next()];
  const buildings = Array.from({ length: 3 + Math.floor(next() * 6) }, () => {
    const left = next() * WIDTH;
    return { left, right: left + 40 + next() * 120, top: horizon - 60 - next() * 200, colour: [90 + 120 * next(), 90 + 120 * next(), 90 + 120 * next()] };
  });
  const sun = { x: next() * WIDTH, y: next() * horizon * 0.6, r: 20 + next() * 30 };
  const roadWidth = next() < 0.5 ? 0 : 80 + next() * 120;
  const grain = valueNoise(seed + 1, 6);
  return image((x, y) => {
    let colour;
    if (y < horizon) {
      colour = Math.hypot(x - sun.x, y - sun.y) < sun.r ? [255, 235, 160] : mix(sky[0], sky[1], y / horizon);
      for (const building of buildings) {
        if (x >= building.left && x < building.right && y >= building.top) {
          const window = (Math.floor(x / 12) + Math.floor(y / 16)) % 3 === 0;
          colour = window ? building.colour.map((value) => value * 0.6) : building.colour;
        }
      }
    } else {
      const road = roadWidth > 0 && Math.abs(x - WIDTH / 2) < (roadWidth * (y - horizon)) / (HEIGHT - horizon);
      colour = road ? [80, 80, 85] : ground;
    }
    const shade = 0.85 + 0.3 * grain(x, y);
    return colour.map((value) => value * shade);
  });
}

/** `[{ name, bytes }]`: the synthetic photos, then the kaggle-dev photos that show no animal. */
export async function nonAnimalPhotos() {
  const photos = [];
  const add = async (name, bytes) => photos.push({ name, bytes: await bytes });
  const palette = random(7);
  for (let i = 0; i < 8; i++) {
    const from = [palette() * 255, palette() * 255, palette() * 255];
    const to = [palette() * 255, palette() * 255, palette() * 255];
    const angle = palette() * Math.PI;
    const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
    const span = Math.abs(dx) * WIDTH + Math.abs(dy) * HEIGHT;
    await add(`gradient-${i}.jpg`, image((x, y) => mix(from, to, Math.abs(x * dx + y * dy) / span)));
  }
  for (const [i, cell] of [2, 4, 8, 16, 32, 64, 128, 160].entries()) {
    const channels = [valueNoise(100 + i, cell), valueNoise(200 + i, cell), valueNoise(300 + i, cell)];
    await add(`noise-${cell}px.jpg`, image((x, y) => channels.map((channel) => channel(x, y) * 255)));
  }
  for (const [i, period] of [8, 24, 60, 120].entries()) {
    const [a, b] = [[palette() * 255, palette() * 255, palette() * 255], [palette() * 255, palette() * 255, palette() * 255]];
    await add(`stripes-${period}px.jpg`, image((x, y) => (Math.floor((x + (i % 2) * y) / period) % 2 === 0 ? a : b)));
    await add(`checkerboard-${period}px.jpg`, image((x, y) => ((Math.floor(x / period) + Math.floor(y / period)) % 2 === 0 ? a : b)));
  }
  for (let i = 0; i < 12; i++) await add(`scene-${i}.jpg`, scene(1000 + i));
  for (const name of ['cat.4338.jpg', 'cat.4992.jpg']) photos.push({ name: `kaggle-dev ${name}`, bytes: fs.readFileSync(path.join(sharedDir, 'data', 'kaggle-dev', 'cat', name)) });
  return photos;
}
