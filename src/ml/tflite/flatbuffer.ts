/**
 * Read-only access to a FlatBuffers binary (https://flatbuffers.dev/internals/): a table starts with the signed
 * offset of its vtable, whose 16-bit entries give each field's position in the table (0 = absent, default value);
 * tables, vectors and strings are referenced by unsigned 32-bit offsets relative to where the offset is stored.
 */
export class FlatTable {
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly position: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The root table of a buffer. */
  static root(bytes: Uint8Array): FlatTable {
    if (bytes.byteLength < 8) throw new Error(`${bytes.byteLength} bytes are too few for a FlatBuffers file`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return new FlatTable(bytes, checked(view.getUint32(0, true), bytes.byteLength));
  }

  /** Where field `index` lives in the buffer, or undefined when absent. */
  private field(index: number): number | undefined {
    const vtable = this.position - this.view.getInt32(this.position, true);
    const vtableSize = this.view.getUint16(vtable, true);
    const entry = 4 + index * 2;
    if (entry >= vtableSize) return undefined;
    const offset = this.view.getUint16(vtable + entry, true);
    return offset === 0 ? undefined : this.position + offset;
  }

  private target(index: number): number | undefined {
    const at = this.field(index);
    return at === undefined ? undefined : checked(at + this.view.getUint32(at, true), this.bytes.byteLength);
  }

  int8(index: number, fallback = 0): number {
    const at = this.field(index);
    return at === undefined ? fallback : this.view.getInt8(at);
  }

  uint8(index: number, fallback = 0): number {
    const at = this.field(index);
    return at === undefined ? fallback : this.view.getUint8(at);
  }

  int32(index: number, fallback = 0): number {
    const at = this.field(index);
    return at === undefined ? fallback : this.view.getInt32(at, true);
  }

  uint32(index: number, fallback = 0): number {
    const at = this.field(index);
    return at === undefined ? fallback : this.view.getUint32(at, true);
  }

  float32(index: number, fallback = 0): number {
    const at = this.field(index);
    return at === undefined ? fallback : this.view.getFloat32(at, true);
  }

  string(index: number): string | undefined {
    const at = this.target(index);
    if (at === undefined) return undefined;
    const length = this.view.getUint32(at, true);
    return new TextDecoder().decode(this.bytes.subarray(at + 4, checked(at + 4 + length, this.bytes.byteLength)));
  }

  table(index: number): FlatTable | undefined {
    const at = this.target(index);
    return at === undefined ? undefined : new FlatTable(this.bytes, at);
  }

  /** A vector of tables (absent: empty). */
  tables(index: number): FlatTable[] {
    const at = this.target(index);
    if (at === undefined) return [];
    return Array.from({ length: this.view.getUint32(at, true) }, (_, i) => {
      const element = at + 4 + i * 4;
      return new FlatTable(this.bytes, checked(element + this.view.getUint32(element, true), this.bytes.byteLength));
    });
  }

  /** A vector of bytes as a view into the buffer (absent: empty). */
  byteVector(index: number): Uint8Array {
    const at = this.target(index);
    if (at === undefined) return new Uint8Array(0);
    const length = this.view.getUint32(at, true);
    return this.bytes.subarray(at + 4, checked(at + 4 + length, this.bytes.byteLength));
  }

  int32s(index: number): number[] {
    return this.scalars(index, 4, (at) => this.view.getInt32(at, true));
  }

  float32s(index: number): number[] {
    return this.scalars(index, 4, (at) => this.view.getFloat32(at, true));
  }

  int64s(index: number): number[] {
    return this.scalars(index, 8, (at) => Number(this.view.getBigInt64(at, true)));
  }

  private scalars(index: number, size: number, read: (at: number) => number): number[] {
    const at = this.target(index);
    if (at === undefined) return [];
    const length = this.view.getUint32(at, true);
    checked(at + 4 + length * size, this.bytes.byteLength);
    return Array.from({ length }, (_, i) => read(at + 4 + i * size));
  }
}

function checked(position: number, length: number): number {
  if (position > length) throw new Error(`offset ${position} points past the end of the ${length}-byte file`);
  return position;
}
