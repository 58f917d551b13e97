// Answers are model output rendered as HTML in the chat webview: raw HTML must come out escaped and only
// http(s)/mailto links may stay links, whatever the model writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderMarkdown } from '../webview/markdown';
import { parseFromChat } from '../src/protocol/chatMessages';

test('raw HTML in an answer is escaped, not rendered', () => {
  const html = renderMarkdown('Hi <script>alert(1)</script> <img src=x onerror="alert(2)"> <iframe src="https://evil"></iframe>');
  assert.ok(!/<script|<img|<iframe/i.test(html), html);
  assert.match(html, /&lt;script&gt;/);
});

test('javascript:, data: and vscode: links are not links; https links are', () => {
  const html = renderMarkdown('[a](javascript:alert(1)) [b](data:text/html,x) [c](vscode:extension/x) [d](command:workbench.action.quit) [e](https://example.com/x)');
  assert.ok(!/href="(javascript|data|vscode|command):/i.test(html), html);
  assert.match(html, /<a href="https:\/\/example\.com\/x">e<\/a>/);
});

test('code fences become pre/code blocks with their text escaped', () => {
  const html = renderMarkdown('```ts\nconst a = "<b>";\n```');
  assert.match(html, /<pre><code class="language-ts">const a = &quot;&lt;b&gt;&quot;;\n<\/code><\/pre>/);
});

test('messages from the webview are checked before use: unknown commands and malformed messages are dropped', () => {
  assert.deepEqual(parseFromChat({ channel: 'ui', type: 'ask', question: 'q' }), { channel: 'ui', type: 'ask', question: 'q' });
  assert.equal(parseFromChat({ channel: 'ui', type: 'command', command: 'workbench.action.terminal.sendSequence' }), undefined);
  assert.equal(parseFromChat({ channel: 'ui', type: 'ask', question: 42 }), undefined);
  assert.equal(parseFromChat({ channel: 'ui', type: 'openSource', uri: 'file:///x', startLine: 1.5, endLine: 2 }), undefined);
  assert.equal(parseFromChat({ channel: 'hosts', type: 'ask', question: 'q' }), undefined);
  assert.equal(parseFromChat(null), undefined);
});

test('single newlines in an answer stay line breaks (a model writes lines, not markdown paragraphs); code and lists keep their lines', () => {
  const html = renderMarkdown('First line\nsecond line\n\n- one\n- two\n\n```\na = 1\nb = 2\n```');
  assert.match(html, /<p>First line<br>\nsecond line<\/p>/);
  assert.match(html, /<ul>\n<li>one<\/li>\n<li>two<\/li>\n<\/ul>/);
  assert.match(html, /<pre><code>a = 1\nb = 2\n<\/code><\/pre>/);
});
