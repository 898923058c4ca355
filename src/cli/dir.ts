/**
 * cli/dir — `orport dir HOST:PORT PATH`: a one-hop directory fetch through a relay's
 * ORPort (TLS, link handshake, CREATE_FAST, BEGIN_DIR), printing the body.
 */
import { writeFile } from 'node:fs/promises';
import { Relay } from '../client/relay.js';
import { parseHttpResponse } from '../dir/http.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { parseArgs } from 'node:util';
import { parseHostPort, parseLinkList, parsePositive, usageErrors } from './args.js';

const usage = `usage: orport dir HOST:PORT PATH [-o FILE] [--link 3,4,5] [--raw] [--timeout MS]

Fetches a directory document from a relay over its ORPort: TLS, the link
handshake, a CREATE_FAST circuit and a BEGIN_DIR stream, e.g.

  orport dir 127.0.0.1:5000 /tor/status-vote/current/consensus
  orport dir 127.0.0.1:5000 /tor/server/all -o descriptors.txt

PATH is an HTTP path on the relay's directory server; '.z' paths are inflated.

options:
  -o, --output FILE   write the body to FILE instead of standard output
  --link LIST         link protocols to offer (default 3,4,5)
  --raw               print the whole raw HTTP response, headers included
  --timeout MS        give up after MS milliseconds (default 60000)
exit status: 0 on HTTP 200, 1 on any error or another status.`;

export const dirCommand: Command = {
  name: 'dir',
  summary: 'fetch a directory document through a relay\'s ORPort',
  usage,
  async run(argv) {
    const { values, positionals } = usageErrors(() =>
      parseArgs({
        args: [...argv],
        allowPositionals: true,
        options: {
          output: { type: 'string', short: 'o' },
          link: { type: 'string' },
          raw: { type: 'boolean' },
          timeout: { type: 'string' },
        },
      }),
    );
    const { host, port } = parseHostPort(positionals[0]);
    const path = positionals[1];
    if (!path || !path.startsWith('/')) throw new UsageError('missing PATH (it starts with /, e.g. /tor/status-vote/current/consensus)');
    if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
    const timeoutMs = parsePositive(values.timeout, 'timeout', 60_000);
    const relay = await Relay.connect(host, port, parseLinkList(values.link), { timeoutMs });
    try {
      const circuit = await relay.createCircuit({ timeoutMs });
      const raw = await circuit.directory(`GET ${path} HTTP/1.0\r\n\r\n`, 1, { timeoutMs });
      const response = parseHttpResponse(raw, { compressed: path.endsWith('.z') });
      const out = values.raw ? raw : response.body;
      if (values.output) await writeFile(values.output, out);
      else process.stdout.write(out);
      if (response.statusCode !== 200) {
        process.stderr.write(`orport dir: ${host}:${port} answered ${response.statusCode} ${response.statusMessage}\n`);
        return 1;
      }
      return 0;
    } finally {
      await relay.close();
    }
  },
};
