/**
 * The source tree keeps its layers (README "Layout"): no import circles in src/, the codec
 * layer (src/codec/) imports nothing of ours but errors.ts, every file starts with its
 * header comment, and every folder of src/ is one the README's layout section names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const src = join(root, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The project files a source file imports (static `import … from`, `export … from`, type-only included). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'(\.{1,2}\/[^']+)'/gms)) {
    out.push(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  }
  for (const m of text.matchAll(/import\('(\.{1,2}\/[^']+)'\)/g)) out.push(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  return out;
}

const files = sources(src);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const rel = (f: string) => relative(src, f);

test('every import in src/ names a file that exists', () => {
  for (const [file, deps] of graph) for (const dep of deps) assert.ok(graph.has(dep), `${rel(file)} imports ${rel(dep)}, which is not a source file`);
});

test('no import circles in src/ (type-only imports count: they couple the files all the same)', () => {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') {
      const cycle = stack.slice(stack.indexOf(f)).concat(f).map(rel);
      assert.fail(`import circle: ${cycle.join(' → ')}`);
    }
    state.set(f, 'visiting');
    stack.push(f);
    for (const dep of graph.get(f) ?? []) visit(dep);
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) visit(f);
});

test('src/codec/ imports nothing of ours from outside codec/ but errors.ts', () => {
  const codec = join(src, 'codec');
  for (const [file, deps] of graph) {
    if (!file.startsWith(codec + '/')) continue;
    for (const dep of deps) {
      assert.ok(dep.startsWith(codec + '/') || dep === join(src, 'errors.ts'), `${rel(file)} imports ${rel(dep)}`);
    }
  }
});

test('every source file starts with a header comment', () => {
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    assert.ok(/^(#!.*\n)?(\/\*\*|\/\/ )/.test(text), `${rel(file)} has no header comment`);
  }
});

test("every folder of src/ is named in the README's layout section", () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const layout = readme.slice(readme.indexOf('## Layout'), readme.indexOf('\n## ', readme.indexOf('## Layout') + 1));
  const dirs = new Set(files.map((f) => relative(root, dirname(f))).filter((d) => d !== 'src'));
  for (const d of dirs) assert.ok(layout.includes(`${d}/`), `README's layout section does not name ${d}/`);
});
