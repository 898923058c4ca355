/**
 * cli/demo — `orport demo`, the main job in one command: boot the project's private Tor
 * network (in its own network namespace); bootstrap a TorClient from its authorities
 * (verified consensus); build a three-hop circuit, shown hop by hop with times; download
 * the network's test file through the exit with a progress bar, check its sha256 and
 * print the rate; then connect to a relay's ORPort, fetch the consensus and the server
 * descriptors over a one-hop circuit, print a table of the relays, and close everything.
 */
import { parseArgs } from 'node:util';
import { AbortError, BadArgumentError } from '../errors.js';
import { Relay } from '../client/relay.js';
import { parseHttpResponse } from '../dir/http.js';
import { parseConsensus, parseServerDescriptors, type RouterStatus, type ServerDescriptor } from '../dir/documents.js';
import { ensureIsolated, startTestnet, type Testnet, type TestnetDescription } from '../testnet/index.js';
import { Network } from '../dir/network.js';
import { TorClient } from '../client/torclient.js';
import type { CircuitHop } from '../client/torcircuit.js';
import { fetchTo, progressLine, type FetchResult } from './fetch.js';
import { Writable } from 'node:stream';
import type { RelayNodeDescription } from '../testnet/description.js';
import type { Command } from './command.js';
import { usageErrors } from './args.js';

const usage = `usage: orport demo [--relay NICK] [--keep] [--quiet]

Boots a private Tor network on 127.0.0.1 (3 authorities, 4 relays, 2 exits) in a
network namespace of its own; bootstraps a Tor client from its authorities
(consensus signatures verified); builds a three-hop circuit (ntor / ntor v3,
EXTEND2) and downloads the network's 20 MiB test file through its exit (sha256
checked, rate printed); then connects to one relay's ORPort, fetches the consensus
and all server descriptors over a one-hop circuit (CREATE_FAST, BEGIN_DIR) and
prints the relays; stops the network. As root it enters the namespace by itself.

options:
  --relay NICK   the relay to ask (default relay0)
  --keep         keep the network's directory (keys, torrcs, logs)
  --quiet        no progress lines on stderr`;

export interface DemoReport {
  relay: string;
  linkProtocol: number;
  /** The identity the relay proved in its CERTS chain. */
  identity: { rsa: string; ed25519: string } | undefined;
  timings: { connectMs: number; createMs: number; consensusMs: number; descriptorsMs: number };
  consensus: RouterStatus[];
  descriptors: ServerDescriptor[];
  table: string;
}

function formatBandwidth(bytesPerSecond: number | undefined): string {
  if (bytesPerSecond === undefined) return '-';
  if (bytesPerSecond >= 1024 * 1024) return `${(bytesPerSecond / 1024 / 1024).toFixed(1)} MiB/s`;
  if (bytesPerSecond >= 1024) return `${(bytesPerSecond / 1024).toFixed(0)} KiB/s`;
  return `${bytesPerSecond} B/s`;
}

/** Lays out rows under a header, each column as wide as its widest cell. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The relays table: consensus entries joined with their server descriptors. */
export function relayTable(consensus: readonly RouterStatus[], descriptors: readonly ServerDescriptor[]): string {
  const byFingerprint = new Map(descriptors.map((d) => [d.fingerprint, d]));
  const rows = [...consensus]
    .sort((a, b) => a.nickname.localeCompare(b.nickname))
    .map((r) => {
      const d = byFingerprint.get(r.fingerprint);
      return [r.nickname, r.fingerprint, `${r.address}:${r.orPort}`, formatBandwidth(d?.bandwidth?.[2]), String(r.bandwidth ?? '-'), r.flags.join(' ')];
    });
  return formatTable(['NICKNAME', 'FINGERPRINT', 'ORPORT', 'OBSERVED BW', 'WEIGHT', 'FLAGS'], rows);
}

/** The demo against a running network: connect, circuit, two fetches, the table. */
export async function runDemo(node: RelayNodeDescription, signal?: AbortSignal): Promise<DemoReport> {
  const t0 = performance.now();
  const relay = await Relay.connect('127.0.0.1', node.orPort, undefined, { signal, identity: { rsa: node.fingerprint, ed25519: node.ed25519 } });
  try {
    const t1 = performance.now();
    const circuit = await relay.createCircuit({ signal });
    const t2 = performance.now();
    const consensusResponse = parseHttpResponse(await circuit.directory('GET /tor/status-vote/current/consensus HTTP/1.0\r\n\r\n', 1, { signal }));
    const t3 = performance.now();
    const descriptorsResponse = parseHttpResponse(await circuit.directory('GET /tor/server/all HTTP/1.0\r\n\r\n', 2, { signal }));
    const t4 = performance.now();
    await circuit.close();
    for (const [what, r] of [['consensus', consensusResponse], ['server descriptors', descriptorsResponse]] as const) {
      if (r.statusCode !== 200) throw new BadArgumentError(`${node.nick} answered ${r.statusCode} ${r.statusMessage} for the ${what}`);
    }
    const consensus = parseConsensus(Buffer.from(consensusResponse.body).toString('utf8')).routers;
    const descriptors = parseServerDescriptors(Buffer.from(descriptorsResponse.body).toString('utf8'));
    return {
      relay: node.nick,
      linkProtocol: relay.linkProtocol,
      identity: relay.identity,
      timings: { connectMs: t1 - t0, createMs: t2 - t1, consensusMs: t3 - t2, descriptorsMs: t4 - t3 },
      consensus,
      descriptors,
      table: relayTable(consensus, descriptors),
    };
  } finally {
    await relay.close();
  }
}

export interface ThreeHopReport {
  bootstrapMs: number;
  signedBy: readonly string[];
  relays: number;
  hops: readonly CircuitHop[];
  buildMs: number;
  download: FetchResult;
  expectedSha256: string;
}

