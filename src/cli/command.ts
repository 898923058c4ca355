/** cli/command — the shape of one `orport` subcommand. */
export interface Command {
  readonly name: string;
  /** One line for `orport --help`. */
  readonly summary: string;
  /** The full `orport <name> --help` text. */
  readonly usage: string;
  /** Runs the command; resolves to the process exit status. */
  run(argv: readonly string[]): Promise<number>;
}

/** Thrown by option parsing; main prints it with the usage and exits 2. */
export class UsageError extends Error {}
