/**
 * Fuzzing every decoder: random bytes and mutated real captures (the cells, relay
 * messages, certificates and directory documents of a real tor 0.4.9 session and the
 * CERTS of nine real relays, test/vectors/) go to each decoder. A decoder may return a
 * value or throw our typed error (an OrportError with a code); anything else — a
 * RangeError, a TypeError, an exception from node:crypto or node:zlib — fails the case,
 * which fast-check then minimises. A decoded value must re-encode (or refuse to, typed).
 *
 * The quick profile runs with `npm test`; `npm run fuzz` runs 100× as many cases
 * (ORPORT_FUZZ_RUNS=20000) and prints the counts. Failures found are kept at the end of
 * this file as regression tests.
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
  CellDecoder,
  Certificate,
  CertsCell,
  ConnectedMsg,
  Create2Cell,
  CreateCell,
  Created2Cell,
  CreatedCell,
  CreatedFastCell,
  CreateFastCell,
  DestroyCell,
  DropMsg,
  EndMsg,
  Extend2Msg,
  Extended2Msg,
  KDF,
  LinkByEd25519,
  LinkByFingerprint,
  LinkByIPv4,
  LinkByIPv6,
  LinkProtocol,
  LinkSpecifier,
  NetinfoCell,
  PaddingCell,
  PaddingNegotiateCell,
  RelayCell,
  RelayEarlyCell,
  ResolvedMsg,
  ResolveMsg,
  SendmeMsg,
  TruncatedMsg,
  TruncateMsg,
  VersionsCell,
  VPaddingCell,
  decodeRelayMessage,
  parseConsensus,
  parseHttpResponse,
  parseServerDescriptors,
  verifyCertsCell,
  type RelayMessage,
} from '../../src/index.js';
import { decodeFrame } from '../../src/codec/cellbase.js';
import { readFrame } from '../../src/codec/framing.js';
import { Ed25519Cert, RsaCrossCert } from '../../src/crypto/ed25519cert.js';
import { parseX509, x509RsaKey, x509VerifyRsa } from '../../src/crypto/x509.js';
import { children, parseTime, readTlv, type Tlv } from '../../src/crypto/der.js';
import { listCertificates } from '../../src/crypto/certs.js';
import { Reader } from '../../src/codec/bytes.js';
import { capturedRelays } from '../support/certvectors.js';
import { replaySession, session } from '../support/session.js';
import { chunked, fuzz, mutated, mutatedOneOf, typedOrNothing } from '../support/fuzz.js';

const FILE = import.meta.url;
const LP5 = LinkProtocol.of(5);

// -------------------------------------------------------------------------------------
// Corpora: real captures first, then one valid sample of every other type.

/** The relay's cells of the captured session, whole, as they came (VERSIONS with a 2-byte circuit id). */
function capturedCells(): Uint8Array[] {
  const bytes = session.bytes();
  const out: Uint8Array[] = [];
  let at = 0;
  let lp = LinkProtocol.of(2);
  while (at < bytes.length) {
    const frame = readFrame(bytes, at, lp);
    if (typeof frame === 'number') break;
    out.push(new Uint8Array(bytes.subarray(at, at + frame.length)));
    at += frame.length;
    lp = LP5;
  }
  return out;
}

const realCells = capturedCells();
const builtCells: Uint8Array[] = [
  new PaddingCell().pack(5),
  new CreateCell(0x80000001, new Uint8Array(186).fill(7)).pack(5),
  new CreatedCell(0x80000001, new Uint8Array(148).fill(8)).pack(5),
  new DestroyCell(0x80000001, 'PROTOCOL').pack(5),
  new CreateFastCell(0x80000001, new Uint8Array(20).fill(1)).pack(5),
  new Create2Cell(0x80000001, 2, new Uint8Array(84).fill(2)).pack(5),
  new Created2Cell(0x80000001, new Uint8Array(64).fill(3)).pack(5),
  new PaddingNegotiateCell(2, 1500, 9500).pack(5),
  new VPaddingCell(40).pack(5),
  new AuthenticateCell(3, new Uint8Array(352).fill(4)).pack(5),
  new AuthorizeCell(new Uint8Array(10)).pack(5),
  new RelayEarlyCell(0x80000001, 14, new Uint8Array(100), 12345, 0).pack(5),
  new VersionsCell([3, 4, 5]).pack(3),
  new DestroyCell(77, 'OR_IDENTITY').pack(3),
  new NetinfoCell(new Address('2001:db8::1'), [new Address('127.0.0.1'), new Address('::1')], new Date(1_800_000_000_000)).pack(4),
];
const cellCorpus = [...realCells, ...builtCells];

