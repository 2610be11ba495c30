/** A photo's blob key is its content hash, spread over 256 folders by the first two hex digits. */
export const imageBlobKey = (hash: string): string => `images/${hash.slice(0, 2)}/${hash}`;
