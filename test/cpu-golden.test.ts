// The CPU reference backend against the float64 oracle (../shared/golden).
import { CpuBackend } from '../src/engine/backend/cpu/cpuBackend';
import { registerGoldenTests } from './support/goldenSuite';

registerGoldenTests('cpu', async () => new CpuBackend());