/** The relay message bodies of the captured session, decrypted (CONNECTED, DATA, END), plus one of every other message. */
function relayBodies(): { command: number; body: Uint8Array }[] {
  const out: { command: number; body: Uint8Array }[] = [];
  const outcome = replaySession();
  assert.ok(outcome.circuit, 'the captured session replays');
  // The DATA bodies are what the streams received; CONNECTED and END bodies are rebuilt.
  for (const s of outcome.streams) for (const d of s.data.slice(0, 3)) out.push({ command: 2, body: d });
  const msgs: RelayMessage[] = [
    new BeginMsg('example.com', 443, 0x5),
    new BeginMsg('[2001:db8::1]', 80),
    new BeginDirMsg(),
    new ConnectedMsg(new Address('10.0.0.1'), 300),
    new ConnectedMsg(new Address('2001:db8::2'), 60),
    new ConnectedMsg(),
    new EndMsg('DONE'),
    new EndMsg('EXITPOLICY', new Address('1.2.3.4'), 600),
    new EndMsg('EXITPOLICY', new Address('2001:db8::3'), 600),
    new SendmeMsg(0),
    new SendmeMsg(1, new Uint8Array(20).fill(9)),
    new Extend2Msg([new LinkByIPv4('1.2.3.4', 9001), new LinkByIPv6('2001:db8::4', 443), new LinkByFingerprint(new Uint8Array(20).fill(5)), new LinkByEd25519(new Uint8Array(32).fill(6))], 2, new Uint8Array(84)),
    new Extended2Msg(new Uint8Array(64).fill(1)),
    new TruncateMsg(),
    new TruncatedMsg('FINISHED'),
    new DropMsg(new Uint8Array(10)),
    new ResolveMsg('example.org'),
    new ResolvedMsg([{ address: new Address('1.2.3.4'), ttl: 60 }, { address: new Address('example.net', 0), ttl: 30 }, { address: new Address(new Uint8Array(0), 0xf0), ttl: 0 }]),
  ];
  for (const m of msgs) out.push({ command: m.command, body: m.encode() });
  return out;
}
const relayCorpus = relayBodies();

const relaysCaptured = capturedRelays();
const realCerts = relaysCaptured.flatMap((r) => r.certificates);
const certsOfType = (t: number) => realCerts.filter((c) => c.typeInt === t).map((c) => c.value);
const realCertsPayloads = relaysCaptured.map((r) => {
  const packed = new CertsCell(r.certificates).pack(5);
  return packed.subarray(7);
});

/** The captured session's HTTP responses (a server descriptor, the consensus, all descriptors deflated). */
function capturedResponses(): Uint8Array[] {
  const outcome = replaySession();
  return outcome.streams.map((s) => Buffer.concat(s.data));
}
const responses = capturedResponses();
const consensusText = Buffer.from(parseHttpResponse(responses[1]!).body);
const descriptorsText = Buffer.from(parseHttpResponse(responses[2]!).body);

test('the corpora are real: the captured session decodes and parses', () => {
  assert.ok(realCells.length > 40, `${realCells.length} cells`);
  assert.deepEqual(realCells.slice(0, 4).map((c) => c[c[2] === 7 ? 2 : 4]), [7, 129, 130, 8]);
  assert.equal(parseHttpResponse(responses[0]!).statusCode, 200);
  assert.ok(parseConsensus(consensusText.toString('latin1')).routers.length >= 5);
  assert.ok(parseServerDescriptors(descriptorsText.toString('latin1')).length >= 5);
  assert.ok(realCertsPayloads.length >= 9);
});

// -------------------------------------------------------------------------------------
// Cells and framing

/** Every way we decode cell bytes: pop/unpack with each link protocol, then re-encode. */
function decodeCells(bytes: Uint8Array): void {
  for (const v of [2, 3, 4, 5]) {
    const popped = typedOrNothing(() => Cell.pop(bytes, v));
    if (!(popped instanceof Error)) typedOrNothing(() => popped.cell.pack(v));
    const all = typedOrNothing(() => Cell.unpack(bytes, v));
    if (Array.isArray(all)) for (const c of all) typedOrNothing(() => c.pack(v));
  }
}

test('fuzz: cells — random bytes', () => {
  fuzz(FILE, 'cells: random bytes', fc.uint8Array({ maxLength: 1100 }), decodeCells, 3);
});

