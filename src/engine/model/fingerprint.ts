// A fingerprint of a model's tensor data, for its identity (the KV cache key's first part). The header alone
// (metadata + tensor table) is the same for two fine-tunes exported with the same settings, which would then share
// cache entries and answer from the other model's KV. Hashing every byte on every start costs too much for a
// multi-GB model, so data beyond FULL_HASH_BYTES is sampled: SAMPLE_COUNT chunks spread evenly from the first byte
// to the last. Two fine-tunes differ in nearly every weight, so any sample tells them apart; an edit of a few bytes
// in a large model can fall between the samples (smaller models are hashed whole, so it cannot there).
import type { ByteSource } from '../io/byteSource';
import { Sha256 } from '../util/hash';

/** Data up to this size is hashed whole. */
export const FULL_HASH_BYTES = 8 * 1024 * 1024;
export const SAMPLE_COUNT = 64;
export const SAMPLE_BYTES = 64 * 1024;

/** SHA-256 (hex) of source[from, source.size): whole when small, else SAMPLE_COUNT evenly spread chunks. */
export async function dataFingerprint(source: ByteSource, from: number): Promise<string> {
  const length = Math.max(0, source.size - from);
  const h = new Sha256().updateText(`data ${length}\n`);
  if (length <= FULL_HASH_BYTES) {
    for (let at = 0; at < length; at += SAMPLE_BYTES) h.update(await source.read(from + at, Math.min(SAMPLE_BYTES, length - at)));
    return h.hex();
  }
  const stride = (length - SAMPLE_BYTES) / (SAMPLE_COUNT - 1);
  for (let i = 0; i < SAMPLE_COUNT; i++) h.update(await source.read(from + Math.round(i * stride), SAMPLE_BYTES));
  return h.hex();
}
