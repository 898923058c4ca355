#!/usr/bin/env node
/**
 * cli/main — the `orport` command: parses the subcommand and hands over.
 *
 * Each subcommand lives in its own module under src/cli/ and exports a
 * `Command` (name, one-line summary, usage text, run(argv) → exit status).
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OrportError } from '../errors.js';
import { UsageError, type Command } from './command.js';
import { commands } from './commands.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(list: readonly Command[]): string {
  const width = Math.max(...list.map((c) => c.name.length));
  return [
    'usage: orport <command> [options]',
    '',
    'Speak Tor\'s relay protocol directly to a relay\'s ORPort.',
    '',
    'commands:',
    ...list.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'orport <command> --help   shows a command\'s options',
    'orport --version          prints the version',
  ].join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(usage(commands) + '\n');
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(`orport ${packageVersion()}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === first);
  if (!command) {
    process.stderr.write(`orport: unknown command '${first}'\n\n${usage(commands)}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage + '\n');
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`orport ${command.name}: ${err.message}\n\n${command.usage}\n`);
      return 2;
    }
    if (err instanceof OrportError) {
      process.stderr.write(`orport ${command.name}: ${err.message} [${err.code}]\n`);
      return 1;
    }
    throw err;
  }
}

function invokedAsScript(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedAsScript()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`orport: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 70;
    },
  );
}
