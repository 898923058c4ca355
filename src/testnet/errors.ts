/**
 * testnet/errors — the typed failures of the private test network.
 *
 * Each is an `EnvironmentError` (code E_ENVIRONMENT, kind 'environment') from
 * src/errors.ts, so callers that only know the project's hierarchy still
 * classify them; the subclasses add fields that tests and the CLI use to say
 * which node or port is at fault. Timeouts and aborts use the project's own
 * `TimeoutError` and `AbortError`; nothing here is specific to those.
 */
import { EnvironmentError, type OrportErrorOptions } from '../errors.js';

/** This process is not in a loopback-only network namespace, so tor must not start. */
export class IsolationError extends EnvironmentError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], advice: string) {
    super(`refusing to start tor: this process is not in an isolated network namespace (${problems.join('; ')}). ${advice}`);
    this.problems = problems;
  }
}

/** A port the network needs on 127.0.0.1 is taken by another process. */
export class PortInUseError extends EnvironmentError {
  readonly port: number;
  readonly purpose: string;

  constructor(port: number, purpose: string, detail?: string) {
    super(`port ${port} on 127.0.0.1 (${purpose}) is already in use${detail ? `: ${detail}` : ''}; choose another basePort (--base-port) or stop whatever listens there`);
    this.port = port;
    this.purpose = purpose;
  }
}

/** A tor process (or a tool such as tor-gencert) exited while the network was booting. */
export class NodeDiedError extends EnvironmentError {
  readonly nick: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly logPath: string;

  constructor(nick: string, exitCode: number | null, signal: string | null, logPath: string, lastLines: string, options?: OrportErrorOptions) {
    const how = signal !== null ? `killed by ${signal}` : `exit code ${exitCode ?? 'unknown'}`;
    super(`${nick} died during boot (${how}); last lines of ${logPath}:\n${indent(lastLines)}`, options);
    this.nick = nick;
    this.exitCode = exitCode;
    this.signal = signal;
    this.logPath = logPath;
  }
}

/** A helper program (tor-gencert, `tor --list-fingerprint`, `tor --verify-config`) failed. */
export class ToolFailedError extends EnvironmentError {
  readonly tool: string;
  readonly logPath: string;

  constructor(tool: string, what: string, logPath: string, output: string) {
    super(`${tool} failed while ${what}; see ${logPath}:\n${indent(output)}`);
    this.tool = tool;
    this.logPath = logPath;
  }
}

function indent(text: string): string {
  const trimmed = text.trimEnd();
  return trimmed === '' ? '    (empty)' : trimmed.split('\n').map((line) => `    ${line}`).join('\n');
}
