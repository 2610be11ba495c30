#!/usr/bin/env node
// The attacker of figure 8b (bench/load.mjs --attackers N), in a process of its own as an attacker would be: in the
// measuring process, its fetch loop (hundreds of 429s a second, each a reconnect and an upload cut short) would
// delay the clients' own loop and count against the server in their latencies. Keeps `inFlight` requests of one
// progressive scan bomb each in flight (test/support/jpeg-scan-bomb.mjs: 4,992² pixels, just under
// images.maxPixels so that the decode-work limit refuses it, in 2,647 valid scans) without heeding Retry-After, for
// `warmup` then `seconds` seconds, and prints closedLoopLoad's tallies as one JSON line.
// Usage: node bench/scan-bomb-attacker.mjs --url U --token T --inFlight 4 --warmup 20 --seconds 60
import { closedLoopLoad, MULTIPART_CONTENT_TYPE, multipartBody, options } from './lib.mjs';
import { progressiveScanBomb } from '../test/support/jpeg-scan-bomb.mjs';

const opts = options({ url: '', token: '', inFlight: 4, warmup: 20, seconds: 60 });
if (!opts.url || !opts.token) throw new Error('--url and --token are required');
const bomb = multipartBody([{ name: 'scan-bomb.jpg', bytes: progressiveScanBomb({ width: 4_992, height: 4_992 }) }]);
const result = await closedLoopLoad({
  url: opts.url,
  clientHeaders: Array.from({ length: opts.inFlight }, () => ({ authorization: `Bearer ${opts.token}`, 'content-type': MULTIPART_CONTENT_TYPE })),
  nextBody: () => bomb,
  warmupSeconds: opts.warmup,
  seconds: opts.seconds,
});
console.log(JSON.stringify({ ...result, bodyBytes: bomb.length }));
