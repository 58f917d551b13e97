// WebGPU's numeric flag values (fixed by the spec), so modules can use them before a host installs
// the GPUBufferUsage / GPUShaderStage / GPUMapMode globals (Dawn in Node sets them at runtime).
export const BufferUsage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
export const ShaderStage = { COMPUTE: 0x4 } as const;
export const MapMode = { READ: 0x1 } as const;
