// Every kernel variant's WGSL, taken from the backend's own kernel table (kernelTable.ts: the only place the backend
// gets pipelines from) and assembled as the backend assembles it, validated by naga (wgpu's shader compiler,
// independent of Dawn/Tint). This is the only check the f16 variants (FTYPE = f16) get on machines whose adapter
// lacks shader-f16 (SwiftShader); the f32 variants also run in webgpu-ops.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseWgsl, validate } from 'naga-wasm';
import { PARAMS } from '../src/engine/backend/webgpu/kernelParams';
import { shaderCode } from '../src/engine/backend/webgpu/pipelines';
import { everyKernelVariant, KERNELS, WEIGHT_TYPES } from '../src/engine/backend/webgpu/kernelTable';
import { repoRoot } from './support/paths';

test('every variant in the backend\'s kernel table validates (f16 products with f16 enabled)', () => {
  const failures: string[] = [];
  const seen = new Map<string, number>();
  for (const { name, params, spec } of everyKernelVariant()) {
    seen.set(name, (seen.get(name) ?? 0) + 1);
    const enableF16 = spec.subs?.FTYPE === 'f16';
    try {
      // naga takes subgroup builtins without WGSL's `enable subgroups;` (it gates them by capability) and
      // rejects the directive, so it is dropped for naga only; Dawn compiles the code as is in webgpu-ops.test.ts.
      validate(parseWgsl(shaderCode(spec, enableF16).replace(/^enable subgroups;\n/m, '')));
    } catch (err) {
      failures.push(`${name} ${JSON.stringify(params)}: ${(err as Error).message}`);
    }
  }
  assert.deepEqual(failures, []);
  // The table spans what the backend uses: every kernel, every weight type, both products, all four matmul kernels.
  assert.deepEqual([...seen.keys()], Object.keys(KERNELS));
  assert.equal(seen.get('matmul'), WEIGHT_TYPES.length * 2 * 4);
  assert.equal(seen.get('rmsnorm'), WEIGHT_TYPES.length * 2);
});

test('the backend holds no WGSL of its own: every pipeline comes from the kernel table', () => {
  const source = readFileSync(resolve(repoRoot, 'src/engine/backend/webgpu/webgpuBackend.ts'), 'utf8');
  assert.doesNotMatch(source, /\.wgsl'/, 'webgpuBackend.ts imports a kernel directly');
  assert.doesNotMatch(source, /source:\s*\w+/, 'webgpuBackend.ts builds a kernel spec inline');
});

test('each kernel\'s uniform struct is declared once (kernelParams.ts) and packed in its order', () => {
  // No kernel file declares its own: the struct every variant compiles is the declaration's, once.
  for (const f of readdirSync(resolve(repoRoot, 'kernels')).filter((n) => n.endsWith('.wgsl'))) {
    assert.doesNotMatch(readFileSync(resolve(repoRoot, 'kernels', f), 'utf8'), /^\s*struct Params\b/m, `${f} declares struct Params`);
  }
  for (const { name, spec } of everyKernelVariant()) {
    const code = shaderCode(spec, false);
    assert.equal(code.match(/^struct Params\b/gm)?.length, 1, name);
    assert.ok(code.includes(spec.params.wgsl), name);
  }
  // The struct's fields are the declaration's, in its order.
  const declared = [...PARAMS.attention.wgsl.matchAll(/(\w+): (u32|i32|f32)/g)].map((m) => [m[1], m[2]]);
  assert.deepEqual(declared, Object.entries(PARAMS.attention.fields));
  // Values by name land at their field's index with their field's type.
  const names = Object.keys(PARAMS.attention.fields) as (keyof typeof PARAMS.attention.fields)[];
  const values = Object.fromEntries(names.map((n, i) => [n, n === 'causal_offset' ? -(i + 1) : n === 'scale' ? i + 0.5 : i + 1])) as Record<(typeof names)[number], number>;
  assert.deepEqual(PARAMS.attention.pack(values), names.map((n, i) => (n === 'causal_offset' ? { i: -(i + 1) } : n === 'scale' ? { f: i + 0.5 } : i + 1)));
});
