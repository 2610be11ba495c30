/**
 * Class centroids in backbone feature space: a photo whose features sit far from both the cat and the dog
 * centroid is unlike anything the model was trained on, whatever P(dog) its head reports.
 */

export interface ClassCentroids {
  cat: number[];
  dog: number[];
}

/** Mean feature vector of each class (label 0 = cat, 1 = dog). */
export function classCentroids(features: readonly Float32Array[], labels: readonly number[]): ClassCentroids {
  const size = features[0]?.length ?? 0;
  const sums = [new Float64Array(size), new Float64Array(size)];
  const counts = [0, 0];
  features.forEach((vector, i) => {
    const label = labels[i] === 1 ? 1 : 0;
    counts[label]! += 1;
    const sum = sums[label]!;
    for (let k = 0; k < size; k++) sum[k]! += vector[k]!;
  });
  const mean = (label: 0 | 1) => Array.from(sums[label]!, (value) => (counts[label] === 0 ? 0 : value / counts[label]!));
  return { cat: mean(0), dog: mean(1) };
}

function cosineDistance(vector: ArrayLike<number>, centroid: readonly number[]): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let k = 0; k < centroid.length; k++) {
    const a = vector[k]!;
    const b = centroid[k]!;
    dot += a * b;
    normA += a * a;
    normB += b * b;
  }
  if (normA === 0 || normB === 0) return 1;
  return 1 - dot / Math.sqrt(normA * normB);
}

/** Cosine distance (0 = same direction, 1 = orthogonal) to the nearer of the two centroids. */
export function nearestCentroidDistance(vector: ArrayLike<number>, centroids: ClassCentroids): number {
  return Math.min(cosineDistance(vector, centroids.cat), cosineDistance(vector, centroids.dog));
}

/** The `quantile` (0..1) of `values` by the nearest-rank method. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
