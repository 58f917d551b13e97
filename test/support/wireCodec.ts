// The test's stand-in for VS Code's webview postMessage, which carries typed arrays as binary: playwright's
// exposeFunction/evaluate carry JSON only, so typed arrays and ArrayBuffers are wrapped as base64 on one side
// and rebuilt as the same typed arrays on the other. Used in Node and in the test page alike.

type Encoded = { $typed: string; b64: string } | { $buffer: string };

const ctors: Record<string, new (b: ArrayBuffer) => ArrayBufferView> = {
  Float32Array, Float64Array, Int32Array, Uint32Array, Int16Array, Uint16Array, Int8Array, Uint8Array,
};

function toB64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromB64(b64: string): ArrayBuffer {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out.buffer;
}

export function encodeWire(value: unknown): unknown {
  if (ArrayBuffer.isView(value)) {
    return { $typed: value.constructor.name, b64: toB64(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) } satisfies Encoded;
  }
  if (value instanceof ArrayBuffer) return { $buffer: toB64(new Uint8Array(value)) } satisfies Encoded;
  if (Array.isArray(value)) return value.map(encodeWire);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encodeWire(v)]));
  if (value === Infinity || value === -Infinity) return { $number: String(value) };
  return value;
}

export function decodeWire(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeWire);
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.$typed === 'string') return new ctors[v.$typed]!(fromB64(v.b64 as string));
    if (typeof v.$buffer === 'string') return fromB64(v.$buffer);
    if (typeof v.$number === 'string') return Number(v.$number);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decodeWire(x)]));
  }
  return value;
}
