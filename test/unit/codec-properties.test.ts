/**
 * Property tests (fast-check) for every codec: encode∘decode is the identity, and
 * arbitrary bytes given to any decoder give a value or our typed error — never a
 * RangeError, TypeError or anything else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Address,
  AuthChallengeCell,
  AuthenticateCell,
  AuthorizeCell,
  BeginDirMsg,
  BeginMsg,
  Cell,
  Certificate,
  CertsCell,
  ConnectedMsg,
  Create2Cell,
  CreateCell,
  Created2Cell,
  CreatedCell,
  CreatedFastCell,
  CreateFastCell,
  DataMsg,
  DestroyCell,
  DropMsg,
  EndMsg,
  Extend2Msg,
  Extended2Msg,
  LinkByEd25519,
  LinkByFingerprint,
  LinkByIPv4,
  LinkByIPv6,
  LinkProtocol,
  LinkSpecifier,
  NetinfoCell,
  OrportError,
  PaddingCell,
  PaddingNegotiateCell,
  RelayCell,
  RelayEarlyCell,
  ResolvedMsg,
  ResolveMsg,
  SendmeMsg,
  Size,
  TruncatedMsg,
  TruncateMsg,
  VersionsCell,
  VPaddingCell,
  decodeRelayMessage,
  CellDecoder,
  streamIdRule,
  type RelayMessage,
} from '../../src/index.js';
import { decodeFrame } from '../../src/codec/cellbase.js';

const RUNS = Number(process.env.ORPORT_FUZZ_RUNS ?? 300);
const params = { numRuns: RUNS };

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const fixed = (n: number) => bytes(n, n);
const lp = fc.constantFrom(3, 4, 5);
const circIdFor = (v: number) => fc.integer({ min: 1, max: v > 3 ? 0xffffffff : 0xffff });
const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const address = fc.oneof(
  ipv4.map((a) => new Address(a)),
  ipv6.map((a) => new Address(a)),
  fc.domain().filter((d) => d.length < 255).map((d) => new Address(d, 0)),
  fc.tuple(fc.constantFrom(0xf0, 0xf1, 7, 200), bytes(0, 20)).map(([t, v]) => new Address(v, t)),
);
const certificate = fc.tuple(fc.integer({ min: 0, max: 255 }), bytes(0, 300)).map(([t, v]) => new Certificate(t, v));
const linkSpecifier: fc.Arbitrary<LinkSpecifier> = fc.oneof(
  fc.tuple(ipv4, fc.integer({ min: 0, max: 65535 })).map(([a, p]) => new LinkByIPv4(a, p)),
  fc.tuple(ipv6, fc.integer({ min: 0, max: 65535 })).map(([a, p]) => new LinkByIPv6(a, p)),
  fixed(20).map((b) => new LinkByFingerprint(b)),
  fixed(32).map((b) => new LinkByEd25519(b)),
  fc.tuple(fc.integer({ min: 4, max: 255 }), bytes(0, 40)).map(([t, v]) => new LinkSpecifier(t, v)),
);
/** Fills the rest of a fixed cell so it round-trips exactly (`unused` up to the 509 bytes). */
const padTo = (used: number) => bytes(0, 509 - used);

