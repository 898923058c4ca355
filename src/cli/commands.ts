/** cli/commands — the registry of subcommands, in the order `--help` lists them. */
import type { Command } from './command.js';

export const commands: readonly Command[] = [];
