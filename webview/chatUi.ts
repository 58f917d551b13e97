// The chat panel's UI: the conversation (questions, streamed markdown answers, sources, errors with actions), the
// status line, the input with Ask/Stop. It only renders what the extension host sends (ToChat) and reports what
// the user does (FromChat); it holds no engine state.
import type { ErrorAction, FromChat, SourceView, StatusView, ToChat, TurnRecord, TurnStats } from '../src/protocol/chatMessages';
import { pathsText, sizeText } from '../src/protocol/statusText';
import { renderMarkdown } from './markdown';

type Post = (msg: FromChat) => void;

interface Turn {
  readonly root: HTMLElement;
  readonly answer: HTMLElement;
  text: string;
  pending: boolean;
}

export class ChatUi {
  private readonly turns = new Map<number, Turn>();
  private readonly log: HTMLElement;
  private readonly status: HTMLElement;
  private readonly input: HTMLTextAreaElement;
  private readonly askButton: HTMLButtonElement;
  private readonly stopButton: HTMLButtonElement;
  private busy = false;
  /** The conversation is shown from its end (the user has not scrolled up): it stays there when its size changes. */
  private atEnd = true;

  constructor(root: HTMLElement, private readonly post: Post) {
    root.replaceChildren();
    this.status = el('div', { class: 'status', role: 'status', 'aria-live': 'polite' });
    this.log = el('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation' });
    this.log.append(emptyNote());
    const form = el('form', { class: 'ask' });
    this.input = el('textarea', { rows: '3', placeholder: 'Ask about the codebase… (Enter to send, Shift+Enter for a new line)', 'aria-label': 'Question' }) as HTMLTextAreaElement;
    this.askButton = el('button', { type: 'submit', class: 'primary' }, 'Ask') as HTMLButtonElement;
    this.stopButton = el('button', { type: 'button', class: 'secondary', disabled: '' }, 'Stop') as HTMLButtonElement;
    form.append(this.input, el('div', { class: 'buttons' }, this.askButton, this.stopButton));
    root.append(this.status, this.log, form);

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      } else if (e.key === 'Escape' && this.busy) {
        this.post({ channel: 'ui', type: 'stop' });
      }
    });
    this.stopButton.addEventListener('click', () => this.post({ channel: 'ui', type: 'stop' }));
    // A taller status (an error, the size notice) or a resized panel shrinks the conversation: its end stays in
    // view unless the user scrolled away from it.
    this.log.addEventListener('scroll', () => { this.atEnd = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 8; });
    new ResizeObserver(() => { if (this.atEnd) this.log.scrollTop = this.log.scrollHeight; }).observe(this.log);
    // Links in answers never navigate the webview: https ones go to the extension, which opens them outside.
    this.log.addEventListener('click', (e) => {
      const a = (e.target as HTMLElement).closest('a');
      if (!a || a.classList.contains('source')) return;
      e.preventDefault();
      const href = a.getAttribute('href');
      if (href) this.post({ channel: 'ui', type: 'openLink', href });
    });
  }

  handle(msg: ToChat): void {
    switch (msg.type) {
      case 'status':
        this.renderStatus(msg.status);
        this.setBusy(msg.busy);
        break;
      case 'turnStart':
        this.startTurn(msg.id, msg.question);
        break;
      case 'turnText': {
        const t = this.turns.get(msg.id);
        if (t) {
          t.text += msg.text;
          this.scheduleRender(t);
        }
        break;
      }
      case 'turnDone':
        this.finishTurn(msg.id, msg.sources, msg.stats);
        break;
      case 'turnError':
        this.failTurn(msg.id, msg.message, msg.cancelled, msg.actions);
        break;
      case 'focusInput':
        this.input.focus();
        break;
      case 'restore':
        this.restore(msg.turns);
        break;
    }
  }

  private submit(): void {
    const question = this.input.value.trim();
    if (!question || this.busy) return;
    this.input.value = '';
    this.post({ channel: 'ui', type: 'ask', question });
  }

  private setBusy(busy: boolean): void {
    this.busy = busy;
    this.askButton.disabled = busy;
    this.stopButton.disabled = !busy;
  }

  private renderStatus(s: StatusView): void {
    const parts: HTMLElement[] = [];
    const span = (cls: string, text: string) => el('span', { class: cls }, text);
    parts.push(span('model', s.model ? `Model: ${s.model}` : 'No model selected'));
    if (s.hostKind) parts.push(span('hosts', `Hosts: ${s.hostKind}${s.device ? ` on ${s.device}` : ''}`));
    const i = s.index;
    if (i) {
      if (i.state === 'indexing') parts.push(span('index', `Indexing ${i.done ?? 0}/${i.total ?? '?'} blocks${i.tokensPerSec ? ` · ${Math.round(i.tokensPerSec)} tok/s` : ''}`));
      else if (i.state === 'ready') {
        const work = i.encoded ? `${i.encoded} encoded, ${i.reused ?? 0} reused, ${i.shifted ?? 0} shifted` : 'up to date';
        parts.push(span('index', `Index: ${i.files ?? 0} files, ${i.blocks ?? 0} blocks (${work})`));
      } else if (i.state === 'cancelled') parts.push(span('index', 'Index: cancelled'));
      if (i.contextTokens !== undefined) parts.push(span('size', `Repository: ${sizeText(i.contextTokens, s.modelContext)}`));
      if (i.lastChange) parts.push(span('last-change', `Last re-encoded: ${pathsText(i.lastChange.paths)} (${i.lastChange.blocks} block${i.lastChange.blocks === 1 ? '' : 's'}, ${clock(i.lastChange.at)})`));
      if (i.contextTokens !== undefined && s.modelContext && i.contextTokens > s.modelContext) {
        parts.push(this.notice('too-large',
          `The repository is larger than the model's ${s.modelContext.toLocaleString('en-US')}-token context: each question is answered from the blocks that fit, ranked for it: index fewer files to have more of it read at once.`,
          [{ label: 'Include / Exclude…', command: 'starAttention.openIndexSettings' }]));
      }
      if (i.state === 'failed') parts.push(this.notice('index-error', `Index failed: ${i.error ?? 'see the log'}`, i.actions ?? [{ label: 'Show Log', command: 'starAttention.showLog' }]));
    }
    this.status.replaceChildren(...parts);
    if (s.hostReason) this.status.title = s.hostReason;
    this.status.dataset.hostKind = s.hostKind ?? '';
    this.status.dataset.index = i?.state ?? '';
    if (s.hostReason) this.status.append(el('span', { class: 'reason' }, s.hostReason));
  }

  /** A line of the status with buttons that run the extension's commands (the fix for what it says). */
  private notice(cls: string, text: string, actions: readonly ErrorAction[]): HTMLElement {
    const box = el('div', { class: `status-notice ${cls}`, role: 'alert' }, el('span', {}, text));
    for (const a of actions) box.append(this.actionButton(a));
    return box;
  }

  private actionButton(a: ErrorAction): HTMLButtonElement {
    const b = el('button', { type: 'button', class: 'secondary' }, a.label) as HTMLButtonElement;
    b.addEventListener('click', () => this.post({ channel: 'ui', type: 'command', command: a.command }));
    return b;
  }

  /** The page was (re)loaded: show exactly the conversation the extension kept. */
  private restore(turns: readonly TurnRecord[]): void {
    this.turns.clear();
    this.log.replaceChildren();
    if (!turns.length) this.log.append(emptyNote());
    for (const r of turns) {
      this.startTurn(r.id, r.question);
      const t = this.turns.get(r.id)!;
      t.text = r.text;
      if (r.text) this.render(t);
      if (r.done) this.finishTurn(r.id, r.done.sources, r.done.stats);
      if (r.error) this.failTurn(r.id, r.error.message, r.error.cancelled, r.error.actions);
    }
    this.log.lastElementChild?.scrollIntoView({ block: 'end' });
  }

  private startTurn(id: number, question: string): void {
    this.log.querySelector('.empty')?.remove();
    const root = el('section', { class: 'turn', 'data-turn': String(id) });
    const q = el('div', { class: 'question' }, question);
    const answer = el('div', { class: 'answer streaming', 'aria-busy': 'true' });
    root.append(q, answer);
    this.log.append(root);
    this.turns.set(id, { root, answer, text: '', pending: false });
    this.follow(root);
  }

  private scheduleRender(t: Turn): void {
    if (t.pending) return;
    t.pending = true;
    requestAnimationFrame(() => {
      t.pending = false;
      this.render(t);
    });
  }

  private render(t: Turn): void {
    t.answer.innerHTML = renderMarkdown(t.text);
    t.answer.dataset.text = t.text;
    this.follow(t.root);
  }

  private finishTurn(id: number, sources: readonly SourceView[], stats: TurnStats): void {
    const t = this.turns.get(id);
    if (!t) return;
    this.render(t);
    t.answer.classList.remove('streaming');
    t.answer.setAttribute('aria-busy', 'false');
    t.root.dataset.done = 'true';
    if (sources.length) {
      const list = el('ol', { class: 'sources', 'aria-label': 'Sources' });
      for (const s of sources) {
        const span = s.spans[0];
        const label = `${s.path}${span ? `:${span.startLine}-${span.endLine}` : ''}`;
        const a = el('a', { href: '#', class: 'source', title: `Open ${label}` }, label);
        a.addEventListener('click', (e) => {
          e.preventDefault();
          this.post({ channel: 'ui', type: 'openSource', uri: s.uri, startLine: span?.startLine ?? 1, endLine: span?.endLine ?? 1 });
        });
        list.append(el('li', {}, a, el('span', { class: 'share' }, `${(100 * s.share).toFixed(1)}%`)));
      }
      t.root.append(el('details', { class: 'sources-box', open: '' }, el('summary', {}, 'Sources (share of attention)'), list));
    }
    // Blocks encoded for this very question: 0 means the index was already up to date (an edit saved earlier was
    // re-encoded by the background index; the status says which files), not that the edit was missed.
    const index = stats.blocksEncoded > 0 ? `${stats.blocksEncoded} blocks encoded for this question, ${stats.blocksReused} reused` : `index up to date (${stats.blocksReused} blocks)`;
    t.root.append(el('div', { class: 'stats' },
      `${stats.tokens} tokens · first token ${(stats.ttftMs / 1000).toFixed(2)} s · ${stats.decodeTokensPerSec.toFixed(1)} tok/s · ${index}${stats.finish === 'length' ? ' · stopped at the token limit' : ''}${stats.attended ? ` · ${stats.attended}` : ''}`));
    this.follow(t.root);
  }

  /** Whatever the conversation adds last is brought into view (an error's buttons included). */
  private follow(e: HTMLElement): void {
    e.scrollIntoView({ block: 'end' });
  }

  private failTurn(id: number, message: string, cancelled: boolean, actions: readonly ErrorAction[]): void {
    let t = this.turns.get(id);
    if (!t) {
      this.startTurn(id, '');
      t = this.turns.get(id)!;
    }
    if (t.text) this.render(t);
    t.answer.classList.remove('streaming');
    t.answer.setAttribute('aria-busy', 'false');
    t.root.dataset.done = 'true';
    const box = el('div', { class: cancelled ? 'notice' : 'error', role: cancelled ? 'status' : 'alert' }, message);
    for (const a of actions) box.append(this.actionButton(a));
    t.root.append(box);
    this.follow(box);
  }
}

function emptyNote(): HTMLElement {
  return el('p', { class: 'empty' }, 'Ask a question about this repository. The whole codebase is the context.');
}

/** "11:32:05" in the page's locale. */
function clock(iso: string): string {
  return new Date(iso).toLocaleTimeString();
}

function el(tag: string, attrs: Record<string, string>, ...children: (Node | string)[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}
