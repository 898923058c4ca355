/**
 * bench/directory — issue 10's benchmark: parsing and verifying directory documents of the
 * public network's size against Python Stem 1.8's stem.descriptor, and bootstrapping on the
 * project's private network against C tor's client, in one run, printed as medians and
 * ratios.
 *
 *   npm run bench -- directory [--rounds 11] [--boot-rounds 5] [--relays 8000] [--json]
 *   node --import tsx src/cli/main.ts testnet -- node --import tsx bench/directory.ts
 *
 * Layer: a benchmark (uses src/dir, src/client, src/testing and src/testnet; nothing uses
 * it). It only reports: nothing asserts wall-clock time; the exit status is 1 only for a
 * wrong result (a document that does not verify, Stem and orport reading different
 * contents, a bootstrap that fails), 130 when interrupted.
 *
 * 1. Parse + verify, in this process. src/testing/dirdocs.ts makes 9 authorities with
 *    throw-away RSA keys (their key certificates), 8,000 relays and their 8,000
 *    microdescriptors, and a microdesc consensus listing them, signed by all 9
 *    (SHA-256, as tor signs that flavour); the Network is `Network.fromTorrc` of their
 *    `dirAuthorityTorrc` lines. After --warmup untimed rounds, --rounds
 *    rounds each time:
 *      consensus     verifyConsensus(text, certs, network, { now }): parse + 9 signatures
 *                    (each with its certificate checked), and parseConsensusDocument alone
 *      certificates  parseAuthorityCerts + verifyAuthorityCerts (certification, cross-cert,
 *                    validity), and parseAuthorityCerts alone
 *      microdescs    verifyMicrodescs(consensus, text): parse, SHA-256 digest, match
 *    Before each timed step a full garbage collection runs, untimed, and 5 ms pass for its
 *    background sweeping (the gc flag is set at run time when node was started without
 *    --expose-gc), so a step pays for collecting
 *    what it allocates itself, not for the garbage of the steps and rounds before it (as
 *    Stem's process frees each round's documents by reference counting when the round
 *    ends, outside its timing).
 *    Targets (issue 10): consensus ≤ 150 ms, microdescriptors ≤ 200 ms.
 *    If test/vectors/public/ exists (--public DIR), the real public consensus (and its
 *    key certificates and microdescriptors, if there) found in it is timed the same way
 *    against Network.PUBLIC, at a `now` one minute after its valid-after; absent: skipped.
 * 2. Stem on the SAME texts in the same rounds (written to a temporary directory, read
 *    by bench/stem_descriptor.py, a long-lived /usr/bin/python3 process that times
 *    itself; the peers' order alternates per round). Its docstring says what is timed;
 *    in short: NetworkStatusDocumentV3(text, validate=True), the key certificates through
 *    parse_file (Stem parses them but checks nothing cryptographic), Stem 1.8.1's own
 *    validate_signatures (which digests with SHA-1 whatever the algorithm, so it rejects a
 *    microdesc consensus: reported as it is) and the same check done right with Stem's own
 *    pieces, and the microdescriptors through parse_file + digest() + match. Ratio
 *    Stem / orport per row; target ≥ 20×. Both sides' router lists and microdescriptor
 *    digests are compared (sha256 of the sorted lists).
 * 3. Bootstrap on the private network (ORPORT_TESTNET_JSON's, or one booted here as
 *    bench/relay.ts does: ensureIsolated(), then startTestnet()), one untimed warm-up
 *    round and --boot-rounds rounds, the order alternating:
 *      orport  TorClient.create({ network: Network.fromTorrc(<network file>), refresh:
 *              false }) until it resolves (no cache: consensus, certificates, every
 *              microdescriptor, all verified), then close()
 *      C tor   a fresh `tor` client (fresh DataDirectory; testnet/torrc's client torrc:
 *              TestingTorNetwork 1, the network file's DirAuthority lines only,
 *              UseDefaultFallbackDirs 0, ClientOnly 1, SocksPort/ControlPort on free
 *              127.0.0.1 ports, Log notice stdout), spawned with testnet/process's
 *              ManagedProcess, from spawn until its stdout shows "Bootstrapped 100%"
 *              (polled every 5 ms); then stopped and its directory removed. Its
 *              "Bootstrapped 75% (enough_dirinfo)" (the directory loaded, no circuit yet)
 *              is placed by tor's own millisecond log timestamps, as an extra row
 *    C tor's 100% includes building circuits; orport's bootstrap ends with the directory
 *    (the output says so). Target: orport ≤ 0.5× C tor.
 *    Safety: every tor runs in this process's network namespace, checked by
 *    assertIsolated() right before each spawn (only loopback, no route), with a torrc
 *    that torrcSafetyProblems() passes; it is never started otherwise.
 *
 * Nothing is left behind, also on an error or Ctrl-C: tor processes are stopped (SIGKILL
 * at exit at the latest; `__OwningControllerProcess` makes tor exit if we die anyway),
 * temporary directories removed, the Stem process ended, the network stopped.
 *
 * Not here: fetching over the public network (the bench never leaves loopback), the
 * disk cache (bootstraps run without one), path selection.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gunzipSync, inflateSync } from 'node:zlib';
import { TorClient } from '../src/client/torclient.js';
import { parseAuthorityCerts, verifyAuthorityCerts } from '../src/dir/authcert.js';
import { parseConsensusDocument, type Consensus } from '../src/dir/consensus.js';
import { Network } from '../src/dir/network.js';
import { verifyConsensus, verifyMicrodescs } from '../src/dir/verify.js';
import { AbortError, OrportError } from '../src/errors.js';
import { dirAuthorityTorrc, dirTime, makeAuthorities, makeConsensus, makeRelays, microdescText } from '../src/testing/dirdocs.js';
import {
  assertIsolated,
  checkIsolation,
  ensureIsolated,
  findExecutable,
  parseTestnetDescription,
  relayNodes,
  startTestnet,
  type Testnet,
  type TestnetDescription,
} from '../src/testnet/index.js';
import { ManagedProcess } from '../src/testnet/process.js';
import { buildTorrc, torrcSafetyProblems } from '../src/testnet/torrc.js';
import { JsonLinesPeer, type PeerReply } from './peer.js';

const STEM_SIDE = fileURLToPath(new URL('./stem_descriptor.py', import.meta.url));
const PUBLIC_VECTORS = fileURLToPath(new URL('../test/vectors/public/', import.meta.url));
const NAME = 'bench/directory';

const TARGETS = { consensusMs: 150, microdescsMs: 200, stemRatio: 20, bootstrapRatio: 0.5 } as const;
const AUTHORITIES = 9;
/** How long one bootstrap may take before the round counts as failed. */
const BOOT_TIMEOUT_MS = 120_000;
const POLL_MS = 5;

