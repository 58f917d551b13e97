// Messages between the extension host and the chat webview's UI. The same webview also carries the hosts'
// messages (`channel: 'hosts'`, src/protocol host pool), routed apart by `channel`: these are `channel: 'ui'`.
// Plain data only: the webview and the extension host share no code at run time.

/** One source of an answer: a file and the lines of its pieces in the context, ranked by attention share. */
export interface SourceView {
  /** Relative to its repository (shown). */
  readonly path: string;
  /** The file's URI (opened). */
  readonly uri: string;
  /** Fraction of the question's attention to the repository that went to this file. */
  readonly share: number;
  /** 1-based line ranges of the file's pieces in the context. */
  readonly spans: readonly { readonly startLine: number; readonly endLine: number }[];
}

/** What the status line of the panel shows. */
export interface StatusView {
  readonly model?: string;
  readonly folder?: string;
  /** e.g. "webview WebGPU (2 workers)"; with why this kind was chosen. */
  readonly hostKind?: string;
  readonly hostReason?: string;
  readonly device?: string;
  /** The model's context length in tokens (what the repository's size is shown against). */
  readonly modelContext?: number;
  readonly index?: {
    readonly state: 'idle' | 'indexing' | 'ready' | 'failed' | 'cancelled';
    readonly files?: number;
    readonly blocks?: number;
    readonly done?: number;
    readonly total?: number;
    readonly encoded?: number;
    readonly reused?: number;
    readonly shifted?: number;
    readonly tokensPerSec?: number;
    /** Tokens of the repository's context (anchor + blocks) after the last index; while indexing, an estimate. */
    readonly contextTokens?: number;
    /** The last index that encoded anything: kept until the next one that does, so an edit's re-encode stays visible. */
    readonly lastChange?: IndexChange;
    /** Why the index failed, and what fixes it (state 'failed'). */
    readonly error?: string;
    readonly actions?: readonly ErrorAction[];
  };
}

export interface IndexChange {
  /** Files whose blocks were encoded (sorted). */
  readonly paths: readonly string[];
  readonly blocks: number;
  /** ISO time the index ended. */
  readonly at: string;
}

/** One turn of the conversation as the extension keeps it, re-sent whenever the page (re)loads. */
export interface TurnRecord {
  readonly id: number;
  readonly question: string;
  readonly text: string;
  readonly done?: { readonly sources: readonly SourceView[]; readonly stats: TurnStats };
  readonly error?: { readonly message: string; readonly cancelled: boolean; readonly actions: readonly ErrorAction[] };
}

/** An action offered beside an error: runs one of the extension's own commands. */
export interface ErrorAction {
  readonly label: string;
  readonly command: ChatCommand;
}

/** The only commands the webview may ask the extension to run. */
export type ChatCommand = 'starAttention.selectModel' | 'starAttention.indexRepository' | 'starAttention.showLog' | 'starAttention.openIndexSettings' | 'workbench.action.openSettings';

export interface TurnStats {
  readonly ttftMs: number;
  readonly decodeTokensPerSec: number;
  readonly tokens: number;
  readonly finish: string;
  readonly blocksEncoded: number;
  readonly blocksReused: number;
  /** "answered from N of M blocks (x % of the repository; ranked by …)" */
  readonly attended?: string;
}

export type ToChat = { readonly channel: 'ui' } & (
  | { readonly type: 'status'; readonly status: StatusView; readonly busy: boolean }
  | { readonly type: 'turnStart'; readonly id: number; readonly question: string }
  | { readonly type: 'turnText'; readonly id: number; readonly text: string }
  | { readonly type: 'turnDone'; readonly id: number; readonly sources: readonly SourceView[]; readonly stats: TurnStats }
  | { readonly type: 'turnError'; readonly id: number; readonly message: string; readonly cancelled: boolean; readonly actions: readonly ErrorAction[] }
  | { readonly type: 'focusInput' }
  /** The whole conversation so far: the page shows exactly these turns (after a reload, they come back). */
  | { readonly type: 'restore'; readonly turns: readonly TurnRecord[] }
);

export type FromChat = { readonly channel: 'ui' } & (
  | { readonly type: 'ready' }
  | { readonly type: 'ask'; readonly question: string }
  | { readonly type: 'stop' }
  | { readonly type: 'openSource'; readonly uri: string; readonly startLine: number; readonly endLine: number }
  | { readonly type: 'openLink'; readonly href: string }
  | { readonly type: 'command'; readonly command: ChatCommand }
);

export const CHAT_COMMANDS: readonly ChatCommand[] = ['starAttention.selectModel', 'starAttention.indexRepository', 'starAttention.showLog', 'starAttention.openIndexSettings', 'workbench.action.openSettings'];

/** Narrows an incoming webview message to a FromChat, or undefined (the webview is not trusted to be well-formed). */
export function parseFromChat(msg: unknown): FromChat | undefined {
  if (typeof msg !== 'object' || msg === null) return undefined;
  const m = msg as Record<string, unknown>;
  if (m.channel !== 'ui') return undefined;
  switch (m.type) {
    case 'ready':
    case 'stop':
      return { channel: 'ui', type: m.type };
    case 'ask':
      return typeof m.question === 'string' ? { channel: 'ui', type: 'ask', question: m.question } : undefined;
    case 'openSource':
      return typeof m.uri === 'string' && Number.isInteger(m.startLine) && Number.isInteger(m.endLine)
        ? { channel: 'ui', type: 'openSource', uri: m.uri, startLine: m.startLine as number, endLine: m.endLine as number }
        : undefined;
    case 'openLink':
      return typeof m.href === 'string' ? { channel: 'ui', type: 'openLink', href: m.href } : undefined;
    case 'command':
      return CHAT_COMMANDS.includes(m.command as ChatCommand) ? { channel: 'ui', type: 'command', command: m.command as ChatCommand } : undefined;
    default:
      return undefined;
  }
}
