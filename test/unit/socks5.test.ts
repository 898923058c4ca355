/**
 * adapters/socks5, the SOCKS5 codec: RFC 1928 / RFC 1929 byte vectors and the vectors of
 * tor 0.4.9's test_socks.c (re-expressed as bytes in, bytes out), tor's refusals
 * (0x07, 0x08, 0x01, method 0xFF, auth status 1), SOCKS4 and HTTP refused, the END reason
 * → reply map of relay.c, isolation keys; properties: any split of the input gives the
 * outcome of the whole, arbitrary bytes never throw and a refusal always has a reply,
 * encode → decode round trips.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { Address } from '../../src/codec/datatype.js';
import { StreamClosedError, TimeoutError, CircuitDestroyedError, NetworkError, ProtocolError } from '../../src/errors.js';
import {
  Socks5Handshake,
  SocksReply,
  decodeReply,
  encodeGreeting,
  encodeReply,
  encodeRequest,
  encodeUserPass,
  isolationKey,
  socksReplyForError,
  socksReplyName,
  type SocksStep,
} from '../../src/adapters/socks5.js';
import { fuzz } from '../support/fuzz.js';

const bytes = (...parts: (string | number[])[]): Uint8Array => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Feeds `chunks` one by one; the replies concatenated, the last outcome, the data after the request. */
function run(chunks: readonly Uint8Array[]): { reply: string; last: SocksStep; rest: string } {
  const h = new Socks5Handshake();
  let reply = '';
  let rest = '';
  let last: SocksStep = { kind: 'more', reply: new Uint8Array(0) };
  for (const c of chunks) {
    last = h.push(c);
    reply += hex(last.reply);
    if (last.kind === 'request') rest += hex(last.rest);
  }
  return { reply, last, rest };
}

function expectRequest(chunks: Uint8Array[], reply: string, request: object, rest = ''): void {
  const r = run(chunks);
  assert.equal(r.last.kind, 'request', r.last.kind === 'reject' ? r.last.error.message : 'still waiting');
  assert.equal(r.reply, reply);
  if (r.last.kind === 'request') {
    const { auth, ...rq } = r.last.request;
    assert.deepEqual({ ...rq, ...(auth ? { username: Buffer.from(auth.username).toString('latin1'), password: Buffer.from(auth.password).toString('latin1') } : {}) }, request);
  }
  assert.equal(r.rest, rest);
}

function expectReject(chunks: Uint8Array[], reply: string, replyCode: number, dialect = 'socks5'): void {
  const r = run(chunks);
  assert.equal(r.last.kind, 'reject');
  assert.equal(r.reply, reply);
  if (r.last.kind === 'reject') {
    assert.equal(r.last.replyCode, replyCode);
    assert.equal(r.last.dialect, dialect);
    assert.equal(r.last.close, true);
    assert.ok(r.last.error instanceof ProtocolError);
  }
}

const ERR = (code: number) => `05${code.toString(16).padStart(2, '0')}0001000000000000`;

test('RFC 1928 §3-§6: no auth, CONNECT to IPv4, domain and IPv6; the reply 0.0.0.0:0', () => {
  expectRequest([bytes([5, 1, 0]), bytes([5, 1, 0, 1, 127, 0, 0, 1, 0, 80])], '0500', { command: 'connect', addressType: 'ipv4', host: '127.0.0.1', port: 80 });
  expectRequest([bytes([5, 1, 0, 5, 1, 0, 3, 11], 'example.com', [1, 187])], '0500', { command: 'connect', addressType: 'domain', host: 'example.com', port: 443 });
  expectRequest([bytes([5, 1, 0, 5, 1, 0, 4], [...new Array(15).fill(0), 1], [0x1f, 0x90])], '0500', { command: 'connect', addressType: 'ipv6', host: '0000:0000:0000:0000:0000:0000:0000:0001', port: 8080 });
  // a bracketed IPv6 literal sent as a name is taken as the address
  expectRequest([bytes([5, 1, 0, 5, 1, 0, 3, 5], '[::1]', [0, 80])], '0500', { command: 'connect', addressType: 'domain', host: '::1', port: 80 });
  assert.equal(hex(encodeReply(SocksReply.SUCCEEDED)), '05000001000000000000');
});

