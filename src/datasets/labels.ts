import path from 'node:path';

export type Label = 'cat' | 'dog';
export const LABELS: readonly Label[] = ['cat', 'dog'];

const FOLDER_LABELS: Record<string, Label> = { cat: 'cat', cats: 'cat', dog: 'dog', dogs: 'dog' };
// Kaggle "Dogs vs. Cats" names: cat.12.jpg, dog.3.jpeg
const KAGGLE_NAME = /^(cat|dog)\.\d+\.[a-z0-9]+$/i;

/**
 * The label a file's location implies: the nearest enclosing folder named cat(s)/dog(s) in any case
 * (plain folders and Microsoft's PetImages `Cat/` `Dog/`), else a Kaggle-style file name.
 */
export function labelFromPath(relativePath: string): Label | undefined {
  const parts = relativePath.split(/[\\/]+/);
  const fileName = parts.pop() ?? '';
  for (const folder of parts.reverse()) {
    const label = FOLDER_LABELS[folder.toLowerCase()];
    if (label) return label;
  }
  const kaggle = KAGGLE_NAME.exec(path.basename(fileName));
  return kaggle ? (kaggle[1]!.toLowerCase() as Label) : undefined;
}
