/**
 * test/support/stem — is Python Stem (Debian's python3-stem, /usr/bin/python3) there?
 * Tests against Stem skip without it, except under `npm test` (ORPORT_REQUIRE_STEM=1),
 * whose set-up installs it: there a missing Stem fails the run instead of passing it
 * with the differential tests silently skipped.
 */
import { spawnSync } from 'node:child_process';

export const PYTHON = process.env.ORPORT_STEM_PYTHON ?? '/usr/bin/python3';

/** false when `module` imports, else why not (or throws, when Stem is required). */
export function stemSkipReason(module = 'stem.client'): string | false {
  const r = spawnSync(PYTHON, ['-I', '-c', `import ${module}`], { encoding: 'utf8', timeout: 30_000 });
  if (!r.error && r.status === 0) return false;
  const why = r.error ? `${PYTHON} cannot run (${r.error.message})` : `${PYTHON} cannot import ${module} (${(r.stderr || '').trim().split('\n').pop()})`;
  if (process.env.ORPORT_REQUIRE_STEM === '1') throw new Error(`${why}; npm test requires Python Stem: apt-get install -y python3-stem`);
  return `${why}; install Debian's python3-stem to run this test`;
}
