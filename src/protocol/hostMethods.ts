// The host protocol's one method map: every method a host worker answers, with its arguments, result and streamed
// events. StarHostClient's calls, the pools' calls (hostPool.ts) and the worker's handlers (starHost.ts,
// hostRuntime.ts) are all typed by it, so a wrong name, argument or result is a compile error on either side.
import type { AnswerRequest, AnswerResult, PrefixRequest } from '../engine/star/answer';
import type { BlockMove } from '../engine/star/host';
import type { BlockKv, BlockSpec, HostAttention } from '../engine/star/types';
import type { Backend } from '../engine/backend/types';
import type { Method } from './rpc';

/** StarHost's methods (src/engine/star/host.ts), one call each. */
export interface StarHostMethods {
  readonly encode: Method<[anchor: readonly number[], blocks: readonly BlockSpec[]], BlockKv[]>;
  readonly load: Method<[blocks: readonly BlockKv[]], void>;
  readonly blockIndices: Method<[], number[]>;
  readonly attend: Method<[layer: number, q: Float32Array, rows: number, perBlock: boolean], HostAttention>;
  readonly clear: Method<[], void>;
  readonly drop: Method<[indices: readonly number[]], void>;
  readonly move: Method<[moves: readonly BlockMove[]], void>;
  readonly dispose: Method<[], void>;
}

/** describe()'s answer. */
export interface HostDescription {
  readonly name: string;
  /** The backend's device, e.g. "SwiftShader (emulated)" or "cpu (4 threads)". */
  readonly device: string;
  readonly backend: Backend['kind'];
}

/** stats()'s answer: LocalStarHost.stats, plus the tokens answer() generated (a cancelled answer stops counting). */
export interface HostStats {
  readonly blocksEncoded: number;
  readonly tokensEncoded: number;
  readonly wavesPerLayer: number;
  readonly answerTokens: number;
}

/** An answer's streamed event: one generated id and the text it completes. */
export interface AnswerToken {
  readonly id: number;
  readonly text: string;
}

/** Every method a host worker answers (hostRuntime.ts): StarHost's, plus describe, stats, answer (phase 2) and prefill. */
export interface HostMethods extends StarHostMethods {
  readonly describe: Method<[], HostDescription>;
  readonly stats: Method<[], HostStats>;
  readonly answer: Method<[req: AnswerRequest], AnswerResult, AnswerToken>;
  /** The start of the next question, run ahead of it (prefillQuery): held until the next answer, which consumes it. */
  readonly prefill: Method<[req: PrefixRequest], void>;
}
