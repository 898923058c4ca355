/**
 * Congestion control, sender side: the consensus parameters (ccparams.ts: tor 0.4.9's
 * defaults and clamps) and TOR_VEGAS (vegas.ts) — hand-computed traces through the public
 * API, tor's own unit-test vectors, and fast-check properties.
 *
 * Provenance of the replayed vectors: tor's src/test/test_congestion_control.c
 * (`test_congestion_control_clock` vect1, `test_congestion_control_rtt` vect1,
 * `test_congestion_control_vegas_cwnd` vect1–vect4), tor main branch at 0.4.9.3-alpha-dev,
 * mirror syphyr/tor commit 817b7105f2a0ac6d70f0005889aecf7f4d6536ea. Their harness queues
 * all send timestamps first (`enqueue_timestamp`), then sets inflight and the blocked flag
 * before each SENDME (channel queue 0); the rows are copied as numbers, the harness is ours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BadArgumentError, OrportError, ProtocolError } from '../../src/errors.js';
import { DEFAULT_CONGESTION_PARAMS, OUTBUF_CELLS, TLS_RECORD_MAX_CELLS, congestionControlEnabled, congestionParams, type CongestionParams } from '../../src/proto/ccparams.js';
import { Vegas, channelBlocked, checkSendmeInc, nCountEwma, percentMaxMix } from '../../src/proto/vegas.js';

const RUNS = Number(process.env.ORPORT_FUZZ_RUNS ?? 200);
const INT32_MAX = 0x7fffffff;
const D = DEFAULT_CONGESTION_PARAMS;

// ---------------------------------------------------------------------------------------
// ccparams

test('ccparams: tor 0.4.9 defaults for an empty params line', () => {
  assert.equal(TLS_RECORD_MAX_CELLS, 31); // (16·1024)/514
  assert.equal(OUTBUF_CELLS, 62);
  assert.deepEqual({ ...congestionParams({}) }, {
    alg: 2,
    sendmeInc: 31,
    cwndInit: 124, // 4·31
    cwndMin: 124,
    cwndMax: INT32_MAX,
    cwndInc: 1,
    cwndIncRate: 31,
    cwndIncPctSs: 100,
    ssMax: 5000,
    sscap: 600,
    alpha: 186, // 3·62
    beta: 248, // 4·62
    gamma: 186, // 3·62
    delta: 310, // 5·62
    cwndFullGap: 4,
    cwndFullMinPct: 25,
    cwndFullPerCwnd: true,
    ewmaCwndPct: 50,
    ewmaMax: 10,
    ewmaSs: 2,
    rttResetPct: 100,
    bweMin: 5,
    xoffClientBytes: 244000, // 500·488
    xoffExitBytes: 244000,
    xonRateBytes: 249000, // 500·498
    xonChangePct: 25,
    xonEwmaCnt: 2,
    cellqHigh: 256,
    cellqLow: 10,
    orconnHigh: 32768,
    orconnLow: 16384,
    circwindow: 1000,
    sendmeEmitMinVersion: 1,
    sendmeAcceptMinVersion: 0,
  });
  assert.ok(Object.isFrozen(D));
});

test('ccparams: onion path thresholds (CC_PATH_ONION)', () => {
  const p = congestionParams({}, 'onion');
  assert.deepEqual([p.alpha, p.beta, p.gamma, p.delta, p.sscap], [186, 372, 248, 434, 475]); // 3·62, 6·62, 4·62, 7·62
  const q = congestionParams({ cc_vegas_alpha_onion: 10, cc_vegas_alpha_exit: 20, cc_sscap_onion: 300 }, 'onion');
  assert.equal(q.alpha, 10);
  assert.equal(q.sscap, 300);
  assert.equal(congestionParams({ cc_vegas_alpha_onion: 10, cc_vegas_alpha_exit: 20 }).alpha, 20);
});

test('ccparams: values are clamped like networkstatus_get_param', () => {
  const low = congestionParams({
    cc_sendme_inc: 0, cc_cwnd_init: 1, cc_cwnd_min: 1, cc_cwnd_max: 1, cc_cwnd_inc: 0, cc_cwnd_inc_rate: 0,
    cc_cwnd_inc_pct_ss: 0, cc_ss_max: 1, cc_sscap_exit: 1, cc_vegas_alpha_exit: -5, cc_vegas_delta_exit: -1,
    cc_cwnd_full_gap: -1, cc_cwnd_full_minpct: -1, cc_cwnd_full_per_cwnd: -1, cc_ewma_cwnd_pct: 0, cc_ewma_max: 0,
    cc_ewma_ss: 0, cc_rtt_reset_pct: -1, cc_bwe_min: 0, cc_xoff_client: 0, cc_xoff_exit: 0, cc_xon_rate: 0,
    cc_xon_change_pct: 0, cc_xon_ewma_cnt: 0, cellq_high: 0, cellq_low: 0, orconn_high: 0, orconn_low: 0,
    circwindow: 1, sendme_emit_min_version: -1, sendme_accept_min_version: -1,
  });
  assert.deepEqual(
    [low.sendmeInc, low.cwndInit, low.cwndMin, low.cwndMax, low.cwndInc, low.cwndIncRate, low.cwndIncPctSs, low.ssMax, low.sscap, low.alpha, low.delta],
    [1, 31, 31, 500, 1, 1, 1, 500, 100, 0, 0],
  );
  assert.deepEqual(
    [low.cwndFullGap, low.cwndFullMinPct, low.cwndFullPerCwnd, low.ewmaCwndPct, low.ewmaMax, low.ewmaSs, low.rttResetPct, low.bweMin],
    [0, 0, false, 1, 2, 2, 0, 2],
  );
  assert.deepEqual(
    [low.xoffClientBytes, low.xoffExitBytes, low.xonRateBytes, low.xonChangePct, low.xonEwmaCnt, low.cellqHigh, low.cellqLow, low.orconnHigh, low.orconnLow],
    [488, 488, 498, 1, 2, 1, 1, 509, 509],
  );
  assert.deepEqual([low.circwindow, low.sendmeEmitMinVersion, low.sendmeAcceptMinVersion], [100, 0, 0]);

  const high = congestionParams({
    cc_sendme_inc: 300, cc_cwnd_init: 20000, cc_cwnd_min: 2000, cc_cwnd_inc: 5000, cc_cwnd_inc_rate: 300,
    cc_cwnd_inc_pct_ss: 600, cc_vegas_alpha_exit: 1001, cc_vegas_beta_exit: 5000, cc_vegas_gamma_exit: 1001,
    cc_cwnd_full_gap: 40000, cc_cwnd_full_minpct: 101, cc_cwnd_full_per_cwnd: 2, cc_ewma_cwnd_pct: 256,
    cc_rtt_reset_pct: 101, cc_bwe_min: 21, cc_xoff_client: 10001, cc_xon_rate: 5001, cc_xon_change_pct: 100,
    cc_xon_ewma_cnt: 101, cellq_high: 1001, circwindow: 1001, sendme_emit_min_version: 256,
  });
  assert.deepEqual(
    [high.sendmeInc, high.cwndInit, high.cwndMin, high.cwndInc, high.cwndIncRate, high.cwndIncPctSs, high.alpha, high.beta, high.gamma],
    [254, 10000, 1000, 1000, 250, 500, 1000, 1000, 1000],
  );
  assert.deepEqual(
    [high.cwndFullGap, high.cwndFullMinPct, high.cwndFullPerCwnd, high.ewmaCwndPct, high.rttResetPct, high.bweMin],
    [32767, 100, true, 255, 100, 20],
  );
  assert.deepEqual(
    [high.xoffClientBytes, high.xonRateBytes, high.xonChangePct, high.xonEwmaCnt, high.cellqHigh, high.circwindow, high.sendmeEmitMinVersion],
    [10000 * 488, 5000 * 498, 99, 100, 1000, 1000, 255],
  );
});

test('ccparams: unparsable values fall back to the default; narrow C fields wrap', () => {
  const p = congestionParams({ cc_sendme_inc: 1.5, cc_cwnd_init: Number.NaN, cc_ss_max: 2 ** 40, cc_cwnd_min: Infinity });
  assert.deepEqual([p.sendmeInc, p.cwndInit, p.ssMax, p.cwndMin], [31, 124, 5000, 124]);
  // vegas_params.delta is a uint16_t: 65536 + 10 → 10; n_ewma_max / n_ewma_ss are uint8_t: 258 → 2, 256 → 0.
  const q = congestionParams({ cc_vegas_delta_exit: 65546, cc_ewma_max: 258, cc_ewma_ss: 256 });
  assert.deepEqual([q.delta, q.ewmaMax, q.ewmaSs], [10, 2, 0]);
});

test('ccparams: cc_alg — 0 disables, 1 and 3 become Vegas (2), clamp 0–3', () => {
  assert.equal(congestionControlEnabled({}), true);
  assert.equal(congestionControlEnabled({ cc_alg: 0 }), false);
  assert.equal(congestionControlEnabled({ cc_alg: -4 }), false); // clamped to 0
  for (const v of [1, 2, 3, 99]) {
    assert.equal(congestionControlEnabled({ cc_alg: v }), true);
    assert.equal(congestionParams({ cc_alg: v }).alg, 2);
  }
  assert.equal(congestionParams({ cc_alg: 0 }).alg, 0);
});

// ---------------------------------------------------------------------------------------
// helpers

test('n_count_ewma and percent_max_mix', () => {
  assert.equal(nCountEwma(150000, 0, 2), 150000); // no prev: curr
  assert.equal(nCountEwma(150000, 100000, 2), 133333); // (300000 + 100000)/3
  assert.equal(nCountEwma(50, 100, 10), 90); // (100 + 9·100)/11 = 90.9
  assert.equal(percentMaxMix(166666, 100000, 100), 166666);
  assert.equal(percentMaxMix(100000, 166666, 0), 100000);
  assert.equal(percentMaxMix(166666, 100000, 50), 133333); // 83333 + 50000
});

test('checkSendmeInc: 0 or more than ±1 from cc_sendme_inc fails (ProtocolError)', () => {
  for (const ok of [30, 31, 32]) assert.equal(checkSendmeInc(ok, D), ok);
  for (const bad of [0, 29, 33, 255, 256, -1, 31.5, Number.NaN]) {
    assert.throws(() => checkSendmeInc(bad, D), ProtocolError, String(bad));
  }
  assert.throws(() => new Vegas(D, 29), ProtocolError);
  assert.equal(checkSendmeInc(2, congestionParams({ cc_sendme_inc: 1 })), 2);
  assert.equal(checkSendmeInc(255, congestionParams({ cc_sendme_inc: 254 })), 255);
});

test('channelBlocked: blocked at cellq_high, unblocked at cellq_low', () => {
  assert.equal(channelBlocked(false, 255, D), false);
  assert.equal(channelBlocked(false, 256, D), true);
  assert.equal(channelBlocked(true, 11, D), true);
  assert.equal(channelBlocked(true, 10, D), false);
});

// ---------------------------------------------------------------------------------------
// cells sent

test('noteCellSent: tags and timestamps at cells #31, #62, …; package window cwnd − inflight', () => {
  const v = new Vegas(D);
  assert.deepEqual([v.cwnd, v.inflight, v.inSlowStart, v.nextCcEvent, v.nextCwndEvent, v.cwndFull], [124, 0, true, 1, 0, false]);
  const marked: number[] = [];
  for (let i = 1; i <= 124; i++) if (v.noteCellSent(1000 + i)) marked.push(i);
  assert.deepEqual(marked, [31, 62, 93, 124]);
  assert.equal(v.inflight, 124);
  assert.equal(v.pendingSendmes, 4);
  assert.equal(v.packageWindow, 0);
  // Sending past the window (the caller's bug) never makes the window negative.
  v.noteCellSent(2000);
  assert.equal(v.packageWindow, 0);
  assert.throws(() => v.noteCellSent(-1), BadArgumentError);
});

test('noteCellSent with sendme_inc 1: the very first cell gets no timestamp (inflight 0), as in tor', () => {
  const v = new Vegas(congestionParams({ cc_sendme_inc: 1 }), 1);
  assert.equal(v.noteCellSent(1), false); // inflight was 0
  assert.equal(v.noteCellSent(2), true);
  assert.equal(v.noteCellSent(3), true);
  assert.equal(v.pendingSendmes, 2);
});

test('a SENDME with no cell awaiting one is a ProtocolError and changes nothing', () => {
  const v = new Vegas(D);
  assert.throws(() => v.processSendme(100), ProtocolError);
  for (let i = 0; i < 30; i++) v.noteCellSent(0); // 30 cells: none marked
  const before = JSON.stringify(v);
  assert.throws(() => v.processSendme(100), (e: unknown) => e instanceof ProtocolError && /no DATA cell awaiting/.test(e.message));
  assert.equal(JSON.stringify(v), before);
  v.noteCellSent(0); // #31
  v.processSendme(100);
  assert.throws(() => v.processSendme(200), ProtocolError); // faster than cells were sent
});

// ---------------------------------------------------------------------------------------
// traces through the public API

/**
 * A sender that keeps the window full: after every SENDME it sends until the package
 * window is 0. `ack(rtt)` delivers the SENDME of the oldest marked cell `rtt` µs after
 * that cell was sent, so a trace is just its RTT sequence.
 */
