import { checkReadRange, type ByteSource } from './byteSource';

/** Several sources seen as one, back to back (sharded safetensors), so tensor offsets stay absolute. */
export class ConcatByteSource implements ByteSource {
  readonly size: number;
  private readonly starts: number[] = [];

  constructor(readonly name: string, readonly parts: readonly ByteSource[]) {
    let at = 0;
    for (const p of parts) { this.starts.push(at); at += p.size; }
    this.size = at;
  }

  /** Where part `i` begins. */
  start(i: number): number {
    return this.starts[i]!;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkReadRange(this, offset, length);
    let i = this.starts.length - 1;
    while (i > 0 && this.starts[i]! > offset) i--;
    const local = offset - this.starts[i]!;
    const part = this.parts[i]!;
    if (local + length <= part.size) return part.read(local, length);
    // A read across a part boundary (never for tensors, which live in one shard).
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const p = this.parts[i]!;
      const from = offset + done - this.starts[i]!;
      const take = Math.min(p.size - from, length - done);
      out.set(await p.read(from, take), done);
      done += take;
      i++;
    }
    return out;
  }
}
