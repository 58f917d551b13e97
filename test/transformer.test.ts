// Forward-pass equivalences (prefill = decode, context split, two-host merge, cancellation) on the CPU reference.
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import { registerTransformerTests } from './support/transformerSuite';

registerTransformerTests('cpu', async () => new CpuBackend());
