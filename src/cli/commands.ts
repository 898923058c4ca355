/** cli/commands — the registry of subcommands, in the order `--help` lists them. */
import type { Command } from './command.js';
import { circuitCommand } from './circuit.js';
import { consensusCommand } from './consensus.js';
import { demoCommand } from './demo.js';
import { dirCommand } from './dir.js';
import { fetchCommand } from './fetch.js';
import { probeCommand } from './probe.js';
import { scanCommand } from './scan.js';
import { socksCommand } from './socks.js';
import { testnetCommand } from './testnet.js';

export const commands: readonly Command[] = [demoCommand, consensusCommand, circuitCommand, fetchCommand, socksCommand, dirCommand, probeCommand, scanCommand, testnetCommand];
