// The WebGPU backend through the whole forward pass against the float64 oracle (../shared/golden):
// the same assertions as the CPU reference (greedy ids from BOS for every test model, stories260K's
// top-5 logits at the first 8 positions). Runs on SwiftShader where there is no GPU.
import { createBackend } from '../src/node/createBackend';
import { registerGoldenTests } from './support/goldenSuite';

registerGoldenTests('webgpu', () => createBackend('webgpu'));
