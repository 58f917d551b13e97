// How many threads the `cpu` backend's products take (a module of its own: host pools read it without loading
// any backend).
import { availableParallelism } from 'node:os';

/** Threads the `cpu` backend uses by default: STAR_ASK_CPU_THREADS when set, else the cores Node reports. */
export function defaultCpuThreads(): number {
  const env = Number(process.env.STAR_ASK_CPU_THREADS);
  return Number.isInteger(env) && env >= 1 ? env : availableParallelism();
}

/** The `cpu` threads each of `hosts` hosts takes so that together they use the cores once, not `hosts` times. */
export function cpuThreadsPerHost(hosts: number): number {
  return Math.max(1, Math.floor(defaultCpuThreads() / Math.max(1, hosts)));
}
