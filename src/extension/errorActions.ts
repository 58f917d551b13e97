// Turns an error into what a person can do about it: a message and the command that fixes it.
import { CancelledError, DeviceError, FormatError, UnsupportedError } from '../engine/errors';
import type { ErrorAction } from '../protocol/chatMessages';
import { NoModelError } from './codebaseService';

export interface ExplainedError {
  readonly message: string;
  readonly cancelled: boolean;
  readonly actions: readonly ErrorAction[];
}

export function explainError(err: unknown): ExplainedError {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof CancelledError) return { message: 'Stopped.', cancelled: true, actions: [] };
  if (err instanceof NoModelError) return { message, cancelled: false, actions: [{ label: 'Select Model', command: 'starAttention.selectModel' }] };
  if (err instanceof FormatError || err instanceof UnsupportedError) {
    return { message, cancelled: false, actions: [{ label: 'Select Model', command: 'starAttention.selectModel' }, { label: 'Show Log', command: 'starAttention.showLog' }] };
  }
  if (err instanceof DeviceError) {
    return { message, cancelled: false, actions: [{ label: 'Show Log', command: 'starAttention.showLog' }, { label: 'Settings', command: 'workbench.action.openSettings' }] };
  }
  return { message, cancelled: false, actions: [{ label: 'Show Log', command: 'starAttention.showLog' }] };
}
