/**
 * testnet/control — a minimal client for tor's control port on 127.0.0.1.
 *
 * Just enough to change options of a running node: AUTHENTICATE (our nodes
 * have no control-port authentication), SETCONF, QUIT, in one write, then
 * every reply line is checked for a 250 status. Bounded by a timeout and an
 * AbortSignal; the socket is always destroyed. Not a general controller: no
 * events, no GETINFO, no quoting beyond simple values.
 */
import { connect } from 'node:net';
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