class Pump {
  readonly sent: number[] = [];
  now = 1_000_000;
  constructor(
    readonly v: Vegas,
    public fill = true,
  ) {
    this.refill();
  }
  refill(): void {
    if (!this.fill) return;
    while (this.v.packageWindow > 0) if (this.v.noteCellSent(this.now)) this.sent.push(this.now);
  }
  ack(rtt: number, blocked = false, queued = 0): Vegas {
    this.now = this.sent.shift()! + rtt;
    this.v.processSendme(this.now, blocked, queued);
    this.refill();
    return this.v;
  }
}

test('trace: slow start with constant RTT grows cwnd by 31 per SENDME, limited above sscap (RFC 3742)', () => {
  const p = new Pump(new Vegas(D));
  // S1: rtt 100000: ewma = min = max = 100000 (first sample); bdp = 124·100000/100000 = 124;
  // queue_use 0 < γ 186; full (inflight 124 + 4·31 ≥ 124); inc = (100·31 + 50)/100 = 31 → cwnd 155.
  // next_cwnd_event 0 → SENDME_PER_CWND(155) = (155+15)/31 = 5 ⇒ cwnd_full reset (5 == 5).
  let v = p.ack(100000);
  assert.deepEqual([v.cwnd, v.ewmaRttUsec, v.minRttUsec, v.maxRttUsec, v.bdp, v.inSlowStart, v.cwndFull], [155, 100000, 100000, 100000, 124, true, false]);
  assert.deepEqual([v.nextCwndEvent, v.nextCcEvent], [5, 1]);
  assert.equal(v.inflight, 155); // 124 − 31 = 93, refilled by 62
  // S2: ewma (2·100000 + 1·100000)/3 = 100000; full again (155 + 124 ≥ 155) → 186;
  // next_cwnd_event 5 → 4 ≠ SENDME_PER_CWND(186) = 6: stays full.
  v = p.ack(100000);
  assert.deepEqual([v.cwnd, v.cwndFull, v.nextCwndEvent], [186, true, 4]);
  const cwnds: number[] = [];
  for (let k = 3; k <= 16; k++) cwnds.push(p.ack(100000).cwnd);
  // 124 + 31·k up to k = 16: 589 ≤ 600 still grows by 31 → 620.
  assert.deepEqual(cwnds, [217, 248, 279, 310, 341, 372, 403, 434, 465, 496, 527, 558, 589, 620]);
  // Above sscap: inc = max((31·600 + cwnd)/(2·cwnd), 1):
  // S17: (18600 + 620)/1240 = 15.5 → 15 → 635; S18: (18600 + 635)/1270 = 15.1 → 15 → 650;
  // S19: (18600 + 650)/1300 = 14.8 → 14 → 664.
  assert.deepEqual([p.ack(100000).cwnd, p.ack(100000).cwnd, p.ack(100000).cwnd], [635, 650, 664]);
  assert.equal(v.inSlowStart, true);
  assert.equal(v.bdp, 650); // bdp of S19 is cwnd before the increment: 650·100000/100000
});

