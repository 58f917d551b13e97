// The extension's settings (package.json `contributes.configuration`, `starAttention.*`), read in one place.
import * as vscode from 'vscode';
import { SELECTION_MODES, type SelectionMode } from '../engine/star/selection/blockSelection';
import { KV_DTYPES, type KvDtypeSetting } from '../engine/runtime/kvBytes';

export type HostKindSetting = 'auto' | 'webview' | 'node-webgpu' | 'cpu';

export interface Settings {
  readonly chunkSize: number;
  /** undefined = the chunk size (the setting's 0). */
  readonly anchorSize: number | undefined;
  readonly hosts: number;
  readonly model: string;
  readonly maxNewTokens: number;
  readonly temperature: number;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly cacheMaxBytes: number;
  /** Storage type of new disk cache entries ('auto': f16 within the model's context, q8 beyond; kvDtypeFor). */
  readonly cacheKvDtype: KvDtypeSetting;
  readonly indexOnStartup: boolean;
  readonly hostKind: HostKindSetting;
  /** How a question's blocks are ranked when the repository does not fit the model's context. */
  readonly selection: SelectionMode;
}

export const SECTION = 'starAttention';

export function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration(SECTION);
  const int = (key: string, fallback: number, min: number) => {
    const v = c.get<number>(key, fallback);
    return Number.isFinite(v) && v >= min ? Math.floor(v) : fallback;
  };
  const anchor = int('anchorSize', 0, 0);
  const kind = c.get<string>('hostKind', 'auto');
  return {
    chunkSize: int('chunkSize', 2048, 16),
    anchorSize: anchor > 0 ? anchor : undefined,
    hosts: Math.min(8, int('hosts', 1, 1)),
    model: c.get<string>('model', '').trim(),
    maxNewTokens: int('maxNewTokens', 512, 1),
    temperature: Math.max(0, c.get<number>('temperature', 0) || 0),
    include: c.get<string[]>('include', []).filter((g) => typeof g === 'string' && g.length > 0),
    exclude: c.get<string[]>('exclude', []).filter((g) => typeof g === 'string' && g.length > 0),
    cacheMaxBytes: Math.round((c.get<number>('cache.maxSizeGB', 4) > 0 ? c.get<number>('cache.maxSizeGB', 4) : 4) * 1024 ** 3),
    cacheKvDtype: KV_DTYPES.find((d) => d === c.get<string>('cache.kvDtype', 'auto')) ?? 'auto',
    indexOnStartup: c.get<boolean>('indexOnStartup', true),
    hostKind: kind === 'webview' || kind === 'node-webgpu' || kind === 'cpu' ? kind : 'auto',
    selection: SELECTION_MODES.find((m) => m === c.get<string>('selection', 'auto')) ?? 'auto',
  };
}

/** Settings whose change needs new hosts (weights reloaded); the others only need a new block plan. */
export const POOL_SETTINGS = ['model', 'hosts', 'hostKind'].map((k) => `${SECTION}.${k}`);
export const LAYOUT_SETTINGS = ['chunkSize', 'anchorSize', 'include', 'exclude', 'cache.maxSizeGB', 'cache.kvDtype'].map((k) => `${SECTION}.${k}`);
