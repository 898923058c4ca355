/**
 * Conflux core (proto/conflux.ts): the LINK / LINKED / LINKED_ACK / SWITCH codecs (layout
 * from tor 0.4.9 trunnel/conflux.trunnel: version u8 IN [1], nonce[32], last_seqno_sent u64,
 * last_seqno_recv u64, desired_ux u8 IN [0..4]; SWITCH seqnum u32; the vectors below are
 * laid out by hand from that grammar, none come from tor's tests), which commands are
 * multiplexed (conflux.c `conflux_should_multiplex`), and the set's sequence machine
 * (`conflux_process_cell`, `conflux_dequeue_cell`, `conflux_process_switch_command`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BadArgumentError, DecodeError, LimitError, ProtocolError } from '../../src/errors.js';
import {
  ConfluxLinkMsg,
  ConfluxLinkedAckMsg,
  ConfluxLinkedMsg,
  ConfluxSet,
  ConfluxSwitchMsg,
  ConfluxUx,
  confluxShouldMultiplex,
} from '../../src/proto/conflux.js';

const RUNS = Number(process.env.ORPORT_FUZZ_RUNS ?? 200);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const NONCE = bytes('00112233445566778899aabbccddeeff'.repeat(2));

// ---------------------------------------------------------------------------------------
// codecs

test('codec: LINK / LINKED byte layout', () => {
  const link = new ConfluxLinkMsg(NONCE, 0x0102030405, 7, ConfluxUx.HIGH_THROUGHPUT);
  const want = '01' + hex(NONCE) + '0000000102030405' + '0000000000000007' + '03';
  assert.equal(link.command, 19);
  assert.equal(hex(link.encode()), want);
  const linked = ConfluxLinkedMsg.decode(bytes(want + 'ffee')); // trailing bytes: trunnel ignores them
  assert.equal(linked.command, 20);
  assert.equal(hex(linked.nonce), hex(NONCE));
  assert.equal(linked.lastSeqnoSent, 0x0102030405);
  assert.equal(linked.lastSeqnoRecv, 7);
  assert.equal(linked.desiredUx, 3);
  assert.equal(hex(new ConfluxLinkedMsg(NONCE, 0, 0, ConfluxUx.NO_OPINION).encode()), '01' + hex(NONCE) + '00'.repeat(17));
});

test('codec: LINKED_ACK is empty, SWITCH is seqnum u32', () => {
  assert.equal(new ConfluxLinkedAckMsg().command, 21);
  assert.equal(hex(new ConfluxLinkedAckMsg().encode()), '');
  assert.ok(ConfluxLinkedAckMsg.decode(bytes('00')) instanceof ConfluxLinkedAckMsg);
  assert.equal(new ConfluxSwitchMsg(0).command, 22);
  assert.equal(hex(new ConfluxSwitchMsg(0x01020304).encode()), '01020304');
  assert.equal(ConfluxSwitchMsg.decode(bytes('ffffffff99')).seqnum, 0xffffffff);
});

test('codec: malformed LINK / LINKED / SWITCH are DecodeErrors, bad fields BadArgumentErrors', () => {
  const good = '01' + hex(NONCE) + '00'.repeat(16) + '03';
  const bad = [
    '', // no version
    '02' + good.slice(2), // version 2
    '00' + good.slice(2), // version 0
    good.slice(0, -2), // no desired_ux
    good.slice(0, -2) + '05', // desired_ux out of [0..4]
    '01' + hex(NONCE).slice(2), // short nonce
    '01' + hex(NONCE) + '0020000000000000' + '00'.repeat(8) + '00', // last_seqno_sent 2^53
  ];
  for (const h of bad) {
    assert.throws(() => ConfluxLinkMsg.decode(bytes(h)), DecodeError, h);
    assert.throws(() => ConfluxLinkedMsg.decode(bytes(h)), DecodeError, h);
  }
  for (const h of ['', '01', '010203']) assert.throws(() => ConfluxSwitchMsg.decode(bytes(h)), DecodeError, h);
  assert.throws(() => new ConfluxLinkMsg(NONCE.subarray(1), 0, 0, 0), BadArgumentError);
  assert.throws(() => new ConfluxLinkMsg(NONCE, -1, 0, 0), BadArgumentError);
  assert.throws(() => new ConfluxLinkMsg(NONCE, 0, 2 ** 53, 0), BadArgumentError);
  assert.throws(() => new ConfluxLinkMsg(NONCE, 0, 0, 5 as ConfluxUx), BadArgumentError);
  for (const v of [-1, 2 ** 32, 1.5]) assert.throws(() => new ConfluxSwitchMsg(v), BadArgumentError);
});

test('codec property: LINK / LINKED / SWITCH round-trip; any bytes decode or throw DecodeError', () => {
  const seq = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), seq, seq, fc.integer({ min: 0, max: 4 }), (n, s, r, ux) => {
      for (const M of [ConfluxLinkMsg, ConfluxLinkedMsg]) {
        const m = new M(n, s, r, ux as ConfluxUx);
        const back = M.decode(m.encode());
        assert.deepEqual([hex(back.nonce), back.lastSeqnoSent, back.lastSeqnoRecv, back.desiredUx], [hex(n), s, r, ux]);
        assert.equal(m.encode().length, 50);
      }
    }),
    { numRuns: RUNS },
  );
  fc.assert(fc.property(fc.nat({ max: 0xffffffff }), (v) => ConfluxSwitchMsg.decode(new ConfluxSwitchMsg(v).encode()).seqnum === v), { numRuns: RUNS });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
      for (const decode of [ConfluxLinkMsg.decode, ConfluxLinkedMsg.decode, ConfluxSwitchMsg.decode]) {
        try {
          decode(b);
        } catch (e) {
          assert.ok(e instanceof DecodeError, String(e));
        }
      }
    }),
    { numRuns: RUNS },
  );
});

test('multiplexed commands: BEGIN DATA END CONNECTED RESOLVE RESOLVED XOFF XON, nothing circuit-level', () => {
  assert.deepEqual([...Array(64).keys()].filter(confluxShouldMultiplex), [1, 2, 3, 4, 11, 12, 43, 44]);
});

// ---------------------------------------------------------------------------------------
// the set machine

function linkedSet(legs = 2, maxQueued?: number): ConfluxSet<number> {
  const set = new ConfluxSet<number>(NONCE, legs, maxQueued);
  for (let i = 0; i < legs; i++) {
    const link = set.link(i);
    assert.equal(hex(link.nonce), hex(NONCE));
    assert.equal(link.desiredUx, ConfluxUx.HIGH_THROUGHPUT);
    set.onLinked(i, new ConfluxLinkedMsg(NONCE, 0, 0, ConfluxUx.NO_OPINION));
  }
  assert.ok(set.linked);
  return set;
}

test('set: link handshake states; wrong nonce, LINKED before LINK, cells on an unlinked leg', () => {
  const set = new ConfluxSet<number>(NONCE, 2);
  assert.equal(set.state(0), 'new');
  assert.throws(() => set.onLinked(0, new ConfluxLinkedMsg(NONCE, 0, 0, 0)), ProtocolError); // no LINK sent
  set.link(0);
  assert.throws(() => set.link(0), ProtocolError);
  const other = NONCE.slice();
  other[31] = other[31]! ^ 1;
  assert.throws(() => set.onLinked(0, new ConfluxLinkedMsg(other, 0, 0, 0)), /nonce does not match/);
  assert.equal(set.state(0), 'linkSent');
  assert.throws(() => set.receive(0, 1), /multiplexed cell on a leg that is linkSent/);
  assert.throws(() => set.onSwitch(1, new ConfluxSwitchMsg(1)), /SWITCH on a leg that is new/);
  assert.ok(set.onLinked(0, new ConfluxLinkedMsg(NONCE, 0, 0, 0)) instanceof ConfluxLinkedAckMsg);
  assert.throws(() => set.onLinked(0, new ConfluxLinkedMsg(NONCE, 0, 0, 0)), ProtocolError); // a second LINKED
  assert.equal(set.linked, false);
  assert.throws(() => set.state(2), BadArgumentError);
});

test('set: in-order on one leg, SWITCH then the other leg, reordering through the queue', () => {
  const set = linkedSet();
  assert.deepEqual(set.receive(0, 1), [1]);
  assert.deepEqual(set.receive(0, 2), [2]);
  // the exit switches to leg 1 after 3 more cells on leg 0 (seq 3..5): relative seq 5 on leg 1
  set.onSwitch(1, new ConfluxSwitchMsg(5));
  assert.deepEqual(set.receive(1, 6), []); // seq 6 arrives before 3..5
  assert.deepEqual(set.receive(1, 7), []);
  assert.equal(set.queued, 2);
  assert.deepEqual(set.receive(0, 3), [3]);
  assert.deepEqual(set.receive(0, 4), [4]);
  assert.deepEqual(set.receive(0, 5), [5, 6, 7]);
  assert.equal(set.queued, 0);
  assert.equal(set.delivered, 7);
  assert.deepEqual(set.seqs(1), { lastSeqSent: 0, lastSeqRecv: 7 });
});

test('set: bad sequence numbers, queue overflow, absurd SWITCH', () => {
  // leg 1 has no SWITCH: its first cell claims seq 1 again, already delivered on leg 0
  const a = linkedSet();
  a.receive(0, 1);
  assert.throws(() => a.receive(1, 1), /sequence number 1, expected above 1/);
  // two legs claiming the same seq while it is queued
  const b = linkedSet();
  b.onSwitch(0, new ConfluxSwitchMsg(1));
  b.onSwitch(1, new ConfluxSwitchMsg(1));
  b.receive(0, 2);
  assert.throws(() => b.receive(1, 2), /already queued/);
  // an absurd SWITCH: every later cell on that leg waits; the bounded queue closes the set
  const c = linkedSet(2, 4);
  c.onSwitch(1, new ConfluxSwitchMsg(0xffffffff));
  for (let i = 0; i < 4; i++) assert.deepEqual(c.receive(1, i), []);
  const err = (() => {
    try {
      c.receive(1, 99);
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof LimitError && err.code === 'E_LIMIT' && err.limit === 4, String(err));
  // SWITCHes that would pass 2^53
  const d = linkedSet();
  assert.throws(() => {
    for (let i = 0; i < 2 ** 22; i++) d.onSwitch(0, new ConfluxSwitchMsg(0xffffffff));
  }, /past 2\^53/);
  // a closed leg: nothing more on it
  const e = linkedSet();
  e.close(1);
  assert.throws(() => e.receive(1, 1), /leg that is closed/);
});

test('set: our sending side: all on one leg, SWITCH only when moving after cells were sent', () => {
  const set = linkedSet();
  assert.equal(set.noteSent(), 0);
  assert.equal(set.noteSent(), 0);
  assert.equal(set.switchTo(0), null);
  assert.equal(set.switchTo(1)?.seqnum, 2);
  assert.equal(set.noteSent(), 1);
  assert.equal(set.switchTo(0)?.seqnum, 1); // leg 0 sent 2, the set 3
  assert.equal(set.switchTo(1), null); // nothing sent on 0 since
  assert.deepEqual(set.seqs(1), { lastSeqSent: 3, lastSeqRecv: 0 });
});

test('set property: cells sent over 2-3 legs with SWITCHes, delivered in any per-leg-FIFO interleaving, come out in order exactly once', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 3 }),
      fc.array(fc.nat({ max: 2 }), { minLength: 1, maxLength: 120 }), // which leg each cell is sent on
      fc.array(fc.nat({ max: 2 }), { maxLength: 400 }), // the order legs' queues are drained in
      (legs, sendLegs, drainOrder) => {
        const sender = linkedSet(legs);
        const receiver = linkedSet(legs, 1000);
        type Item = { kind: 'cell'; n: number } | { kind: 'switch'; msg: ConfluxSwitchMsg };
        const wires: Item[][] = Array.from({ length: legs }, () => []);
        sendLegs.forEach((l, n) => {
          const leg = l % legs;
          const sw = sender.switchTo(leg);
          if (sw) wires[leg]!.push({ kind: 'switch', msg: sw });
          assert.equal(sender.noteSent(), leg);
          wires[leg]!.push({ kind: 'cell', n: n + 1 });
        });
        const out: number[] = [];
        const take = (leg: number) => {
          const item = wires[leg]!.shift();
          if (item === undefined) return;
          if (item.kind === 'switch') receiver.onSwitch(leg, item.msg);
          else out.push(...receiver.receive(leg, item.n));
        };
        for (const l of drainOrder) take(l % legs);
        for (let l = 0; l < legs; l++) while (wires[l]!.length > 0) take(l);
        assert.deepEqual(out, sendLegs.map((_, i) => i + 1));
        assert.equal(receiver.queued, 0);
        assert.equal(receiver.delivered, sendLegs.length);
      },
    ),
    { numRuns: RUNS },
  );
});
