// MessagePortLike (src/protocol/port.ts) over Node's worker_threads: a Worker seen from its parent, and a
// MessagePort (parentPort inside the worker, or one end of a MessageChannel between two workers).
import type { MessagePort, TransferListItem, Worker } from 'node:worker_threads';
import { EngineError } from '../../engine/errors';
import type { MessagePortLike } from '../../protocol/port';

/** A worker from its parent's side; it closes when the worker crashes or exits. */
export function nodeWorkerPort(worker: Worker, name: string): MessagePortLike {
  return portOver(worker, (handler) => {
    const onError = (err: Error) => handler(new EngineError(`${name} crashed: ${err.message}`));
    const onExit = (code: number) => handler(new EngineError(`${name} exited (code ${code})`));
    worker.on('error', onError).on('exit', onExit);
    return () => worker.off('error', onError).off('exit', onExit);
  });
}

/** parentPort, or a MessageChannel end; it closes when the other end is closed (or its thread ended). */
export function nodeMessagePort(port: MessagePort, name: string): MessagePortLike {
  return portOver(port, (handler) => {
    const onClose = () => handler(new EngineError(`${name}: its port was closed`));
    port.on('close', onClose);
    return () => port.off('close', onClose);
  });
}

function portOver(target: Worker | MessagePort, onClose: NonNullable<MessagePortLike['onClose']>): MessagePortLike {
  return {
    postMessage: (message, transfer) => target.postMessage(message, transfer as TransferListItem[] | undefined),
    onMessage(handler) {
      target.on('message', handler);
      return () => target.off('message', handler);
    },
    onClose,
  };
}
