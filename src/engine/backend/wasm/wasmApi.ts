// The slice of the WebAssembly JS API the CPU kernels use, typed here because the engine compiles without the DOM
// lib (where TypeScript declares WebAssembly). Node and browsers both provide it on globalThis; it is looked up,
// never assumed (a locked-down page may lack it).

export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

export interface WasmModule {
  readonly __wasmModule?: never;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

export interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => WasmInstance;
  validate(bytes: Uint8Array): boolean;
}

/** 64 KiB. */
export const WASM_PAGE_BYTES = 65536;
/** wasm32's whole address space, in pages (4 GiB). */
export const WASM_MAX_PAGES = 65536;

/** The host's WebAssembly API, or undefined where there is none. */
export function wasmApi(): WasmApi | undefined {
  return (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
}

/** Whether this host can share a memory between threads (SharedArrayBuffer exists and is usable here). */
export function canShareMemory(): boolean {
  const g = globalThis as { SharedArrayBuffer?: unknown; crossOriginIsolated?: boolean };
  if (typeof g.SharedArrayBuffer !== 'function') return false;
  // Pages without cross-origin isolation may still define the constructor but cannot post the memory to a worker.
  return g.crossOriginIsolated !== false;
}