test("tor's test_socks.c vectors: CONNECT, RESOLVE, RESOLVE_PTR, username/password, data in one go", () => {
  expectRequest([bytes([5, 1, 0]), bytes([5, 1, 0, 1, 2, 2, 2, 2, 0x11, 0x11])], '0500', { command: 'connect', addressType: 'ipv4', host: '2.2.2.2', port: 4369 });
  expectRequest([bytes([5, 1, 0]), bytes([5, 1, 0, 3, 14], 'torproject.org', [0x11, 0x11])], '0500', { command: 'connect', addressType: 'domain', host: 'torproject.org', port: 4369 });
  expectRequest([bytes([5, 1, 0]), bytes([5, 0xf0, 0, 3, 14], 'torproject.org', [1, 2])], '0500', { command: 'resolve', addressType: 'domain', host: 'torproject.org', port: 258 });
  expectRequest([bytes([5, 1, 0]), bytes([5, 0xf0, 0, 3, 7]), bytes('8.8.8.8'), bytes([0x11, 0x11])], '0500', { command: 'resolve', addressType: 'domain', host: '8.8.8.8', port: 4369 });
  expectRequest([bytes([5, 1, 0]), bytes([5, 0xf1, 0, 1, 2, 2, 2, 5, 1, 3])], '0500', { command: 'resolve-ptr', addressType: 'ipv4', host: '2.2.2.5', port: 259 });
  // test_socks_5_authenticate
  expectRequest([bytes([5, 1, 2]), bytes([1, 2], 'me', [8], 'mypasswd'), bytes([5, 1, 0, 1, 2, 2, 2, 2, 0x11, 0x11])], '05020100', { command: 'connect', addressType: 'ipv4', host: '2.2.2.2', port: 4369, username: 'me', password: 'mypasswd' });
  // test_socks_5_authenticate_with_data
  expectRequest([bytes([5, 1, 2]), bytes([1, 2], 'me', [3], 'you', [5, 1, 0, 1, 2, 2, 2, 2, 0x11, 0x11])], '05020100', { command: 'connect', addressType: 'ipv4', host: '2.2.2.2', port: 4369, username: 'me', password: 'you' });
  // test_socks_5_no_authenticate: username/password sent although NO_AUTH was chosen
  expectRequest([bytes([5, 1, 0]), bytes([1, 2, 1, 1, 2, 1, 1]), bytes([5, 1, 0, 1, 2, 2, 2, 2, 0x11, 0x11])], '05000100', { command: 'connect', addressType: 'ipv4', host: '2.2.2.2', port: 4369, username: '\x01\x01', password: '\x01\x01' });
  // empty username and password (tor allows them, against RFC 1929)
  expectRequest([bytes([5, 1, 2, 1, 0, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 1])], '05020100', { command: 'connect', addressType: 'ipv4', host: '1.2.3.4', port: 1, username: '', password: '' });
  // username/password is preferred when both are offered (tor's default)
  assert.equal(run([bytes([5, 2, 0, 2])]).reply, '0502');
  // data after the request is handed on (optimistic data, socks-extensions.txt §5)
  expectRequest([bytes([5, 1, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 80], 'GET / HTTP/1.0\r\n')], '0500', { command: 'connect', addressType: 'ipv4', host: '1.2.3.4', port: 80 }, hex(bytes('GET / HTTP/1.0\r\n')));
});

