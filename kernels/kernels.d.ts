// WGSL sources are bundled as text by esbuild (loader '.wgsl': 'text').
declare module '*.wgsl' {
  const source: string;
  export default source;
}

// The CPU kernels (kernels/cpu/*.c) compiled to WebAssembly by scripts/build-cpu-kernels.sh, embedded as bytes by
// esbuild (scripts/build.mjs). Empty when the toolchain was missing at build time: the `cpu` backend then says so
// and runs the JS reference.
declare module 'star-cpu-kernels:shared' {
  const bytes: Uint8Array;
  export default bytes;
}
declare module 'star-cpu-kernels:single' {
  const bytes: Uint8Array;
  export default bytes;
}
// The same with relaxed SIMD's 8-bit dot products; empty where the build's clang has no relaxed SIMD (before 16).
declare module 'star-cpu-kernels:shared-relaxed' {
  const bytes: Uint8Array;
  export default bytes;
}
declare module 'star-cpu-kernels:single-relaxed' {
  const bytes: Uint8Array;
  export default bytes;
}
