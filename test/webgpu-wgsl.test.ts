// Every kernel variant's WGSL, as the backend assembles it, validated by naga (wgpu's shader compiler,
// independent of Dawn/Tint). This is the only check the f16 variants (FTYPE = f16) get on machines
// whose adapter lacks shader-f16 (SwiftShader); the f32 variants also run in webgpu-ops.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWgsl, validate } from 'naga-wasm';
import addWgsl from '../kernels/add.wgsl';
import attentionWgsl from '../kernels/attention.wgsl';
import attentionReduceWgsl from '../kernels/attention_reduce.wgsl';
import embedWgsl from '../kernels/embed.wgsl';
import mergeWgsl from '../kernels/merge.wgsl';
import rmsnormWgsl from '../kernels/rmsnorm.wgsl';
import ropeWgsl from '../kernels/rope.wgsl';
import sampleWgsl from '../kernels/sample.wgsl';
import swigluWgsl from '../kernels/swiglu.wgsl';
import type { TensorType } from '../src/engine/model/types';
import { TENSOR_TYPES } from '../src/engine/quant/formats';
import { shaderCode, type KernelSpec } from '../src/engine/backend/webgpu/pipelines';
import { dequantFor, matmulSpec } from '../src/engine/backend/webgpu/webgpuBackend';

const TYPES: readonly TensorType[] = TENSOR_TYPES;

function check(spec: KernelSpec, enableF16: boolean): void {
  const code = shaderCode(spec, enableF16);
  try {
    validate(parseWgsl(code));
  } catch (err) {
    assert.fail(`${spec.file} ${JSON.stringify(spec.subs ?? {})}${enableF16 ? ' (f16 enabled)' : ''}: ${(err as Error).message}`);
  }
}

test('weight kernels (gemv, per-thread gemv, tiled matmul) validate for every type, f32 and f16 products', () => {
  for (const type of TYPES) {
    for (const ftype of ['f32', 'f16'] as const) {
      for (const kernel of ['gemv', 'gemv-per-thread', 'tiled'] as const) check(matmulSpec(type, ftype, kernel), ftype === 'f16');
    }
    check({ file: 'embed', source: embedWgsl, entry: 'main', slots: 'urdw', prelude: dequantFor(type), subs: { WTYPE: type } }, false);
    check({ file: 'rmsnorm', source: rmsnormWgsl, entry: 'main', slots: 'urrw', prelude: dequantFor(type), subs: { WTYPE: type } }, false);
  }
});

test('the other kernels validate (both RoPE layouts)', () => {
  for (const adjacent of ['true', 'false']) check({ file: 'rope', source: ropeWgsl, entry: 'main', slots: 'uwd', subs: { ADJACENT: adjacent } }, false);
  for (const [file, source] of [['add', addWgsl], ['swiglu', swigluWgsl], ['attention', attentionWgsl], ['attention_reduce', attentionReduceWgsl],
    ['merge', mergeWgsl], ['sample', sampleWgsl]] as const) {
    check({ file, source, entry: 'main', slots: '' }, false);
  }
});
