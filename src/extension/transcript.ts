// The conversation as the extension keeps it. The chat page is reloaded whenever its options change (a new model's
// folder becomes a resource root) or the view is recreated, and a reloaded page starts empty: the page is sent this
// transcript each time it says 'ready', so the turns before the reload come back. Plain data, no vscode.
import type { ToChat, TurnRecord } from '../protocol/chatMessages';

/** Turns kept (the oldest go first). */
const MAX_TURNS = 100;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class Transcript {
  private readonly turns = new Map<number, Mutable<TurnRecord>>();

  /** Records what a UI message changes in the conversation (other messages are ignored). */
  record(msg: ToChat): void {
    switch (msg.type) {
      case 'turnStart':
        this.turns.set(msg.id, { id: msg.id, question: msg.question, text: '' });
        while (this.turns.size > MAX_TURNS) this.turns.delete(this.turns.keys().next().value!);
        break;
      case 'turnText': {
        const t = this.turns.get(msg.id);
        if (t) t.text += msg.text;
        break;
      }
      case 'turnDone': {
        const t = this.turns.get(msg.id);
        if (t) t.done = { sources: msg.sources, stats: msg.stats };
        break;
      }
      case 'turnError': {
        const t = this.turns.get(msg.id);
        if (t) t.error = { message: msg.message, cancelled: msg.cancelled, actions: msg.actions };
        else this.turns.set(msg.id, { id: msg.id, question: '', text: '', error: { message: msg.message, cancelled: msg.cancelled, actions: msg.actions } });
        break;
      }
    }
  }

  /** The message that makes a (re)loaded page show the conversation so far. */
  restoreMessage(): Extract<ToChat, { type: 'restore' }> {
    return { channel: 'ui', type: 'restore', turns: [...this.turns.values()].map((t) => ({ ...t })) };
  }
}
