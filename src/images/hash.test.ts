import { describe, expect, it } from 'vitest';
import { sha256Hex } from './hash.js';

describe('sha256Hex', () => {
  it('matches the FIPS 180-2 test vector for "abc"', () => {
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('hashes only the viewed bytes of a subarray, so equal content has one address', () => {
    const backing = new Uint8Array([9, 9, 97, 98, 99, 9]);
    expect(sha256Hex(backing.subarray(2, 5))).toBe(sha256Hex(Buffer.from('abc')));
    expect(sha256Hex(backing.subarray(2, 6))).not.toBe(sha256Hex(Buffer.from('abc')));
  });
});
