// A real VS Code for end-to-end tests: code-server (VS Code in the browser with a real Node extension host),
// installed by scripts/ensure-code-server.sh into a cache folder outside the repository.
// Each server gets its own user-data, extensions and config folders in a temp folder, and runs in its own
// process group (spawn's `detached` is setsid()), because every browser connection starts an extension host
// that outlives the connection: stop() ends the whole group and checks that nothing of it is left.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from './paths';

export type CodeServerInstall = { bin: string } | { skip: string };

/** Runs scripts/ensure-code-server.sh (fast when already installed). Exit 2 means "cannot run here" (not
 * Linux, not Node 20, no apt): the caller skips with the reason. Any other failure throws. */
export function ensureCodeServer(): CodeServerInstall {
  if (process.platform !== 'linux') return { skip: `code-server end-to-end tests run on Linux only (this is ${process.platform})` };
  const r = spawnSync('bash', [resolve(repoRoot, 'scripts/ensure-code-server.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 2) return { skip: r.stderr.trim() };
  if (r.status !== 0) throw new Error(`scripts/ensure-code-server.sh failed (exit ${r.status}):\n${r.stderr}`);
  return { bin: r.stdout.trim().split('\n').pop()! };
}

export interface CodeServerOptions {
  /** Folder opened as the workspace. */
  workspace: string;
  /** .vsix files installed with --install-extension before the server starts. */
  vsix?: readonly string[];
  /** User settings (merged over quiet defaults: no telemetry, no welcome page, no update checks). */
  settings?: Record<string, unknown>;
  /** Extra environment for the server and so for its extension hosts. */
  env?: Record<string, string>;
}

export interface CodeServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** URL of the workbench with the workspace folder open. */
  readonly workbenchUrl: string;
  readonly userDataDir: string;
  readonly extensionsDir: string;
  /** The server's pid, which is also its process group and session id. */
  readonly pid: number;
  /** code-server's own stdout and stderr so far. */
  output(): string;
  /** Waits until a line matching `pattern` appears in a log under user-data-dir/logs (extension host logs,
   * extensions' output channels: <publisher.name>/<channel>.log) and returns that line. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Copies code-server's output and every log under user-data-dir/logs (extension host, output channels) to `dir`. */
  collectLogs(dir: string): void;
  /** Ends the process group and removes the temp folders; resolves once no process of the group is left
   * (throws if one survives SIGKILL). Collect logs first. */
  stop(): Promise<void>;
}

const QUIET_SETTINGS = {
  'telemetry.telemetryLevel': 'off',
  'security.workspace.trust.enabled': false,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'update.mode': 'none',
  'chat.commandCenter.enabled': false,
  'git.enabled': false,
};

export async function startCodeServer(bin: string, options: CodeServerOptions): Promise<CodeServer> {
  const root = mkdtempSync(join(tmpdir(), 'star-code-server-'));
  const userDataDir = join(root, 'user-data');
  const extensionsDir = join(root, 'extensions');
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  mkdirSync(extensionsDir);
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify({ ...QUIET_SETTINGS, ...options.settings }, null, 2));
  writeFileSync(join(root, 'config.yaml'), 'auth: none\ncert: false\n');
  // code-server keeps a config file and logs under XDG folders; these keep them out of $HOME.
  const env = { ...process.env, XDG_CONFIG_HOME: join(root, 'xdg-config'), XDG_DATA_HOME: join(root, 'xdg-data'), ...options.env };
  const common = ['--config', join(root, 'config.yaml'), '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];

  for (const vsix of options.vsix ?? []) {
    const r = spawnSync(bin, [...common, '--install-extension', vsix], { encoding: 'utf8', env });
    if (r.status !== 0 || !/successfully installed/i.test(r.stdout + r.stderr)) {
      throw new Error(`code-server --install-extension ${vsix} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
    }
  }

  const child = spawn(bin, [
    ...common, '--auth', 'none', '--bind-addr', '127.0.0.1:0', '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', '--disable-getting-started-override', options.workspace,
  ], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));

  const stop = () => stopGroup(child, exited);
  try {
    const url = await listeningUrl(child, () => output);
    await waitForHealth(url);
    return {
      url,
      workbenchUrl: `${url}/?folder=${encodeURIComponent(options.workspace)}`,
      userDataDir,
      extensionsDir,
      pid: child.pid!,
      output: () => output,
      waitForLog: (pattern, timeoutMs = 30_000) => waitForLogLine(join(userDataDir, 'logs'), pattern, timeoutMs),
      collectLogs(dir) {
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'code-server.log'), output);
        const logs = join(userDataDir, 'logs');
        if (existsSync(logs)) cpSync(logs, join(dir, 'logs'), { recursive: true, filter: (f) => !f.endsWith('.sock') });
      },
      async stop() {
        try { await stop(); } finally { rmSync(root, { recursive: true, force: true }); }
      },
    };
  } catch (e) {
    await stop();
    throw new Error(`code-server did not start: ${(e as Error).message}\n${output}`);
  }
}

/** code-server prints "HTTP server listening on http://127.0.0.1:PORT/" once bound (port 0: the OS picks). */
function listeningUrl(child: ChildProcess, output: () => string): Promise<string> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error('no "HTTP server listening" line within 30 s')), 30_000);
    const check = () => {
      const m = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output());
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.stderr!.off('data', check);
      done(m[1]!);
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`code-server exited with ${code}`)); });
  });
}

async function waitForHealth(url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch { /* not accepting yet */ }
    if (Date.now() > deadline) throw new Error(`${url}/healthz did not answer within 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function logFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.log')).map((f) => join(dir, f));
}

async function waitForLogLine(dir: string, pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const file of logFiles(dir)) {
      const line = readFileSync(file, 'utf8').split('\n').find((l) => pattern.test(l));
      if (line !== undefined) return line;
    }
    if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} under ${dir} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Pids whose process group or session is `leader` (the setsid'ed server): everything it started. */
export function groupMembers(leader: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try { stat = readFileSync(`/proc/${entry}/stat`, 'utf8'); } catch { continue; }
    // Fields after the parenthesised command: state ppid pgrp session ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie ('Z') has already exited; it only waits to be reaped.
    if (fields[0] !== 'Z' && (Number(fields[2]) === leader || Number(fields[3]) === leader)) pids.push(Number(entry));
  }
  return pids;
}

async function stopGroup(child: ChildProcess, exited: Promise<void>): Promise<void> {
  const leader = child.pid;
  if (leader === undefined) return;
  const signal = (sig: NodeJS.Signals) => { try { process.kill(-leader, sig); } catch { /* group already gone */ } };
  const gone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (groupMembers(leader).length > 0) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
    return true;
  };
  signal('SIGTERM');
  if (await gone(5000)) return exited;
  signal('SIGKILL');
  if (!(await gone(5000))) throw new Error(`code-server processes survived SIGKILL: ${groupMembers(leader).join(', ')}`);
  return exited;
}
