import sharp from 'sharp';

/**
 * The bytes to show a stored photo with: the stored original when it carries no metadata, otherwise a re-encoded
 * copy without EXIF (GPS position, camera serial), XMP, IPTC or PNG text, turned upright since the EXIF
 * orientation goes with the rest. The store keeps the original bytes, because an image's identity (its sha256)
 * is the uploaded bytes; metadata only stays out of what is served.
 */
export async function withoutMetadata(bytes: Uint8Array): Promise<Uint8Array> {
  const metadata = await sharp(bytes).metadata();
  const carriesMetadata = Boolean(metadata.exif || metadata.xmp || metadata.iptc || (metadata.comments?.length ?? 0) > 0);
  if (!carriesMetadata) return bytes;
  // Colour profiles are not personal data and change how the photo looks: keep them.
  const upright = sharp(bytes, { animated: metadata.format === 'gif' || metadata.format === 'webp' }).autoOrient().keepIccProfile();
  const encoded = await (() => {
    switch (metadata.format) {
      case 'png':
        return upright.png();
      case 'webp':
        return upright.webp({ quality: 95 });
      case 'gif':
        return upright.gif();
      case 'heif':
        return upright.avif({ quality: 80 });
      default:
        return upright.jpeg({ quality: 95 });
    }
  })().toBuffer();
  return new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.length);
}
