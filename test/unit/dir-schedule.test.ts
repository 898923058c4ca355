/**
 * The directory client's pure rules: the consensus refresh time (dir-spec §5.1 as tor's
 * networkstatus.c computes it), microdescriptor batches (tor's routerlist.c: ≤ 500 a
 * request, at least 3 requests of ≥ 32 when there are enough), and path kinds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { refreshTimeFor, splitBatches } from '../../src/client/torclient.js';
import { pathKind } from '../../src/client/dirclient.js';

const H = 3600_000;

test('refresh time on the public schedule: between VA+1:45 and VA+2:50 (1 h fresh, 3 h valid)', () => {
  const va = new Date('2026-06-27T04:00:00Z');
  const fu = new Date(va.getTime() + H);
  const vu = new Date(va.getTime() + 3 * H);
  const earliest = refreshTimeFor(va, fu, vu, va, () => 0);
  const latest = refreshTimeFor(va, fu, vu, va, (n) => n - 1);
  assert.equal(earliest.getTime() - va.getTime(), 1.75 * H);
  // start = VA+1:45, dl = (3h - 1:45) * 7/8 = 65.625 min → latest ≈ VA+2:50:37
  assert.ok(Math.abs(latest.getTime() - va.getTime() - (1.75 * H + (1.25 * H * 7) / 8)) < 1000);
});

test('refresh time: never in the past; now when the consensus has expired; always before valid-until', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 10, max: 7200 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: -3 * 7200, max: 6 * 7200 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (intervalSec, validFactor, nowOffsetSec, r) => {
        const va = new Date(1_800_000_000_000);
        const fu = new Date(va.getTime() + intervalSec * 1000);
        const vu = new Date(fu.getTime() + validFactor * intervalSec * 1000);
        const now = new Date(va.getTime() + nowOffsetSec * 1000);
        const t = refreshTimeFor(va, fu, vu, now, (n) => Math.floor(r * n));
        assert.ok(t.getTime() >= now.getTime());
        if (now > vu) assert.equal(t.getTime(), now.getTime());
        else assert.ok(t.getTime() <= Math.max(now.getTime(), vu.getTime()), `${t.toISOString()} after ${vu.toISOString()}`);
      },
    ),
  );
});

test('microdescriptor batches: every digest once, ≤ 500 each, ≥ 3 requests of ≥ 32 when there are enough', () => {
  assert.deepEqual(splitBatches([]), []);
  assert.equal(splitBatches(Array.from({ length: 10 }, (_, i) => i)).length, 1);
  assert.equal(splitBatches(Array.from({ length: 96 }, (_, i) => i)).length, 3);
  assert.equal(splitBatches(Array.from({ length: 8000 }, (_, i) => i)).length, 16);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 9000 }), (n) => {
      const items = Array.from({ length: n }, (_, i) => i);
      const batches = splitBatches(items);
      assert.deepEqual(batches.flat(), items);
      assert.ok(batches.every((b) => b.length > 0 && b.length <= 500));
      if (n >= 96) assert.ok(batches.length >= 3);
      if (n >= 32) assert.ok(batches.every((b) => b.length >= Math.min(32, Math.floor(n / batches.length))));
    }),
  );
});

test('path kinds', () => {
  assert.equal(pathKind('/tor/status-vote/current/consensus-microdesc/0232AF+23D15D.z'), 'consensus');
  assert.equal(pathKind('/tor/keys/fp/AAAA.z'), 'keys');
  assert.equal(pathKind('/tor/micro/d/abc-def.z'), 'micro');
  assert.equal(pathKind('/tor/server/authority'), 'other');
});