test('fuzz: cells — mutated real and sample cells', () => {
  fuzz(FILE, 'cells: mutated captures', mutatedOneOf(cellCorpus), decodeCells, 4);
});

test('fuzz: cells — random command and payload through decodeFrame', () => {
  const arb = fc.record({ command: fc.nat({ max: 255 }), circId: fc.oneof(fc.constant(0), fc.nat({ max: 0xffffffff })), payload: fc.uint8Array({ maxLength: 600 }), v: fc.constantFrom(2, 3, 4, 5) });
  fuzz(FILE, 'cells: decodeFrame', arb, ({ command, circId, payload, v }) => {
    const cell = typedOrNothing(() => decodeFrame({ command, circId, payload, length: payload.length + 5 }, LinkProtocol.of(v)));
    if (cell instanceof Cell) typedOrNothing(() => cell.pack(v));
  }, 3);
});

test('fuzz: framing — CellDecoder over a mutated capture in random chunks: frames tile the input exactly', () => {
  const whole = session.bytes().subarray(realCells[0]!.length); // after VERSIONS: link protocol 5 throughout
  const arb = fc.tuple(mutated(whole.subarray(0, 6000), 3), fc.array(fc.nat(), { maxLength: 12 }));
  fuzz(FILE, 'framing: CellDecoder', arb, ([bytes, cuts]) => {
    const decoder = new CellDecoder(LP5);
    let consumed = 0;
    for (const chunk of chunked(bytes, cuts)) {
      decoder.push(chunk);
      for (let f = decoder.next(); f; f = decoder.next()) {
        const expect = readFrame(bytes, consumed, LP5);
        assert.ok(typeof expect !== 'number');
        assert.equal(f.length, expect.length);
        assert.deepEqual(Buffer.from(f.payload), Buffer.from(expect.payload));
        typedOrNothing(() => decodeFrame(f, LP5));
        consumed += f.length;
      }
    }
    assert.equal(consumed + decoder.buffered, bytes.length);
  }, 2);
});

// -------------------------------------------------------------------------------------
// Relay messages and datatypes

function decodeRelay(command: number, body: Uint8Array): void {
  const msg = typedOrNothing(() => decodeRelayMessage(command, body));
  if (!(msg instanceof Error)) typedOrNothing(() => msg.encode());
}

test('fuzz: relay messages — random command and body', () => {
  fuzz(FILE, 'relay messages: random', fc.tuple(fc.oneof(fc.nat({ max: 20 }), fc.nat({ max: 255 })), fc.uint8Array({ maxLength: 498 })), ([c, b]) => decodeRelay(c, b), 3);
});

test('fuzz: relay messages — mutated real and sample bodies, also under other commands', () => {
  const arb = fc.tuple(fc.nat({ max: relayCorpus.length - 1 }), fc.boolean(), fc.nat({ max: 20 })).chain(([i, same, other]) =>
    mutated(relayCorpus[i]!.body).map((body) => [same ? relayCorpus[i]!.command : other, body] as const),
  );
  fuzz(FILE, 'relay messages: mutated', arb, ([c, b]) => decodeRelay(c, b), 4);
});

test('fuzz: datatypes — Address, Certificate, LinkSpecifier, KDF', () => {
  const samples = [
    new Address('127.0.0.1').pack(),
    new Address('2001:db8::1').pack(),
    new Address('example.com', 0).pack(),
    new Certificate(4, new Uint8Array(140)).pack(),
    new LinkByIPv4('1.2.3.4', 443).pack(),
    new LinkByIPv6('::1', 9001).pack(),
    new LinkByFingerprint(new Uint8Array(20)).pack(),
    new LinkByEd25519(new Uint8Array(32)).pack(),
  ];
  fuzz(FILE, 'datatypes', fc.oneof(fc.uint8Array({ maxLength: 300 }), mutatedOneOf(samples)), (bytes) => {
    typedOrNothing(() => Address.pop(bytes)[0].pack());
    typedOrNothing(() => Address.unpack(bytes));
    typedOrNothing(() => Certificate.pop(bytes)[0].pack());
    typedOrNothing(() => LinkSpecifier.pop(bytes)[0].pack());
    typedOrNothing(() => LinkSpecifier.unpack(bytes));
    typedOrNothing(() => KDF.fromValue(bytes));
  }, 3);
});

// -------------------------------------------------------------------------------------
// Certificates