test('trace: slow start ends at cc_ss_max', () => {
  const p = new Pump(new Vegas(congestionParams({ cc_ss_max: 500 })));
  for (let k = 1; k <= 12; k++) p.ack(50000);
  assert.equal(p.v.cwnd, 496); // 124 + 12·31
  assert.equal(p.v.inSlowStart, true);
  const v = p.ack(50000); // 527 ≥ 500 → 500, slow start over
  assert.deepEqual([v.cwnd, v.inSlowStart], [500, false]);
  // Out of slow start: CWND_UPDATE_RATE = (500 + 31·31/2)/(31·31) = (500 + 480)/961 = 1.
  assert.equal(v.nextCcEvent, 1);
});

test('trace: a rising RTT ends slow start on γ, then steady state (α/β/δ), a queue building up, the jump filter', () => {
  const p = new Pump(new Vegas(D));
  for (let k = 1; k <= 4; k++) p.ack(100000); // cwnd 248, ewma = min = 100000 (as in the trace above)
  assert.equal(p.v.cwnd, 248);
  // The RTT doubles. In slow start N = cc_ewma_ss = 2: ewma' = (2·rtt + ewma)/3.
  // S5: ewma (400000 + 100000)/3 = 166666; bdp 248·100000/166666 = 148.8 → 148; queue 100 < 186 → 279.
  let v = p.ack(200000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd, v.maxRttUsec], [166666, 148, 279, 200000]);
  // S6: ewma (400000 + 166666)/3 = 188888; bdp 279·100000/188888 = 147.7 → 147; queue 132 → 310.
  v = p.ack(200000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd], [188888, 147, 310]);
  // next_cwnd_event: 5 after S1, 4, 3, 2, 1, then 0 at S6 → SENDME_PER_CWND(310) = 325/31 = 10 ⇒ full reset.
  assert.deepEqual([v.nextCwndEvent, v.cwndFull], [10, false]);
  // S7: ewma (400000 + 188888)/3 = 196296; bdp 310·100000/196296 = 157.9 → 157; queue 153 → 341.
  v = p.ack(200000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd, v.cwndFull], [196296, 157, 341, true]);
  // S8: ewma (400000 + 196296)/3 = 198765; bdp 341·100000/198765 = 171.6 → 171; queue 170 → 372.
  v = p.ack(200000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd], [198765, 171, 372]);
  // S9: ewma (400000 + 198765)/3 = 199588; bdp 372·100000/199588 = 186.4 → 186; queue 186, not < γ:
  // cwnd = bdp + γ = 186 + 186 = 372, slow start over. CWND_UPDATE_RATE = (372 + 480)/961 = 0.
  v = p.ack(200000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd, v.inSlowStart, v.nextCcEvent], [199588, 186, 372, false, 0]);
  assert.equal(v.minRttUsec, 100000);

  // Steady state, evaluated on every SENDME (update rate 0). N = max(min(0·50/100, 10), 2) = 2.
  // S10: ewma (400000 + 199588)/3 = 199862; bdp 372·100000/199862 = 186.1 → 186; queue 186:
  // not > δ 310, not > β 248, not < α 186 → unchanged.
  v = p.ack(200000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd], [199862, 186, 372]);
  // A queue builds up: the RTT doubles again.
  // S11: ewma (800000 + 199862)/3 = 333287; bdp 372·100000/333287 = 111.6 → 111; queue 261 > β → −1 → 371.
  v = p.ack(400000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd, v.maxRttUsec], [333287, 111, 371, 400000]);
  // S12: ewma (800000 + 333287)/3 = 377762; bdp 371·100000/377762 = 98.2 → 98; queue 273 > β → 370.
  v = p.ack(400000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd], [377762, 98, 370]);
  // S13: ewma (1600000 + 377762)/3 = 659254; bdp 370·100000/659254 = 56.1 → 56; queue 314 > δ 310:
  // cwnd = bdp + δ − cc_cwnd_inc = 56 + 310 − 1 = 365.
  v = p.ack(800000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd, v.maxRttUsec], [659254, 56, 365, 800000]);
  // The queue drains: RTT back to 100000.
  // S14: ewma (200000 + 659254)/3 = 286418; bdp 365·100000/286418 = 127.4 → 127; queue 238 in [α, β] → 365.
  v = p.ack(100000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd], [286418, 127, 365]);
  // S15: ewma (200000 + 286418)/3 = 162139; bdp 365·100000/162139 = 225.1 → 225; queue 140 < α, full → 366.
  v = p.ack(100000);
  assert.deepEqual([v.ewmaRttUsec, v.bdp, v.cwnd, v.minRttUsec], [162139, 225, 366, 100000]);
  // RTT jump filter: 1e9 > 5000·162139 = 810695000 → sample skipped (a clock jump), no algorithm run,
  // but the BDP is recomputed: 366·100000/162139 = 225.7 → 225; inflight still drops by 31.
  const inflight = v.inflight;
  v.processSendme(p.sent.shift()! + 1e9);
  assert.deepEqual([v.ewmaRttUsec, v.maxRttUsec, v.cwnd, v.bdp, v.inflight], [162139, 800000, 366, 225, inflight - 31]);
  assert.deepEqual([v.stats.clockStalls, v.stats.skippedUpdates], [1, 1]);
  // Just under the ratio is accepted: 810695000 is not > 5000·162139.
  // ewma (2·810695000 + 162139)/3 = 540517379.
  v.processSendme(p.sent.shift()! + 810695000);
  assert.equal(v.ewmaRttUsec, 540517379);
});

