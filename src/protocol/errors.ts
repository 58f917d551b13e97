// Errors across a message boundary: they cross as data ({name, message, file}) and are rebuilt into the engine's
// error classes on the other side, so `instanceof DeviceError` works on a worker's failure.
import { CancelledError, DeviceError, EngineError, FormatError, UnsupportedError } from '../engine/errors';

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
