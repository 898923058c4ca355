/**
 * client/dircache — the directory cache on disk (`cacheDir`): the microdesc consensus,
 * the authorities' key certificates, the microdescriptors and the guard state, each one file, written
 * atomically (a temp file, fsync, rename) so a crash leaves the old file or the new one.
 *
 * Layer: thin I/O (node:fs). Trusts nothing it reads: it hands back text, and the caller
 * parses and verifies it like a download (a corrupt, truncated or tampered file is then
 * ignored and fetched again). A file it cannot read is reported, never thrown. Text is
 * latin1 (one char per byte), as the dir/ parsers take it.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** The files of a cache, by what they hold. */
export const CACHE_FILES = {
  consensus: 'cached-microdesc-consensus',
  certs: 'cached-certs',
  microdescs: 'cached-microdescs',
  /** The guard sample (path/guards' JSON; tor keeps it in its state file). */
  guards: 'guard-state.json',
} as const;

export type CacheEntry = keyof typeof CACHE_FILES;

export class DirCache {
  /** Problems met reading or writing (the cache carries on without the file). */
  readonly problems: string[] = [];

  constructor(readonly dir: string) {}

  /** The file's text, or undefined when there is none or it can't be read. */
  async read(entry: CacheEntry): Promise<string | undefined> {
    const path = join(this.dir, CACHE_FILES[entry]);
    try {
      return await readFile(path, 'latin1');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.problems.push(`cannot read ${path}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Replaces the file atomically. Returns false (and notes why) when it could not. */
  async write(entry: CacheEntry, text: string): Promise<boolean> {
    const path = join(this.dir, CACHE_FILES[entry]);
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await mkdir(this.dir, { recursive: true });
      const handle = await open(tmp, 'w', 0o600);
      try {
        await handle.writeFile(text, 'latin1');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, path);
      return true;
    } catch (err) {
      this.problems.push(`cannot write ${path}: ${(err as Error).message}`);
      await rm(tmp, { force: true }).catch(() => undefined);
      return false;
    }
  }
}