test('trace: a stalled clock (zero RTT) skips the sample, in slow start too', () => {
  const p = new Pump(new Vegas(D));
  const v = p.ack(0); // ewma stays 0 → bdp = cwnd = 124, not blocked ⇒ no algorithm
  assert.deepEqual([v.cwnd, v.ewmaRttUsec, v.bdp, v.clockBroken, v.stats.clockStalls, v.stats.skippedUpdates], [124, 0, 124, true, 1, 1]);
  assert.equal(v.inflight, 124); // 124 − 31, refilled
  p.ack(100000); // a sane sample: in slow start the heuristics are off, the sample is used
  assert.deepEqual([v.cwnd, v.ewmaRttUsec], [155, 100000]);
});

test('trace: a clock that never gave an RTT, channel blocked: bdp = cwnd − queued (floor cwnd_min)', () => {
  const p = new Pump(new Vegas(D));
  // ewma 0, blocked with 30 cells queued: max(124 − 30, 124) = 124; blocked ⇒ the algorithm runs;
  // in slow start with the channel blocked: cwnd = bdp + γ = 124 + 186 = 310, slow start over.
  let v = p.ack(0, true, 30);
  assert.deepEqual([v.bdp, v.blockedChan, v.cwnd, v.inSlowStart], [124, true, 310, false]);
  // Still no RTT, no longer blocked: bdp = cwnd = 310, no algorithm.
  v = p.ack(0);
  assert.deepEqual([v.bdp, v.blockedChan, v.cwnd], [310, false, 310]);
  // Blocked with more queued than cwnd: bdp = cwnd_min.
  v = p.ack(0, true, 400);
  assert.deepEqual([v.bdp, v.blockedChan], [124, true]);
});

