// Lists the files of one or more repository roots that belong in the model's context, the way `git ls-files
// --cached --others --exclude-standard` would see them, plus the files it deliberately left out and why.
//
// Ignore rules, in git's precedence order: .git/info/exclude, then .gitignore files from the git top level down.
// When a root is a folder inside a git repository, the .gitignore files above it (up to the folder holding .git)
// and that repository's info/exclude apply too. Not read: core.excludesFile (the user's global ignore file).
//
// Order: files are sorted by (root, relative posix path), comparing UTF-16 code units, no directories-first rule.
// That order depends only on the set of paths, never on sizes, mtimes, locale or readdir order, so editing a file
// never moves another one; and every directory's subtree stays contiguous (all paths starting "dir/" are adjacent).
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { classifyByName, classifyFile, type SkipReason } from '../../engine/repo/classify';
import { EngineError, throwIfAborted } from '../../engine/errors';

export type { SkipReason } from '../../engine/repo/classify';

export interface RepoFile {
  /** Absolute root the file was found under (as given, resolved). */
  readonly root: string;
  /** Path relative to root, posix separators. */
  readonly path: string;
  readonly text: string;
  /** Size on disk in bytes. */
  readonly bytes: number;
  /** SHA-256 of the file's bytes, lowercase hex. */
  readonly hash: string;
}

export interface SkippedFile {
  readonly root: string;
  readonly path: string;
  readonly reason: SkipReason;
}

export interface WalkOptions {
  /** gitignore-style patterns, relative to each root; when given, only files matching one of them are kept. */
  readonly include?: readonly string[];
  /** gitignore-style patterns, relative to each root; matching files and directories are left out silently. */
  readonly exclude?: readonly string[];
  /** Larger files are reported as 'too-large' without being read (default 1 MiB). */
  readonly maxFileBytes?: number;
  readonly signal?: AbortSignal;
}

export interface WalkResult {
  readonly files: RepoFile[];
  readonly skipped: SkippedFile[];
}

export const DEFAULT_MAX_FILE_BYTES = 1 << 20;
/** Never entered or read, at any depth, whatever their type. */
const ALWAYS_SKIPPED = new Set(['.git', 'node_modules']);
const READ_CONCURRENCY = 8;

/**
 * gitignore rules of one directory. `base`: that directory relative to the root ('' for the root and above it);
 * `above`: for a directory above the root, the root's path relative to it (rules there see "above/rel").
 */
interface IgnoreLevel {
  readonly base: string;
  readonly above?: string;
  readonly rules: Ignore;
}

interface Candidate {
  readonly rel: string;
  readonly abs: string;
}

interface PendingDirLink {
  readonly rel: string;
  readonly abs: string;
  readonly real: string;
  readonly levels: readonly IgnoreLevel[];
  readonly ancestors: ReadonlySet<string>;
}

