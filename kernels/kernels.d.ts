// WGSL sources are bundled as text by esbuild (loader '.wgsl': 'text').
declare module '*.wgsl' {
  const source: string;
  export default source;
}
