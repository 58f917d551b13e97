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
