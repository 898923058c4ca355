/**
 * cli/consensus — `orport consensus`: bootstraps a TorClient (verified microdesc consensus,
 * key certificates, microdescriptors; the cache when given) and prints who signed, the
 * validity times, the relay count, flags and total bandwidth. Exits 1 with the
 * DirectoryError's message when verification fails.
 */
import { parseArgs } from 'node:util';
import { Network } from '../dir/network.js';
import { TorClient, type BootstrapProgress, type ConsensusView } from '../client/torclient.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { parsePositive, usageErrors } from './args.js';

const usage = `usage: orport consensus [--network FILE] [--cache-dir DIR] [--json] [--timeout MS]

Bootstraps like a Tor client: fetches the microdesc consensus, the authorities'
key certificates and the microdescriptors over ORPorts (BEGIN_DIR), verifies
the signatures (more than half of the network's authorities must sign), and
prints a summary.

options:
  --network FILE    the network: a torrc with DirAuthority / FallbackDir lines
                    (default: the public Tor network)
  --cache-dir DIR   keep the documents in DIR and reuse them while they are valid
  --json            print the summary as JSON
  --timeout MS      give up after MS milliseconds (default 120000)
exit status: 0 when the consensus verified, 1 on any error.`;

/** The summary printed (and its JSON shape). */
export interface ConsensusSummary {
  validAfter: string;
  freshUntil: string;
  validUntil: string;
  signedBy: string[];
  relays: number;
  microdescs: number;
  flags: Record<string, number>;
  /** Sum of the consensus weights (`w Bandwidth=`). */
  totalBandwidth: number;
  fromCache: { consensus: boolean; certificates: number; microdescs: number };
  requests: Record<string, number>;
}

export function summarize(view: ConsensusView, client: TorClient): ConsensusSummary {
  const flags: Record<string, number> = {};
  let totalBandwidth = 0;
  let microdescs = 0;
  for (const r of view.relays) {
    for (const f of r.flags) flags[f] = (flags[f] ?? 0) + 1;
    totalBandwidth += r.bandwidth;
    if (r.ntorOnionKey !== undefined) microdescs++;
  }
  return {
    validAfter: view.validAfter.toISOString(),
    freshUntil: view.freshUntil.toISOString(),
    validUntil: view.validUntil.toISOString(),
    signedBy: [...view.signedBy],
    relays: view.relays.length,
    microdescs,
    flags: Object.fromEntries(Object.entries(flags).sort()),
    totalBandwidth,
    fromCache: client.stats.fromCache,
    requests: { ...client.stats.directory.byKind },
  };
}

function progressBar(stream: NodeJS.WriteStream): (p: BootstrapProgress) => void {
  return (p) => {
    const width = 30;
    const fraction = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
    const filled = Math.round(fraction * width);
    const line = `${p.step.padEnd(16)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} ${p.message}`;
    stream.write(`\r\x1b[K${line.slice(0, (stream.columns ?? 100) - 1)}`);
    if (p.step === 'done') stream.write('\n');
  };
}

export const consensusCommand: Command = {
  name: 'consensus',
  summary: 'bootstrap, verify and summarize the consensus',
  usage,
  async run(argv) {
    const { values, positionals } = usageErrors(() =>
      parseArgs({
        args: [...argv],
        allowPositionals: true,
        options: {
          network: { type: 'string' },
          'cache-dir': { type: 'string' },
          json: { type: 'boolean' },
          timeout: { type: 'string' },
        },
      }),
    );
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const network = values.network ? await Network.fromFile(values.network) : Network.PUBLIC;
    const timeoutMs = parsePositive(values.timeout, 'timeout', 120_000);
    const client = await TorClient.create({
      network,
      cacheDir: values['cache-dir'],
      timeoutMs,
      refresh: false,
      onProgress: process.stderr.isTTY ? progressBar(process.stderr) : undefined,
    });
    try {
      const s = summarize(client.consensus, client);
      if (values.json) {
        process.stdout.write(JSON.stringify(s, null, 2) + '\n');
        return 0;
      }
      const lines = [
        `consensus valid-after ${s.validAfter}, fresh-until ${s.freshUntil}, valid-until ${s.validUntil}`,
        `signed by ${s.signedBy.length} of ${network.authorities.filter((a) => a.v3ident).length} authorities: ${s.signedBy.join(', ')}`,
        `${s.relays} relays (${s.microdescs} with microdescriptors), total bandwidth ${s.totalBandwidth.toLocaleString('en')} kB/s`,
        `flags: ${Object.entries(s.flags).map(([f, n]) => `${f} ${n}`).join(', ')}`,
        `from the cache: ${s.fromCache.consensus ? 'the consensus' : 'no consensus'}, ${s.fromCache.certificates} certificates, ${s.fromCache.microdescs} microdescriptors; requests: ${Object.entries(s.requests).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    } finally {
      await client.close();
    }
  },
};