/** The main job: bootstrap from the network's authorities, three hops, the test file through the exit. */
export async function runThreeHop(description: TestnetDescription, options: { signal?: AbortSignal; onProgress?: (line: string, done: boolean) => void } = {}): Promise<ThreeHopReport> {
  const t0 = performance.now();
  const client = await TorClient.create({ network: await Network.fromFile(description.networkFile), refresh: false, signal: options.signal, timeoutMs: 60_000 });
  try {
    const bootstrapMs = performance.now() - t0;
    const t1 = performance.now();
    const circuit = await client.buildCircuit({ exitPort: description.http.port, signal: options.signal, timeoutMs: 30_000 });
    const buildMs = performance.now() - t1;
    const url = new URL(description.http.url);
    url.hostname = '127.0.0.1';
    // The download goes through this very circuit's exit.
    const download = await fetchTo({ connect: (host, port, o) => circuit.openStream(host, port, { signal: o?.signal, timeoutMs: o?.timeoutMs }) }, url, {
      output: () => new Writable({ write: (_chunk, _encoding, callback) => callback() }),
      timeoutMs: 60_000,
      signal: options.signal,
      onProgress: (p) => options.onProgress?.(progressLine(p), p.done),
    });
    const hops = circuit.hops;
    await circuit.close();
    return { bootstrapMs, signedBy: client.consensus.signedBy, relays: client.consensus.relays.length, hops, buildMs, download, expectedSha256: description.http.fileSha256 };
  } finally {
    await client.close();
  }
}

function url(description: TestnetDescription): string {
  return description.http.url.replace('localhost', '127.0.0.1');
}

function pickRelay(description: TestnetDescription, nick: string): RelayNodeDescription {
  const node = description.nodes.find((n) => n.nick === nick);
  if (!node || node.role === 'client') {
    const nicks = description.nodes.filter((n) => n.role !== 'client').map((n) => n.nick);
    throw new BadArgumentError(`no relay named '${nick}' in the network (relays: ${nicks.join(', ')})`);
  }
  return node;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'boot the private network and list its relays, fetched through an ORPort',
  usage,
  async run(argv) {
    const { values } = usageErrors(() =>
      parseArgs({ args: [...argv], options: { relay: { type: 'string' }, keep: { type: 'boolean' }, quiet: { type: 'boolean' } } }),
    );
    const log = values.quiet ? () => undefined : (m: string) => process.stderr.write(`${m}\n`);
    const outcome = await ensureIsolated({ log: (m) => log(`orport demo: ${m}`) });
    if (outcome.kind === 'reexecuted') return outcome.exitCode;

    const interrupt = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => interrupt.abort(new AbortError(`the demo (${signal})`));
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, onSignal);
    let testnet: Testnet | undefined;
    try {
      log('orport demo: booting a private Tor network on 127.0.0.1 (3 authorities, 4 relays, 2 exits)…');
      testnet = await startTestnet({ signal: interrupt.signal, keep: values.keep ?? false, log: (m) => log(`  ${m}`) });
      const description = testnet.describe();
      log(`orport demo: network up in ${(description.timings.totalMs / 1000).toFixed(1)} s`);
      const node = pickRelay(description, values.relay ?? 'relay0');
      const tty = process.stderr.isTTY && !values.quiet;
      const main = await runThreeHop(description, {
        signal: interrupt.signal,
        onProgress: (line, done) => {
          if (tty) process.stderr.write(`\r\x1b[K${line}${done ? '\n' : ''}`);
        },
      });
      const d = main.download;
      const ok = d.sha256 === main.expectedSha256;
      process.stdout.write(
        [
          `Bootstrapped in ${main.bootstrapMs.toFixed(0)} ms: ${main.relays} relays, consensus signed by ${main.signedBy.join(', ')} (verified).`,
          `Three-hop circuit built in ${main.buildMs.toFixed(1)} ms:`,
          ...main.hops.map((h) => `  hop ${h.index + 1}  ${h.nickname.padEnd(8)} ${h.rsa}  ${h.handshake.padEnd(7)} ${h.ms.toFixed(1).padStart(6)} ms`),
          `Downloaded ${url(description)} through ${main.hops[main.hops.length - 1]!.nickname}: ${d.bytes} bytes in ${d.seconds.toFixed(2)} s (${(d.bytes / 1e6 / d.seconds).toFixed(1)} MB/s), sha256 ${ok ? 'matches' : 'DIFFERS'} (${d.sha256}).`,
          '',
        ].join('\n'),
      );
      if (!ok || d.status !== 200) throw new BadArgumentError(`the download came out wrong: HTTP ${d.status}, sha256 ${d.sha256}, expected ${main.expectedSha256}`);
      const report = await runDemo(node, interrupt.signal);
      const t = report.timings;
      process.stdout.write(
        [
          `Asked ${report.relay} (ORPort 127.0.0.1:${node.orPort}) over link protocol ${report.linkProtocol}: ` +
            `connect ${t.connectMs.toFixed(1)} ms, CREATE_FAST ${t.createMs.toFixed(1)} ms, consensus ${t.consensusMs.toFixed(1)} ms, descriptors ${t.descriptorsMs.toFixed(1)} ms.`,
          `Its CERTS chain proves the identity tor wrote for it: RSA ${report.identity?.rsa}, Ed25519 ${report.identity?.ed25519}.`,
          '',
          `${report.consensus.length} relays in the consensus, ${report.descriptors.length} server descriptors:`,
          '',
          report.table,
          '',
        ].join('\n'),
      );
      return 0;
    } finally {
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, onSignal);
      if (testnet) {
        log('orport demo: stopping the network');
        await testnet.stop();
      }
    }
  },
};