export async function walkRepository(roots: readonly string[], opts: WalkOptions = {}): Promise<WalkResult> {
  const files: RepoFile[] = [];
  const skipped: SkippedFile[] = [];
  const seenRoots = new Set<string>();
  for (const rootArg of roots) {
    const root = path.resolve(rootArg);
    let rootReal: string;
    try {
      rootReal = await realpath(root);
      if (!(await stat(rootReal)).isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new EngineError(`cannot walk repository root: ${(err as Error).message}`, root);
    }
    if (seenRoots.has(rootReal)) continue;
    seenRoots.add(rootReal);
    await new RootWalk(root, rootReal, opts, files, skipped).run();
  }
  // Roots keep the caller's order; within a root, code-unit order of paths.
  const rootIndex = new Map(roots.map((r, i) => [path.resolve(r), i] as const).reverse());
  const order = (a: SkippedFile | RepoFile, b: SkippedFile | RepoFile) =>
    rootIndex.get(a.root)! - rootIndex.get(b.root)! || compareCodeUnits(a.path, b.path);
  files.sort(order);
  skipped.sort(order);
  return { files, skipped };
}

export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

class RootWalk {
  private readonly exclude: Ignore;
  private readonly include: Ignore | undefined;
  private readonly maxFileBytes: number;
  private readonly walkedDirs = new Set<string>();
  private readonly pendingLinks: PendingDirLink[] = [];
  private readonly candidates: Candidate[] = [];
  /** Rules that apply at the root (enclosing repository), and each directory's own .gitignore by path from rootReal. */
  private rootLevels: readonly IgnoreLevel[] = [];
  private readonly ownRules = new Map<string, Promise<Ignore | undefined>>();

  constructor(
    private readonly root: string,
    private readonly rootReal: string,
    private readonly opts: WalkOptions,
    private readonly files: RepoFile[],
    private readonly skipped: SkippedFile[],
  ) {
    this.exclude = ignore().add(opts.exclude ?? []);
    this.include = opts.include?.length ? ignore().add(opts.include) : undefined;
    this.maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  }

  async run(): Promise<void> {
    // .git/info/exclude has the lowest precedence, below every .gitignore (git's order).
    const levels = await enclosingRepositoryRules(this.root);
    this.rootLevels = levels;
    this.walkedDirs.add(this.rootReal);
    await this.walkDir('', this.root, levels, new Set([this.rootReal]));
    // Directory links are walked after every real directory, so a link never claims a directory that is also
    // reachable without it; each directory is walked at most once, which also bounds the walk (no loops).
    while (this.pendingLinks.length) {
      this.pendingLinks.sort((a, b) => compareCodeUnits(a.rel, b.rel));
      const link = this.pendingLinks.shift()!;
      if (this.walkedDirs.has(link.real)) {
        this.skip(link.rel, 'symlink-duplicate');
        continue;
      }
      this.walkedDirs.add(link.real);
      await this.walkDir(link.rel, link.abs, link.levels, new Set([...link.ancestors, link.real]));
    }
    await this.readCandidates();
  }

  private skip(rel: string, reason: SkipReason): void {
    this.skipped.push({ root: this.root, path: rel, reason });
  }

  private async walkDir(rel: string, abs: string, parentLevels: readonly IgnoreLevel[], ancestors: ReadonlySet<string>): Promise<void> {
    throwIfAborted(this.opts.signal);
    let entries;
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch {
      if (rel === '') throw new EngineError('cannot read repository root', this.root);
      this.skip(rel, 'unreadable');
      return;
    }
    let levels = parentLevels;
    if (entries.some((e) => e.name === '.gitignore' && !e.isDirectory())) {
      const rules = await readTextOrUndefined(path.join(abs, '.gitignore'));
      if (rules !== undefined) levels = [...parentLevels, { base: rel, rules: ignore().add(rules) }];
    }
    entries.sort((a, b) => compareCodeUnits(a.name, b.name));
    for (const entry of entries) {
      throwIfAborted(this.opts.signal);
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      const childAbs = path.join(abs, entry.name);
      if (ALWAYS_SKIPPED.has(entry.name)) continue; // a .git *file* marks a worktree or submodule: not content either
      if (entry.isDirectory()) {
        if (this.isIgnored(childRel, true, levels)) continue;
        let real: string;
        try {
          real = await realpath(childAbs);
        } catch {
          this.skip(childRel, 'unreadable');
          continue;
        }
        if (this.walkedDirs.has(real)) continue; // a bind mount or similar: already walked
        this.walkedDirs.add(real);
        await this.walkDir(childRel, childAbs, levels, new Set([...ancestors, real]));
      } else if (entry.isSymbolicLink()) {
        await this.visitLink(childRel, childAbs, levels, ancestors);
      } else if (entry.isFile()) {
        if (!this.isIgnored(childRel, false, levels) && this.isIncluded(childRel)) this.candidates.push({ rel: childRel, abs: childAbs });
      }
      // sockets, FIFOs, devices: not source files, left out silently
    }
  }

  private async visitLink(rel: string, abs: string, levels: readonly IgnoreLevel[], ancestors: ReadonlySet<string>): Promise<void> {
    let real: string;
    let isDir: boolean;
    let isFile: boolean;
    try {
      real = await realpath(abs);
      const st = await stat(real);
      isDir = st.isDirectory();
      isFile = st.isFile();
    } catch (err) {
      // A broken link, or a chain of links that loops on itself (ELOOP).
      if (this.isIgnored(rel, false, levels)) return;
      this.skip(rel, (err as NodeJS.ErrnoException).code === 'ELOOP' ? 'symlink-loop' : 'unreadable');
      return;
    }
    if (this.isIgnored(rel, isDir, levels)) return;
    const inside = real === this.rootReal || real.startsWith(this.rootReal + path.sep);
    // The link's name passed the rules; its target must too, or a link would smuggle in an ignored .env, an
    // ignored folder or .git/config.
    if (inside && (await this.isTargetIgnored(path.relative(this.rootReal, real).split(path.sep).join('/'), isDir))) {
      this.skip(rel, 'link-to-ignored');
      return;
    }
    if (isDir) {
      if (ancestors.has(real)) this.skip(rel, 'symlink-loop');
      else if (!inside) this.skip(rel, 'outside-root');
      else this.pendingLinks.push({ rel, abs, real, levels, ancestors });
    } else if (isFile) {
      if (!this.isIncluded(rel)) return;
      if (!inside) this.skip(rel, 'outside-root');
      else this.candidates.push({ rel, abs });
    }
  }

  /** git's precedence: later levels (deeper .gitignore) override earlier ones; within a level the last match wins. */
  private isIgnored(rel: string, isDir: boolean, levels: readonly IgnoreLevel[]): boolean {
    const suffix = isDir ? '/' : '';
    if (this.exclude.ignores(rel + suffix)) return true;
    let ignored = false;
    for (const level of levels) {
      let sub = level.base ? rel.slice(level.base.length + 1) : rel;
      if (level.above) sub = `${level.above}/${sub}`;
      const r = level.rules.test(sub + suffix);
      if (r.ignored) ignored = true;
      else if (r.unignored) ignored = false;
    }
    return ignored;
  }

  /**
   * Whether `targetRel` (a path inside the root, relative to it) is left out where it lies: inside .git or
   * node_modules, or ignored by the rules that apply at that path (its own and every parent directory's).
   */
  private async isTargetIgnored(targetRel: string, isDir: boolean): Promise<boolean> {
    if (targetRel === '') return false;
    const parts = targetRel.split('/');
    if (parts.some((p) => ALWAYS_SKIPPED.has(p))) return true;
    let levels = this.rootLevels;
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const rules = await this.rulesOf(dir);
      if (rules) levels = [...levels, { base: dir, rules }];
      const last = i === parts.length - 1;
      if (this.isIgnored(parts.slice(0, i + 1).join('/'), last ? isDir : true, levels)) return true;
    }
    return false;
  }

  /** The .gitignore of a directory (path relative to rootReal), read once. */
  private rulesOf(dir: string): Promise<Ignore | undefined> {
    let rules = this.ownRules.get(dir);
    if (!rules) {
      rules = readTextOrUndefined(path.join(this.rootReal, dir, '.gitignore')).then((t) => (t === undefined ? undefined : ignore().add(t)));
      this.ownRules.set(dir, rules);
    }
    return rules;
  }

  private isIncluded(rel: string): boolean {
    return !this.include || this.include.ignores(rel);
  }

  private async readCandidates(): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < this.candidates.length) {
        throwIfAborted(this.opts.signal);
        await this.readCandidate(this.candidates[next++]!);
      }
    };
    await Promise.all(Array.from({ length: READ_CONCURRENCY }, worker));
  }

  private async readCandidate({ rel, abs }: Candidate): Promise<void> {
    const byName = classifyByName(rel);
    if (byName) return this.skip(rel, byName);
    let bytes: Buffer;
    try {
      if ((await stat(abs)).size > this.maxFileBytes) return this.skip(rel, 'too-large');
      bytes = await readFile(abs);
    } catch {
      return this.skip(rel, 'unreadable');
    }
    if (bytes.length > this.maxFileBytes) return this.skip(rel, 'too-large'); // grew since stat
    const verdict = classifyFile(rel, bytes);
    if (verdict.kind === 'skip') return this.skip(rel, verdict.reason);
    const hash = createHash('sha256').update(bytes).digest('hex');
    this.files.push({ root: this.root, path: rel, text: verdict.text, bytes: bytes.length, hash });
  }
}