/** Any cell that can be packed with link protocol `v`. */
const cellFor = (v: number): fc.Arbitrary<Cell> =>
  fc
    .oneof(
      fixed(509).map((p) => new PaddingCell(p) as Cell),
      fc.tuple(circIdFor(v), fixed(186), padTo(186)).map(([c, hs, u]) => new CreateCell(c, hs, u)),
      fc.tuple(circIdFor(v), fixed(148), padTo(148)).map(([c, hs, u]) => new CreatedCell(c, hs, u)),
      fc
        .tuple(circIdFor(v), fc.integer({ min: 0, max: 255 }), bytes(0, 498), fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.boolean())
        .chain(([c, cmd, data, digest, stream, recognized, early]) =>
          padTo(11 + data.length).map((u) => (early ? new RelayEarlyCell(c, cmd, data, digest, stream, recognized, u) : new RelayCell(c, cmd, data, digest, stream, recognized, u))),
        ),
      fc.tuple(circIdFor(v), fc.integer({ min: 0, max: 255 }), padTo(1)).map(([c, r, u]) => new DestroyCell(c, r, u)),
      fc.tuple(circIdFor(v), fixed(20), padTo(20)).map(([c, k, u]) => new CreateFastCell(c, k, u)),
      fc.tuple(circIdFor(v), fixed(20), fixed(20), padTo(40)).map(([c, d, k, u]) => new CreatedFastCell(c, d, k, u)),
      fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 }).map((vs) => new VersionsCell(vs)),
      fc
        .tuple(address, fc.array(address, { maxLength: 3 }), fc.integer({ min: 0, max: 0xffffffff }))
        .filter(([r, s]) => 5 + r.pack().length + s.reduce((n, a) => n + a.pack().length, 0) <= 509)
        .chain(([r, s, t]) => padTo(5 + r.pack().length + s.reduce((n, a) => n + a.pack().length, 0)).map((u) => new NetinfoCell(r, s, new Date(t * 1000), u))),
      fc.tuple(circIdFor(v), fc.integer({ min: 0, max: 0xffff }), bytes(0, 505)).chain(([c, t, d]) => padTo(4 + d.length).map((u) => new Create2Cell(c, t, d, u))),
      fc.tuple(circIdFor(v), bytes(0, 507)).chain(([c, d]) => padTo(2 + d.length).map((u) => new Created2Cell(c, d, u))),
      fc
        .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 255 }), padTo(6))
        .map(([cmd, lo, hi, ver, u]) => new PaddingNegotiateCell(cmd, lo, hi, ver, u)),
      bytes(0, 2000).map((p) => new VPaddingCell(undefined, p)),
      fc.tuple(fc.array(certificate, { maxLength: 6 }), bytes(0, 10)).map(([cs, u]) => new CertsCell(cs, u)),
      fc.tuple(fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 10 }), fixed(32), bytes(0, 10)).map(([m, ch, u]) => new AuthChallengeCell(m, ch, u)),
      fc.tuple(fc.integer({ min: 0, max: 0xffff }), bytes(0, 400), bytes(0, 10)).map(([t, a, u]) => new AuthenticateCell(t, a, u)),
      bytes(0, 100).map((p) => new AuthorizeCell(p)),
    );

/** A cell together with the link protocol to pack it with. */
const anyCell: fc.Arbitrary<[Cell, number]> = lp.chain((v) => cellFor(v).map((cell) => [cell, v] as [Cell, number]));

/** Runs `fn`; anything thrown must be an OrportError. */
function onlyTypedErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof OrportError)) throw new Error(`untyped error: ${String(err)}`, { cause: err });
  }
}

test('cells: pack then pop gives the same cell and the same bytes', () => {
  fc.assert(
    fc.property(anyCell, ([cell, v]) => {
      const packed = cell.pack(v);
      const { cell: decoded, rest } = Cell.pop(packed, v);
      assert.equal(rest.length, 0);
      assert.equal(decoded.constructor, cell.constructor);
      assert.ok(decoded.equals(cell), `${cell.name} differs after a round trip`);
      assert.deepEqual(decoded.pack(v), packed);
    }),
    params,
  );
});

