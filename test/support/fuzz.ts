/**
 * test/support/fuzz — shared pieces of the fuzz tests: how many cases to run, a counted
 * property runner, byte mutators, and the oracle ("our typed error or nothing").
 *
 * `ORPORT_FUZZ_RUNS` scales every property (default 200: the quick profile of `npm
 * test`; `npm run fuzz` sets 20000). Each file prints its case counts when it ends and,
 * when `ORPORT_FUZZ_COUNTS` names a file, appends them there (`scripts/test.ts --fuzz`
 * adds them up).
 */
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { basename } from 'node:path';
import fc from 'fast-check';
import { OrportError } from '../../src/index.js';

export const RUNS = Number(process.env.ORPORT_FUZZ_RUNS ?? 200);

const counts = new Map<string, number>();
let fileName = 'fuzz';

/** Counts one executed case of property `name`. */
function count(name: string): void {
  counts.set(name, (counts.get(name) ?? 0) + 1);
}

// Registered when this module loads (at the top level of the test file that imports it),
// so it runs once, after all of that file's tests.
after(() => {
  if (counts.size === 0) return;
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const lines = [...counts].map(([name, n]) => `#   ${String(n).padStart(9)}  ${name}`);
  console.log(`# fuzz ${fileName}: ${total} cases\n${lines.join('\n')}`);
  const out = process.env.ORPORT_FUZZ_COUNTS;
  if (out) appendFileSync(out, [...counts].map(([name, n]) => `${fileName}\t${name}\t${n}\n`).join(''));
});

/**
 * Runs a fast-check property `RUNS * factor` times (at least `min`), counting every case.
 * A failure is reported minimised (fast-check's shrinking) with its seed and path.
 */
export function fuzz<T>(file: string, name: string, arb: fc.Arbitrary<T>, predicate: (value: T) => void, factor = 1, min = 10): void {
  fileName = basename(new URL(file, 'file:///').pathname);
  const numRuns = Math.max(min, Math.round(RUNS * factor));
  fc.assert(
    fc.property(arb, (value) => {
      count(name);
      predicate(value);
    }),
    { numRuns },
  );
}

/** The oracle: `fn` returns, or throws one of our typed errors; anything else fails the case. */
export function typedOrNothing<T>(fn: () => T): T | OrportError {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof OrportError, `an untyped exception: ${err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err)}`);
    assert.ok(typeof err.code === 'string' && err.code.startsWith('E_'), `an OrportError without a code: ${String(err)}`);
    return err;
  }
}

/** Asserts a reported error (an event argument) is one of ours. */
export function assertTyped(error: unknown, what: string): void {
  if (error === undefined || error === null) return;
  assert.ok(error instanceof OrportError, `${what} reported an untyped error: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'interesting'; at: number; value: number; width: 1 | 2 | 4 };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('interesting' as const),
      at: fc.nat(),
      value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff),
      width: fc.constantFrom(1 as const, 2 as const, 4 as const),
    }),
  },
);

/** Applies mutations to a copy of `base` (positions wrap around its length). */
export function applyMutations(base: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b = Buffer.from(base);
  for (const m of mutations) {
    const len = b.length;
    const at = len === 0 ? 0 : m.at % len;
    switch (m.kind) {
      case 'flip':
        if (len) b[at]! ^= 1 << m.bit;
        break;
      case 'set':
        if (len) b[at] = m.value;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, at + m.length), b.subarray(at, at + m.length), b.subarray(at + m.length)]);
        break;
      case 'interesting':
        for (let i = 0; i < m.width && at + i < len; i++) b[at + i] = (m.value >>> ((m.width - 1 - i) * 8)) & 0xff;
        break;
    }
  }
  return new Uint8Array(b);
}

/** `base` with 1-4 random mutations (bit flips, boundary values, inserts, deletes, truncation, duplication). */
export function mutated(base: Uint8Array, maxMutations = 4): fc.Arbitrary<Uint8Array> {
  return fc.array(mutationArb, { minLength: 1, maxLength: maxMutations }).map((ms) => applyMutations(base, ms));
}

/** One of `bases`, mutated. */
export function mutatedOneOf(bases: readonly Uint8Array[], maxMutations = 4): fc.Arbitrary<Uint8Array> {
  return fc.nat({ max: bases.length - 1 }).chain((i) => mutated(bases[i]!, maxMutations));
}

/** Splits `bytes` into chunks at the given cut points (as a TLS reader might deliver them). */
export function chunked(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (bytes.length ? c % bytes.length : 0)))].filter((c) => c > 0).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const p of points) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  out.push(bytes.subarray(last));
  return out.filter((c) => c.length > 0);
}