// ------------------------------------------------------------------------------------
// Options

interface Options {
  rounds: number;
  warmup: number;
  bootRounds: number;
  relays: number;
  publicDir: string;
  json: boolean;
  stem: boolean;
  bootstrap: boolean;
  ctor: boolean;
  verbose: boolean;
}

const USAGE = `usage: npm run bench -- directory [options]
       node --import tsx bench/directory.ts [options]

  --rounds N        parse + verify rounds (default 11)
  --warmup N        untimed rounds first (default 2)
  --boot-rounds N   bootstrap rounds per client (default 5; 0 leaves the network out)
  --relays N        relays in the synthetic consensus (default 8000)
  --public DIR      where the real public documents are (default test/vectors/public/; skipped if absent)
  --no-stem         leave Stem out
  --no-bootstrap    leave the private network out (no namespace, no tor)
  --no-ctor         bootstrap orport only
  --json            machine-readable output on stdout
  --verbose         the network's boot log on stderr

The bootstrap uses the network in ORPORT_TESTNET_JSON, or boots one (in its own network namespace).`;

function parseArgs(argv: readonly string[]): Options {
  const opts: Options = { rounds: 11, warmup: 2, bootRounds: 5, relays: 8000, publicDir: PUBLIC_VECTORS, json: false, stem: true, bootstrap: true, ctor: true, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const count = (min: number) => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < min) throw new Error(`${arg} needs an integer >= ${min}`);
      return v;
    };
    if (arg === '--rounds') opts.rounds = count(1);
    else if (arg === '--warmup') opts.warmup = count(0);
    else if (arg === '--boot-rounds') opts.bootRounds = count(0);
    else if (arg === '--relays') opts.relays = count(1);
    else if (arg === '--public') {
      const v = argv[++i];
      if (!v) throw new Error('--public needs a directory');
      opts.publicDir = v;
    } else if (arg === '--json') opts.json = true;
    else if (arg === '--no-stem') opts.stem = false;
    else if (arg === '--no-bootstrap') opts.bootstrap = false;
    else if (arg === '--no-ctor') opts.ctor = false;
    else if (arg === '--verbose') opts.verbose = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  if (opts.bootRounds === 0) opts.bootstrap = false;
  return opts;
}

// ------------------------------------------------------------------------------------
// What must be cleaned up, whatever happens

const liveProcesses = new Set<ManagedProcess>();
const tempDirs = new Set<string>();

function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Last resort at exit (also after an uncaught error): kill what still runs, remove what is left. */
process.on('exit', () => {
  for (const p of liveProcesses) p.signal('SIGKILL');
  for (const d of tempDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // nothing more to do at exit
    }
  }
});

/** Wrong results: any makes the exit status 1. */
const problems: string[] = [];
const notes: string[] = [];

// ------------------------------------------------------------------------------------
// Statistics and output (as bench/relay.ts prints them)

interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
  values: number[];
}

function stat(values: readonly (number | undefined)[]): Stat | undefined {
  const xs = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length, values: xs.map((v) => Math.round(v * 1000) / 1000) };
}

const ms = (v: number | undefined): string => (v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const cell = (s: Stat | undefined): string => (s ? ms(s.median) : '-');
const range = (s: Stat | undefined): string => (s ? `(${ms(s.min)}-${ms(s.max)})` : '');
const ratio = (num: Stat | undefined, den: Stat | undefined): number | undefined => (num && den && den.median > 0 ? num.median / den.median : undefined);
const x = (r: number | undefined): string => (r === undefined ? '-' : `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toFixed(2)}x`);

function table(header: readonly string[], rows: readonly (readonly string[])[], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => '  ' + cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const sortedDigest = (lines: string[]): string => sha256(lines.sort().join('\n'));

function sleep(delayMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, delayMs);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ------------------------------------------------------------------------------------
// The documents

/** One set of documents both sides read: the synthetic one, or a real one. */
interface DocSet {
  readonly label: string;
  /** Where the Stem side reads them (consensus, certs, microdescs). */
  readonly dir: string;
  readonly consensus: string;
  readonly certs: string | undefined;
  readonly microdescs: string | undefined;
  readonly network: Network;
  readonly now: Date;
  /** What verification must find (synthetic documents only). */
  readonly expect: { routers: number; signers: number; certs: number; microdescs: number } | undefined;
}

const hexUpper = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex').toUpperCase();

function syntheticSet(relayCount: number, dir: string): { set: DocSet; generateMs: number } {
  const t0 = performance.now();
  const authorities = makeAuthorities(AUTHORITIES);
  const relays = makeRelays(relayCount);
  const now = new Date();
  const consensus = makeConsensus({ authorities, relays, validAfter: new Date(now.getTime() - 30 * 60_000) });
  const microdescs = microdescText(relays);
  const certs = authorities.map((a) => a.certificate).join('');
  const network = Network.fromTorrc(dirAuthorityTorrc(authorities.map((authority, i) => ({ authority, orPort: 9100 + i, rsa: hexUpper(randomBytes(20)) }))));
  const generateMs = performance.now() - t0;
  writeFileSync(join(dir, 'consensus'), consensus, 'latin1');
  writeFileSync(join(dir, 'certs'), certs, 'latin1');
  writeFileSync(join(dir, 'microdescs'), microdescs, 'latin1');
  return {
    set: { label: 'synthetic', dir, consensus, certs, microdescs, network, now, expect: { routers: relayCount, signers: AUTHORITIES, certs: AUTHORITIES, microdescs: relayCount } },
    generateMs,
  };
}

/** Drops leading `@type …` annotation lines (CollecTor's files start with one). */
function stripAnnotations(text: string): string {
  let t = text;
  while (t.startsWith('@')) {
    const nl = t.indexOf('\n');
    t = nl < 0 ? '' : t.slice(nl + 1);
  }
  return t;
}

/** The real public documents in `root` (recursively; .z / .gz inflated), by what they start with. */
function findPublicDocs(root: string): { consensuses: { file: string; text: string }[]; certs: { file: string; text: string }[]; microdescs: { file: string; text: string }[] } {
  const found = { consensuses: [] as { file: string; text: string }[], certs: [] as { file: string; text: string }[], microdescs: [] as { file: string; text: string }[] };
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = statSync(path);
      if (st.isDirectory()) {
        walk(path);
        continue;
      }
      if (!st.isFile() || st.size > 64 * 1024 * 1024) continue;
      let bytes: Buffer = readFileSync(path);
      try {
        if (name.endsWith('.gz')) bytes = gunzipSync(bytes);
        else if (name.endsWith('.z')) bytes = inflateSync(bytes);
      } catch {
        continue;
      }
      const text = stripAnnotations(bytes.toString('latin1'));
      const file = path.slice(root.length).replace(/^\/+/, '') || name;
      if (text.startsWith('network-status-version 3')) found.consensuses.push({ file, text });
      else if (text.startsWith('dir-key-certificate-version')) found.certs.push({ file, text });
      else if (text.startsWith('onion-key')) found.microdescs.push({ file, text });
    }
  };
  walk(root);
  return found;
}