test('trace: min_rtt reset when cwnd sits at cwnd_min (cc_rtt_reset_pct)', () => {
  for (const [pct, expectedMin] of [
    [100, 166666], // max(ewma, min)
    [50, 133333], // 50·166666/100 + 50·100000/100 = 83333 + 50000
    [0, 100000], // min(ewma, min)
  ] as const) {
    // γ = δ = 0: the first SENDME sets cwnd = bdp + 0 = 124 = cwnd_min and ends slow start.
    const p = new Pump(new Vegas(congestionParams({ cc_vegas_gamma_exit: 0, cc_vegas_delta_exit: 0, cc_rtt_reset_pct: pct })));
    let v = p.ack(100000);
    assert.deepEqual([v.cwnd, v.inSlowStart, v.minRttUsec], [124, false, 100000]);
    // S2 rtt 200000: ewma (400000 + 100000)/3 = 166666; cwnd == cwnd_min out of slow start ⇒ reset.
    v = p.ack(200000);
    assert.equal(v.ewmaRttUsec, 166666);
    assert.equal(v.minRttUsec, expectedMin, `pct ${pct}`);
    assert.equal(v.stats.rttResets, 1);
    // bdp = 124·min/166666; queue = 124 − bdp; with pct 100 queue 0 < α and full → 125.
    if (pct === 100) assert.deepEqual([v.bdp, v.cwnd], [124, 125]);
  }
});

test('trace: an app-limited sender stops growing once cwnd is no longer full (hysteresis of cwnd_full)', () => {
  const p = new Pump(new Vegas(D));
  for (let k = 1; k <= 5; k++) p.ack(100000); // 124 + 5·31 = 279, inflight 279 (refilled)
  p.fill = false; // the app stops writing; RTT constant ⇒ bdp = cwnd, queue_use 0
  // S6: 279 + 4·31 ≥ 279 → full → 310, inflight 248; next_cwnd_event 0 → SENDME_PER_CWND(310) = 10 ⇒ reset.
  let v = p.ack(100000);
  assert.deepEqual([v.cwnd, v.inflight, v.cwndFull], [310, 248, false]);
  // S7: 248 + 124 ≥ 310 → full → 341; S8: 217 + 124 ≥ 341 → full → 372.
  assert.deepEqual([p.ack(100000).cwnd, p.ack(100000).cwnd], [341, 372]);
  // S9: 186 + 124 = 310 < 372, but 100·186 = 18600 ≥ 25·372 = 9300: still full (no reset) → 403.
  // S10: 155: 15500 ≥ 25·403 = 10075 → 434. S11: 124: 12400 ≥ 10850 → 465.
  assert.deepEqual([p.ack(100000).cwnd, p.ack(100000).cwnd, p.ack(100000).cwnd], [403, 434, 465]);
  // S12: inflight 93: 93 + 124 < 465 and 9300 < 25·465 = 11625 → not full: no growth.
  v = p.ack(100000);
  assert.deepEqual([v.cwnd, v.cwndFull, v.inflight, v.inSlowStart], [465, false, 62, true]);
});

