/**
 * Protocol Buffers wire format, writing side only, for the few TensorFlow messages a frozen graph needs
 * (https://protobuf.dev/programming-guides/encoding/). Fields are appended in call order; repeated fields are
 * written by calling the same method again.
 */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];

  /** int32, int64, enum or bool (wire type 0); negative numbers take ten bytes, as protobuf's int64 does. */
  varint(field: number, value: number | boolean): this {
    this.tag(field, 0);
    this.rawVarint(typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value));
    return this;
  }

  /** A `float` (wire type 5). */
  float(field: number, value: number): this {
    this.tag(field, 5);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.chunks.push(bytes);
    return this;
  }

  /** `bytes`, or an already encoded message (wire type 2). */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.rawVarint(BigInt(value.length));
    this.chunks.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  message(field: number, message: ProtoWriter): this {
    return this.bytes(field, message.finish());
  }

  /** A packed repeated integer field (proto3's default for repeated scalars). */
  packedVarints(field: number, values: readonly number[]): this {
    const packed = new ProtoWriter();
    for (const value of values) packed.rawVarint(BigInt(value));
    return this.bytes(field, packed.finish());
  }

  /** A packed repeated `float` field. */
  packedFloats(field: number, values: readonly number[]): this {
    const bytes = new Uint8Array(values.length * 4);
    const view = new DataView(bytes.buffer);
    values.forEach((value, i) => view.setFloat32(i * 4, value, true));
    return this.bytes(field, bytes);
  }

  /** Bytes that are already fields of this message, appended as they are. */
  raw(encoded: Uint8Array): this {
    this.chunks.push(encoded);
    return this;
  }

  /** One entry of a `map<string, Message>` field: a message with the key as field 1 and the value as field 2. */
  mapEntry(field: number, key: string, value: ProtoWriter): this {
    return this.message(field, new ProtoWriter().string(1, key).message(2, value));
  }

  finish(): Uint8Array {
    return Buffer.concat(this.chunks);
  }

  private tag(field: number, wireType: number): void {
    this.rawVarint(BigInt((field << 3) | wireType));
  }

  private rawVarint(value: bigint): void {
    let rest = BigInt.asUintN(64, value);
    const bytes: number[] = [];
    while (rest >= 0x80n) {
      bytes.push(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    bytes.push(Number(rest));
    this.chunks.push(Uint8Array.from(bytes));
  }
}