test("tor's refusals: BIND and UDP ASSOCIATE 0x07, bad address types 0x08, malformed names 0x01, no method 0xFF, auth version", () => {
  expectReject([bytes([5, 2, 0, 1]), bytes([5, 2, 0, 1, 2, 2, 2, 1, 1, 1])], '0500' + ERR(7), 7);
  expectReject([bytes([5, 2, 0, 1]), bytes([5, 3, 0, 1, 2, 2, 2, 1, 1, 1])], '0500' + ERR(7), 7);
  expectReject([bytes([5, 1, 0]), bytes([5, 0xf1, 0, 3, 14], 'torproject.org', [0x11, 0x11])], '0500' + ERR(8), 8);
  expectReject([bytes([5, 1, 0]), bytes([5, 1, 0, 3, 9], '""""".com', [0x11, 0x11])], '0500' + ERR(1), 1);
  expectReject([bytes([5, 1, 0]), bytes([5, 1, 0, 0x23, 2, 2, 2, 2, 0x11, 0x11])], '0500' + ERR(8), 8);
  expectReject([bytes([5, 3, 0x99, 0x21, 0x10])], '05ff', 0xff);
  expectReject([bytes([5, 0])], '05ff', 0xff);
  expectReject([bytes([5, 1, 2]), bytes([2, 5], 'hello', [5], 'world')], '05020101', 1);
  // prop 351: '<torS0X>' with a version tor does not know
  expectReject([bytes([5, 1, 2]), bytes([1, 9], '<torS0X>1', [0])], '05020101', 1);
  expectRequest([bytes([5, 1, 2]), bytes([1, 9], '<torS0X>0', [1], 'k', [5, 1, 0, 1, 1, 1, 1, 1, 0, 1])], '05020100', { command: 'connect', addressType: 'ipv4', host: '1.1.1.1', port: 1, username: '<torS0X>0', password: 'k' });
  // auth before negotiation is not SOCKS5
  expectReject([bytes([1, 2], 'me', [2], 'me')], '05ff', 0xff, 'unknown');
  // request version, reserved byte, empty name, CONNECT to port 0, a NUL in a name
  expectReject([bytes([5, 1, 0, 4, 1, 0, 1, 1, 1, 1, 1, 0, 1])], '0500' + ERR(1), 1);
  expectReject([bytes([5, 1, 0, 5, 1, 1, 1, 1, 1, 1, 1, 0, 1])], '0500' + ERR(1), 1);
  expectReject([bytes([5, 1, 0, 5, 1, 0, 3, 0, 0, 80])], '0500' + ERR(1), 1);
  expectReject([bytes([5, 1, 0, 5, 1, 0, 1, 1, 1, 1, 1, 0, 0])], '0500' + ERR(1), 1);
  expectReject([bytes([5, 1, 0, 5, 1, 0, 3, 3], 'a\0b', [0, 80])], '0500' + ERR(1), 1);
  // refusals come as soon as the deciding byte is in
  expectReject([bytes([5, 1, 0, 5, 0x02])], '0500' + ERR(7), 7);
  expectReject([bytes([5, 1, 0, 5, 1, 0, 0x09])], '0500' + ERR(8), 8);
});

