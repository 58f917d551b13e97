// Every compute kernel the WebGPU backend can compile, as a table: each kernel's parameter domain and the spec it
// builds from one choice of parameters. The backend asks this table for every pipeline (it holds no WGSL of its
// own), and test/webgpu-wgsl.test.ts validates every variant the domains span, so a new kernel or variant cannot
// reach a device unchecked.
import addWgsl from '../../../../kernels/add.wgsl';
import attentionWgsl from '../../../../kernels/attention.wgsl';
import attentionReduceWgsl from '../../../../kernels/attention_reduce.wgsl';
import dequantWgsl from '../../../../kernels/dequant.wgsl';
import embedWgsl from '../../../../kernels/embed.wgsl';
import gemvWgsl from '../../../../kernels/gemv.wgsl';
import gemvSubgroupWgsl from '../../../../kernels/gemv_subgroup.wgsl';
import matmulWgsl from '../../../../kernels/matmul.wgsl';
import matmulCommonWgsl from '../../../../kernels/matmul_common.wgsl';
import mergeWgsl from '../../../../kernels/merge.wgsl';
import peakWgsl from '../../../../kernels/peak.wgsl';
import rmsnormWgsl from '../../../../kernels/rmsnorm.wgsl';
import ropeWgsl from '../../../../kernels/rope.wgsl';
import sampleWgsl from '../../../../kernels/sample.wgsl';
import swigluWgsl from '../../../../kernels/swiglu.wgsl';
import type { TensorType } from '../../model/types';
import { PARAMS, type ParamStruct } from './kernelParams';
import type { KernelSpec } from './pipelines';

/** Every weight type; the check below fails to compile when TensorType gains one that is not listed. */
export const WEIGHT_TYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'] as const satisfies readonly TensorType[];
type Unlisted = Exclude<TensorType, (typeof WEIGHT_TYPES)[number]>;
const everyTypeListed: [Unlisted] extends [never] ? true : never = true;
void everyTypeListed;

type Domain = Readonly<Record<string, readonly (string | boolean)[]>>;
type Params<D extends Domain> = { readonly [K in keyof D]: D[K][number] };

export interface Kernel<D extends Domain> {
  readonly domain: D;
  spec(params: Params<D>): KernelSpec;
}

function kernel<const D extends Domain>(domain: D, spec: (params: Params<D>) => KernelSpec): Kernel<D> {
  return { domain, spec };
}

const weightKernel = (file: string, source: string, entry: string, slots: string, params: ParamStruct, type: TensorType): KernelSpec =>
  ({ file, source, entry, slots, params, prelude: dequantFor(type), subs: { WTYPE: type } });

export const KERNELS = {
  embed: kernel({ type: WEIGHT_TYPES }, ({ type }) => weightKernel('embed', embedWgsl, 'main', 'urdw', PARAMS.embed, type)),
  rmsnorm: kernel({ type: WEIGHT_TYPES, perThread: [false, true] },
    ({ type, perThread }) => weightKernel('rmsnorm', rmsnormWgsl, perThread ? 'per_thread' : 'main', 'urrw', PARAMS.rmsnorm, type)),
  /**
   * 'gemv' (cooperative, few rows, tree reduction), 'gemv-subgroup' (the same reduced by subgroupAdd; adapters with
   * `subgroups`), 'gemv-per-thread' (barrier-free, any rows; emulated adapters) or 'tiled' (register-tiled prefill).
   */
  matmul: kernel({ type: WEIGHT_TYPES, ftype: ['f32', 'f16'], kernel: ['gemv', 'gemv-subgroup', 'gemv-per-thread', 'tiled'] }, ({ type, ftype, kernel: k }) => {
    const common = { slots: 'urrwr', params: PARAMS.matmul, prelude: `${dequantFor(type)}\n${matmulCommonWgsl}`, subs: { WTYPE: type, FTYPE: ftype } };
    if (k === 'tiled') return { file: 'matmul', source: matmulWgsl, entry: 'main', ...common };
    if (k === 'gemv-subgroup') return { file: 'gemv_subgroup', source: gemvSubgroupWgsl, entry: 'main', ...common };
    return { file: 'gemv', source: gemvWgsl, entry: k === 'gemv' ? 'main' : 'per_thread', ...common };
  }),
  swiglu: kernel({}, () => ({ file: 'swiglu', source: swigluWgsl, entry: 'main', slots: 'urrw', params: PARAMS.swiglu })),
  add: kernel({}, () => ({ file: 'add', source: addWgsl, entry: 'main', slots: 'uwr', params: PARAMS.add })),
  /** 'main' (a workgroup per row, head and split: decode), 'per_thread' (emulated adapters), 'tiled' (prefill on GPUs). */
  attention: kernel({ entry: ['main', 'per_thread', 'tiled'] },
    ({ entry }) => ({ file: 'attention', source: attentionWgsl, entry, slots: 'urrrw', params: PARAMS.attention })),
  attentionReduce: kernel({ perThread: [false, true] },
    ({ perThread }) => ({ file: 'attention_reduce', source: attentionReduceWgsl, entry: perThread ? 'per_thread' : 'main', slots: 'urww', params: PARAMS.attentionReduce })),
  merge: kernel({}, () => ({ file: 'merge', source: mergeWgsl, entry: 'main', slots: 'uwwrr', params: PARAMS.merge })),
  argmax: kernel({}, () => ({ file: 'sample', source: sampleWgsl, entry: 'argmax', slots: 'urw', params: PARAMS.sample })),
  topP: kernel({}, () => ({ file: 'sample', source: sampleWgsl, entry: 'top_p', slots: 'urww', params: PARAMS.sample })),
  rope: kernel({ adjacent: [false, true] },
    ({ adjacent }) => ({ file: 'rope', source: ropeWgsl, entry: 'main', slots: 'uwd', params: PARAMS.rope, subs: { ADJACENT: String(adjacent) } })),
  /** Device peak probes for the kernel benchmark only. */
  peak: kernel({ probe: ['fma', 'read'] }, ({ probe }) => ({ file: 'peak', source: peakWgsl, entry: `probe_${probe}`, slots: 'urw', params: PARAMS.peak })),
} as const;

/** Every variant of every kernel: each combination of its domain's values. */
export function* everyKernelVariant(): Generator<{ readonly name: string; readonly params: Readonly<Record<string, string | boolean>>; readonly spec: KernelSpec }> {
  for (const [name, k] of Object.entries(KERNELS) as [string, Kernel<Domain>][]) {
    let combos: Record<string, string | boolean>[] = [{}];
    for (const [param, values] of Object.entries(k.domain)) combos = combos.flatMap((c) => values.map((v) => ({ ...c, [param]: v })));
    for (const params of combos) yield { name, params, spec: k.spec(params) };
  }
}

/**
 * The dequant library with only the one dq4_* function a pipeline uses (shader compile time on
 * emulated adapters grows with the code handed to them). Functions are split at top-level `fn`.
 */
export function dequantFor(type: TensorType): string {
  let cached = dequantCache.get(type);
  if (!cached) {
    const chunks = dequantWgsl.split(/\n(?=fn )/);
    cached = chunks.filter((c) => !c.startsWith('fn dq4_') || c.startsWith(`fn dq4_${type}(`)).join('\n');
    dequantCache.set(type, cached);
  }
  return cached;
}
const dequantCache = new Map<TensorType, string>();
