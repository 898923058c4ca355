/**
 * client/scheduler: turns go round-robin across circuits and across the streams of a
 * circuit, a quantum of cells each; a bulk sender doesn't delay an interactive one by
 * more than a round; a stream whose window shut leaves the order until ready() again;
 * a socket above its high-water mark stops the scheduler until 'drain'.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { CellWriter } from '../../src/client/cellwriter.js';
import { OutboundScheduler, type Sendable } from '../../src/client/scheduler.js';

/** A stream with `cells` to send, logging each cell it sends as its name. */
function fakeStream(name: string, cells: number, log: string[], window = Infinity): Sendable & { cells: number; window: number } {
  return {
    cells,
    window,
    get hasPending() {
      return this.cells > 0;
    },
    pump(max: number) {
      const n = Math.min(max, this.cells, this.window);
      for (let i = 0; i < n; i++) log.push(name);
      this.cells -= n;
      this.window -= n;
      return n;
    },
  };
}

test('round-robin across circuits, then across the streams of a circuit, a quantum each', () => {
  const log: string[] = [];
  const s = new OutboundScheduler(new CellWriter(), () => undefined, { quantumCells: 2 });
  const c1 = {};
  const c2 = {};
  s.ready(c1, fakeStream('a', 6, log));
  s.ready(c1, fakeStream('b', 2, log));
  s.ready(c2, fakeStream('x', 4, log));
  s.runNow();
  assert.deepEqual(log.join(''), 'aaxxbbxxaaaa');
});

test('a bulk upload does not starve an interactive stream: its cell goes within the first round', () => {
  const log: string[] = [];
  const s = new OutboundScheduler(new CellWriter(), () => undefined, { quantumCells: 4 });
  const bulk = {};
  const chat = {};
  s.ready(bulk, fakeStream('B', 1000, log));
  s.ready(chat, fakeStream('i', 1, log));
  s.runNow();
  assert.ok(log.indexOf('i') <= 4, `the interactive cell went at position ${log.indexOf('i')}`);
  assert.equal(log.length, 1001);
});

test('a shut window takes the stream out of the order until ready() again', () => {
  const log: string[] = [];
  const s = new OutboundScheduler(new CellWriter(), () => undefined, { quantumCells: 4 });
  const c = {};
  const blocked = fakeStream('w', 10, log, 3);
  s.ready(c, blocked);
  s.ready(c, fakeStream('o', 5, log));
  s.runNow();
  assert.equal(log.filter((x) => x === 'w').length, 3);
  assert.equal(log.filter((x) => x === 'o').length, 5);
  blocked.window = 100; // a SENDME arrived
  s.ready(c, blocked);
  s.runNow();
  assert.equal(log.filter((x) => x === 'w').length, 10);
});

test("above the socket's high-water mark the scheduler waits for 'drain'", async () => {
  const log: string[] = [];
  const socket = Object.assign(new EventEmitter(), { writableLength: 1_000_000 });
  const s = new OutboundScheduler(new CellWriter(), () => socket, { quantumCells: 4, highWaterBytes: 1000 });
  s.ready({}, fakeStream('a', 8, log));
  s.runNow();
  assert.equal(log.length, 0, 'nothing while the socket is full');
  socket.writableLength = 0;
  socket.emit('drain');
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(log.length, 8);
  assert.equal(s.counters.drains, 1);
});
