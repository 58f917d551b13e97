import { ShaderStage } from './flags';
import type { ParamStruct } from './kernelParams';

/*
 * Pipeline, layout and bind-group caches. Nothing here is created per token: pipelines are keyed
 * by what changes the shader text (file, entry point, substitutions), bind groups by the identity
 * of the buffers they bind (per-dispatch parameters come through dynamic offsets into the arena).
 */

/**
 * One binding slot, by position = binding index:
 *  'u' uniform parameters (dynamic offset into the arena, 256 bytes)
 *  'd' read-only storage window of the arena (dynamic offset; small int/float tables)
 *  'r' read-only storage buffer, bound whole
 *  'w' read-write storage buffer, bound whole
 */
export type SlotKind = 'u' | 'd' | 'r' | 'w';

export const PARAM_BYTES = 256;

export interface KernelSpec {
  /** Cache key part naming the source (file name). */
  readonly file: string;
  readonly source: string;
  readonly entry: string;
  /** Textual substitutions applied to the source (every occurrence of each key, e.g. WTYPE in dq4_WTYPE). */
  readonly subs?: Readonly<Record<string, string>>;
  readonly slots: string; // e.g. "urrw"
  /** The uniform's fields (binding 0): its WGSL struct is prepended, the backend packs values through it. */
  readonly params: ParamStruct;
  /** Source prepended (e.g. the dequant library). */
  readonly prelude?: string;
}

/**
 * The WGSL a spec compiles to: the Params struct + prelude + source, substitutions applied, `enable f16` when used and allowed, and
 * `enable subgroups` when subgroup builtins are used (the backend picks such a kernel only on a device with them).
 */
export function shaderCode(spec: KernelSpec, enableF16: boolean): string {
  let code = `${spec.params.wgsl}\n${spec.prelude ? spec.prelude + '\n' : ''}${spec.source}`;
  for (const [k, v] of Object.entries(spec.subs ?? {})) code = code.split(k).join(v);
  if (/\bsubgroup(Add|_size|_invocation_id)\b/.test(code)) code = 'enable subgroups;\n' + code;
  if (enableF16 && /\bf16\b/.test(code)) code = 'enable f16;\n' + code;
  return code;
}

export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly groupsByBuffer = new Map<number, Set<string>>();
  private readonly ids = new WeakMap<GPUBuffer, number>();
  private nextId = 1;

  constructor(private readonly device: GPUDevice, private readonly windowBytes: number, private readonly enableF16: boolean) {}

  pipeline(spec: KernelSpec): GPUComputePipeline {
    const subsKey = spec.subs ? Object.entries(spec.subs).map(([k, v]) => `${k}=${v}`).join(',') : '';
    const key = `${spec.file}:${spec.entry}:${subsKey}:${spec.slots}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const moduleKey = `${spec.file}:${subsKey}`;
    let module = this.modules.get(moduleKey);
    if (!module) {
      module = this.device.createShaderModule({ code: shaderCode(spec, this.enableF16), label: moduleKey });
      this.modules.set(moduleKey, module);
    }
    p = this.device.createComputePipeline({
      label: key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [this.layout(spec.slots)] }),
      compute: { module, entryPoint: spec.entry },
    });
    this.pipelines.set(key, p);
    return p;
  }

  layout(slots: string): GPUBindGroupLayout {
    let l = this.layouts.get(slots);
    if (l) return l;
    l = this.device.createBindGroupLayout({
      label: `slots ${slots}`,
      entries: [...slots].map((kind, binding): GPUBindGroupLayoutEntry => ({
        binding,
        visibility: ShaderStage.COMPUTE,
        buffer:
          kind === 'u' ? { type: 'uniform', hasDynamicOffset: true, minBindingSize: PARAM_BYTES }
          : kind === 'd' ? { type: 'read-only-storage', hasDynamicOffset: true }
          : kind === 'r' ? { type: 'read-only-storage' }
          : { type: 'storage' },
      })),
    });
    this.layouts.set(slots, l);
    return l;
  }

  bindGroup(slots: string, buffers: readonly GPUBuffer[]): GPUBindGroup {
    const ids = buffers.map((b) => this.id(b));
    const key = `${slots}:${ids.join(',')}`;
    let g = this.groups.get(key);
    if (g) return g;
    g = this.device.createBindGroup({
      layout: this.layout(slots),
      entries: buffers.map((buffer, binding): GPUBindGroupEntry => {
        const kind = slots[binding];
        if (kind === 'u') return { binding, resource: { buffer, size: PARAM_BYTES } };
        if (kind === 'd') return { binding, resource: { buffer, size: this.windowBytes } };
        return { binding, resource: { buffer } };
      }),
    });
    this.groups.set(key, g);
    for (const id of new Set(ids)) {
      let set = this.groupsByBuffer.get(id);
      if (!set) this.groupsByBuffer.set(id, (set = new Set()));
      set.add(key);
    }
    return g;
  }

  /** Drops the bind groups that reference a buffer about to be destroyed. */
  forget(buffer: GPUBuffer): void {
    const id = this.ids.get(buffer);
    if (id === undefined) return;
    for (const key of this.groupsByBuffer.get(id) ?? []) this.groups.delete(key);
    this.groupsByBuffer.delete(id);
  }

  private id(b: GPUBuffer): number {
    let id = this.ids.get(b);
    if (id === undefined) this.ids.set(b, (id = this.nextId++));
    return id;
  }
}