test('cc_cwnd_max clamps after every SENDME, in slow start too', () => {
  const p = new Pump(new Vegas(congestionParams({ cc_cwnd_max: 500 })));
  for (let k = 1; k <= 12; k++) p.ack(100000);
  assert.equal(p.v.cwnd, 496);
  assert.equal(p.ack(100000).cwnd, 500); // 527 → 500; ss_max 5000 not reached
  assert.equal(p.ack(100000).cwnd, 500); // 531 → 500
  assert.equal(p.v.inSlowStart, true);
  // cwnd_init above cwnd_max is clamped at the first SENDME, as in tor.
  const q = new Pump(new Vegas(congestionParams({ cc_cwnd_max: 500, cc_cwnd_init: 1000 })));
  assert.equal(q.v.cwnd, 1000);
  assert.equal(q.ack(100000).cwnd, 500);
});

test('fractional microseconds are truncated; a clock going backwards counts as a stall', () => {
  const v = new Vegas(D);
  for (let i = 0; i < 62; i++) v.noteCellSent(1000.9); // recorded as 1000
  v.processSendme(101000.7); // rtt 100000
  assert.equal(v.ewmaRttUsec, 100000);
  v.processSendme(500); // before the cell was sent
  assert.deepEqual([v.ewmaRttUsec, v.stats.clockStalls, v.clockBroken], [100000, 1, true]);
});

// ---------------------------------------------------------------------------------------
// tor's vectors

test("tor's clock heuristic vectors (time_delta_stalled_or_jumped)", () => {
  // {old_delta, new_delta, in_slow_start, cached_result_out, result_out}; tor sets ewma = old·1000.
  const vect1 = [
    [0, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 0], [1, 4999, 0, 0, 0], [4999, 1, 0, 0, 0],
    [5001, 1, 0, 0, 0], [5001, 0, 0, 1, 1], [5001, 1, 0, 1, 1], [5001, 1, 1, 1, 0], [0, 5001, 0, 1, 0],
    [1, 5001, 1, 1, 0], [1, 1, 0, 0, 0], [5001, 1, 0, 0, 0], [1, 5001, 0, 0, 1], [0, 5001, 0, 0, 0],
    [5001, 1, 1, 0, 0], [1, 1, 0, 0, 0],
  ] as const;
  const v = new Vegas(D);
  vect1.forEach(([old, now, ss, cached, result], i) => {
    v.inSlowStart = ss === 1;
    v.ewmaRttUsec = old * 1000;
    assert.equal(v.stalledOrJumped(old, now), result === 1, `row ${i}`);
    assert.equal(v.clockBroken, cached === 1, `row ${i} cache`);
  });
});

test("tor's RTT vectors (congestion_control_update_circuit_rtt)", () => {
  // {sent_usec, got_sendme_usec, cwnd, in_slow_start, curr_rtt, ewma_rtt, min_rtt}
  const vect1 = [
    [100000, 200000, 124, 1, 100000, 100000, 100000],
    [200000, 300000, 124, 1, 100000, 100000, 100000],
    [350000, 500000, 124, 1, 150000, 133333, 100000],
    [500000, 550000, 124, 1, 50000, 77777, 77777],
    [600000, 700000, 124, 1, 100000, 92592, 77777],
    [700000, 750000, 124, 1, 50000, 64197, 64197],
    [750000, 875000, 124, 0, 125000, 104732, 104732],
    [875000, 900000, 124, 0, 25000, 51577, 104732],
    [900000, 950000, 200, 0, 50000, 50525, 50525],
  ] as const;
  const v = new Vegas(D);
  for (const row of vect1) v.pushTimestamp(row[0]);
  vect1.forEach(([, got, cwnd, ss, rtt, ewma, min], i) => {
    v.cwnd = cwnd;
    v.inSlowStart = ss === 1;
    v.inflight = 31 * v.pendingSendmes;
    const maxBefore = v.maxRttUsec;
    v.processSendme(got);
    assert.equal(v.maxRttUsec, Math.max(maxBefore, rtt), `row ${i} rtt`);
    assert.equal(v.ewmaRttUsec, ewma, `row ${i} ewma`);
    assert.equal(v.minRttUsec, min, `row ${i} min`);
    // processSendme also runs the algorithm; put the row's cwnd and slow-start flag back.
  });
});

type CwndRow = readonly [number, number, number, number, number, number, number, number, number, number];

function replayCwnd(rows: readonly CwndRow[], name: string): void {
  // {sent_usec, got_sendme_usec, or_conn_blocked, inflight, ewma_rtt, min_rtt, cwnd, in_slow_start, cwnd_full, blocked_chan}
  const v = new Vegas(D);
  for (const row of rows) v.pushTimestamp(row[0]);
  rows.forEach(([, got, blocked, inflight, ewma, min, cwnd, ss, full, blockedChan], i) => {
    v.inflight = inflight;
    v.processSendme(got, blocked === 1);
    if (blocked === 1) assert.equal(v.nextCcEvent, v.cwndUpdateRate, `${name} row ${i} next_cc_event`);
    assert.deepEqual(
      [v.ewmaRttUsec, v.minRttUsec, v.cwnd, v.inSlowStart, v.cwndFull, v.blockedChan],
      [ewma, min, cwnd, ss === 1, full === 1, blockedChan === 1],
      `${name} row ${i}`,
    );
  });
}

