/**
 * dir/documents — just enough parsing of directory documents (dir-spec) for tools and
 * the demo: router status entries of a consensus (ns or microdesc flavour), server
 * descriptors.
 *
 * Layer: codec core. No I/O. Signatures are not checked here.
 */
import { DecodeError } from '../errors.js';
import { argsOf, tokenize } from './netdoc.js';
import { readRouters, routerSection } from './consensus.js';

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

/**
 * Router entries of a consensus (either flavour), leniently: fragments without
 * signatures or `pr` lines are fine. The same tokenizer and entry reader as dir/consensus,
 * which checks a whole document as tor does (use dir/verify to trust one).
 */
export function parseConsensus(text: string): Consensus {
  if (!text.startsWith('network-status-version 3')) {
    throw new DecodeError('consensus', 0, `expected 'network-status-version 3', got ${JSON.stringify(text.slice(0, Math.min(60, text.indexOf('\n') >>> 0)))}`);
  }
  const section = routerSection(text);
  const items = tokenize(text, 'consensus', 0, section?.from ?? text.length);
  const flavor = items[0]!.args.includes('microdesc') ? 'microdesc' : 'ns';
  const consensus: Consensus = { flavor, validAfter: undefined, params: {}, routers: [] };
  for (const item of items) {
    if (item.keyword === 'valid-after') consensus.validAfter ??= item.args;
    else if (item.keyword === 'params') {
      for (const kv of argsOf(item)) {
        const [k, v] = kv.split('=');
        if (k && v !== undefined) consensus.params[k] = Number(v);
      }
    }
  }
  if (section) {
    for (const r of readRouters(text, section.from, section.to, section.line, flavor, false).routers) {
      consensus.routers.push({
        nickname: r.nickname,
        fingerprint: r.rsa,
        address: r.address,
        orPort: r.orPort,
        dirPort: r.dirPort,
        flags: [...r.flags],
        bandwidth: r.bandwidth,
        microdescDigest: flavor === 'microdesc' ? r.microdescDigest || undefined : undefined,
        version: r.version,
      });
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
