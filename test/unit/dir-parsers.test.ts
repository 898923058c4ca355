/** HTTP responses as tor's directory server sends them, and directory documents. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { DecodeError, LimitError, OrportError, parseConsensus, parseHttpResponse, parseServerDescriptors } from '../../src/index.js';

const head = (encoding: string) => `HTTP/1.0 200 OK\r\nDate: Thu, 26 Nov 2026 03:02:38 GMT\r\nContent-Type: text/plain\r\nX-Your-Address-Is: 127.0.0.1\r\nContent-Encoding: ${encoding}\r\n\r\n`;

test('parseHttpResponse: status, headers, identity and deflate bodies', () => {
  const plain = parseHttpResponse(Buffer.from(head('identity') + 'router x\n'));
  assert.equal(plain.statusCode, 200);
  assert.equal(plain.statusMessage, 'OK');
  assert.equal(plain.headers['x-your-address-is'], '127.0.0.1');
  assert.equal(Buffer.from(plain.body).toString(), 'router x\n');

  const body = 'network-status-version 3\n'.repeat(50);
  const z = parseHttpResponse(Buffer.concat([Buffer.from(head('deflate')), deflateSync(body)]));
  assert.equal(Buffer.from(z.body).toString(), body);
  assert.ok(z.rawBody.length < body.length);

  const notFound = parseHttpResponse(Buffer.from('HTTP/1.0 404 Not found\r\n\r\n'));
  assert.equal(notFound.statusCode, 404);
  assert.equal(notFound.statusMessage, 'Not found');
  assert.equal(notFound.body.length, 0);
});

test('parseHttpResponse: a deflate bomb is a LimitError', () => {
  const bomb = Buffer.concat([Buffer.from(head('deflate')), deflateSync(Buffer.alloc(10 * 1024 * 1024))]);
  assert.ok(bomb.length < 20_000);
  assert.throws(() => parseHttpResponse(bomb, { maxBodyBytes: 1024 * 1024 }), LimitError);
  assert.equal(parseHttpResponse(bomb).body.length, 10 * 1024 * 1024);
});

test('parseHttpResponse: malformed input is a DecodeError', () => {
  assert.throws(() => parseHttpResponse(Buffer.from('')), DecodeError);
  assert.throws(() => parseHttpResponse(Buffer.from('HTTP/1.0 200 OK\r\nno end')), /no end of headers/);
  assert.throws(() => parseHttpResponse(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')), /bad status line/);
  assert.throws(() => parseHttpResponse(Buffer.from(head('deflate') + 'not deflate')), /cannot inflate/);
  assert.throws(() => parseHttpResponse(Buffer.from(head('x-zstd') + 'x')), /unsupported Content-Encoding/);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        parseHttpResponse(bytes);
      } catch (err) {
        assert.ok(err instanceof OrportError, String(err));
      }
    }),
  );
});

const CONSENSUS = `network-status-version 3
vote-status consensus
valid-after 2026-11-26 03:04:03
params cc_alg=2 circwindow=1000
dir-source auth0 E93A627F61D6AD6EFCD6C2C952428BC8322F61A5 127.0.0.1 127.0.0.1 7000 5000
r relay0 zULjN3Gdg7WotZXtIl3CDkTD4k4 n3Qm0xM7YJk9hSO5lQPjhT5yHxI 2026-11-26 03:03:55 127.0.0.1 15003 15103
s Exit Fast Guard Running Stable V2Dir Valid
v Tor 0.4.9.11
w Bandwidth=0 Unmeasured=1
r relay1 b6A+ZudjGvBuhYXAU3rbCgPaQPo mQjbK4rgmxxsqVXw7l8ZJ0QFO+M 2026-11-26 03:03:56 127.0.0.1 15004 15104
s Fast Running Valid
w Bandwidth=20
directory-footer
bandwidth-weights Wbd=0
`;

test('parseConsensus: router entries of the ns flavour', () => {
  const c = parseConsensus(CONSENSUS);
  assert.equal(c.flavor, 'ns');
  assert.equal(c.validAfter, '2026-11-26 03:04:03');
  assert.deepEqual(c.params, { cc_alg: 2, circwindow: 1000 });
  assert.equal(c.routers.length, 2);
  const [r0, r1] = c.routers;
  assert.equal(r0!.nickname, 'relay0');
  assert.equal(r0!.fingerprint, 'CD42E337719D83B5A8B595ED225DC20E44C3E24E');
  assert.equal(r0!.orPort, 15003);
  assert.equal(r0!.dirPort, 15103);
  assert.deepEqual(r0!.flags, ['Exit', 'Fast', 'Guard', 'Running', 'Stable', 'V2Dir', 'Valid']);
  assert.equal(r0!.version, 'Tor 0.4.9.11');
  assert.equal(r1!.bandwidth, 20);
  assert.throws(() => parseConsensus('HTTP/1.0 200 OK'), DecodeError);
});

test('parseConsensus: the microdesc flavour has no digest field but an m line', () => {
  const md = parseConsensus('network-status-version 3 microdesc\nr relay0 zULjN3Gdg7WotZXtIl3CDkTD4k4 2026-11-26 03:03:55 127.0.0.1 15003 15103\nm 7Y0O2BqvvXk3/b1vz4V4U1c2hW2pT2gSkwhV9aNbC/g\ns Fast\n');
  assert.equal(md.flavor, 'microdesc');
  assert.equal(md.routers[0]!.orPort, 15003);
  assert.equal(md.routers[0]!.microdescDigest, '7Y0O2BqvvXk3/b1vz4V4U1c2hW2pT2gSkwhV9aNbC/g');
});

test('parseServerDescriptors: several descriptors', () => {
  const text = `router relay0 127.0.0.1 15003 0 15103
master-key-ed25519 Ua0Ykl5HXrr3JMYvKOFrMw/wEe0x3n3FeXDEbPzPmXU
platform Tor 0.4.9.11 on Linux
published 2026-11-26 03:03:55
fingerprint CD42 E337 719D 83B5 A8B5 95ED 225D C20E 44C3 E24E
bandwidth 1073741824 1073741824 3072
ntor-onion-key 8F6dy3TKWHX4SbxUzjzX3l6Na0hjnXj/DWHzIfrLnRw
router relay1 127.0.0.1 15004 0 15104
fingerprint 6FA0 3E66 E763 1AF0 6E85 85C0 537A DB0A 03DA 40FA
`;
  const [d0, d1] = parseServerDescriptors(text);
  assert.equal(d0!.nickname, 'relay0');
  assert.equal(d0!.fingerprint, 'CD42E337719D83B5A8B595ED225DC20E44C3E24E');
  assert.deepEqual(d0!.bandwidth, [1073741824, 1073741824, 3072]);
  assert.equal(d0!.platform, 'Tor 0.4.9.11 on Linux');
  assert.equal(d0!.ed25519, 'Ua0Ykl5HXrr3JMYvKOFrMw/wEe0x3n3FeXDEbPzPmXU');
  assert.equal(d1!.orPort, 15004);
});