test('fuzz: Ed25519 certificates and RSA cross-certs — mutated real certs (types 4, 5, 7)', () => {
  const ed = [...certsOfType(4), ...certsOfType(5)];
  const cross = certsOfType(7);
  fuzz(FILE, 'certs: Ed25519Cert.decode', fc.oneof(mutatedOneOf(ed), fc.uint8Array({ maxLength: 200 })), (bytes) => {
    const cert = typedOrNothing(() => Ed25519Cert.decode(bytes));
    if (cert instanceof Ed25519Cert) {
      typedOrNothing(() => cert.signingKey && cert.verify(cert.signingKey));
      typedOrNothing(() => cert.isExpired(new Date()));
    }
  }, 3);
  fuzz(FILE, 'certs: RsaCrossCert.decode', fc.oneof(mutatedOneOf(cross), fc.uint8Array({ maxLength: 200 })), (bytes) => {
    const cert = typedOrNothing(() => RsaCrossCert.decode(bytes));
    if (cert instanceof RsaCrossCert) typedOrNothing(() => cert.isExpired(new Date()));
  }, 2);
});

function walkDer(tlv: Tlv, depth = 0): void {
  if (depth > 8) return;
  if (tlv.tag === 0x17 || tlv.tag === 0x18) typedOrNothing(() => parseTime(tlv));
  if (tlv.tag & 0x20) {
    const kids = typedOrNothing(() => children(tlv));
    if (Array.isArray(kids)) for (const k of kids) walkDer(k, depth + 1);
  }
}

test('fuzz: DER and X.509 — mutated real certificates (types 1, 2)', () => {
  const x509s = [...certsOfType(1), ...certsOfType(2), ...relaysCaptured.map((r) => r.tlsCertificate)];
  fuzz(FILE, 'certs: DER and X.509', mutatedOneOf(x509s, 3), (bytes) => {
    const tlv = typedOrNothing(() => readTlv(bytes));
    if (!(tlv instanceof Error)) walkDer(tlv);
    const cert = typedOrNothing(() => parseX509(bytes));
    if (!(cert instanceof Error)) {
      const key = typedOrNothing(() => x509RsaKey(cert));
      if (key && !(key instanceof Error)) typedOrNothing(() => x509VerifyRsa(cert, key.key));
    }
  }, 3);
});

test('fuzz: CERTS verification — mutated real CERTS cells of nine tor relays', () => {
  const arb = fc.tuple(fc.nat({ max: realCertsPayloads.length - 1 }), fc.nat({ max: 4 })).chain(([i, n]) => mutated(realCertsPayloads[i]!, n + 1).map((p) => [i, p] as const));
  fuzz(FILE, 'certs: verifyCertsCell', arb, ([i, payload]) => {
    const relay = relaysCaptured[i]!;
    const cell = typedOrNothing(() => CertsCell.decodePayload(payload));
    if (cell instanceof CertsCell) {
      typedOrNothing(() => listCertificates(cell));
      typedOrNothing(() => verifyCertsCell(cell, relay.tlsCertificate, relay.capturedAt));
    }
  }, 1);
});

// -------------------------------------------------------------------------------------
// Directory documents

test('fuzz: HTTP responses — mutated real responses (one deflated), random bytes', () => {
  fuzz(FILE, 'dir: parseHttpResponse', fc.oneof(mutatedOneOf(responses.map((r) => r.subarray(0, 8000)), 4), fc.uint8Array({ maxLength: 400 })), (bytes) => {
    typedOrNothing(() => parseHttpResponse(bytes));
    typedOrNothing(() => parseHttpResponse(bytes, { compressed: true }));
  }, 2);
});

test('fuzz: consensus and server descriptors — mutated real documents', () => {
  const docs = [consensusText.subarray(0, 6000), descriptorsText.subarray(0, 6000)];
  fuzz(FILE, 'dir: parseConsensus / parseServerDescriptors', mutatedOneOf(docs, 6), (bytes) => {
    const text = Buffer.from(bytes).toString('latin1');
    typedOrNothing(() => parseConsensus(text));
    typedOrNothing(() => parseServerDescriptors(text));
  }, 2);
});

// -------------------------------------------------------------------------------------
// Regression cases (minimised failures found by the long profile are kept here).

test('regression: the decoders on edge inputs', () => {
  for (const bytes of [new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(0, 0, 7, 0xff, 0xff), Uint8Array.of(0, 0, 0, 0, 129, 0, 1, 0xff)]) decodeCells(bytes);
  typedOrNothing(() => new Reader(new Uint8Array(0), 'x').u8('y'));
});