test('SOCKS4/4a get a SOCKS4 refusal, HTTP a 501 page; both then close', () => {
  expectReject([bytes([4, 1, 0, 80, 1, 2, 3, 4], 'me\0')], '005b000000000000', 0x5b, 'socks4');
  expectReject([bytes([4, 1, 0, 80, 0, 0, 0, 1, 0], 'example.com\0')], '005b000000000000', 0x5b, 'socks4');
  const http = run([bytes('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
  assert.equal(http.last.kind, 'reject');
  assert.match(Buffer.from(http.reply, 'hex').toString('latin1'), /^HTTP\/1\.0 501 /);
  for (const first of 'GHPC') assert.equal(run([bytes(first)]).last.kind === 'reject' && (run([bytes(first)]).last as { dialect: string }).dialect, 'http');
});

test('after the outcome, push repeats it: a request hands on the new bytes, a refusal sends nothing more', () => {
  const h = new Socks5Handshake();
  assert.equal(h.state, 'greeting');
  h.push(bytes([5, 1, 0]));
  assert.equal(h.state, 'request');
  const done = h.push(bytes([5, 1, 0, 1, 1, 2, 3, 4, 0, 80]));
  assert.equal(done.kind, 'request');
  assert.equal(h.state, 'done');
  const again = h.push(bytes('more'));
  assert.equal(again.kind, 'request');
  assert.equal(hex(again.reply), '');
  assert.equal(again.kind === 'request' && Buffer.from(again.rest).toString(), 'more');
  const r = new Socks5Handshake();
  assert.equal(r.push(bytes([9])).kind, 'reject');
  assert.equal(r.state, 'failed');
  const rr = r.push(bytes([5, 1, 0]));
  assert.equal(rr.kind, 'reject');
  assert.equal(rr.reply.length, 0);
});

test("END reasons → reply codes as tor's stream_end_reason_to_socks5_response; TimeoutError 0x06; others 0x01", () => {
  const table: [string, number, number][] = [
    ['MISC', 1, 0x01],
    ['RESOLVEFAILED', 2, 0x04],
    ['CONNECTREFUSED', 3, 0x05],
    ['EXITPOLICY', 4, 0x02],
    ['DESTROY', 5, 0x01],
    ['DONE', 6, 0x05],
    ['TIMEOUT', 7, 0x06],
    ['NOROUTE', 8, 0x04],
    ['HIBERNATING', 9, 0x01],
    ['INTERNAL', 10, 0x01],
    ['RESOURCELIMIT', 11, 0x01],
    ['CONNRESET', 12, 0x05],
    ['TORPROTOCOL', 13, 0x01],
    ['NOTDIRECTORY', 14, 0x01],
    ['UNKNOWN_42', 42, 0x01],
  ];
  for (const [reason, n, code] of table) assert.equal(socksReplyForError(new StreamClosedError('relay', reason, n)), code, reason);
  assert.equal(socksReplyForError(new TimeoutError('x', 5)), 0x06);
  assert.equal(socksReplyForError(new CircuitDestroyedError('relay', 'DESTROYED', 11)), 0x01);
  assert.equal(socksReplyForError(new NetworkError('refused', { errno: 'ECONNREFUSED' })), 0x01);
  assert.equal(socksReplyForError(new Error('plain')), 0x01);
  assert.equal(socksReplyForError(undefined), 0x01);
  // prop 304's extended onion-service codes, reserved
  assert.deepEqual(
    [SocksReply.HS_DESC_NOT_FOUND, SocksReply.HS_DESC_INVALID, SocksReply.HS_INTRO_FAILED, SocksReply.HS_REND_FAILED, SocksReply.HS_MISSING_CLIENT_AUTH, SocksReply.HS_BAD_CLIENT_AUTH, SocksReply.HS_BAD_ADDRESS, SocksReply.HS_INTRO_TIMEDOUT],
    [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7],
  );
  assert.equal(socksReplyName(5), 'connection refused');
  assert.equal(socksReplyName(0x42), 'reply 0x42');
});

test('isolation keys: none without credentials (or with both empty), equal for equal credentials, distinct otherwise', () => {
  const k = (u: string, p: string) => isolationKey({ username: bytes(u), password: bytes(p) });
  assert.equal(isolationKey(undefined), undefined);
  assert.equal(k('', ''), undefined);
  assert.equal(k('alice', 'pw'), k('alice', 'pw'));
  assert.notEqual(k('alice', 'pw'), k('bob', 'pw'));
  assert.notEqual(k('ab', 'c'), k('a', 'bc'));
  assert.notEqual(k('a', ''), k('', 'a'));
  assert.ok(!k('alice', 'secret')!.includes('alice') && !k('alice', 'secret')!.includes('secret'));
});

// ---------------------------------------------------------------------------------
// Properties

const domain = fc.stringMatching(/^[a-z0-9_-]{1,12}(\.[a-z0-9-]{1,12}){0,3}$/);
const hostArb = fc.oneof(fc.ipV4(), fc.ipV6(), domain);
const credArb = fc.option(fc.record({ username: fc.uint8Array({ maxLength: 255 }), password: fc.uint8Array({ maxLength: 255 }) }), { nil: undefined });
const requestArb = fc.record({
  command: fc.constantFrom('connect' as const, 'resolve' as const, 'resolve-ptr' as const),
  host: hostArb,
  port: fc.integer({ min: 1, max: 65535 }),
  auth: credArb,
}).filter((r) => r.command !== 'resolve-ptr' || isIP(r.host) !== 0);

function handshakeBytes(r: { command: 'connect' | 'resolve' | 'resolve-ptr'; host: string; port: number; auth: { username: Uint8Array; password: Uint8Array } | undefined }): Uint8Array {
  return Buffer.concat([encodeGreeting(r.auth ? [0, 2] : [0]), r.auth ? encodeUserPass(r.auth.username, r.auth.password) : new Uint8Array(0), encodeRequest(r)]);
}

/** Inputs that reach every phase: valid handshakes cut short or garbled, plus garbage. */
const inputArb = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.tuple(requestArb, fc.uint8Array({ maxLength: 16 })).map(([r, tail]) => Buffer.concat([handshakeBytes(r), tail])),
  fc.tuple(requestArb, fc.nat(), fc.nat(255)).map(([r, at, b]) => {
    const x = Buffer.from(handshakeBytes(r));
    x[at % x.length] = b;
    return x;
  }),
  fc.tuple(fc.constantFrom(bytes([5, 1, 0]), bytes([5, 1, 2]), bytes([5, 1, 2, 1, 1, 97, 1, 98])), fc.uint8Array({ maxLength: 40 })).map(([a, b]) => Buffer.concat([a, b])),
);

/** Cut points for `length` bytes. */
const splitArb = (length: number) => fc.uniqueArray(fc.integer({ min: 0, max: length }), { maxLength: 8 }).map((cuts) => [...cuts].sort((a, b) => a - b));

function split(input: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const c of [...cuts, input.length]) {
    out.push(input.subarray(at, c));
    at = c;
  }
  return out;
}

function summary(r: ReturnType<typeof run>): unknown {
  const l = r.last;
  return {
    reply: r.reply,
    rest: r.rest,
    kind: l.kind,
    request: l.kind === 'request' ? l.request : undefined,
    code: l.kind === 'reject' ? [l.replyCode, l.dialect, l.error.message] : undefined,
  };
}

test('property: any split of the input gives the same replies and outcome as the whole', () => {
  fuzz(import.meta.url, 'socks5 split invariance', inputArb.chain((input) => splitArb(input.length).map((cuts) => ({ input, cuts }))), ({ input, cuts }) => {
    assert.deepEqual(summary(run(split(input, cuts))), summary(run([input])));
  }, 5);
});

test('property: arbitrary bytes never throw; a refusal always carries a reply and closes', () => {
  fuzz(import.meta.url, 'socks5 garbage', inputArb, (input) => {
    const h = new Socks5Handshake();
    const step = h.push(input);
    if (step.kind === 'reject') {
      assert.ok(step.reply.length > 0);
      assert.equal(step.close, true);
      assert.ok(step.error instanceof ProtocolError);
      assert.equal(h.state, 'failed');
    }
    if (step.kind === 'more') assert.ok(input.length < 3 + 256 + 256 + 262, 'waits only on a possible prefix');
  }, 5);
});

test('property: encodeGreeting + encodeUserPass + encodeRequest decode to the request; encodeReply round trips', () => {
  fuzz(import.meta.url, 'socks5 request round trip', requestArb, (r) => {
    const step = run([handshakeBytes(r)]).last;
    assert.equal(step.kind, 'request', step.kind === 'reject' ? step.error.message : '');
    if (step.kind !== 'request') return;
    const ip = r.host.includes(':') || /^\d+\.\d+\.\d+\.\d+$/.test(r.host);
    assert.equal(step.request.host, r.host.includes(':') ? new Address(r.host).value : r.host);
    assert.equal(step.request.addressType, !ip ? 'domain' : r.host.includes(':') ? 'ipv6' : 'ipv4');
    assert.equal(step.request.command, r.command);
    assert.equal(step.request.port, r.port);
    if (r.auth) {
      assert.deepEqual(Buffer.from(step.request.auth!.username), Buffer.from(r.auth.username));
      assert.deepEqual(Buffer.from(step.request.auth!.password), Buffer.from(r.auth.password));
    } else assert.equal(step.request.auth, undefined);
  });
  fuzz(import.meta.url, 'socks5 reply round trip', fc.record({ code: fc.nat(255), host: hostArb, port: fc.nat(65535) }), ({ code, host, port }) => {
    const enc = encodeReply(code, { host, port });
    const dec = decodeReply(Buffer.concat([enc, bytes('tail')]));
    assert.deepEqual(dec, { replyCode: code, host: host.includes(':') ? new Address(host).value : host, port, length: enc.length });
    for (let n = 0; n < enc.length; n++) assert.throws(() => decodeReply(enc.subarray(0, n)), { code: 'E_INCOMPLETE' });
  });
});
