/**
 * bench/run — runs one benchmark by name: `npm run bench -- <name> [args…]` runs
 * `bench/<name>.ts` with the remaining arguments. Without a name, lists them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort();
const [name, ...args] = process.argv.slice(2);

if (!name || !/^[\w-]+$/.test(name) || !existsSync(`${dir}${name}.ts`)) {
  if (name) console.error(`bench: no benchmark named ${JSON.stringify(name)}`);
  console.error(`usage: npm run bench -- <name> [args…]\nbenchmarks: ${available.join(', ')}`);
  process.exit(name ? 1 : 2);
}

const r = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${name}.ts`, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