test("tor's Vegas cwnd vectors (congestion_control_vegas_process_sendme)", () => {
  // vect1: RTT edge cases, slow-start exit on the RTT (γ), full / not full, α, β, δ, blocked.
  replayCwnd([
    [100000, 200000, 0, 124, 100000, 100000, 155, 1, 0, 0],
    [200000, 300000, 0, 155, 100000, 100000, 186, 1, 1, 0],
    [350000, 500000, 0, 186, 133333, 100000, 217, 1, 1, 0],
    [500000, 550000, 0, 217, 77777, 77777, 248, 1, 1, 0],
    [600000, 700000, 0, 248, 92592, 77777, 279, 1, 1, 0],
    [700000, 750000, 0, 279, 64197, 64197, 310, 1, 0, 0], // fullness expiry
    [750000, 875000, 0, 310, 104732, 64197, 341, 1, 1, 0],
    [875000, 900000, 0, 341, 51577, 51577, 372, 1, 1, 0],
    [900000, 950000, 0, 279, 50525, 50525, 403, 1, 1, 0],
    [950000, 1000000, 0, 279, 50175, 50175, 434, 1, 1, 0],
    [1000000, 1050000, 0, 279, 50058, 50058, 465, 1, 1, 0],
    [1050000, 1100000, 0, 279, 50019, 50019, 496, 1, 1, 0],
    [1100000, 1150000, 0, 279, 50006, 50006, 527, 1, 1, 0],
    [1150000, 1200000, 0, 279, 50002, 50002, 558, 1, 1, 0],
    [1200000, 1250000, 0, 550, 50000, 50000, 589, 1, 1, 0],
    [1250000, 1300000, 0, 550, 50000, 50000, 620, 1, 0, 0], // fullness expiry
    [1300000, 1350000, 0, 550, 50000, 50000, 635, 1, 1, 0],
    [1350000, 1400000, 0, 550, 50000, 50000, 650, 1, 1, 0],
    [1400000, 1450000, 0, 150, 50000, 50000, 650, 1, 0, 0], // cwnd not full
    [1450000, 1500000, 0, 150, 50000, 50000, 650, 1, 0, 0], // cwnd not full
    [1500000, 1550000, 0, 550, 50000, 50000, 664, 1, 1, 0], // cwnd full
    [1500000, 1600000, 0, 550, 83333, 50000, 584, 0, 1, 0], // γ exit
    [1600000, 1650000, 0, 550, 61111, 50000, 585, 0, 1, 0], // α
    [1650000, 1700000, 0, 550, 53703, 50000, 586, 0, 1, 0],
    [1700000, 1750000, 0, 100, 51234, 50000, 586, 0, 0, 0], // α, not full
    [1750000, 1900000, 0, 100, 117078, 50000, 559, 0, 0, 0], // δ, not full
    [1900000, 2000000, 0, 100, 105692, 50000, 558, 0, 0, 0], // β, not full
    [2000000, 2075000, 0, 500, 85230, 50000, 558, 0, 1, 0], // no change
    [2075000, 2125000, 1, 500, 61743, 50000, 557, 0, 1, 1], // β, blocked
    [2125000, 2150000, 0, 500, 37247, 37247, 558, 0, 1, 0], // α
    [2150000, 2350000, 0, 500, 145749, 37247, 451, 0, 1, 0], // δ
  ], 'vect1');
  // vect2: slow start ended by a blocked channel.
  replayCwnd([
    [100000, 200000, 0, 124, 100000, 100000, 155, 1, 0, 0],
    [200000, 300000, 0, 155, 100000, 100000, 186, 1, 1, 0],
    [350000, 500000, 0, 186, 133333, 100000, 217, 1, 1, 0],
    [500000, 550000, 1, 217, 77777, 77777, 403, 0, 1, 1], // ss exit, blocked
    [600000, 700000, 0, 248, 92592, 77777, 404, 0, 1, 0], // α
    [700000, 750000, 1, 404, 64197, 64197, 403, 0, 0, 1], // blocked β
    [750000, 875000, 0, 403, 104732, 64197, 404, 0, 1, 0],
  ], 'vect2');
  // vect3: real upload 1.
  replayCwnd([
    [18258527, 19002938, 0, 83, 744411, 744411, 155, 1, 0, 0],
    [18258580, 19254257, 0, 52, 911921, 744411, 186, 1, 1, 0],
    [20003224, 20645298, 0, 164, 732023, 732023, 217, 1, 1, 0],
    [20003367, 21021444, 0, 133, 922725, 732023, 248, 1, 1, 0],
    [20003845, 21265508, 0, 102, 1148683, 732023, 279, 1, 1, 0],
    [20003975, 21429157, 0, 71, 1333015, 732023, 310, 1, 0, 0],
    [20004309, 21707677, 0, 40, 1579917, 732023, 310, 1, 0, 0],
  ], 'vect3');
  // vect4: real upload 2.
  replayCwnd([
    [358297091, 358854163, 0, 83, 557072, 557072, 155, 1, 0, 0],
    [358297649, 359123845, 0, 52, 736488, 557072, 186, 1, 1, 0],
    [359492879, 359995330, 0, 186, 580463, 557072, 217, 1, 1, 0],
    [359493043, 360489243, 0, 217, 857621, 557072, 248, 1, 1, 0],
    [359493232, 360489673, 0, 248, 950167, 557072, 279, 1, 1, 0],
    [359493795, 360489971, 0, 279, 980839, 557072, 310, 1, 0, 0],
    [359493918, 360490248, 0, 310, 991166, 557072, 341, 1, 1, 0],
    [359494029, 360716465, 0, 341, 1145346, 557072, 372, 1, 1, 0],
    [359996888, 360948867, 0, 372, 1016434, 557072, 403, 1, 1, 0],
    [359996979, 360949330, 0, 403, 973712, 557072, 434, 1, 1, 0],
    [360489528, 361113615, 0, 434, 740628, 557072, 465, 1, 1, 0],
    [360489656, 361281604, 0, 465, 774841, 557072, 496, 1, 1, 0],
    [360489837, 361500461, 0, 496, 932029, 557072, 482, 0, 1, 0],
    [360489963, 361500631, 0, 482, 984455, 557072, 482, 0, 1, 0],
    [360490117, 361842481, 0, 482, 1229727, 557072, 481, 0, 1, 0],
  ], 'vect4');
});

