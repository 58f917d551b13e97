// Every kernel's uniform parameters, declared once: the field names and types in order. The WGSL `struct Params`
// each kernel reads is generated from the declaration (kernelTable.ts prepends it; the .wgsl files declare none), and
// the backend packs its values by name through the same declaration, so the order on both sides is one order and a
// missing, extra or misspelt field is a compile error here or a WGSL error in test/webgpu-wgsl.test.ts.
import { PARAM_BYTES } from './pipelines';
import { f32, i32, type ParamValue } from './recorder';

/** Every field is one 4-byte scalar: WGSL lays such a struct out packed, in declaration order, as the arena slot is. */
export type ParamType = 'u32' | 'i32' | 'f32';
type Fields = Readonly<Record<string, ParamType>>;

export interface ParamStruct<F extends Fields = Fields> {
  readonly fields: F;
  /** `struct Params { name: type, ... }`, the WGSL every kernel of this struct reads its uniform through. */
  readonly wgsl: string;
  /** The values in declaration order, tagged by their declared type for the arena (Recorder.params). */
  pack(values: { readonly [K in keyof F]: number }): ParamValue[];
}

function paramStruct<const F extends Fields>(fields: F): ParamStruct<F> {
  const names = Object.keys(fields);
  if (names.length * 4 > PARAM_BYTES) throw new RangeError(`kernel parameters: ${names.length} fields exceed ${PARAM_BYTES} bytes`);
  const tag: Record<ParamType, (v: number) => ParamValue> = { u32: (v) => v, i32, f32 };
  return {
    fields,
    wgsl: `struct Params { ${names.map((n) => `${n}: ${fields[n]}`).join(', ')} }`,
    pack: (values) => names.map((n) => tag[fields[n]!](values[n as keyof F])),
  };
}

export const PARAMS = {
  embed: paramStruct({ n: 'u32', cols: 'u32', row_start: 'u32', part_rows: 'u32', row_bytes: 'u32' }),
  rmsnorm: paramStruct({ rows: 'u32', cols: 'u32', eps: 'f32' }),
  /** gemv.wgsl, gemv_subgroup.wgsl and matmul.wgsl (through matmul_common.wgsl). */
  matmul: paramStruct({ n: 'u32', k: 'u32', out_cols: 'u32', row_start: 'u32', part_rows: 'u32', row_bytes: 'u32', bias_kind: 'u32' }),
  swiglu: paramStruct({ len: 'u32' }),
  add: paramStruct({ len: 'u32' }),
  attention: paramStruct({
    n: 'u32', n_heads: 'u32', n_kv_heads: 'u32', head_dim: 'u32',
    q_cols: 'u32', kv_width: 'u32', length: 'u32', causal: 'u32',
    causal_offset: 'i32', chunk: 'u32', n_chunks: 'u32', split_base: 'u32',
    total_splits: 'u32', scale: 'f32', row_start: 'u32', row_count: 'u32',
    row_base: 'u32',
  }),
  attentionReduce: paramStruct({ n: 'u32', n_heads: 'u32', head_dim: 'u32', total_splits: 'u32', out_cols: 'u32', lse_cols: 'u32', write_lse: 'u32' }),
  merge: paramStruct({ rows: 'u32', n_heads: 'u32', head_dim: 'u32', out_cols: 'u32', lse_cols: 'u32', b_out_cols: 'u32', b_lse_cols: 'u32' }),
  /** sample.wgsl: argmax and top_p. */
  sample: paramStruct({ rows: 'u32', cols: 'u32', temperature: 'f32', top_p: 'f32', uniform_: 'f32' }),
  rope: paramStruct({ rows: 'u32', width: 'u32', head_dim: 'u32', row0: 'u32', const_pos_flag: 'u32', const_pos: 'i32' }),
  peak: paramStruct({ iters: 'u32', a: 'f32', b: 'f32' }),
} as const;
