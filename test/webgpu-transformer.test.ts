// The forward-pass equivalences (prefill = decode, context split, two-host merge, observeContextLse,
// cancellation, stop ids, seeded sampling) on the WebGPU backend (SwiftShader where there is no GPU).
import { createBackend } from '../src/node/createBackend';
import { registerTransformerTests } from './support/transformerSuite';

// f32 on the GPU, in another summation order: 4x the CPU's tolerances.
registerTransformerTests('webgpu', () => createBackend('webgpu'), 4);
