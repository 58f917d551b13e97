import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli as cli } from './support/cli';

test('star-ask without a command prints usage and exits 0', () => {
  const r = cli([]);
  assert.equal(r.status, 0);
  assert.match(r.stderr, /usage: star-ask <command>/);
});

test('star-ask with an unknown command exits 2 and lists the commands', () => {
  const r = cli(['no-such-command']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /commands:/);
});
