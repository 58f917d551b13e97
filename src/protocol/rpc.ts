// Request/reply over a MessagePortLike, both ends: one client (ids, pending map, streamed events, cancel,
// failAll when the other side dies) and one server dispatcher (a serial queue, since a LocalStarHost must
// not run two calls at once; cancel aborts the target call's AbortController; errors serialized).
//
// Wire messages (plain objects, structured-clonable):
//   client -> server  { rpc: 'call', id, method, args }     { rpc: 'cancel', id }   (id: the call to abort)
//   server -> client  { rpc: 'event', id, data }  (0..n, e.g. streamed tokens)  then  { rpc: 'result', id, value }
//                     or { rpc: 'error', id, error }
import { CancelledError, EngineError } from '../engine/errors';
import { serialQueue } from '../engine/util/serialQueue';
import { deserializeError, serializeError, type SerializedError } from './errors';
import type { MessagePortLike, Transferable } from './port';

/** One method's contract: its arguments, its result, and the events it streams before the result. */
export interface Method<Params extends readonly unknown[], Result, Event = never> {
  readonly params: Params;
  readonly result: Result;
  readonly event: Event;
}

/** A protocol: method name -> Method. Both RpcClient.call and RpcServer's handlers are typed by one map. */
export type MethodMap<M> = { readonly [K in keyof M]: Method<readonly unknown[], unknown, unknown> };

/** What a handler may return: its result, or the result with buffers to move (Transferring). */
export type Reply<R> = R | Transferring<R> | Promise<R | Transferring<R>>;

export type Handler<Params extends readonly unknown[], Result, Event> = (args: Params, ctx: CallContext<Event>) => Reply<Result>;

/** One handler per method of `M`, each typed by it. */
export type Handlers<M extends MethodMap<M>> = { readonly [K in keyof M]: Handler<M[K]['params'], M[K]['result'], M[K]['event']> };

export type RpcMessage =
  | { readonly rpc: 'call'; readonly id: number; readonly method: string; readonly args: readonly unknown[] }
  | { readonly rpc: 'cancel'; readonly id: number }
  | { readonly rpc: 'event'; readonly id: number; readonly data: unknown }
  | { readonly rpc: 'result'; readonly id: number; readonly value: unknown }
  | { readonly rpc: 'error'; readonly id: number; readonly error: SerializedError };

function isRpcMessage(m: unknown): m is RpcMessage {
  return typeof m === 'object' && m !== null && typeof (m as { rpc?: unknown }).rpc === 'string' && typeof (m as { id?: unknown }).id === 'number';
}

export interface CallOptions<Event = unknown> {
  /** Buffers of `args` to move instead of copy (the caller gives them up). */
  readonly transfer?: Transferable[];
  /** Aborting sends a cancel to the server and rejects the call with CancelledError at once. */
  readonly signal?: AbortSignal;
  /** Receives the call's streamed events, in order, before it settles. */
  readonly onEvent?: (data: Event) => void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  onEvent?: (data: unknown) => void;
}

export class RpcClient<M extends MethodMap<M>> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly failureListeners = new Set<(err: Error) => void>();

  /** `name` goes into errors ("host 1 (thread, cpu) was closed"). */
  constructor(private readonly port: MessagePortLike, readonly name: string) {
    this.unsubscribe.push(port.onMessage((m) => this.receive(m)));
    if (port.onClose) this.unsubscribe.push(port.onClose((reason) => this.failAll(reason)));
  }

  /** The error every call now rejects with, once the other side is gone or close() was called. */
  get failed(): Error | undefined {
    return this.failure;
  }

  call<K extends keyof M & string>(method: K, args: M[K]['params'], opts: CallOptions<M[K]['event']> = {}): Promise<M[K]['result']> {
    type R = M[K]['result'];
    if (this.failure) return Promise.reject(this.failure);
    if (opts.signal?.aborted) return Promise.reject(new CancelledError());
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const onAbort = (): void => {
        // The server stops at its next check; the caller need not wait for it (its reply is dropped).
        this.port.postMessage({ rpc: 'cancel', id } satisfies RpcMessage);
        this.take(id)?.reject(new CancelledError());
      };
      const done = () => opts.signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        // The wire is untyped: the value is what the handler of `method` returned (Handlers<M>).
        resolve: (v) => { done(); resolve(v as R); },
        reject: (e) => { done(); reject(e); },
        onEvent: opts.onEvent as ((data: unknown) => void) | undefined,
      });
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        this.port.postMessage({ rpc: 'call', id, method, args } satisfies RpcMessage, opts.transfer);
      } catch (err) {
        this.take(id)?.reject(err instanceof Error ? err : new EngineError(String(err)));
      }
    });
  }

  /** Rejects every pending and future call with `err` (the first failure wins). */
  failAll(err: Error): void {
    const first = !this.failure;
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    if (first) for (const l of [...this.failureListeners]) l(this.failure);
  }

  /** Called once, when this client fails for good (the other side gone, or close()); returns the unsubscribe. */
  onFailure(listener: (err: Error) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  /** Stops listening; pending and later calls reject with "<name> was closed". */
  close(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    this.failAll(new EngineError(`${this.name} was closed`));
  }

  private take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }

  private receive(m: unknown): void {
    if (!isRpcMessage(m)) return;
    if (m.rpc === 'event') {
      this.pending.get(m.id)?.onEvent?.(m.data);
      return;
    }
    if (m.rpc !== 'result' && m.rpc !== 'error') return;
    const p = this.take(m.id);
    if (!p) return; // cancelled earlier
    if (m.rpc === 'result') p.resolve(m.value);
    else p.reject(deserializeError(m.error));
  }
}