// ---------------------------------------------------------------------------------------
// properties

type Op = { kind: 'send'; n: number; dt: number } | { kind: 'sendme'; rtt: number; blocked: boolean; queued: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('send' as const), n: fc.integer({ min: 0, max: 400 }), dt: fc.integer({ min: 0, max: 50000 }) }),
  fc.record({
    kind: fc.constant('sendme' as const),
    rtt: fc.oneof(fc.integer({ min: 0, max: 2_000_000 }), fc.constant(0), fc.integer({ min: 0, max: 2 ** 40 })),
    blocked: fc.boolean(),
    queued: fc.integer({ min: 0, max: 2000 }),
  }),
);

/** Runs the ops; SENDMEs arrive for the oldest marked cell (only while one is pending, else a ProtocolError). */
function run(v: Vegas, ops: readonly Op[], check: (v: Vegas) => void): void {
  const sent: number[] = [];
  let now = 1;
  for (const o of ops) {
    if (o.kind === 'send') {
      now += o.dt;
      const n = Math.min(o.n, v.packageWindow);
      for (let i = 0; i < n; i++) if (v.noteCellSent(now)) sent.push(now);
    } else if (sent.length === 0) {
      assert.equal(v.pendingSendmes, 0);
      assert.throws(() => v.processSendme(now, o.blocked, o.queued), ProtocolError);
    } else {
      now = Math.max(now, sent.shift()! + o.rtt);
      v.processSendme(now, o.blocked, o.queued);
    }
    check(v);
  }
}

test('property: with the defaults cwnd stays in [cwnd_min, cwnd_max]; inflight and the package window never go negative', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      run(new Vegas(D), ops, (v) => {
        assert.ok(v.cwnd >= D.cwndMin && v.cwnd <= D.cwndMax, `cwnd ${v.cwnd}`);
        assert.ok(v.inflight >= 0 && v.packageWindow >= 0);
        assert.ok(v.pendingSendmes * v.sendmeInc <= v.inflight);
        assert.ok(Number.isInteger(v.cwnd) && Number.isInteger(v.ewmaRttUsec) && Number.isInteger(v.bdp));
      });
    }),
    { numRuns: RUNS },
  );
});

const anyParams: fc.Arbitrary<CongestionParams> = fc
  .record({
    cc_sendme_inc: fc.integer({ min: -5, max: 300 }),
    cc_cwnd_init: fc.integer({ min: 0, max: 20000 }),
    cc_cwnd_min: fc.integer({ min: 0, max: 2000 }),
    cc_cwnd_max: fc.integer({ min: 0, max: 20000 }),
    cc_cwnd_inc: fc.integer({ min: 0, max: 2000 }),
    cc_cwnd_inc_rate: fc.integer({ min: 0, max: 300 }),
    cc_cwnd_inc_pct_ss: fc.integer({ min: 0, max: 600 }),
    cc_ss_max: fc.integer({ min: 0, max: 20000 }),
    cc_sscap_exit: fc.integer({ min: 0, max: 20000 }),
    cc_vegas_alpha_exit: fc.integer({ min: -1, max: 1200 }),
    cc_vegas_beta_exit: fc.integer({ min: -1, max: 1200 }),
    cc_vegas_gamma_exit: fc.integer({ min: -1, max: 1200 }),
    cc_vegas_delta_exit: fc.integer({ min: -1, max: 100000 }),
    cc_cwnd_full_gap: fc.integer({ min: -1, max: 40 }),
    cc_cwnd_full_minpct: fc.integer({ min: -1, max: 120 }),
    cc_cwnd_full_per_cwnd: fc.integer({ min: -1, max: 2 }),
    cc_ewma_cwnd_pct: fc.integer({ min: 0, max: 300 }),
    cc_ewma_max: fc.integer({ min: 0, max: 300 }),
    cc_ewma_ss: fc.integer({ min: 0, max: 300 }),
    cc_rtt_reset_pct: fc.integer({ min: -1, max: 120 }),
  })
  .map((p) => congestionParams(p));

test('property: any parameters — cwnd ≤ cwnd_max after every SENDME, counters never negative, only ProtocolError', () => {
  fc.assert(
    fc.property(anyParams, fc.array(op, { maxLength: 120 }), (params, ops) => {
      const v = new Vegas(params);
      let acked = false;
      try {
        run(v, ops, (s) => {
          if (s.stats.clockStalls + s.stats.skippedUpdates > 0 || s.ewmaRttUsec > 0) acked = true;
          if (acked) assert.ok(s.cwnd <= params.cwndMax, `cwnd ${s.cwnd} > ${params.cwndMax}`);
          assert.ok(s.cwnd >= 0 && s.inflight >= 0 && s.packageWindow >= 0);
          assert.ok(s.nextCcEvent >= 0 && s.nextCcEvent < 0x10000 && s.nextCwndEvent >= 0 && s.nextCwndEvent < 0x10000);
        });
      } catch (e) {
        assert.ok(e instanceof OrportError, String(e));
        throw e;
      }
    }),
    { numRuns: RUNS },
  );
});
