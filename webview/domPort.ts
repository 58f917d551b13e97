// MessagePortLike (src/protocol/port.ts) over the DOM: a dedicated Worker seen from its page, the worker's own
// scope (self), and a MessagePort (one end of a MessageChannel between two workers).

import type { MessagePortLike } from '../src/protocol/port';

/** The members of Worker, DedicatedWorkerGlobalScope and MessagePort used here (one type for all three). */
export interface DomMessageTarget {
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  addEventListener(type: 'error', listener: (event: Event) => void): void;
  removeEventListener(type: 'error', listener: (event: Event) => void): void;
  /** A MessagePort delivers nothing before start() when listened to with addEventListener. */
  start?(): void;
}

/** `name` goes into the error a crashed worker rejects pending calls with. */
export function domPort(target: DomMessageTarget, name: string): MessagePortLike {
  return {
    postMessage: (message, transfer) => target.postMessage(message, (transfer ?? []) as Transferable[]),
    onMessage(handler) {
      const listener = (event: MessageEvent) => handler(event.data);
      target.addEventListener('message', listener);
      target.start?.();
      return () => target.removeEventListener('message', listener);
    },
    onClose(handler) {
      const listener = (event: Event) => {
        const message = (event as ErrorEvent).message || 'the worker script failed';
        handler(new Error(`${name} crashed: ${message}`));
      };
      target.addEventListener('error', listener);
      return () => target.removeEventListener('error', listener);
    },
  };
}