/** A handler's reply whose buffers move to the client instead of being copied (the server gives them up). */
export class Transferring<T> {
  constructor(readonly value: T, readonly transfer: Transferable[]) {}
}

export interface CallContext<Event = unknown> {
  /** Aborted by the client's cancel. */
  readonly signal: AbortSignal;
  /** Streams an event to the caller (before the result). */
  emit(data: Event, transfer?: Transferable[]): void;
}

export interface RpcServerOptions<M> {
  /** Methods answered at once, outside the serial queue (cheap reads that must not wait behind a long call). */
  readonly immediate?: readonly (keyof M & string)[];
}

/**
 * Serves `handlers` on any number of ports, all calls (from every port) through ONE serial queue, except the
 * `immediate` methods. A handler's thrown error goes back serialized; an aborted call always ends CancelledError.
 */
export class RpcServer<M extends MethodMap<M>> {
  private readonly serial = serialQueue();
  private readonly immediate: ReadonlySet<string>;

  /**
   * `handlers` may be a promise (a host still opening its model): every call waits for it, and a rejected one
   * answers every call with its error.
   */
  constructor(private readonly handlers: Handlers<M> | Promise<Handlers<M>>, opts: RpcServerOptions<M> = {}) {
    this.immediate = new Set(opts.immediate ?? []);
  }

  /** Starts answering calls arriving on `port`; returns the unsubscribe. */
  serve(port: MessagePortLike): () => void {
    const running = new Map<number, AbortController>();
    return port.onMessage((m) => {
      if (!isRpcMessage(m)) return;
      if (m.rpc === 'cancel') {
        running.get(m.id)?.abort(new CancelledError());
        return;
      }
      if (m.rpc !== 'call') return;
      const controller = new AbortController();
      running.set(m.id, controller);
      const run = () => this.run(port, m, controller.signal).finally(() => running.delete(m.id));
      if (this.immediate.has(m.method)) void run();
      else void this.serial(run);
    });
  }

  private async run(port: MessagePortLike, m: Extract<RpcMessage, { rpc: 'call' }>, signal: AbortSignal): Promise<void> {
    try {
      // The wire is untyped: a method this map lacks is refused, its arguments are what the client's call typed.
      const handlers = await this.handlers;
      const handler = Object.hasOwn(handlers, m.method)
        ? (handlers[m.method as keyof M] as Handler<readonly unknown[], unknown, unknown>)
        : undefined;
      if (!handler) throw new EngineError(`unknown method ${m.method}`);
      if (signal.aborted) throw new CancelledError();
      const ctx: CallContext = { signal, emit: (data, transfer) => port.postMessage({ rpc: 'event', id: m.id, data } satisfies RpcMessage, transfer) };
      const out = await handler(m.args, ctx);
      const [value, transfer] = out instanceof Transferring ? [out.value, out.transfer] : [out, undefined];
      port.postMessage({ rpc: 'result', id: m.id, value } satisfies RpcMessage, transfer);
    } catch (err) {
      const e = signal.aborted && !(err instanceof CancelledError) ? new CancelledError() : err;
      try {
        port.postMessage({ rpc: 'error', id: m.id, error: serializeError(e) } satisfies RpcMessage);
      } catch {
        // The port is gone: nobody is waiting any more.
      }
    }
  }
}
