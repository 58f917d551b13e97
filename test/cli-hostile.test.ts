// star-ask as a hostile or careless user drives it, through the built CLI: every command answers --help; file
// names cannot fake source lines or colour the terminal; a FIFO as the model, an oversized question, an absurd
// --max-tokens and an empty --cache-dir are clear errors (never a hang or a stack trace); a cache folder that
// cannot be written costs a warning, not the answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './support/cli';
import { modelPath } from './support/paths';
import { withTempDir } from './support/tempDir';

const MODEL = modelPath('stories260K.gguf');

/** Names listed under "<title>:" in a usage text (two-space indented "name  summary" lines). */
function listed(usage: string, title: string): string[] {
  const section = usage.slice(usage.indexOf(`${title}:\n`) + title.length + 2);
  return [...section.matchAll(/^ {2}(\S+)\s/gm)].map((m) => m[1]!);
}

test('star-ask --help, every command\'s --help and every bench kind\'s --help exit 0 with a usage line', () => {
  const top = runCli(['--help']);
  assert.equal(top.status, 0);
  const commands = listed(top.stderr, 'commands');
  assert.ok(commands.includes('ask') && commands.includes('index') && commands.length >= 7, commands.join(' '));
  const kinds = listed(runCli(['bench']).stderr, 'kinds');
  assert.ok(kinds.length >= 4, kinds.join(' '));
  for (const args of [...commands.map((c) => [c]), ...kinds.map((k) => ['bench', k])]) {
    const r = runCli([...args, '--help'], 60_000);
    assert.equal(r.status, 0, `star-ask ${args.join(' ')} --help: ${r.stderr}`);
    assert.match(r.stdout + r.stderr, new RegExp(`usage: star-ask ${args.join(' ')}\\b`), `star-ask ${args.join(' ')} --help`);
  }
});

test('bad arguments are clear errors: FIFO as --model, 126 KB question, --max-tokens 1e9, empty --cache-dir', async () => {
  await withTempDir('star-hostile-', (dir) => {
    writeFileSync(join(dir, 'a.txt'), 'Tom had a dog.\n');
    const fifo = join(dir, 'model.fifo');
    execFileSync('mkfifo', [fifo]);
    mkdirSync(join(dir, 'no-model'));
    const repo = ['--repo', dir, '--backend', 'cpu', '--no-cache'];
    const cases: [string, string[], RegExp][] = [
      ['FIFO', ['ask', ...repo, '--model', fifo, '--question', 'x'], /model\.fifo: not a model: neither a regular file nor a folder/],
      ['folder without a model', ['ask', ...repo, '--model', join(dir, 'no-model'), '--question', 'x'], /no-model: config\.json not found/],
      ['126 KB question', ['ask', ...repo, '--model', MODEL, '--question', 'why '.repeat(31_500)], /--question is 126000 characters.*longer than the model's whole context of \d+ tokens/],
      ['--max-tokens 1e9 (ask)', ['ask', ...repo, '--model', MODEL, '--question', 'x', '--max-tokens', '1e9'], /--max-tokens must be an integer in 1\.\.\d+ \(got 1e9\)/],
      ['--max-tokens 1e9 (generate)', ['generate', '--model', MODEL, '--prompt', 'x', '--max-tokens', '1e9'], /--max-tokens must be an integer in 0\.\.\d+ \(got 1e9\)/],
      ['empty --cache-dir', ['index', '--repo', dir, '--model', MODEL, '--cache-dir', ''], /--cache-dir is empty/],
    ];
    for (const [what, args, message] of cases) {
      const r = runCli(args, 60_000);
      assert.equal(r.status, 1, `${what}: exit ${r.status} (null: it hung), stderr ${r.stderr}`);
      assert.match(r.stderr, message, what);
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
    }
  });
});

test('ask: file names with a newline or escape codes are escaped in the sources list; an unwritable cache still answers', async () => {
  await withTempDir('star-hostile-', (dir) => {
    const repo = join(dir, 'repo');
    mkdirSync(repo);
    writeFileSync(join(repo, 'a.txt'), 'Tom had a dog named Max.\n');
    const evil = 'evil\n   99.9%  \x1b[31mfake.txt';
    writeFileSync(join(repo, evil), 'Lily had a red ball.\n');
    writeFileSync(join(dir, 'file'), 'x');
    const common = ['ask', '--repo', repo, '--model', MODEL, '--backend', 'cpu', '--chunk-size', '64', '--question', 'Who is Max?', '--max-tokens', '4'];
    const plain = runCli([...common, '--no-cache']);
    assert.equal(plain.status, 0, plain.stderr);
    assert.ok(!plain.stdout.includes('\x1b'), 'no escape code reaches the terminal');
    const sourceLines = plain.stdout.slice(plain.stdout.indexOf('sources')).split('\n').filter((l) => /^\s+\d+\.\d%/.test(l));
    assert.equal(sourceLines.length, 3, sourceLines.join('\n')); // two files and the anchor: no faked line
    assert.ok(sourceLines.some((l) => l.endsWith('evil\\n   99.9%  \\x1b[31mfake.txt')), sourceLines.join('\n'));

    // A cache folder under a regular file cannot be created: one warning, the same answer as without a cache.
    const json = (r: ReturnType<typeof runCli>) => JSON.parse(r.stdout) as { ids: number[] };
    const unwritable = runCli([...common, '--cache-dir', join(dir, 'file', 'cache'), '--json']);
    assert.equal(unwritable.status, 0, unwritable.stderr);
    assert.equal(unwritable.stderr.match(/warning: /g)?.length, 1, unwritable.stderr);
    assert.deepEqual(json(unwritable).ids, json(runCli([...common, '--no-cache', '--json'])).ids);
  });
});
