import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { SourceSpec } from './config.js';
import { describeError } from './errors.js';
import type { Logger } from './log.js';

/**
 * Watches one artifact source. File events are only hints: every event asks the agent for a reconcile pass,
 * which rescans the directory and trusts nothing but the bytes and their digests.
 *
 * Two chokidar watchers per source:
 *  - the *parent* directory, depth 0, symlinks not followed, filtered to the source's own name. This sees
 *    git-sync's atomic symlink swap (`rename tmp-link current`) every time, which a watcher set up through the
 *    link does not (it stays on the old worktree);
 *  - the source's *resolved* directory (depth 1 in the tree layout for namespace subdirectories, 0 for a
 *    flat source), for in-place writes, renames into the directory, new and deleted files. When the link
 *    moves, this watcher is closed and re-created on the new target.
 *
 * While the directory or its parent does not exist (a node booting before git-sync ran), it is looked for
 * once a second.
 */
/** How often a source whose directory (or parent directory) does not exist is looked for. */
const POLL_MS = 1000;

export class SourceWatcher {
  private parent: FSWatcher | undefined;
  private inner: FSWatcher | undefined;
  private innerRoot: string | undefined;
  private closed = false;
  private refreshing: Promise<void> = Promise.resolve();
  private parentIno: number | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(
    private readonly spec: SourceSpec,
    private readonly onEvent: (reason: string) => void,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.started = true;
  }

  private setPolling(on: boolean): void {
    if (!on || this.closed) {
      if (this.pollTimer) clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
      return;
    }
    if (this.pollTimer) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      void this.refresh();
    }, POLL_MS);
  }

  /** Makes sure both watchers exist and the inner one watches the current link target. Cheap when nothing moved. */
  refresh(): Promise<void> {
    this.refreshing = this.refreshing.then(() => this.doRefresh()).catch((error) => {
      this.logger.warn('watch.error', 'could not set up a directory watcher; the periodic reconcile still rescans', {
        path: this.spec.path,
        error: describeError(error),
      });
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    if (this.closed) return;
    const parentDir = dirname(this.spec.path);
    const parentIno = await inode(parentDir);
    if (this.parent && parentIno !== this.parentIno) {
      // The parent directory was deleted (and maybe re-created): the old watcher watches a dead inode.
      const old = this.parent;
      this.parent = undefined;
      await old.close();
    }
    if (!this.parent && parentIno !== undefined) {
      this.parentIno = parentIno;
      const name = basename(this.spec.path);
      this.parent = await this.open(parentDir, {
        depth: 0,
        ignored: (path: string) => path !== parentDir && basename(path) !== name,
      }, (event) => {
        this.onEvent(`${event} ${this.spec.path}`);
        void this.refresh();
      });
    }
    let root: string | undefined;
    try {
      root = await realpath(this.spec.path);
    } catch {
      root = undefined;
    }
    // Without a parent watcher nothing would tell us when the directory appears: poll until it does.
    this.setPolling(this.parent === undefined || root === undefined);
    if (root === this.innerRoot && (root === undefined || this.inner)) return;
    if (root !== undefined && this.innerRoot === undefined && this.started) this.onEvent(`appeared ${this.spec.path}`);
    if (this.inner) {
      const old = this.inner;
      this.inner = undefined;
      await old.close();
    }
    this.innerRoot = root;
    if (root === undefined || this.closed) return;
    if (this.innerRoot !== undefined) this.logger.debug('watch.target', 'watching artifact directory', { path: this.spec.path, realPath: root });
    const flat = this.spec.netns !== undefined;
    this.inner = await this.open(root, {
      depth: flat ? 0 : 1,
      ignored: (path: string) => {
        const rel = relative(root, path);
        if (rel === '') return false;
        return rel.split(sep).some((part) => part.startsWith('.'));
      },
    }, (event, path) => this.onEvent(`${event} ${path}`));
  }

  private async open(
    path: string,
    options: { depth: number; ignored: (path: string) => boolean },
    handler: (event: string, path: string) => void,
  ): Promise<FSWatcher> {
    const watcher = watch(path, {
      persistent: true,
      ignoreInitial: true,
      followSymlinks: false,
      atomic: false,
      depth: options.depth,
      ignored: options.ignored,
      ignorePermissionErrors: true,
    });
    watcher.on('all', (event, changed) => {
      if (!this.closed) handler(event, changed);
    });
    // chokidar turns the kernel's events into add/change/unlink with stat comparisons and a per-file throttle,
    // and replacements of a file by rename can slip through them (tests/watch.test.ts: of 300 quick ones it
    // reported only the first; under the agent, one change in ~1 000 waited for the periodic pass). Its raw
    // events, one per inotify event of a watched directory or file, are hints as good as any other.
    watcher.on('raw', (event, name, details) => {
      const watched = (details as { watchedPath?: string } | undefined)?.watchedPath;
      if (this.closed || !watched || !name) return;
      const changed = basename(watched) === name ? watched : join(watched, name);
      if (!options.ignored(changed)) handler(`raw ${event}`, changed);
    });
    watcher.on('error', (error) => {
      this.logger.warn('watch.error', 'directory watcher error; the periodic reconcile still rescans', {
        path,
        error: describeError(error),
      });
    });
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    return watcher;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.setPolling(false);
    await this.refreshing;
    await Promise.all([this.parent?.close(), this.inner?.close()]);
    this.parent = undefined;
    this.inner = undefined;
  }
}

async function inode(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).ino;
  } catch {
    return undefined;
  }
}
