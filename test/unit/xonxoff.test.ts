/**
 * Stream flow control on CC circuits (proto/xonxoff.ts): the XON/XOFF codec (trunnel
 * flow_control_cells.trunnel), the receiver's XOFF/XON policy (tor 0.4.9
 * congestion_control_flow.c `flow_control_decide_xoff` / `_xon`, with the drain-rate EWMA
 * computed by hand below), and the sender's handling of XON/XOFF (`circuit_process_stream_*`:
 * duplicates, unparsable XONs, the dropmark counters). No vectors are taken from tor's
 * tests (test_flow_control.c has none for these paths); every number is worked out here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DecodeError, OrportError } from '../../src/errors.js';
import { DEFAULT_CONGESTION_PARAMS as D, congestionParams } from '../../src/proto/ccparams.js';
import { FlowReceiver, FlowSender, RELAY_COMMAND_XOFF, RELAY_COMMAND_XON, XoffMsg, XonMsg, parseXonRate } from '../../src/proto/xonxoff.js';

const RUNS = Number(process.env.ORPORT_FUZZ_RUNS ?? 200);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

// ---------------------------------------------------------------------------------------
// codec

test('codec: XOFF is 00, XON is 00 + kbps_ewma u32', () => {
  // tor's or.h (checked against tor 0.4.9 on the private network: swapped, an exit obeys neither).
  assert.equal(RELAY_COMMAND_XOFF, 43);
  assert.equal(RELAY_COMMAND_XON, 44);
  assert.equal(new XoffMsg().command, 43);
  assert.equal(hex(new XoffMsg().encode()), '00');
  assert.equal(new XonMsg(0).command, 44);
  assert.equal(hex(new XonMsg(0).encode()), '0000000000');
  assert.equal(hex(new XonMsg(0x01020304).encode()), '0001020304');
  assert.equal(hex(new XonMsg(0xffffffff).encode()), '00ffffffff');
  assert.equal(XonMsg.decode(bytes('0001020304')).kbpsEwma, 0x01020304);
  assert.equal(XonMsg.decode(bytes('00ffffffffaabb')).kbpsEwma, 0xffffffff); // trailing bytes: trunnel ignores them
  assert.ok(XoffMsg.decode(bytes('00')) instanceof XoffMsg);
  assert.ok(XoffMsg.decode(bytes('0099')) instanceof XoffMsg);
  for (const bad of ['', '01', 'ff']) assert.throws(() => XoffMsg.decode(bytes(bad)), DecodeError, bad);
  for (const bad of ['', '00', '00010203', '0100000000']) assert.throws(() => XonMsg.decode(bytes(bad)), DecodeError, bad);
  for (const bad of [-1, 2 ** 32, 1.5, Number.NaN]) assert.throws(() => new XonMsg(bad), OrportError);
});

test('codec: parseXonRate is tor-tolerant (-1 where tor ignores the XON)', () => {
  assert.equal(parseXonRate(bytes('0000000064')), 100);
  assert.equal(parseXonRate(bytes('00ffffffff')), 0xffffffff);
  assert.equal(parseXonRate(bytes('0000000001ff')), 1);
  assert.equal(parseXonRate(bytes('01000000ff')), -1); // version 1
  assert.equal(parseXonRate(bytes('00000000')), -1); // short
  assert.equal(parseXonRate(new Uint8Array(0)), -1);
});

test('property: codec round trips; garbage never throws untyped', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (kbps) => {
      const body = new XonMsg(kbps).encode();
      assert.equal(XonMsg.decode(body).kbpsEwma, kbps);
      assert.equal(parseXonRate(body), kbps);
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), (body) => {
      for (const decode of [() => XonMsg.decode(body), () => XoffMsg.decode(body)]) {
        try {
          decode();
        } catch (e) {
          assert.ok(e instanceof DecodeError, String(e));
        }
      }
      const r = parseXonRate(body);
      assert.equal(r, body.length >= 5 && body[0] === 0 ? XonMsg.decode(body).kbpsEwma : -1);
      const s = new FlowSender(D);
      s.onXoff();
      s.onXon(body);
      assert.equal(s.invalid.malformedXon, r < 0 ? 1 : 0);
      assert.equal(s.xoffReceived, r < 0); // an unparsable XON changes nothing
    }),
    { numRuns: RUNS },
  );
});

// ---------------------------------------------------------------------------------------
// receiver: XOFF

test('receiver: XOFF once the buffer is over cc_xoff_client·488 = 244000 bytes after the 5 ms grace period', () => {
  const r = new FlowReceiver(D);
  assert.equal(r.limitBytes, 244000);
  assert.equal(r.onData(1_000_000, 244000), null); // not over the limit
  assert.equal(r.xoffGraceStartUsec, 0);
  assert.equal(r.onData(1_000_000, 244001), null); // over: the grace period starts
  assert.equal(r.xoffGraceStartUsec, 1_000_000);
  assert.equal(r.onData(1_005_000, 300000), null); // 1005000 is not > 1000000 + 5000
  r.ewmaDrainRate = 777;
  assert.equal(r.onData(1_005_001, 300000), 'xoff');
  assert.deepEqual([r.xoffSent, r.xoffGraceStartUsec, r.ewmaDrainRate, r.counters.xoffSent], [true, 0, 0, 1]); // the rate is reset
  assert.equal(r.onData(1_100_000, 400000), null); // one XOFF outstanding at a time
  assert.equal(r.counters.xoffSent, 1);
});

test('receiver: draining under the limit during the grace period cancels it', () => {
  const r = new FlowReceiver(D);
  r.onData(1_000_000, 250000);
  assert.equal(r.onData(1_003_000, 200000), null);
  assert.equal(r.xoffGraceStartUsec, 0);
  assert.equal(r.onData(1_006_000, 250000), null); // a new grace period from 1006000
  assert.equal(r.onData(1_010_000, 250000), null);
  assert.equal(r.onData(1_011_001, 250000), 'xoff');
});

test('receiver: the limit is cc_xoff_client (or a given one)', () => {
  const r = new FlowReceiver(congestionParams({ cc_xoff_client: 10 })); // 4880 bytes
  r.onData(1, 4881);
  assert.equal(r.onData(5002, 4881), 'xoff');
  const e = new FlowReceiver(D, 1000);
  e.onData(1, 1001);
  assert.equal(e.onData(5002, 1001), 'xoff');
});

// ---------------------------------------------------------------------------------------
// receiver: XON and the drain rate

test('receiver: XON when drained to 0 after an XOFF, carrying the drain-rate EWMA; advisory XONs; doubling', () => {
  const r = new FlowReceiver(D); // xon_rate = 500·498 = 249000 bytes, change 25 %, EWMA N = 2
  // Buffering begins: 10000 written, 290000 left → the measurement starts now (drained reset to 0).
  assert.equal(r.onDrain(1_000_000, 10000, 290000), null);
  assert.deepEqual([r.drainStartUsec, r.drainedBytes], [1_000_000, 0]);
  // 250000 written in 100 ms: 250000 > 249000 ⇒ a rate. prev_drained_bytes was 0 → 250000 (itself);
  // rate = 250000·1000/100000 = 2500 kB/s; EWMA (no prev) = 2500; the measurement restarts.
  assert.equal(r.onDrain(1_100_000, 250000, 40000), null); // no rate sent yet ⇒ no advisory XON
  assert.deepEqual([r.ewmaDrainRate, r.prevDrainedBytes, r.drainedBytes, r.drainStartUsec], [2500, 250000, 0, 0]);

  // The app stalls: XOFF (grace period first). 250000 > 32·488 = 15616, so onData also runs
  // the XON logic with 0 written: it starts a measurement at 1200000.
  assert.equal(r.onData(1_200_000, 250000), null);
  assert.equal(r.drainStartUsec, 1_200_000);
  assert.equal(r.onData(1_205_001, 250000), 'xoff');
  assert.equal(r.ewmaDrainRate, 0);
  // The app takes all 250000 by 1300000: 250000 > 249000 ⇒ a rate from prev_drained_bytes (250000,
  // tor uses the previous count) over 100000 µs = 2500; EWMA (prev 0 after the XOFF) = 2500;
  // XOFF outstanding and the buffer empty ⇒ XON(2500).
  assert.equal(r.onDrain(1_300_000, 250000, 0), 'xon');
  assert.deepEqual([r.xonRate, r.xoffSent, r.counters.xonSent], [2500, false, 1]);
  assert.equal(hex(new XonMsg(r.xonRate).encode()), '00000009c4');

  // Advisory XON: a slower app. Buffering again from 2000000 (1000 written, 260000 left).
  assert.equal(r.onDrain(2_000_000, 1000, 260000), null);
  // 260000 bytes in 1 s: rate = prev 250000·1000/1000000 = 250; EWMA (2·250 + 1·2500)/3 = 1000;
  // 1000 < (100 − 25)·2500/100 = 1875 ⇒ advisory XON(1000).
  assert.equal(r.onDrain(3_000_000, 260000, 10000), 'xon');
  assert.deepEqual([r.ewmaDrainRate, r.xonRate, r.prevDrainedBytes], [1000, 1000, 260000]);
  // Within ±25 %: nothing. prev 260000 over 260 ms = 1000; EWMA (2000 + 1000)/3 = 1000.
  r.onDrain(4_000_000, 0, 5000);
  assert.equal(r.onDrain(4_260_000, 250000, 0), null);
  assert.equal(r.ewmaDrainRate, 1000);

  // Empty buffer while xon_rate bytes flow straight through: the rate doubles (2000) after the
  // advisory check of that call, so the XON(2000) comes with the next one.
  assert.equal(r.onDrain(5_000_000, 249000, 0), null);
  assert.deepEqual([r.ewmaDrainRate, r.prevDrainedBytes, r.drainedBytes], [2000, 249000, 0]);
  assert.equal(r.onDrain(5_000_001, 0, 0), 'xon'); // 2000 > 125 % of 1000
  assert.equal(r.xonRate, 2000);
});

test('receiver: drain rate caps (INT32_MAX) and floors (1)', () => {
  // prev_drained_bytes above INT32_MAX/1000 = 2147483 ⇒ INT32_MAX.
  const big = new FlowReceiver(congestionParams({ cc_xon_rate: 1 })); // 498 bytes
  big.onDrain(1_000_000, 0, 10);
  big.onDrain(1_000_010, 3_000_000, 10);
  assert.equal(big.ewmaDrainRate, 0x7fffffff);
  // A slow drain: 499 bytes in 10 s = 49.9 B/s → 0.0499 kB/s → floored to 1.
  const slow = new FlowReceiver(congestionParams({ cc_xon_rate: 1 }));
  slow.onDrain(1_000_000, 0, 10);
  slow.onDrain(11_000_000, 499, 10);
  assert.equal(slow.ewmaDrainRate, 1);
});

test('receiver: the drained-bytes counter halves before wrapping its u32', () => {
  const r = new FlowReceiver(D);
  r.drainStartUsec = 1000;
  r.drainedBytes = 0xffffffff - 100;
  r.xoffSent = true;
  // 4294967195 ≥ 0xffffffff − 200 ⇒ halved to 2147483597, the start moves to 3000 − (3000 − 1000)/2 = 2000;
  // then + 200 = 2147483797 > 249000 ⇒ a measurement: prev (0) takes it, and as it is over
  // INT32_MAX/1000 bytes the rate is INT32_MAX.
  r.onDrain(3000, 200, 10);
  assert.equal(r.prevDrainedBytes, Math.floor((0xffffffff - 100) / 2) + 200);
  assert.equal(r.ewmaDrainRate, 0x7fffffff);
});

// ---------------------------------------------------------------------------------------
// sender

test('sender: XOFF stops packaging, a duplicate is ignored, XON resumes with its rate', () => {
  const s = new FlowSender(D);
  assert.equal(s.canPackage, true);
  s.noteSentData(244000 * 3);
  assert.equal(s.onXoff(), true);
  assert.equal(s.canPackage, false);
  assert.equal(s.onXoff(), false); // "Got multiple XOFF": not counted
  assert.deepEqual([s.numXoffRecv, s.invalid.duplicateXoff, s.canPackage], [1, 1, false]);
  assert.equal(s.onXon(new XonMsg(100).encode()), true);
  assert.deepEqual([s.canPackage, s.rateLimit, s.numXonRecv], [true, 100000, 1]); // 100 kB/s
  s.onXon(new XonMsg(0).encode());
  assert.equal(s.rateLimit, undefined); // 0: no advice, unlimited
  s.onXon(new XonMsg(2147483).encode());
  assert.equal(s.rateLimit, 2147483000); // ≤ INT32_MAX
  s.onXon(new XonMsg(2147484).encode());
  assert.equal(s.rateLimit, undefined); // 2147484000 > INT32_MAX: unlimited
  // An XON while packaging (advisory) just changes the rate.
  s.onXon(new XonMsg(5).encode());
  assert.deepEqual([s.canPackage, s.rateLimit], [true, 5000]);
});

test('sender: an unparsable XON is ignored entirely', () => {
  const s = new FlowSender(D);
  s.noteSentData(1_000_000);
  s.onXoff();
  for (const body of ['', '00', '01000000ff', '0000']) assert.equal(s.onXon(bytes(body)), false);
  assert.deepEqual([s.canPackage, s.numXonRecv, s.invalid.malformedXon], [false, 0, 4]);
});

test('sender: dropmark accounting — more XOFF/XON than the bytes sent allow are flagged but obeyed (C tor)', () => {
  const s = new FlowSender(D); // toward an exit: XOFF needs cc_xoff_exit·488 = 244000 bytes each,
  // XON min(244000, cc_xon_rate·498 = 249000) = 244000 each.
  assert.equal(s.onXoff(), false); // 0 < 244000·1: too early
  assert.equal(s.canPackage, false); // still obeyed
  assert.equal(s.invalid.excess, 1);
  assert.equal(s.onXon(new XonMsg(0).encode()), false); // 0 < 244000·1
  assert.equal(s.canPackage, true);
  s.noteSentData(488000);
  assert.equal(s.onXoff(), true); // 488000 ≥ 244000·2
  assert.equal(s.onXon(new XonMsg(0).encode()), true); // 488000 ≥ 244000·2
  assert.equal(s.onXoff(), false); // 488000 < 244000·3
  assert.equal(s.invalid.excess, 3);
  // Toward an onion service the other side is a client: cc_xoff_client.
  const o = new FlowSender(congestionParams({ cc_xoff_client: 1, cc_xoff_exit: 10000 }), { onion: true });
  o.noteSentData(488);
  assert.equal(o.onXoff(), true);
  assert.equal(o.onXon(new XonMsg(0).encode()), true); // min(488, 249000)
});

test('sender: the counters halve at 200 XOFFs / XONs and at 10 MiB sent', () => {
  const s = new FlowSender(D);
  s.totalBytesXmit = 1000;
  s.numXoffRecv = 200;
  s.numXonRecv = 50;
  s.onXoff(); // 200 ⇒ halve everything, then count: 100 + 1
  assert.deepEqual([s.totalBytesXmit, s.numXoffRecv, s.numXonRecv], [500, 101, 25]);
  s.numXonRecv = 200;
  s.onXon(new XonMsg(1).encode());
  assert.deepEqual([s.totalBytesXmit, s.numXoffRecv, s.numXonRecv], [250, 50, 101]);
  // 10 MiB − 100 ≥ 10 MiB − 498 ⇒ halve, then add.
  s.totalBytesXmit = 10 * 2 ** 20 - 100;
  s.noteSentData(498);
  assert.deepEqual([s.totalBytesXmit, s.numXoffRecv, s.numXonRecv], [5 * 2 ** 20 - 50 + 498, 25, 50]);
});

test('property: any sequence of XON/XOFF/data keeps the sender consistent and never throws', () => {
  const ev = fc.oneof(
    fc.constant({ k: 'xoff' as const }),
    fc.record({ k: fc.constant('xon' as const), body: fc.uint8Array({ maxLength: 8 }) }),
    fc.record({ k: fc.constant('data' as const), n: fc.integer({ min: 0, max: 498 }) }),
  );
  fc.assert(
    fc.property(fc.array(ev, { maxLength: 600 }), (events) => {
      const s = new FlowSender(D);
      for (const e of events) {
        if (e.k === 'xoff') s.onXoff();
        else if (e.k === 'xon') s.onXon(e.body);
        else s.noteSentData(e.n);
        assert.equal(s.canPackage, !s.xoffReceived);
        assert.ok(s.numXoffRecv <= 201 && s.numXonRecv <= 201 && s.totalBytesXmit < 10 * 2 ** 20 + 498);
        assert.ok(s.rateLimit === undefined || (s.rateLimit > 0 && s.rateLimit <= 0x7fffffff));
      }
    }),
    { numRuns: RUNS },
  );
});

test('property: the receiver signals at most one XOFF per XON, and an XON follows an XOFF only on an empty buffer', () => {
  const ev = fc.oneof(
    fc.record({ k: fc.constant('data' as const), dt: fc.integer({ min: 0, max: 20000 }), buffered: fc.integer({ min: 0, max: 600000 }) }),
    fc.record({ k: fc.constant('drain' as const), dt: fc.integer({ min: 0, max: 200000 }), written: fc.integer({ min: 0, max: 300000 }), left: fc.integer({ min: 0, max: 600000 }) }),
  );
  fc.assert(
    fc.property(fc.array(ev, { maxLength: 300 }), (events) => {
      const r = new FlowReceiver(D);
      let now = 1;
      let xoffOut = false;
      for (const e of events) {
        now += e.dt;
        const sig = e.k === 'data' ? r.onData(now, e.buffered) : r.onDrain(now, e.written, e.left);
        if (sig === 'xoff') {
          assert.equal(xoffOut, false);
          xoffOut = true;
        } else if (sig === 'xon') {
          if (xoffOut) assert.ok(e.k === 'drain' && e.left === 0);
          xoffOut = false;
          assert.ok(r.xonRate >= 0 && r.xonRate <= 0x7fffffff);
        }
        assert.equal(r.xoffSent, xoffOut);
        assert.ok(r.drainedBytes >= 0 && r.drainedBytes <= 0xffffffff);
      }
    }),
    { numRuns: RUNS },
  );
});