test('cells: a stream of cells, split into chunks anywhere, decodes to the same cells', () => {
  fc.assert(
    fc.property(
      lp.chain((v) => fc.tuple(fc.constant(v), fc.array(cellFor(v), { minLength: 1, maxLength: 8 }))),
      fc.array(fc.nat(), { maxLength: 12 }),
      ([v, cells], cutSeeds) => {
        const all = Buffer.concat(cells.map((c) => c.pack(v)));
        const cuts = [...new Set(cutSeeds.map((n) => n % (all.length + 1)))].sort((a, b) => a - b);
        const decoder = new CellDecoder(LinkProtocol.of(v));
        const decoded: Cell[] = [];
        let from = 0;
        for (const to of [...cuts, all.length]) {
          decoder.push(all.subarray(from, to));
          // Decoding is zero-copy and the decoder reuses its buffer: keep a copy.
          for (let frame = decoder.next(); frame; frame = decoder.next()) decoded.push(decodeFrame({ ...frame, payload: frame.payload.slice() }, LinkProtocol.of(v)));
          from = to;
        }
        assert.equal(decoder.buffered, 0);
        assert.equal(decoded.length, cells.length);
        decoded.forEach((c, i) => assert.ok(c.equals(cells[i]), `cell ${i} (${c.name}) differs`));
      },
    ),
    params,
  );
});

test('cells: every split point of a real handshake-sized stream works', () => {
  const v = 4;
  const cells = [new VersionsCell([3, 4, 5]), new CertsCell([new Certificate(1, new Uint8Array(600))]), new NetinfoCell(new Address('127.0.0.1'), []), new DestroyCell(7, 3)];
  const all = Buffer.concat(cells.map((c) => c.pack(v)));
  for (let at = 0; at <= all.length; at++) {
    const decoder = new CellDecoder(LinkProtocol.of(v));
    const out: Cell[] = [];
    for (const part of [all.subarray(0, at), all.subarray(at)]) {
      decoder.push(part);
      for (let f = decoder.next(); f; f = decoder.next()) out.push(decodeFrame({ ...f, payload: f.payload.slice() }, LinkProtocol.of(v)));
    }
    assert.equal(out.length, cells.length, `split at ${at}`);
  }
});

test('cells: trailing bytes are left over ("next thing")', () => {
  fc.assert(
    fc.property(anyCell, ([cell, v]) => {
      const next = Buffer.from('next thing');
      const { rest } = Cell.pop(Buffer.concat([cell.pack(v), next]), v);
      assert.deepEqual(Buffer.from(rest), next);
    }),
    params,
  );
});

test('cells: arbitrary bytes decode or throw only typed errors', () => {
  fc.assert(
    fc.property(lp, bytes(0, 700), (v, input) => onlyTypedErrors(() => Cell.unpack(input, v))),
    { numRuns: RUNS * 4 },
  );
  // Bytes shaped like a real header, so decoders past the framing get exercised.
  fc.assert(
    fc.property(lp, fc.integer({ min: 0, max: 255 }), bytes(0, 600), (v, command, body) => {
      const header = v > 3 ? [0x80, 0, 0, 1, command] : [0, 1, command];
      const len = command === 7 || command >= 128 ? [body.length >> 8, body.length & 0xff] : [];
      const input = Uint8Array.from([...header, ...len, ...body]);
      onlyTypedErrors(() => Cell.pop(input, v));
    }),
    { numRuns: RUNS * 10 },
  );
});

test('fields: Size, Address, Certificate, LinkSpecifier round-trip and reject garbage with typed errors', () => {
  for (const size of [Size.CHAR, Size.SHORT, Size.LONG]) {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** (size.size * 8) - 1 }), (n) => assert.equal(size.unpack(size.pack(n)), n)), params);
  }
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (n) => assert.equal(Size.LONG_LONG.unpackBig(Size.LONG_LONG.pack(n)), n)), params);
  fc.assert(fc.property(address, (a) => assert.ok(Address.unpack(a.pack()).equals(a))), params);
  fc.assert(fc.property(certificate, (c) => assert.ok(Certificate.unpack(c.pack()).equals(c))), params);
  fc.assert(
    fc.property(linkSpecifier, (s) => {
      const decoded = LinkSpecifier.unpack(s.pack());
      assert.equal(decoded.constructor, s.constructor);
      assert.ok(decoded.equals(s));
    }),
    params,
  );
  fc.assert(
    fc.property(bytes(0, 64), (input) => {
      onlyTypedErrors(() => Address.pop(input));
      onlyTypedErrors(() => Certificate.pop(input));
      onlyTypedErrors(() => LinkSpecifier.pop(input));
      for (const size of [Size.CHAR, Size.SHORT, Size.LONG, Size.LONG_LONG]) onlyTypedErrors(() => size.pop(input));
    }),
    { numRuns: RUNS * 4 },
  );
});

