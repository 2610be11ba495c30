import { describe, expect, it } from 'vitest';
import { DecodeSlots } from './decode-slots.js';

/** A decode that ends when the test says so, recording when it started. */
function controlled(log: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    work: async () => {
      log.push(name);
      await done;
    },
    finish,
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('DecodeSlots', () => {
  it('runs at most `concurrency` decodes, a client at most half of them, and serves waiting clients in turn', async () => {
    const slots = new DecodeSlots(4);
    const started: string[] = [];
    const attacker = Array.from({ length: 6 }, (_, i) => controlled(started, `attacker ${i}`));
    const runs = attacker.map((decode) => slots.run('attacker', decode.work));
    await settle();
    // Half of the slots: two others stay free for other clients while the attacker's four wait.
    expect(started).toEqual(['attacker 0', 'attacker 1']);

    const alice = controlled(started, 'alice');
    const bob = [controlled(started, 'bob 0'), controlled(started, 'bob 1'), controlled(started, 'bob 2')];
    runs.push(slots.run('alice', alice.work), ...bob.map((decode) => slots.run('bob', decode.work)));
    await settle();
    expect(started).toEqual(['attacker 0', 'attacker 1', 'alice', 'bob 0']);

    // Each freed slot goes to the client whose turn it is: the attacker waited first, then bob.
    attacker[0]!.finish();
    await settle();
    expect(started.at(-1)).toBe('attacker 2');
    alice.finish();
    await settle();
    expect(started.at(-1)).toBe('bob 1');
    attacker[1]!.finish();
    await settle();
    expect(started.at(-1)).toBe('attacker 3');

    for (const decode of [...attacker, ...bob]) decode.finish();
    await Promise.all(runs);
    expect(started).toHaveLength(10);
  });

  it('frees the slot of a decode that fails', async () => {
    const slots = new DecodeSlots(1);
    await expect(slots.run('a', () => Promise.reject(new Error('corrupt')))).rejects.toThrow('corrupt');
    await expect(slots.run('b', async () => 'decoded')).resolves.toBe('decoded');
  });

  it('refuses a concurrency that is not a positive whole number', () => {
    expect(() => new DecodeSlots(0)).toThrow(RangeError);
  });
});
