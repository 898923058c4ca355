/**
 * testing/dirdocs — synthetic directory documents signed with throw-away keys: authority
 * key certificates (dir-spec §3.1), a microdesc consensus (§3.4.1, §3.9.2) of any number of
 * relays signed by any subset of the authorities, and the relays' microdescriptors
 * (§3.3), laid out as tor 0.4.9 authorities write them. For tests, fake directory
 * servers and benchmarks; every relay address is on loopback.
 *
 * Layer: test support (no I/O). Keys are RSA-1024 by default (fast to make; tor's parsers
 * take any size from 1024 to 4096 bits). Signing is RSA PKCS#1 v1.5 type 1 over the
 * bare digest, as tor signs.
 */
import { createHash, createPublicKey, generateKeyPairSync, privateEncrypt, randomBytes, constants, type KeyObject } from 'node:crypto';

export interface SyntheticAuthority {
  readonly nickname: string;
  /** v3 identity: SHA-1 of the identity key's DER, 40 upper-case hex. */
  readonly v3ident: string;
  readonly signingKeyDigest: string;
  readonly identityKey: KeyObject;
  readonly signingKey: KeyObject;
  /** The key certificate's text. */
  readonly certificate: string;
}

export interface SyntheticRelay {
  readonly nickname: string;
  readonly rsa: string;
  readonly ed25519: string;
  readonly ntorOnionKey: string;
  readonly address: string;
  readonly orPort: number;
  readonly flags: readonly string[];
  readonly bandwidth: number;
  /** The microdescriptor text and its digest (base64 unpadded). */
  readonly microdesc: string;
  readonly microdescDigest: string;
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const unpadded = (bytes: Uint8Array) => b64(bytes).replace(/=+$/, '');
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex').toUpperCase();

/** An object block: base64 in 64-character lines (dir-spec §1.2). */
function object(tag: string, bytes: Uint8Array): string {
  const body = b64(bytes).replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${tag}-----\n${body}\n-----END ${tag}-----\n`;
}

/** `YYYY-MM-DD HH:MM:SS` in UTC. */
export function dirTime(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/** RSA PKCS#1 v1.5 type-1 signature over a bare digest (no DigestInfo), as tor signs. */
export function signDigest(key: KeyObject, digest: Uint8Array): Uint8Array {
  return new Uint8Array(privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, digest));
}

/** The PKCS#1 DER of a key pair's public half (what `RSA PUBLIC KEY` objects hold). */
function pkcs1(key: KeyObject): Uint8Array {
  return new Uint8Array(createPublicKey(key).export({ type: 'pkcs1', format: 'der' }));
}

export interface AuthorityOptions {
  /** Certificate validity (default: a year either side of now). */
  published?: Date;
  expires?: Date;
  bits?: number;
}

/** Authorities `auth0`… with fresh identity and signing keys and their certificates. */
export function makeAuthorities(n: number, options: AuthorityOptions = {}): SyntheticAuthority[] {
  const now = Date.now();
  const published = options.published ?? new Date(now - 365 * 86400_000);
  const expires = options.expires ?? new Date(now + 365 * 86400_000);
  const out: SyntheticAuthority[] = [];
  for (let i = 0; i < n; i++) {
    const id = generateKeyPairSync('rsa', { modulusLength: options.bits ?? 1024, publicExponent: 65537 });
    const sk = generateKeyPairSync('rsa', { modulusLength: options.bits ?? 1024, publicExponent: 65537 });
    out.push(certify(`auth${i}`, id.privateKey, sk.privateKey, published, expires));
  }
  return out;
}

/** The certificate of an identity key for a signing key (dir-spec §3.1). */
export function certify(nickname: string, identityKey: KeyObject, signingKey: KeyObject, published: Date, expires: Date): SyntheticAuthority {
  const idDer = pkcs1(identityKey);
  const skDer = pkcs1(signingKey);
  const idDigest = createHash('sha1').update(idDer).digest();
  const v3ident = hex(idDigest);
  const head =
    `dir-key-certificate-version 3\n` +
    `dir-address 127.0.0.1:7000\n` +
    `fingerprint ${v3ident}\n` +
    `dir-key-published ${dirTime(published)}\n` +
    `dir-key-expires ${dirTime(expires)}\n` +
    `dir-identity-key\n${object('RSA PUBLIC KEY', idDer)}` +
    `dir-signing-key\n${object('RSA PUBLIC KEY', skDer)}` +
    `dir-key-crosscert\n${object('ID SIGNATURE', signDigest(signingKey, idDigest))}` +
    `dir-key-certification\n`;
  const certification = signDigest(identityKey, createHash('sha1').update(head, 'latin1').digest());
  return {
    nickname,
    v3ident,
    signingKeyDigest: hex(createHash('sha1').update(skDer).digest()),
    identityKey,
    signingKey,
    certificate: head + object('SIGNATURE', certification),
  };
}

/** `n` relays on loopback addresses with random identities, keys and a microdescriptor each. */
export function makeRelays(n: number, options: { exits?: number; basePort?: number } = {}): SyntheticRelay[] {
  const relays: SyntheticRelay[] = [];
  const exits = options.exits ?? Math.ceil(n / 4);
  for (let i = 0; i < n; i++) {
    const rsa = hex(randomBytes(20));
    const ed25519 = unpadded(randomBytes(32));
    const ntorOnionKey = unpadded(randomBytes(32));
    const isExit = i < exits;
    const flags = ['Fast', ...(i % 3 === 0 ? ['Guard'] : []), ...(isExit ? ['Exit'] : []), 'Running', 'Stable', 'V2Dir', 'Valid'].sort();
    const onionKey = object('RSA PUBLIC KEY', randomBytes(140));
    const microdesc =
      `onion-key\n${onionKey}` +
      `ntor-onion-key ${ntorOnionKey}\n` +
      (i % 5 === 0 ? `family $${rsa} $${hex(randomBytes(20))}\n` : '') +
      (isExit ? 'p accept 20-23,43,53,79-81,88,110,143,194,220,389,443,464-465,531,543-544,554,563,587,636,706,749,853,873,902-904,981,989-995,1194,1220,1293,1500,1533,1677,1723,1755,1863,2082-2083,2086-2087,2095-2096,2102-2104\n' : '') +
      `id ed25519 ${ed25519}\n`;
    relays.push({
      nickname: `relay${i}`,
      rsa,
      ed25519,
      ntorOnionKey,
      address: `127.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) || 1}`,
      orPort: (options.basePort ?? 9001) + (i % 1000),
      flags,
      bandwidth: 1000 + ((i * 7919) % 90000),
      microdesc,
      microdescDigest: unpadded(createHash('sha256').update(microdesc, 'latin1').digest()),
    });
  }
  return relays;
}

export interface ConsensusOptions {
  authorities: readonly SyntheticAuthority[];
  relays: readonly SyntheticRelay[];
  validAfter: Date;
  /** Defaults: fresh 1 h and valid 3 h after valid-after (the public network's schedule). */
  freshUntil?: Date;
  validUntil?: Date;
  /** Who signs (default: every authority). */
  signers?: readonly SyntheticAuthority[];
  params?: string;
}

/** A microdesc consensus listing `relays`, with a dir-source for every authority, signed by `signers`. */
export function makeConsensus(options: ConsensusOptions): string {
  const va = options.validAfter;
  const fu = options.freshUntil ?? new Date(va.getTime() + 3600_000);
  const vu = options.validUntil ?? new Date(va.getTime() + 3 * 3600_000);
  const parts: string[] = [
    'network-status-version 3 microdesc\n',
    'vote-status consensus\n',
    'consensus-method 35\n',
    `valid-after ${dirTime(va)}\n`,
    `fresh-until ${dirTime(fu)}\n`,
    `valid-until ${dirTime(vu)}\n`,
    'voting-delay 300 300\n',
    'client-versions 0.4.9.11\n',
    'server-versions 0.4.9.11\n',
    'known-flags Authority BadExit Exit Fast Guard HSDir MiddleOnly Running Stable StaleDesc Sybil V2Dir Valid\n',
    'recommended-client-protocols Cons=2 Desc=2 DirCache=2 FlowCtrl=1-2 HSDir=2 HSIntro=4 HSRend=2 Link=4-5 Microdesc=2 Relay=2-4\n',
    'recommended-relay-protocols Cons=2 Desc=2 DirCache=2 FlowCtrl=1-2 HSDir=2 HSIntro=4-5 HSRend=2 Link=4-5 LinkAuth=3 Microdesc=2 Relay=2-4\n',
    'required-client-protocols Cons=2 Desc=2 FlowCtrl=1 Link=4 Microdesc=2 Relay=2\n',
    'required-relay-protocols Cons=2 Desc=2 DirCache=2 FlowCtrl=1-2 HSDir=2 HSIntro=4-5 HSRend=2 Link=4-5 LinkAuth=3 Microdesc=2 Relay=2-4\n',
    `params ${options.params ?? 'CircuitPriorityHalflifeMsec=30000 bwweightscale=10000 cc_alg=2 sendme_accept_min_version=1'}\n`,
    `shared-rand-previous-value 9 ${b64(createHash('sha256').update('previous').digest())}\n`,
    `shared-rand-current-value 9 ${b64(createHash('sha256').update('current').digest())}\n`,
  ];
  for (const a of [...options.authorities].sort((x, y) => (x.v3ident < y.v3ident ? -1 : 1))) {
    parts.push(`dir-source ${a.nickname} ${a.v3ident} 127.0.0.1 127.0.0.1 7000 5000\n`, `contact ${a.nickname}@example.invalid\n`, `vote-digest ${hex(createHash('sha1').update(a.v3ident).digest())}\n`);
  }
  for (const r of [...options.relays].sort((x, y) => (x.rsa < y.rsa ? -1 : 1))) {
    const id = unpadded(Buffer.from(r.rsa, 'hex'));
    parts.push(
      `r ${r.nickname} ${id} 2038-01-01 00:00:00 ${r.address} ${r.orPort} 0\n`,
      `m ${r.microdescDigest}\n`,
      `s ${r.flags.join(' ')}\n`,
      'v Tor 0.4.9.11\n',
      'pr Conflux=1 Cons=1-2 Desc=1-4 DirCache=2 FlowCtrl=1-2 HSDir=2 HSIntro=4-5 HSRend=1-2 Link=3-5 LinkAuth=3 Microdesc=1-3 Padding=2 Relay=2-6\n',
      `w Bandwidth=${r.bandwidth}\n`,
    );
  }
  parts.push(
    'directory-footer\n',
    'bandwidth-weights Wbd=0 Wbe=0 Wbg=4143 Wbm=10000 Wdb=10000 Web=10000 Wed=10000 Wee=10000 Weg=10000 Wem=10000 Wgb=10000 Wgd=0 Wgg=5857 Wgm=5857 Wmb=10000 Wmd=0 Wme=0 Wmg=4143 Wmm=10000\n',
  );
  const body = parts.join('');
  const digest = createHash('sha256').update(body + 'directory-signature ', 'latin1').digest();
  let signatures = '';
  for (const a of options.signers ?? options.authorities) {
    signatures += `directory-signature sha256 ${a.v3ident} ${a.signingKeyDigest}\n${object('SIGNATURE', signDigest(a.signingKey, digest))}`;
  }
  return body + signatures;
}

/** The microdescriptors of `relays`, concatenated as a cache serves them. */
export function microdescText(relays: readonly SyntheticRelay[]): string {
  return relays.map((r) => r.microdesc).join('');
}

/** torrc lines naming `authorities` at fake relays' ORPorts, for `Network.fromTorrc`. */
export function dirAuthorityTorrc(authorities: readonly { authority: SyntheticAuthority; orPort: number; rsa: string }[], testing = false): string {
  const lines = authorities.map(({ authority, orPort, rsa }) => `DirAuthority ${authority.nickname} orport=${orPort} no-v2 v3ident=${authority.v3ident} 127.0.0.1:${orPort} ${rsa}`);
  return [...(testing ? ['TestingTorNetwork 1'] : []), 'UseDefaultFallbackDirs 0', ...lines, ''].join('\n');
}
