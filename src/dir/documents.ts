/**
 * dir/documents — just enough parsing of directory documents (dir-spec) for tools and
 * the demo: router status entries of a consensus (ns or microdesc flavour), server
 * descriptors.
 *
 * Layer: codec core. No I/O. Signatures are not checked here.
 */
import { DecodeError } from '../errors.js';

export interface RouterStatus {
  nickname: string;
  /** RSA identity fingerprint, 40 upper-case hex digits. */
  fingerprint: string;
  address: string;
  orPort: number;
  dirPort: number;
  flags: string[];
  /** Consensus weight ("w Bandwidth="), if given. */
  bandwidth: number | undefined;
  /** Microdescriptor digest (microdesc flavour), base64. */
  microdescDigest: string | undefined;
  /** Tor version line ("v"), if given. */
  version: string | undefined;
}

export interface Consensus {
  flavor: 'ns' | 'microdesc';
  validAfter: string | undefined;
  params: Record<string, number>;
  routers: RouterStatus[];
}

/** base64 without padding (as in consensus "r" lines) to upper-case hex. */
export function base64ToHex(b64: string): string {
  return Buffer.from(b64, 'base64').toString('hex').toUpperCase();
}

export function parseConsensus(text: string): Consensus {
  const lines = text.split('\n');
  if (!lines[0]?.startsWith('network-status-version 3')) {
    throw new DecodeError('consensus', 0, `expected 'network-status-version 3', got ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`);
  }
  const flavor = lines[0].includes('microdesc') ? 'microdesc' : 'ns';
  const consensus: Consensus = { flavor, validAfter: undefined, params: {}, routers: [] };
  let current: RouterStatus | undefined;
  for (const line of lines) {
    const [keyword, ...args] = line.split(' ');
    switch (keyword) {
      case 'valid-after':
        consensus.validAfter = args.join(' ');
        break;
      case 'params':
        for (const kv of args) {
          const [k, v] = kv.split('=');
          if (k && v !== undefined) consensus.params[k] = Number(v);
        }
        break;
      case 'r': {
        // ns: r nick id digest date time ip orport dirport; microdesc: r nick id date time ip orport dirport
        const ns = flavor === 'ns';
        if (args.length < (ns ? 8 : 7)) throw new DecodeError('consensus', -1, `short 'r' line: ${JSON.stringify(line.slice(0, 80))}`);
        const at = ns ? 5 : 4;
        current = {
          nickname: args[0]!,
          fingerprint: base64ToHex(args[1]!),
          address: args[at]!,
          orPort: Number(args[at + 1]),
          dirPort: Number(args[at + 2]),
          flags: [],
          bandwidth: undefined,
          microdescDigest: undefined,
          version: undefined,
        };
        consensus.routers.push(current);
        break;
      }
      case 's':
        if (current) current.flags = args.filter(Boolean);
        break;
      case 'v':
        if (current) current.version = args.join(' ');
        break;
      case 'm':
        if (current) current.microdescDigest = args[0];
        break;
      case 'w':
        if (current) {
          const bw = args.find((a) => a.startsWith('Bandwidth='));
          if (bw) current.bandwidth = Number(bw.slice('Bandwidth='.length));
        }
        break;
      case 'directory-footer':
        current = undefined;
        break;
    }
  }
  return consensus;
}

export interface ServerDescriptor {
  nickname: string;
  address: string;
  orPort: number;
  dirPort: number;
  fingerprint: string | undefined;
  /** average, burst, observed (bytes/s) */
  bandwidth: [number, number, number] | undefined;
  platform: string | undefined;
  published: string | undefined;
  /** The Ed25519 master key, base64 as tor prints it. */
  ed25519: string | undefined;
  ntorOnionKey: string | undefined;
}

/** Parses a concatenation of server descriptors (/tor/server/all). */
export function parseServerDescriptors(text: string): ServerDescriptor[] {
  const out: ServerDescriptor[] = [];
  let current: ServerDescriptor | undefined;
  for (const line of text.split('\n')) {
    const [keyword, ...args] = line.split(' ');
    if (keyword === 'router') {
      current = {
        nickname: args[0] ?? '',
        address: args[1] ?? '',
        orPort: Number(args[2]),
        dirPort: Number(args[4]),
        fingerprint: undefined,
        bandwidth: undefined,
        platform: undefined,
        published: undefined,
        ed25519: undefined,
        ntorOnionKey: undefined,
      };
      out.push(current);
      continue;
    }
    if (!current) continue;
    if (keyword === 'fingerprint') current.fingerprint = args.join('');
    else if (keyword === 'bandwidth') current.bandwidth = [Number(args[0]), Number(args[1]), Number(args[2])];
    else if (keyword === 'platform') current.platform = args.join(' ');
    else if (keyword === 'published') current.published = args.join(' ');
    else if (keyword === 'master-key-ed25519') current.ed25519 = args[0];
    else if (keyword === 'ntor-onion-key') current.ntorOnionKey = args[0];
  }
  return out;
}
