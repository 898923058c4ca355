/**
 * test/support/channel — a client ChannelMachine past its link handshake (VERSIONS, CERTS,
 * AUTH_CHALLENGE, NETINFO fed to it, link protocol 5), writing to `sent`, for tests that
 * script the relays' side of circuits on it (testing/relayside); and the reader that turns
 * what the client sent into the messages the relays' chain recognizes.
 */
import assert from 'node:assert/strict';
import { Address, AuthChallengeCell, Certificate, CertsCell, LinkProtocol, NetinfoCell, VersionsCell } from '../../src/index.js';
import { readFrame } from '../../src/codec/framing.js';
import { ChannelMachine } from '../../src/proto/channel.js';
import type { RelayMessageIn, RelaySideCircuit } from '../../src/testing/relayside.js';

export const LP = LinkProtocol.of(5);

/** An open channel whose outgoing bytes land in `sent`. */
export function openChannel(sent: Uint8Array[]): ChannelMachine {
  const channel = new ChannelMachine([3, 4, 5], { send: (b) => sent.push(b) }, { handshakeComplete: () => undefined, closed: () => undefined }, { peerAddress: new Address('127.0.0.1') });
  channel.start();
  channel.handleBytes(Buffer.concat([
    new VersionsCell([3, 4, 5]).pack(2),
    new CertsCell([new Certificate(1, new Uint8Array(10))]).pack(LP),
    new AuthChallengeCell([1, 3]).pack(LP),
    new NetinfoCell(new Address('127.0.0.1'), [new Address('127.0.0.2')], new Date(1_700_000_000_000)).pack(LP),
  ]));
  sent.length = 0;
  return channel;
}

/** What the client sent since the last call (taken from `sent`), as the relays' chain from `guard` reads it. */
export function relayReader(sent: Uint8Array[], guard: RelaySideCircuit): () => RelayMessageIn[] {
  return () => {
    const bytes = Buffer.concat(sent.splice(0));
    const out: RelayMessageIn[] = [];
    for (let at = 0; at < bytes.length; ) {
      const f = readFrame(bytes, at, LP);
      assert.ok(typeof f !== 'number');
      at += f.length;
      if (f.command === 3 || f.command === 9) out.push(guard.receive(f.payload.slice(), f.command));
    }
    return out;
  };
}
