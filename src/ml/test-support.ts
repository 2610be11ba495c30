import sharp from 'sharp';

/** Real photos as the RGB HWC bytes the ml layer takes, squashed to `size` like the product does. */
export async function rgbPixels(files: string[], size = 224): Promise<Uint8Array[]> {
  return Promise.all(
    files.map(async (file) => {
      const buffer = await sharp(file).removeAlpha().resize(size, size, { fit: 'fill' }).raw().toBuffer();
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    }),
  );
}
