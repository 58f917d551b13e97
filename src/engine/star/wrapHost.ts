// A StarHost that adds something to some of another host's calls (keeps keys as they pass, records what was
// encoded) and forwards the rest. Hand-written wrappers forgot the optional drop and move, so a caller that
// checks for them fell back to re-encoding through the wrapper without a word: here every method forwards, and
// drop/move exist exactly where the inner host has them.
import type { StarHost } from './host';

type Methods = { [K in Exclude<keyof StarHost, 'name'>]-?: StarHost[K] };

/** Replacements for some of StarHost's methods (drop and move only take effect where the inner host has them). */
export type HostOverrides = Partial<Methods>;

export function wrapHost(host: StarHost, overrides: HostOverrides): StarHost {
  const drop = host.drop?.bind(host);
  const move = host.move?.bind(host);
  // Every method listed, the optional ones too (`-?`): a method StarHost gains and this lacks is a compile error.
  const methods: Methods = {
    encode: overrides.encode ?? ((anchor, blocks, signal) => host.encode(anchor, blocks, signal)),
    load: overrides.load ?? ((blocks) => host.load(blocks)),
    blockIndices: overrides.blockIndices ?? (() => host.blockIndices()),
    attend: overrides.attend ?? ((layer, q, rows, perBlock) => host.attend(layer, q, rows, perBlock)),
    clear: overrides.clear ?? (() => host.clear()),
    drop: drop && (overrides.drop ?? drop),
    move: move && (overrides.move ?? move),
    dispose: overrides.dispose ?? (() => host.dispose()),
  };
  return { name: host.name, ...methods };
}

/** `host` with encode() reported before (`onStart`) and after (`onEncoded`, the blocks it encoded). */
export function recordingEncodes(host: StarHost, onEncoded: (specs: readonly { index: number; tokens: readonly number[] }[]) => void, onStart: () => void): StarHost {
  return wrapHost(host, {
    encode: async (anchor, blocks, signal) => {
      onStart();
      const kvs = await host.encode(anchor, blocks, signal);
      onEncoded(blocks);
      return kvs;
    },
  });
}