function publicSets(root: string, base: string): DocSet[] {
  if (!existsSync(root)) return [];
  const docs = findPublicDocs(root);
  if (docs.consensuses.length === 0) {
    notes.push(`${root} holds no consensus: the real public network is not timed`);
    return [];
  }
  const certs = docs.certs.length ? docs.certs.map((c) => (c.text.endsWith('\n') ? c.text : `${c.text}\n`)).join('') : undefined;
  const microdescs = docs.microdescs.length ? docs.microdescs.map((m) => m.text).join('') : undefined;
  if (!certs) notes.push(`${root} holds no key certificates: the public consensus is parsed, not verified`);
  const sets: DocSet[] = [];
  docs.consensuses.forEach((c, i) => {
    let parsed: Consensus;
    try {
      parsed = parseConsensusDocument(c.text);
    } catch (err) {
      problems.push(`the public consensus ${c.file} does not parse: ${errorText(err)}`);
      return;
    }
    const dir = join(base, `public${i}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'consensus'), c.text, 'latin1');
    if (certs) writeFileSync(join(dir, 'certs'), certs, 'latin1');
    const md = parsed.flavor === 'microdesc' ? microdescs : undefined;
    if (md) writeFileSync(join(dir, 'microdescs'), md, 'latin1');
    sets.push({
      label: `public ${c.file} (${parsed.flavor}, ${parsed.routers.length} relays, valid-after ${dirTime(parsed.validAfter)})`,
      dir,
      consensus: c.text,
      certs,
      microdescs: md,
      network: Network.PUBLIC,
      now: new Date(parsed.validAfter.getTime() + 60_000),
      expect: undefined,
    });
  });
  return sets;
}

// ------------------------------------------------------------------------------------
// orport's rounds

interface OrportRound {
  parseMs: number;
  certsParseMs?: number;
  certsMs?: number;
  verifyMs?: number;
  microdescsMs?: number;
}

/** What orport found in a set (checked once, outside the timed rounds). */
interface OrportFindings {
  flavor: string;
  routers: number;
  /** directory-signature items in the consensus. */
  signatures: number;
  signedBy: string[];
  certsValid: number;
  certsRejected: string[];
  kept: number;
  dropped: number;
  routersSha256: string;
  microdescsSha256: string | undefined;
  error: string | undefined;
}

/** A full, synchronous garbage collection: node's gc(), exposed at run time if node was started without it. */
const collectGarbage: () => void = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** Collects garbage, then lets the collector's background threads (sweeping) finish before the next step is timed. */
async function settle(): Promise<void> {
  collectGarbage();
  await new Promise((resolve) => setTimeout(resolve, 5));
}

/**
 * One timed round: the consensus parsed alone; certificates parsed + verified; the
 * consensus verified with them; the microdescriptors against the verified consensus (the
 * parsed one when it does not verify: that failure is in the set's findings).
 */
async function orportRound(set: DocSet): Promise<OrportRound> {
  await settle();
  let t = performance.now();
  let consensus = parseConsensusDocument(set.consensus, { testing: set.network.testing });
  const round: OrportRound = { parseMs: performance.now() - t };
  if (set.certs !== undefined) {
    await settle();
    t = performance.now();
    parseAuthorityCerts(set.certs);
    round.certsParseMs = performance.now() - t;
    await settle();
    t = performance.now();
    const certs = parseAuthorityCerts(set.certs);
    verifyAuthorityCerts(certs, set.now);
    round.certsMs = performance.now() - t;
    await settle();
    t = performance.now();
    try {
      consensus = verifyConsensus(set.consensus, certs, set.network, { now: set.now }).consensus;
      round.verifyMs = performance.now() - t;
    } catch (err) {
      if (!(err instanceof OrportError)) throw err;
    }
  }
  if (set.microdescs !== undefined) {
    await settle();
    t = performance.now();
    verifyMicrodescs(consensus, set.microdescs);
    round.microdescsMs = performance.now() - t;
  }
  return round;
}

/** What orport finds in a set, untimed: counts, who signed, digests of what it read; a failure by its code. */
function orportFindings(set: DocSet): OrportFindings {
  const f: OrportFindings = { flavor: '?', routers: 0, signatures: 0, signedBy: [], certsValid: 0, certsRejected: [], kept: 0, dropped: 0, routersSha256: '', microdescsSha256: undefined, error: undefined };
  const failed = (err: unknown) => {
    f.error ??= err instanceof OrportError ? `${err.code}: ${err.message}` : errorText(err);
  };
  let consensus: Consensus;
  try {
    consensus = parseConsensusDocument(set.consensus, { testing: set.network.testing });
  } catch (err) {
    failed(err);
    return f;
  }
  const flavor = consensus.flavor;
  f.flavor = flavor;
  f.routers = consensus.routers.length;
  f.signatures = consensus.signatures.length;
  f.routersSha256 = sortedDigest(consensus.routers.map((r) => `${r.rsa} ${flavor === 'microdesc' ? r.microdescDigest : (r.descriptorDigest ?? '').toUpperCase()}`));
  try {
    if (set.certs !== undefined) {
      const certs = parseAuthorityCerts(set.certs);
      const checked = verifyAuthorityCerts(certs, set.now);
      f.certsValid = checked.valid.length;
      f.certsRejected = checked.rejected.map((e) => e.message);
      try {
        const verified = verifyConsensus(set.consensus, certs, set.network, { now: set.now });
        consensus = verified.consensus;
        f.signedBy = [...verified.signedBy];
      } catch (err) {
        failed(err);
      }
    }
    if (set.microdescs !== undefined) {
      const { kept, dropped } = verifyMicrodescs(consensus, set.microdescs);
      f.kept = kept.length;
      f.dropped = dropped.length;
      f.microdescsSha256 = sortedDigest([...kept.map((m) => m.digest), ...dropped]);
    }
  } catch (err) {
    failed(err);
  }
  return f;
}

// ------------------------------------------------------------------------------------
// Stem's rounds (bench/stem_descriptor.py)

interface StemRound extends PeerReply {
  consensus_ms?: number;
  certs_ms?: number;
  stem_signatures_ms?: number;
  stem_signatures_outcome?: string;
  signatures_ms?: number;
  valid_signatures?: number;
  signature_errors?: string[];
  microdescs_ms?: number;
  flavor?: string;
  routers?: number;
  signatures?: number;
  certs?: number;
  microdescs?: number;
  kept?: number;
  dropped?: number;
  routers_sha256?: string;
  microdescs_sha256?: string;
  parse_file_routers?: number;
}

class StemDescriptorSide extends JsonLinesPeer<StemRound> {
  round(dir: string): Promise<StemRound> {
    return this.request({ op: 'round', dir });
  }
}

// ------------------------------------------------------------------------------------
// Part 1 and 2: parse + verify, orport and Stem

interface SetResult {
  set: DocSet;
  orport: OrportRound[];
  stem: StemRound[];
  /** Stem's first reply (a warm-up round), which also checks parse_file. */
  stemFirst: StemRound | undefined;
  stemFailures: string[];
  findings: OrportFindings;
}

async function parseBench(sets: readonly DocSet[], opts: Options, stem: StemDescriptorSide | undefined, signal: AbortSignal, say: (m: string) => void): Promise<SetResult[]> {
  const results: SetResult[] = sets.map((set) => ({ set, orport: [], stem: [], stemFirst: undefined, stemFailures: [], findings: orportFindings(set) }));
  say(`${opts.warmup} warm-up + ${opts.rounds} rounds of ${sets.length === 1 ? 'the synthetic documents' : `${sets.length} document sets`}, orport${stem ? ' and Stem, alternating' : ''}`);
  for (let round = -opts.warmup; round < opts.rounds; round++) {
    for (const r of results) {
      if (signal.aborted) throw signal.reason;
      const runOrport = async () => {
        const o = await orportRound(r.set);
        if (round >= 0) r.orport.push(o);
      };
      const runStem = async () => {
        if (!stem) return;
        const s = await stem.round(r.set.dir);
        r.stemFirst ??= s;
        if (!s.ok) r.stemFailures.push(`${s.stage ?? '?'}: ${s.error ?? '?'}`);
        else if (round >= 0) r.stem.push(s);
      };
      try {
        if (round & 1) {
          await runStem();
          await runOrport();
        } else {
          await runOrport();
          await runStem();
        }
      } catch (err) {
        if (signal.aborted) throw err;
        // A set whose verification fails is reported by its findings; stop timing it.
        r.findings.error ??= errorText(err);
      }
      await new Promise((resolve) => setImmediate(resolve)); // let a Ctrl-C through
    }
  }
  for (const r of results) checkSet(r, stem !== undefined);
  return results;
}

/** The wrong results a set can show. */
function checkSet(r: SetResult, withStem: boolean): void {
  const { set, findings: f } = r;
  const name = set.label;
  if (f.error) problems.push(`orport, ${name}: ${f.error}`);
  const e = set.expect;
  if (e && !f.error) {
    if (f.routers !== e.routers) problems.push(`orport, ${name}: ${f.routers} routers, expected ${e.routers}`);
    if (f.signedBy.length !== e.signers) problems.push(`orport, ${name}: signed by ${f.signedBy.length} authorities, expected ${e.signers}`);
    if (f.certsValid !== e.certs) problems.push(`orport, ${name}: ${f.certsValid} key certificates verify, expected ${e.certs} (${f.certsRejected.join('; ')})`);
    if (f.kept !== e.microdescs || f.dropped !== 0) problems.push(`orport, ${name}: ${f.kept} microdescriptors kept and ${f.dropped} dropped, expected ${e.microdescs} and 0`);
  }
  if (!withStem) return;
  if (r.stemFailures.length) problems.push(`Stem, ${name}: ${r.stemFailures.length} failed rounds (${r.stemFailures[0]})`);
  const s = r.stem[r.stem.length - 1];
  if (!s) return;
  if (s.routers !== f.routers || s.routers_sha256 !== f.routersSha256) problems.push(`${name}: Stem read ${s.routers} routers, orport ${f.routers}${s.routers === f.routers ? ' (different fingerprints or digests)' : ''}`);
  if (r.stemFirst?.parse_file_routers !== undefined && r.stemFirst.parse_file_routers !== s.routers) problems.push(`${name}: Stem's parse_file read ${r.stemFirst.parse_file_routers} routers, its NetworkStatusDocumentV3 ${s.routers}`);
  if (set.microdescs !== undefined && (s.microdescs_sha256 !== f.microdescsSha256 || s.kept !== f.kept)) problems.push(`${name}: Stem's microdescriptor digests (${s.microdescs} parsed, ${s.kept} kept) differ from orport's (${f.kept + f.dropped} parsed, ${f.kept} kept)`);
  if (set.certs !== undefined && s.valid_signatures !== f.signedBy.length) {
    const msg = `${name}: ${s.valid_signatures ?? 0} signatures verify with Stem's RSA, ${f.signedBy.length} with orport's${s.signature_errors?.length ? ` (Stem: ${s.signature_errors[0]})` : ''}`;
    if (set.expect) problems.push(msg);
    else notes.push(msg);
  }
}

// ------------------------------------------------------------------------------------
// Part 3: bootstrap, orport against C tor's client

interface BootRound {
  ms: number;
  relays?: number;
  microdescs?: number;
  signedBy?: number;
  /** C tor: from spawn to "Bootstrapped 75% (enough_dirinfo)", by tor's own log timestamps. */
  dirinfoMs?: number;
  /** C tor: every "Bootstrapped N% (tag)" line, ms after spawn (by its log timestamps). */
  phases?: { percent: number; tag: string; ms: number | undefined }[];
}

interface BootResult {
  torVersion: string;
  relayCount: number;
  networkFile: string;
  orport: BootRound[];
  ctor: BootRound[];
  ctorNote: string;
  failures: string[];
}

function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  const listen = (s: ReturnType<typeof createServer>) =>
    new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
  return Promise.all(servers.map(listen)).finally(() => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))));
}