const relayMessage: fc.Arbitrary<RelayMessage> = fc.oneof(
  fc.tuple(fc.oneof(fc.domain(), ipv4, ipv6.map((a) => `[${a}]`)), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 7 })).map(([a, p, f]) => new BeginMsg(a, p, f) as RelayMessage),
  fc.constant(new BeginDirMsg()),
  fc.oneof(
    fc.constant(new ConnectedMsg()),
    fc.tuple(ipv4.filter((a) => a !== '0.0.0.0'), fc.integer({ min: 0, max: 0xffffffff })).map(([a, t]) => new ConnectedMsg(new Address(a), t)),
    fc.tuple(ipv6, fc.integer({ min: 0, max: 0xffffffff })).map(([a, t]) => new ConnectedMsg(new Address(a), t)),
  ),
  bytes(0, 498).map((d) => new DataMsg(d)),
  fc.oneof(
    fc.integer({ min: 0, max: 255 }).filter((r) => r !== 4).map((r) => new EndMsg(r)),
    fc.tuple(fc.oneof(ipv4, ipv6), fc.integer({ min: 0, max: 0xffffffff })).map(([a, t]) => new EndMsg(4, new Address(a), t)),
  ),
  fc.oneof(fc.constant(new SendmeMsg(0)), fixed(20).map((d) => new SendmeMsg(1, d))),
  fc.tuple(fc.array(linkSpecifier, { maxLength: 4 }), fc.integer({ min: 0, max: 0xffff }), bytes(0, 200)).map(([s, t, d]) => new Extend2Msg(s, t, d)),
  bytes(0, 200).map((d) => new Extended2Msg(d)),
  fc.constant(new TruncateMsg()),
  fc.integer({ min: 0, max: 255 }).map((r) => new TruncatedMsg(r)),
  bytes(0, 100).map((d) => new DropMsg(d)),
  fc.domain().map((d) => new ResolveMsg(d)),
  fc.array(fc.tuple(fc.oneof(ipv4.map((a) => new Address(a)), ipv6.map((a) => new Address(a))), fc.integer({ min: 0, max: 0xffffffff })), { maxLength: 4 }).map((as) => new ResolvedMsg(as.map(([address, ttl]) => ({ address, ttl })))),
);

test('relay messages: encode then decode gives the same message', () => {
  fc.assert(
    fc.property(relayMessage, (msg) => {
      const body = msg.encode();
      const decoded = decodeRelayMessage(msg.command, body);
      assert.equal(decoded.constructor, msg.constructor);
      assert.deepEqual(Buffer.from(decoded.encode()), Buffer.from(body));
    }),
    params,
  );
});

test('relay messages: arbitrary bodies decode or throw only typed errors', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), bytes(0, 498), (command, body) => onlyTypedErrors(() => decodeRelayMessage(command, body))),
    { numRuns: RUNS * 10 },
  );
});

test('stream id rules follow tor-spec 6.1', () => {
  assert.equal(streamIdRule(2), 'required');
  assert.equal(streamIdRule(13), 'required');
  assert.equal(streamIdRule(43), 'required');
  assert.equal(streamIdRule(5), 'either');
  assert.equal(streamIdRule(14), 'disallowed');
  assert.equal(streamIdRule(10), 'disallowed');
  assert.equal(streamIdRule(200), 'either', 'an unknown command is dropped, whatever its stream id');
  assert.equal(streamIdRule(35), 'disallowed');
});
