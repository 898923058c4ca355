/**
 * cli/socks — `orport socks`: bootstraps a TorClient (verified consensus; the cache when
 * given) and serves SOCKS5 on loopback through it (adapters/socksserver): CONNECT and
 * RESOLVE, credentials as stream isolation. Prints `listening on HOST:PORT`; with
 * --verbose, a line per stream (target, isolation, bytes each way, ms, result). Stops
 * cleanly on SIGINT / SIGTERM (the listener, every connection, the client).
 *
 * Not here: the protocol (adapters/socks5.ts), the streams (TorClient.connect).
 */
import { Network } from '../dir/network.js';
import { TorClient } from '../client/torclient.js';
import { listenSocks, type SocksStreamInfo } from '../adapters/socksserver.js';
import { socksReplyName } from '../adapters/socks5.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { commandArgs, parseHostPort, targetName } from './args.js';

const usage = `usage: orport socks [--listen HOST:PORT] [--network FILE] [--cache-dir DIR] [--conflux] [--verbose]

Bootstraps like a Tor client, then serves SOCKS5 (RFC 1928, RFC 1929; tor's
RESOLVE extension) through three-hop circuits. Distinct username/password pairs
get distinct circuits (tor's IsolateSOCKSAuth). SOCKS4 is refused.

options:
  --listen HOST:PORT  where to listen (default 127.0.0.1:9050; port 0: any free one)
  --network FILE      the network: a torrc with DirAuthority / FallbackDir lines
                      (default: the public Tor network)
  --cache-dir DIR     keep the directory and the guards in DIR
  --conflux           streams only over conflux sets (two linked circuits to one
                      exit); by default sets are used where the network allows
  --verbose           print a line per stream
Runs until SIGINT or SIGTERM; exit status 0 then, 1 when bootstrap or listening fails.`;

export interface SocksArgs {
  readonly host: string;
  readonly port: number;
  readonly network: string | undefined;
  readonly cacheDir: string | undefined;
  readonly verbose: boolean;
  readonly conflux: boolean;
}

/** Parses `orport socks`'s arguments; UsageError for anything wrong. */
export function parseSocksArgs(argv: readonly string[]): SocksArgs {
  const { values, positionals } = commandArgs(argv, {
    listen: { type: 'string' },
    network: { type: 'string' },
    'cache-dir': { type: 'string' },
    verbose: { type: 'boolean' },
    conflux: { type: 'boolean' },
  });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const { host, port } = values.listen === undefined ? { host: '127.0.0.1', port: 9050 } : parseHostPort(values.listen);
  if (!Number.isInteger(port) || port > 0xffff) throw new UsageError(`--listen: port ${port} is not 0-65535`);
  if (values.network === '') throw new UsageError('--network needs a file');
  if (values['cache-dir'] === '') throw new UsageError('--cache-dir needs a directory');
  return { host, port, network: values.network, cacheDir: values['cache-dir'], verbose: values.verbose ?? false, conflux: values.conflux ?? false };
}

/** One --verbose line: target, isolation, bytes each way, ms, result. */
export function streamLine(info: SocksStreamInfo): string {
  const result = info.replyCode === undefined ? 'client left' : info.replyCode === 0 ? (info.error ? `ok, then ${info.error.message}` : 'ok') : `${socksReplyName(info.replyCode)}${info.error ? `: ${info.error.message}` : ''}`;
  return `${info.command} ${targetName(info.host, info.port)} isolation=${info.isolation ?? '-'} up=${info.bytesUp} down=${info.bytesDown} ${info.ms.toFixed(0)} ms ${result}`;
}

export const socksCommand: Command = {
  name: 'socks',
  summary: 'serve SOCKS5 on loopback through Tor circuits',
  usage,
  async run(argv) {
    const args = parseSocksArgs(argv);
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const network = args.network ? await Network.fromFile(args.network) : Network.PUBLIC;
      const client = await TorClient.create({ network, cacheDir: args.cacheDir, signal: stop.signal, conflux: args.conflux ? true : undefined });
      try {
        const server = await listenSocks(client, {
          host: args.host,
          port: args.port,
          signal: stop.signal,
          onStream: args.verbose ? (info) => process.stdout.write(streamLine(info) + '\n') : undefined,
        });
        const { address, port } = server.address();
        process.stdout.write(`listening on ${targetName(address, port)}\n`);
        if (!stop.signal.aborted) await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
        await server.close();
        return 0;
      } finally {
        await client.close();
      }
    } catch (err) {
      // Interrupted during bootstrap: a clean stop, not a failure.
      if (stop.signal.aborted) return 0;
      throw err;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
