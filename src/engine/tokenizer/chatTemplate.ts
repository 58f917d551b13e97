import { Template } from '@huggingface/jinja';
import { EngineError } from '../errors';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
}

export interface RenderChatOptions {
  readonly bosToken?: string;
  readonly eosToken?: string;
  /** Append the header that makes the model answer as the assistant. */
  readonly addGenerationPrompt: boolean;
}

/**
 * Used when a model has no `tokenizer.chat_template` (the tiny story models): the system text, then
 * "User: ..." / "Assistant: ..." turns separated by blank lines, ending with "Assistant:" when a
 * generation prompt is asked for. No BOS in the text: encoding adds it where the tokenizer does.
 */
export const PLAIN_CHAT_TEMPLATE =
  "{%- for m in messages -%}" +
  "{%- if m.role == 'system' -%}{{ m.content }}{{ '\\n\\n' }}" +
  "{%- elif m.role == 'user' -%}{{ 'User: ' }}{{ m.content }}{{ '\\n\\n' }}" +
  "{%- else -%}{{ 'Assistant: ' }}{{ m.content }}{{ '\\n\\n' }}{%- endif -%}" +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}";

const compiled = new Map<string, Template>();

/** Renders a model's chat template (Jinja, as in tokenizer_config.json / GGUF) to prompt text. */
export function renderChat(template: string | undefined, messages: readonly ChatMessage[], opts: RenderChatOptions): string {
  const source = template ?? PLAIN_CHAT_TEMPLATE;
  let t = compiled.get(source);
  try {
    if (!t) {
      t = new Template(source);
      compiled.set(source, t);
    }
    return t.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      bos_token: opts.bosToken ?? '',
      eos_token: opts.eosToken ?? '',
      add_generation_prompt: opts.addGenerationPrompt,
    });
  } catch (e) {
    throw new EngineError(`chat template could not be rendered: ${(e as Error).message}`, 'tokenizer.chat_template');
  }
}

/** Marker put where the repository context goes; chosen so no real template or text contains it. */
export const CONTEXT_PLACEHOLDER = '\u27e6star-attention:context\u27e7';

export interface ChatPromptParts {
  readonly system?: string;
  /** User-turn text before the repository context (e.g. "Answer using these files:\n\n"). */
  readonly beforeContext?: string;
  /** User-turn text after the context: the question itself. */
  readonly afterContext: string;
}

export interface SplitChatPrompt {
  /** Everything before the context: system turn and the user header (+ beforeContext). */
  readonly prefix: string;
  /** Everything after the context: the question and the assistant header. */
  readonly suffix: string;
}

/**
 * Star Attention needs the prompt in pieces: `prefix` (system + user header), then the repository
 * context, then `suffix` (question + assistant header) as the query. The chat is rendered once with
 * CONTEXT_PLACEHOLDER as the context inside the user message and split there, so
 * prefix + context + suffix equals rendering the chat with the context in place, for any template
 * that copies message content verbatim. A template that trims the content would, in the full
 * rendering, also trim whitespace at the very start of the user message (when beforeContext is empty).
 * Throws when the template does not reproduce the marker exactly once.
 */
export function splitChatPrompt(template: string | undefined, parts: ChatPromptParts, opts: Omit<RenderChatOptions, 'addGenerationPrompt'> = {}): SplitChatPrompt {
  for (const text of [parts.system, parts.beforeContext, parts.afterContext]) {
    if (text?.includes(CONTEXT_PLACEHOLDER)) throw new EngineError('the prompt text contains the context placeholder', 'chat prompt');
  }
  const messages: ChatMessage[] = [];
  if (parts.system !== undefined) messages.push({ role: 'system', content: parts.system });
  messages.push({ role: 'user', content: (parts.beforeContext ?? '') + CONTEXT_PLACEHOLDER + parts.afterContext });
  const rendered = renderChat(template, messages, { ...opts, addGenerationPrompt: true });
  const at = rendered.indexOf(CONTEXT_PLACEHOLDER);
  if (at < 0 || rendered.indexOf(CONTEXT_PLACEHOLDER, at + 1) >= 0) {
    throw new EngineError('the chat template does not copy the user message verbatim exactly once; cannot split the prompt around the context', 'tokenizer.chat_template');
  }
  return { prefix: rendered.slice(0, at), suffix: rendered.slice(at + CONTEXT_PLACEHOLDER.length) };
}
