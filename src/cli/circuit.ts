/**
 * cli/circuit — `orport circuit`: bootstraps a TorClient, builds one circuit (chosen by
 * path selection and the guard set, or through `--path`), prints each hop (nickname,
 * fingerprint, handshake, ms) and closes it. Exits 1 with the typed error's message (it
 * names the hop) when the build fails.
 */
import { Network } from '../dir/network.js';
import { TorClient } from '../client/torclient.js';
import type { HandshakeKind } from '../client/handshakes.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { commandArgs, parsePositive } from './args.js';

const usage = `usage: orport circuit [--network FILE] [--hops N] [--path a,b,c] [--handshake ntor|ntor-v3]
                      [--port PORT] [--cache-dir DIR] [--json] [--timeout MS]

Bootstraps (verified consensus), builds a circuit and prints each hop.

options:
  --network FILE    the network: a torrc with DirAuthority / FallbackDir lines
                    (default: the public Tor network)
  --hops N          hops, 1 to 8 (default 3; with --path, its length)
  --path a,b,c      the relays, first hop first: nicknames or fingerprints
  --handshake H     ntor or ntor-v3 for every hop (default: ntor v3 where the
                    relay offers it, else ntor)
  --port PORT       the port the exit must accept (default 80)
  --cache-dir DIR   keep the directory and the guards in DIR
  --json            print the hops as JSON
  --timeout MS      give up after MS milliseconds per step (default 60000)
exit status: 0 when the circuit was built, 1 on any error.`;

export const circuitCommand: Command = {
  name: 'circuit',
  summary: 'build a circuit and print its hops',
  usage,
  async run(argv) {
    const { values, positionals } = commandArgs(argv, {
      network: { type: 'string' },
      hops: { type: 'string' },
      path: { type: 'string' },
      handshake: { type: 'string' },
      port: { type: 'string' },
      'cache-dir': { type: 'string' },
      json: { type: 'boolean' },
      timeout: { type: 'string' },
    });
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const handshake = values.handshake;
    if (handshake !== undefined && handshake !== 'ntor' && handshake !== 'ntor-v3') throw new UsageError(`--handshake is ntor or ntor-v3, not '${handshake}'`);
    const path = values.path?.split(',').map((s) => s.trim()).filter(Boolean);
    if (path && (path.length < 1 || path.length > 8)) throw new UsageError('--path names 1 to 8 relays');
    const hops = parsePositive(values.hops, 'hops', path?.length ?? 3);
    if (path && values.hops !== undefined && hops !== path.length) throw new UsageError(`--hops ${hops} but --path names ${path.length} relays`);
    const exitPort = parsePositive(values.port, 'port', 80);
    const timeoutMs = parsePositive(values.timeout, 'timeout', 60_000);
    const network = values.network ? await Network.fromFile(values.network) : Network.PUBLIC;
    const started = performance.now();
    const client = await TorClient.create({ network, cacheDir: values['cache-dir'], timeoutMs, refresh: false });
    try {
      const bootMs = performance.now() - started;
      const t0 = performance.now();
      const circuit = await client.buildCircuit({ hops, path, exitPort, handshake: handshake as HandshakeKind | undefined, timeoutMs });
      const totalMs = performance.now() - t0;
      const hopsOut = circuit.hops.map((h) => ({ hop: h.index + 1, nickname: h.nickname, fingerprint: h.rsa, ed25519: h.ed25519 ?? null, handshake: h.handshake, ms: Math.round(h.ms * 10) / 10 }));
      await circuit.close();
      if (values.json) {
        process.stdout.write(JSON.stringify({ hops: hopsOut, buildMs: Math.round(totalMs * 10) / 10, bootstrapMs: Math.round(bootMs) }, null, 2) + '\n');
        return 0;
      }
      const lines = hopsOut.map((h) => `hop ${h.hop}  ${h.nickname.padEnd(19)} ${h.fingerprint}  ${h.handshake.padEnd(7)} ${h.ms.toFixed(1).padStart(7)} ms`);
      lines.push(`built in ${totalMs.toFixed(1)} ms (bootstrap ${Math.round(bootMs)} ms)`);
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    } finally {
      await client.close();
    }
  },
};
