/**
 * testnet/control — a minimal client for tor's control port on 127.0.0.1.
 *
 * Just enough to change options of a running node: AUTHENTICATE (our nodes
 * have no control-port authentication), SETCONF, QUIT, in one write, then
 * every reply line is checked for a 250 status. Bounded by a timeout and an
 * AbortSignal; the socket is always destroyed. And `ControlSession`, for the
 * benches: one command at a time (its reply lines), asynchronous events (650)
 * to a listener, every wait bounded. Not a general controller: no quoting
 * beyond simple values, no multi-line data replies (`250+`).
 */
import { connect, type Socket } from 'node:net';
import { BadArgumentError, EnvironmentError, TimeoutError } from '../errors.js';
import { abortReason } from './wait.js';

export interface ControlOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** Sends `SETCONF key=value …` to the control port at 127.0.0.1:`port`; rejects unless tor answers 250 to each command. */
export function controlSetConf(port: number, settings: Readonly<Record<string, string | number>>, options: ControlOptions): Promise<void> {
  const pairs = Object.entries(settings).map(([key, value]) => {
    const text = String(value);
    if (!/^[A-Za-z0-9_]+$/.test(key) || !/^[A-Za-z0-9_.:/*-]*$/.test(text)) throw new BadArgumentError(`cannot send SETCONF ${key}=${text}`);
    return `${key}=${text}`;
  });
  const what = `SETCONF ${pairs.join(' ')} on control port ${port}`;
  if (options.signal?.aborted) return Promise.reject(abortReason(options.signal, what));
  return new Promise<void>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => finish(new TimeoutError(what, options.timeoutMs)), options.timeoutMs);
    const onAbort = (): void => finish(abortReason(options.signal as AbortSignal, what));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.once('error', (err) => finish(new EnvironmentError(`${what}: ${err.message}`, { cause: err })));
    socket.once('close', () => {
      const replies = received.split('\r\n').filter((line) => line !== '');
      const bad = replies.find((line) => !line.startsWith('250'));
      if (bad !== undefined) finish(new EnvironmentError(`${what}: tor answered ${bad}`));
      else if (replies.length < 3) finish(new EnvironmentError(`${what}: tor closed the connection after ${JSON.stringify(received)}`));
      else finish();
    });
    socket.write(`AUTHENTICATE\r\nSETCONF ${pairs.join(' ')}\r\nQUIT\r\n`);
  });
}

/** A control-port connection: `command()` one at a time, events (650 lines) to `onEvent`. */
export class ControlSession {
  private buffer = '';
  private reply: string[] = [];
  private waiter: { resolve: (lines: string[]) => void; reject: (err: Error) => void; timer: NodeJS.Timeout } | undefined;
  private closedError: Error | undefined;
  /** Called with each asynchronous event line (without the "650 " prefix). */
  onEvent: ((line: string) => void) | undefined;

  private constructor(private readonly socket: Socket, readonly port: number) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.read(chunk));
    socket.on('error', (err) => this.fail(new EnvironmentError(`control port ${port}: ${err.message}`, { cause: err })));
    socket.on('close', () => this.fail(new EnvironmentError(`control port ${port} closed`)));
  }

  /** Connects to 127.0.0.1:`port` and authenticates (our nodes need no credentials). */
  static async open(port: number, options: ControlOptions): Promise<ControlSession> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TimeoutError(`control port ${port}`, options.timeoutMs));
      }, options.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new EnvironmentError(`control port ${port}: ${err.message}`, { cause: err }));
      });
    });
    const session = new ControlSession(socket, port);
    await session.command('AUTHENTICATE', options.timeoutMs);
    return session;
  }

  /** Sends one command line; resolves to its reply lines once the final one ("250 …") arrives, rejects on another status. */
  command(line: string, timeoutMs: number): Promise<string[]> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.waiter) return Promise.reject(new BadArgumentError(`control port ${this.port}: one command at a time (sending ${line} while another is pending)`));
    if (/[\r\n]/.test(line)) return Promise.reject(new BadArgumentError('a control command is one line'));
    return new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new TimeoutError(`the reply to ${line} on control port ${this.port}`, timeoutMs));
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
      this.socket.write(`${line}\r\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private read(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\r\n')) >= 0) {
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      if (line.startsWith('650')) {
        this.onEvent?.(line.slice(4));
        continue;
      }
      this.reply.push(line);
      if (line[3] !== ' ') continue; // 250- and 250+ lines continue the reply
      const lines = this.reply;
      this.reply = [];
      const waiter = this.waiter;
      this.waiter = undefined;
      if (!waiter) continue;
      clearTimeout(waiter.timer);
      if (line.startsWith('250')) waiter.resolve(lines);
      else waiter.reject(new EnvironmentError(`control port ${this.port}: tor answered ${lines.join(' | ')}`));
    }
  }

  private fail(error: Error): void {
    this.closedError ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}
