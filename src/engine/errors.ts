/**
 * Errors the user can act on. Each names the file (or setting) and the problem.
 * They survive a worker boundary as {name, message, file} and are rebuilt on the other side.
 */
export class EngineError extends Error {
  constructor(message: string, readonly file?: string) {
    super(file ? `${file}: ${message}` : message);
    this.name = new.target.name;
  }
}
/** The file is not what it claims to be: bad magic, truncated, inconsistent sizes. */
export class FormatError extends EngineError {}
/** A valid file that uses something this engine does not support (architecture, tensor type, tokenizer). */
export class UnsupportedError extends EngineError {}
/** The operation was cancelled by the user. */
export class CancelledError extends EngineError {
  constructor(message = 'cancelled') {
    super(message);
  }
}
/** The GPU device was lost or could not be created. */
export class DeviceError extends EngineError {}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}