/** Seconds since midnight of a tor log line's `Mon DD HH:MM:SS.mmm` timestamp (LogTimeGranularity 1). */
function logSeconds(line: string): number | undefined {
  const m = /^\w{3} \d{1,2} (\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?/.exec(line);
  if (!m) return undefined;
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(m[4] ?? 0) / 1000;
}

interface CtorSetup {
  torPath: string;
  workDir: string;
  resolvConfPath: string;
  emptyGeoipPath: string;
  dirAuthorityLines: string[];
}

async function orportBoot(networkText: string, signal: AbortSignal): Promise<BootRound> {
  const network = Network.fromTorrc(networkText);
  const t0 = performance.now();
  const client = await TorClient.create({ network, refresh: false, signal, timeoutMs: BOOT_TIMEOUT_MS });
  const ms = performance.now() - t0;
  try {
    const relays = client.consensus.relays;
    return { ms, relays: relays.length, microdescs: relays.filter((r) => r.ntorOnionKey !== undefined).length, signedBy: client.consensus.signedBy.length };
  } finally {
    await client.close();
  }
}

async function ctorBoot(setup: CtorSetup, index: number, signal: AbortSignal): Promise<BootRound> {
  const nick = `benchclient${index}`;
  const dataDir = join(setup.workDir, nick);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  try {
    const [socksPort, controlPort] = await freePorts(2);
    const torrc = buildTorrc(
      { nick, role: 'client', dataDir, clientPorts: { socksPort: socksPort!, controlPort: controlPort! } },
      {
        dirAuthorityLines: setup.dirAuthorityLines,
        resolvConfPath: setup.resolvConfPath,
        emptyGeoipPath: setup.emptyGeoipPath,
        ownerPid: process.pid,
        logLevel: 'notice',
        votingStartOffsetSec: 0,
        initialVotingIntervalSec: 5,
        votingIntervalSec: 10,
        exitPolicy: 'loopback',
        extraLines: ['Log notice stdout'],
      },
    );
    const unsafe = torrcSafetyProblems(torrc);
    if (unsafe.length > 0) throw new Error(`the C tor client's torrc is unsafe, refusing to start it: ${unsafe.join('; ')}`);
    const torrcPath = join(dataDir, 'torrc');
    const stdoutPath = join(dataDir, 'stdout.log');
    await writeFile(torrcPath, torrc);
    assertIsolated(); // right before the spawn: only loopback, no route
    const t0 = performance.now();
    const proc = await ManagedProcess.start(nick, setup.torPath, ['--defaults-torrc', '/dev/null', '-f', torrcPath], { outputPath: stdoutPath, cwd: dataDir });
    liveProcesses.add(proc);
    try {
      for (;;) {
        const out = await readFile(stdoutPath, 'latin1').catch(() => '');
        const done = /^.*Bootstrapped 100%.*$/m.exec(out);
        if (done) {
          const ms = performance.now() - t0;
          // The phases by tor's own timestamps, counted back from the 100% line we saw at `ms`.
          const t100 = logSeconds(done[0]);
          const phases = [...out.matchAll(/^.*Bootstrapped (\d+)% \(([^)]*)\).*$/gm)].map((m) => {
            const t = logSeconds(m[0]);
            const gap = t100 === undefined || t === undefined ? undefined : (((t100 - t) % 86400) + 86400) % 86400;
            return { percent: Number(m[1]), tag: m[2] ?? '', ms: gap === undefined ? undefined : Math.max(0, ms - gap * 1000) };
          });
          return { ms, dirinfoMs: phases.find((p) => p.percent === 75)?.ms, phases };
        }
        if (!proc.running) throw new Error(`the C tor client exited (${proc.exit?.code ?? proc.exit?.signal}) before bootstrapping: ${out.trim().split('\n').slice(-3).join(' | ')}`);
        if (performance.now() - t0 > BOOT_TIMEOUT_MS) throw new Error(`the C tor client did not bootstrap in ${BOOT_TIMEOUT_MS / 1000} s (last: ${[...out.matchAll(/Bootstrapped \d+%[^\n]*/g)].pop()?.[0] ?? 'nothing'})`);
        await sleep(POLL_MS, signal);
      }
    } finally {
      await proc.stop(3000);
      liveProcesses.delete(proc);
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function bootBench(description: TestnetDescription, opts: Options, signal: AbortSignal, say: (m: string) => void): Promise<BootResult> {
  const networkText = readFileSync(description.networkFile, 'utf8');
  const dirAuthorityLines = networkText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^DirAuthority\s/i.test(l));
  const result: BootResult = { torVersion: description.torVersion, relayCount: relayNodes(description).length, networkFile: description.networkFile, orport: [], ctor: [], ctorNote: '', failures: [] };
  let setup: CtorSetup | undefined;
  if (!opts.ctor) result.ctorNote = 'C tor not measured (--no-ctor)';
  else {
    const isolation = checkIsolation();
    const torPath = findExecutable(process.env.ORPORT_TOR ?? 'tor');
    if (!isolation.isolated) result.ctorNote = `C tor not measured: this network namespace is not isolated (${isolation.problems.join('; ')})`;
    else if (!torPath) result.ctorNote = 'C tor not measured: no tor executable (apt-get install -y tor)';
    else if (dirAuthorityLines.length === 0) result.ctorNote = `C tor not measured: ${description.networkFile} has no DirAuthority lines`;
    else {
      const workDir = makeTempDir('orport-bench-ctor-');
      const resolvConfPath = join(workDir, 'resolv.conf');
      const emptyGeoipPath = join(workDir, 'geoip-empty');
      writeFileSync(resolvConfPath, 'nameserver 127.0.0.1\n');
      writeFileSync(emptyGeoipPath, '');
      setup = { torPath, workDir, resolvConfPath, emptyGeoipPath, dirAuthorityLines };
    }
  }
  if (result.ctorNote) say(result.ctorNote);
  try {
    say(`1 warm-up + ${opts.bootRounds} bootstrap rounds: orport${setup ? ' and C tor, alternating' : ''}`);
    let index = 0;
    for (let round = -1; round < opts.bootRounds; round++) {
      const order: ('orport' | 'C tor')[] = round & 1 ? ['C tor', 'orport'] : ['orport', 'C tor'];
      for (const who of order) {
        if (signal.aborted) throw signal.reason;
        if (who === 'C tor' && !setup) continue;
        try {
          const r = who === 'orport' ? await orportBoot(networkText, signal) : await ctorBoot(setup!, index++, signal);
          if (round >= 0) (who === 'orport' ? result.orport : result.ctor).push(r);
          if (opts.verbose) say(`  round ${round}: ${who} ${ms(r.ms)} ms${r.phases ? ` (${r.phases.map((p) => `${p.percent}% ${p.tag} ${ms(p.ms)}`).join(', ')})` : ''}`);
        } catch (err) {
          if (signal.aborted) throw err;
          const msg = `${who} bootstrap (round ${round}): ${err instanceof OrportError ? `${err.code}: ` : ''}${errorText(err)}`;
          result.failures.push(msg);
          say(msg);
        }
      }
    }
  } finally {
    if (setup) await removeTempDir(setup.workDir);
  }
  for (const r of result.orport) {
    if (r.relays === 0 || r.signedBy === 0) problems.push(`orport bootstrapped with ${r.relays} relays signed by ${r.signedBy} authorities`);
  }
  const short = result.orport.filter((r) => r.relays !== result.relayCount || r.microdescs !== r.relays);
  if (short.length) notes.push(`orport's bootstrap: ${short.length} of ${result.orport.length} rounds held ${short.map((r) => `${r.relays} relays / ${r.microdescs} microdescriptors`).join(', ')} (the network has ${result.relayCount} relays)`);
  if (result.failures.length) problems.push(...result.failures);
  return result;
}

async function bootstrapSection(opts: Options, signal: AbortSignal, say: (m: string) => void): Promise<BootResult> {
  const jsonPath = process.env.ORPORT_TESTNET_JSON;
  if (jsonPath) {
    const description = parseTestnetDescription(readFileSync(jsonPath, 'utf8'), jsonPath);
    say(`using the network of ${jsonPath}`);
    return bootBench(description, opts, signal, say);
  }
  let testnet: Testnet | undefined;
  try {
    say('booting a private Tor network on 127.0.0.1 (3 authorities, 4 relays, 2 exits)…');
    testnet = await startTestnet({ signal, httpFileBytes: 1024, log: opts.verbose ? (m) => process.stderr.write(`  ${m}\n`) : undefined });
    const description = testnet.describe();
    say(`network up in ${(description.timings.totalMs / 1000).toFixed(1)} s`);
    return await bootBench(description, opts, signal, say);
  } finally {
    if (testnet) {
      say('stopping the network');
      await testnet.stop();
    }
  }
}

// ------------------------------------------------------------------------------------
// Report

interface Target {
  name: string;
  value: string;
  target: string;
  met: boolean | undefined;
}

interface RunResult {
  opts: Options;
  stemNote: string;
  generateMs: number;
  loadStart: number[];
  sets: SetResult[];
  boot: BootResult | undefined;
  bootNote: string;
}

function setStats(r: SetResult) {
  const o = {
    parse: stat(r.orport.map((v) => v.parseMs)),
    verify: stat(r.orport.map((v) => v.verifyMs)),
    certs: stat(r.orport.map((v) => v.certsMs)),
    certsParse: stat(r.orport.map((v) => v.certsParseMs)),
    microdescs: stat(r.orport.map((v) => v.microdescsMs)),
  };
  const s = {
    parse: stat(r.stem.map((v) => v.consensus_ms)),
    verify: stat(r.stem.map((v) => (v.consensus_ms !== undefined && v.signatures_ms !== undefined ? v.consensus_ms + v.signatures_ms : undefined))),
    signatures: stat(r.stem.map((v) => v.signatures_ms)),
    stemSignatures: stat(r.stem.map((v) => v.stem_signatures_ms)),
    certs: stat(r.stem.map((v) => v.certs_ms)),
    microdescs: stat(r.stem.map((v) => v.microdescs_ms)),
  };
  return { orport: o, stem: s };
}

function report(run: RunResult): void {
  const { opts } = run;
  const hasStem = run.sets.some((r) => r.stem.length > 0);
  const targets: Target[] = [];
  const synthetic = run.sets[0]!;
  const ss = setStats(synthetic);
  const within = (s: Stat | undefined, limit: number): Target['met'] => (s ? s.median <= limit : undefined);
  targets.push({ name: `consensus parse + verify <= ${TARGETS.consensusMs} ms`, value: `${ms(ss.orport.verify?.median)} ms`, target: `${TARGETS.consensusMs} ms`, met: within(ss.orport.verify, TARGETS.consensusMs) });
  targets.push({ name: `microdescriptors <= ${TARGETS.microdescsMs} ms`, value: `${ms(ss.orport.microdescs?.median)} ms`, target: `${TARGETS.microdescsMs} ms`, met: within(ss.orport.microdescs, TARGETS.microdescsMs) });
  if (hasStem) {
    const rc = ratio(ss.stem.verify, ss.orport.verify);
    const rm = ratio(ss.stem.microdescs, ss.orport.microdescs);
    targets.push({ name: `consensus >= ${TARGETS.stemRatio}x Stem`, value: x(rc), target: `${TARGETS.stemRatio}x`, met: rc === undefined ? undefined : rc >= TARGETS.stemRatio });
    targets.push({ name: `microdescriptors >= ${TARGETS.stemRatio}x Stem`, value: x(rm), target: `${TARGETS.stemRatio}x`, met: rm === undefined ? undefined : rm >= TARGETS.stemRatio });
  }
  const boot = run.boot;
  const bo = boot ? stat(boot.orport.map((r) => r.ms)) : undefined;
  const bc = boot ? stat(boot.ctor.map((r) => r.ms)) : undefined;
  const bd = boot ? stat(boot.ctor.map((r) => r.dirinfoMs)) : undefined;
  if (boot) {
    const rb = ratio(bo, bc);
    targets.push({ name: `bootstrap <= ${TARGETS.bootstrapRatio}x C tor`, value: x(rb), target: `${TARGETS.bootstrapRatio}x`, met: rb === undefined ? undefined : rb <= TARGETS.bootstrapRatio });
  }
  const cpu = cpus();

  if (opts.json) {
    const json = {
      node: process.version,
      stem: run.stemNote,
      cores: cpu.length,
      cpu: cpu[0]?.model.trim() ?? null,
      load: { start: run.loadStart, end: loadavg() },
      rounds: opts.rounds,
      warmup: opts.warmup,
      relays: opts.relays,
      generateMs: run.generateMs,
      sets: run.sets.map((r) => {
        const st = setStats(r);
        const last = r.stem[r.stem.length - 1];
        return {
          label: r.set.label,
          orport: st.orport,
          stem: hasStem ? { ...st.stem, validSignatures: last?.valid_signatures ?? null, stemValidateSignatures: last?.stem_signatures_outcome ?? null } : null,
          ratios: {
            consensus: ratio(st.stem.verify, st.orport.verify) ?? null,
            consensusParse: ratio(st.stem.parse, st.orport.parse) ?? null,
            certs: ratio(st.stem.certs, st.orport.certs) ?? null,
            certsParse: ratio(st.stem.certs, st.orport.certsParse) ?? null,
            microdescs: ratio(st.stem.microdescs, st.orport.microdescs) ?? null,
          },
          findings: r.findings,
        };
      }),
      bootstrap: boot
        ? {
            torVersion: boot.torVersion,
            relays: boot.relayCount,
            rounds: opts.bootRounds,
            orport: bo ?? null,
            ctor: bc ?? null,
            ctorEnoughDirinfo: bd ?? null,
            ratio: ratio(bo, bc) ?? null,
            ratioToEnoughDirinfo: ratio(bo, bd) ?? null,
            orportRounds: boot.orport,
            ctorRounds: boot.ctor,
            ctorNote: boot.ctorNote || null,
          }
        : { skipped: run.bootNote },
      targets,
      notes,
      problems,
    };
    console.log(JSON.stringify(json, null, 2));
    return;
  }

  const out: string[] = [];
  out.push(`${NAME}: directory documents, orport against Python Stem and C tor, in one run`);
  out.push(`  node ${process.version}; ${run.stemNote}; ${cpu.length} x ${cpu[0]?.model.trim() ?? 'cpu'}; load average ${run.loadStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${load()} at the end`);
  out.push(`  synthetic: ${AUTHORITIES} authorities (RSA-1024 throw-away keys), a microdesc consensus of ${opts.relays} relays (${(synthetic.set.consensus.length / 1e6).toFixed(2)} MB) signed by all ${AUTHORITIES}, ${opts.relays} microdescriptors (${((synthetic.set.microdescs?.length ?? 0) / 1e6).toFixed(2)} MB); generated in ${ms(run.generateMs)} ms`);
  out.push(`  ${opts.rounds} rounds after ${opts.warmup} warm-up, orport and Stem alternating; milliseconds, median (min-max); ratio = Stem's median / orport's (how many times faster orport is)`);
  for (const r of run.sets) {
    const st = setStats(r);
    const last = r.stem[r.stem.length - 1];
    out.push('');
    out.push(`${r.set.label}:`);
    const header = ['', 'orport', '', ...(hasStem ? ['Stem', '', 'Stem/orport'] : []), 'target'];
    const row = (label: string, o: Stat | undefined, s: Stat | undefined, target: string) => [label, cell(o), range(o), ...(hasStem ? [cell(s), range(s), x(ratio(s, o))] : []), target];
    const isSynthetic = r === synthetic;
    const rows = [
      row(`consensus: parse + verify ${r.set.certs === undefined ? '(no certificates: not verified)' : `(${r.findings.signedBy.length} of ${r.findings.signatures} signatures good)`}`, st.orport.verify, st.stem.verify, isSynthetic ? `<= ${TARGETS.consensusMs} ms, >= ${TARGETS.stemRatio}x` : ''),
      row('  parse only', st.orport.parse, st.stem.parse, ''),
      ...(hasStem && r.set.certs !== undefined
        ? [
            [`  Stem: the signatures with its own pieces${last ? ` (${last.valid_signatures ?? 0} valid)` : ''}`, '', '', cell(st.stem.signatures), range(st.stem.signatures), '', ''],
            [`  Stem: validate_signatures() as it is${last?.stem_signatures_outcome ? ` (${last.stem_signatures_outcome.startsWith('rejected') ? 'rejects it' : 'accepts it'})` : ''}`, '', '', cell(st.stem.stemSignatures), range(st.stem.stemSignatures), '', ''],
          ]
        : []),
      ...(r.set.certs !== undefined
        ? [row(`key certificates: parse + verify${hasStem ? ' (Stem: parse only, it checks no signature)' : ''}`, st.orport.certs, st.stem.certs, ''), row('  parse only', st.orport.certsParse, st.stem.certs, '')]
        : []),
      ...(r.set.microdescs !== undefined ? [row(`microdescriptors: parse + digest + match (${r.findings.kept} kept, ${r.findings.dropped} dropped)`, st.orport.microdescs, st.stem.microdescs, isSynthetic ? `<= ${TARGETS.microdescsMs} ms, >= ${TARGETS.stemRatio}x` : '')] : []),
    ];
    out.push(table(header, rows));
    const outcome = last?.stem_signatures_outcome;
    if (hasStem && outcome) {
      const why = outcome.replace(/^rejected \((.*)\)$/s, '$1');
      if (/valid signatures out of/.test(why) && r.findings.flavor === 'microdesc') {
        out.push(`  (Stem's validate_signatures() hashes the document with SHA-1 whatever the signature's algorithm; a microdesc consensus is signed over SHA-256, so it says: ${why}.`);
      } else out.push(`  (Stem's validate_signatures() ${outcome.startsWith('rejected') ? `rejects it: ${why}` : 'accepts it'}.`);
      out.push("   The \"own pieces\" row is its check done right: Stem's _content_range() hashed per algorithm, each signature opened by its _digest_for_signature(); Stem's consensus figure above is its parse + that row.)");
    }
  }

  out.push('');
  if (boot) {
    out.push(`bootstrap on the private network (tor ${boot.torVersion}, ${boot.relayCount} relays, ${boot.networkFile}), ${opts.bootRounds} rounds after 1 warm-up, alternating; milliseconds, median (min-max):`);
    const header = ['client', 'bootstrap', '', 'orport/C tor', 'target'];
    const rows = [
      ['orport TorClient.create (no cache): consensus, certificates, microdescriptors verified', cell(bo), range(bo), '', ''],
      ['C tor client, spawn to "Bootstrapped 100%"', cell(bc), range(bc), x(ratio(bo, bc)), `<= ${TARGETS.bootstrapRatio}x`],
      ['C tor client, spawn to "Bootstrapped 75%" (enough_dirinfo; by its log timestamps)', cell(bd), range(bd), x(ratio(bo, bd)), ''],
    ];
    out.push(table(header, rows));
    out.push("  C tor's 100% means it can build circuits (it has built them); orport's bootstrap ends with the verified directory and builds no circuit yet.");
    if (boot.ctorNote) out.push(`  ${boot.ctorNote}`);
  } else out.push(`bootstrap: ${run.bootNote}`);

  out.push('');
  out.push('targets (issue 10):');
  for (const t of targets) out.push(`  ${t.name.padEnd(36)} ${t.value.padStart(9)}  ${t.met === undefined ? 'not measured' : t.met ? 'met' : 'NOT met'}`);
  if (notes.length) {
    out.push('notes:');
    for (const n of notes) out.push(`  ${n}`);
  }
  out.push(problems.length === 0 ? 'no wrong results' : `WRONG RESULTS: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` … (${problems.length})` : ''}`);
  console.log(out.join('\n'));
}

// ------------------------------------------------------------------------------------
// The run

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const interrupt = new AbortController();
  setMaxListeners(0, interrupt.signal);
  const onSignal = (sig: NodeJS.Signals) => interrupt.abort(new AbortError(`${NAME} (${sig})`));
  const say = (m: string) => {
    if (!opts.json) process.stderr.write(`${NAME}: ${m}\n`);
  };

  let bootNote = opts.bootstrap ? '' : 'not measured (--no-bootstrap)';
  if (opts.bootstrap && !process.env.ORPORT_TESTNET_JSON) {
    try {
      const outcome = await ensureIsolated({ log: say });
      if (outcome.kind === 'reexecuted') return outcome.exitCode;
    } catch (err) {
      bootNote = `not measured: ${errorText(err)}`;
      say(`bootstrap ${bootNote}`);
    }
  }

  for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, onSignal);
  let stem: StemDescriptorSide | undefined;
  const docsDir = makeTempDir('orport-bench-directory-');
  try {
    const loadStart = loadavg();
    say(`generating ${AUTHORITIES} authorities, ${opts.relays} relays, their consensus and microdescriptors`);
    const { set, generateMs } = syntheticSet(opts.relays, docsDir);
    const sets = [set, ...publicSets(opts.publicDir, docsDir)];
    const started = opts.stem ? await StemDescriptorSide.startOrSay(STEM_SIDE) : { peer: undefined, note: 'Stem not measured (--no-stem)' };
    stem = started.peer;
    if (!stem) say(started.note);
    const results = await parseBench(sets, opts, stem, interrupt.signal, say);
    stem?.close();
    stem = undefined;
    const boot = opts.bootstrap && !bootNote ? await bootstrapSection(opts, interrupt.signal, say) : undefined;
    report({ opts, stemNote: started.note, generateMs, loadStart, sets: results, boot, bootNote });
    return problems.length ? 1 : 0;
  } catch (err) {
    if (!interrupt.signal.aborted) throw err;
    say(`interrupted (${errorText(err)})`);
    return 130;
  } finally {
    stem?.close();
    await removeTempDir(docsDir);
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, onSignal);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`${NAME}: ${errorText(err)}`);
    process.exitCode = 1;
  },
);
