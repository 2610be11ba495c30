// A seeded dropout layer's seed, moved on after every training step by whichever path trains it. tfjs draws a seeded
// mask from a generator seeded alike on every call, so a layer that kept one seed would drop the same units of every
// batch of one size. Both training paths take the step's seed from the layer itself (`takeDropoutSeed`), so a network
// trained in two phases (a head, then fine-tuning) or partly on each path goes on with one sequence. Networks catdog
// trains are built by `ml/models.ts`; a model loaded from files is for inference (its Dropout is tfjs's own).

/** murmur3's finaliser: a network's layers take neighbouring seeds, which must not lead into each other's streams. */
function nextDropoutSeed(seed: number): number {
  let mixed = (seed + 0x6d2b79f5) >>> 0;
  mixed = Math.imul(mixed ^ (mixed >>> 16), 0x85ebca6b) >>> 0;
  mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35) >>> 0;
  return (mixed ^ (mixed >>> 16)) >>> 0;
}

/**
 * The seed this training step's mask is drawn with (undefined: the layer has none, so tfjs draws fresh random numbers),
 * the layer's seed moved on for the next step. tfjs declares the field private, so it is read and set by name.
 */
export function takeDropoutSeed(layer: object): number | undefined {
  const seed: unknown = Reflect.get(layer, 'seed');
  if (typeof seed !== 'number') return undefined;
  Reflect.set(layer, 'seed', nextDropoutSeed(seed));
  return seed;
}
