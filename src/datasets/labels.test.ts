import { describe, expect, it } from 'vitest';
import { labelFromPath } from './labels.js';

describe('labelFromPath', () => {
  it.each([
    ['cat/a.jpg', 'cat'],
    ['dogs/b.png', 'dog'],
    ['PetImages/Cat/1.jpg', 'cat'],
    ['PetImages/Dog/10.jpg', 'dog'],
    ['CATS/x/y.jpg', 'cat'],
    ['train/cat.12.jpg', 'cat'],
    ['DOG.7.JPEG', 'dog'],
    ['dog/cat.3.jpg', 'dog'],
  ])('%s → %s', (file, label) => {
    expect(labelFromPath(file)).toBe(label);
  });

  it.each(['photos/a.jpg', 'catalogue/a.jpg', 'cat.jpg', 'hotdog.1.jpg', 'cat.x.jpg'])('%s has no label', (file) => {
    expect(labelFromPath(file)).toBeUndefined();
  });
});
