// Messages between a page (the webview) and an engine worker that owns a GPU device.
// Every request carries an id; replies and streamed chunks echo it. Errors cross the boundary as data
// ({name, message, file}) and are rebuilt into the engine's error classes on the other side.
import { CancelledError, DeviceError, EngineError, FormatError, UnsupportedError } from '../engine/errors';

export type EngineRequest =
  | { kind: 'load'; id: number; name: string; files: Record<string, Blob> }
  | { kind: 'generate'; id: number; promptIds: number[]; maxTokens: number; temperature: number; topP?: number; seed?: number }
  | { kind: 'cancel'; id: number; target: number };

export type EngineReply =
  | { kind: 'loaded'; id: number; device: string; architecture: string; f16: boolean }
  | { kind: 'token'; id: number; token: number; text: string }
  | { kind: 'done'; id: number; ids: number[]; text: string; stats: GenerationStats }
  | { kind: 'error'; id: number; error: SerializedError };

export interface GenerationStats {
  readonly promptTokens: number;
  readonly generatedTokens: number;
  readonly prefillTokensPerSec: number;
  readonly decodeTokensPerSec: number;
  readonly device: string;
}

export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly file?: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof EngineError) return { name: err.name, message: err.message, file: err.file };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

const errorClasses: Record<string, new (message: string, file?: string) => EngineError> = {
  FormatError,
  UnsupportedError,
  DeviceError,
  EngineError,
};

export function deserializeError(e: SerializedError): Error {
  if (e.name === 'CancelledError') return new CancelledError(e.message);
  const Cls = errorClasses[e.name];
  if (!Cls) return Object.assign(new Error(e.message), { name: e.name });
  // The message already carries the file prefix; rebuild without prefixing it twice.
  const err = new Cls(e.message);
  return Object.assign(err, { file: e.file });
}