/**
 * Rules that apply before the root's own .gitignore: info/exclude of the enclosing git repository and the
 * .gitignore files of the directories from its top level down to (not including) the root.
 */
async function enclosingRepositoryRules(root: string): Promise<IgnoreLevel[]> {
  const chain: string[] = []; // root, its parent, ... up to the git top level
  for (let dir = root; ; dir = path.dirname(dir)) {
    chain.push(dir);
    const isTop = await stat(path.join(dir, '.git')).then(() => true, () => false);
    if (isTop) break;
    if (path.dirname(dir) === dir) return []; // not inside a git repository: only the root's own rules
  }
  const top = chain[chain.length - 1]!;
  const levels: IgnoreLevel[] = [];
  const relFromTop = (dir: string) => path.relative(dir, root).split(path.sep).join('/');
  const infoExclude = await readTextOrUndefined(path.join(top, '.git', 'info', 'exclude'));
  if (infoExclude !== undefined) levels.push({ base: '', above: relFromTop(top) || undefined, rules: ignore().add(infoExclude) });
  for (const dir of chain.slice(1).reverse()) {
    const rules = await readTextOrUndefined(path.join(dir, '.gitignore'));
    if (rules !== undefined) levels.push({ base: '', above: relFromTop(dir), rules: ignore().add(rules) });
  }
  // Walking a folder the repository ignores (say dist/) was asked for explicitly: then its parents' rules do not apply.
  let rootIgnored = false;
  for (const level of levels) {
    const r = level.rules.test(`${level.above}/`);
    if (r.ignored) rootIgnored = true;
    else if (r.unignored) rootIgnored = false;
  }
  return rootIgnored ? [] : levels;
}

async function readTextOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}
