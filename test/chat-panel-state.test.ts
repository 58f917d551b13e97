// The chat panel's state that outlives one page and one index run: the conversation the extension re-sends to a
// reloaded page (a new model's folder becomes a resource root and reloads it), and the index status that keeps
// the repository's size and the last re-encoded files in view.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transcript } from '../src/extension/transcript';
import { failedStatus, indexingStatus, progressStatus, readyStatus, sizedStatus } from '../src/extension/indexStatus';
import { pathsText, sizeText } from '../src/protocol/statusText';

test('a reloaded page gets every turn back: question, streamed text, sources and stats, errors with their actions', () => {
  const t = new Transcript();
  const stats = { ttftMs: 10, decodeTokensPerSec: 5, tokens: 3, finish: 'eos', blocksEncoded: 0, blocksReused: 4 };
  const sources = [{ path: 'a.ts', uri: 'file:///w/a.ts', share: 0.5, spans: [{ startLine: 1, endLine: 3 }] }];
  t.record({ channel: 'ui', type: 'turnStart', id: 1, question: 'q1' });
  t.record({ channel: 'ui', type: 'turnText', id: 1, text: 'Hel' });
  t.record({ channel: 'ui', type: 'turnText', id: 1, text: 'lo' });
  t.record({ channel: 'ui', type: 'turnDone', id: 1, sources, stats });
  t.record({ channel: 'ui', type: 'turnStart', id: 2, question: 'q2' });
  t.record({ channel: 'ui', type: 'turnError', id: 2, message: 'no such file', cancelled: false, actions: [{ label: 'Select Model', command: 'starAttention.selectModel' }] });
  t.record({ channel: 'ui', type: 'turnStart', id: 3, question: 'q3' });
  t.record({ channel: 'ui', type: 'turnText', id: 3, text: 'stream' });
  t.record({ channel: 'ui', type: 'focusInput' });
  assert.deepEqual(t.restoreMessage(), {
    channel: 'ui', type: 'restore', turns: [
      { id: 1, question: 'q1', text: 'Hello', done: { sources, stats } },
      { id: 2, question: 'q2', text: '', error: { message: 'no such file', cancelled: false, actions: [{ label: 'Select Model', command: 'starAttention.selectModel' }] } },
      { id: 3, question: 'q3', text: 'stream' },
    ],
  });
  // Text streamed after a restore message was taken goes on from where it was.
  t.record({ channel: 'ui', type: 'turnText', id: 3, text: 'ing' });
  assert.equal(t.restoreMessage().turns[2]!.text, 'streaming');
});

test('the index status keeps the last re-encoded files through a no-op index, and the size before and during the next', () => {
  const cold = readyStatus(undefined, { files: 6, blocks: 15, blocksEncoded: 15, blocksReused: 0, blocksShifted: 0, contextTokens: 1100, encodedPaths: ['a.ts', 'b.ts'] }, new Date('2026-01-01T10:00:00Z'));
  assert.deepEqual(cold.lastChange, { paths: ['a.ts', 'b.ts'], blocks: 15, at: '2026-01-01T10:00:00.000Z' });
  const edit = readyStatus(indexingStatus(cold), { files: 6, blocks: 16, blocksEncoded: 1, blocksReused: 15, blocksShifted: 1, contextTokens: 1180, encodedPaths: ['math.ts'] }, new Date('2026-01-01T10:05:00Z'));
  const during = progressStatus(indexingStatus(edit), { done: 3, total: 16, tokensPerSec: 0 });
  assert.equal(during.state, 'indexing');
  assert.equal(during.contextTokens, 1180, 'the last size stays shown until the next index says its own');
  const grown = progressStatus(sizedStatus(indexingStatus(edit), 2460), { done: 3, total: 26, tokensPerSec: 0 });
  assert.deepEqual([grown.contextTokens, grown.done, grown.total], [2460, 3, 26], 'the size said before encoding stays through the progress');
  assert.deepEqual(during.lastChange?.paths, ['math.ts']);
  const noop = readyStatus(during, { files: 6, blocks: 16, blocksEncoded: 0, blocksReused: 16, blocksShifted: 0, contextTokens: 1180, encodedPaths: [] }, new Date('2026-01-01T10:06:00Z'));
  assert.deepEqual(noop.lastChange, edit.lastChange, 'an index that encoded nothing keeps the last change');
  assert.equal(noop.encoded, 0);
  const first = sizedStatus(indexingStatus(undefined), 5120);
  assert.deepEqual([first.state, first.contextTokens], ['indexing', 5120], 'a first index says the exact size before it encodes');
  const failed = failedStatus(noop, 'not a GGUF file', [{ label: 'Select Model', command: 'starAttention.selectModel' }]);
  assert.deepEqual([failed.state, failed.error, failed.contextTokens], ['failed', 'not a GGUF file', 1180]);
});

test('the size reads against the model\'s context; re-encoded files are named', () => {
  assert.equal(sizeText(1100, 2048), '1,100 tokens of the model\'s 2,048-token context (54%)');
  assert.equal(sizeText(12288, 2048), '12,288 tokens, 6.0× the model\'s 2,048-token context');
  assert.equal(sizeText(500, undefined), '500 tokens');
  assert.equal(pathsText(['math.ts']), 'math.ts');
  assert.equal(pathsText(['a', 'b', 'c', 'd', 'e']), 'a, b, c and 2 more files');
});
