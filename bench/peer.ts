/**
 * bench/peer — a long-lived reference peer (a Python Stem script) spoken to in JSON
 * lines: one request per line on its stdin, one reply per line on its stdout, the first
 * line a greeting `{ ready, stem, python, … }`. Keeps interpreter start-up out of the
 * measurements.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export const PYTHON = process.env.ORPORT_STEM_PYTHON ?? '/usr/bin/python3';

/** What every reply may carry besides its own fields. */
export interface PeerReply {
  ok?: boolean;
  ready?: boolean;
  error?: string;
  stage?: string;
  stem?: string;
  python?: string;
  openssl?: string;
}

export class JsonLinesPeer<R extends PeerReply> {
  private readonly waiting: ((reply: R) => void)[] = [];
  private exited = '';
  /** "Stem 1.8.1 on Python 3.11.2", from the greeting. */
  version = '';

  private constructor(private readonly proc: ChildProcess) {}

  /** Starts `script --serve`; resolves to the peer, or to why it cannot run. */
  static async start<R extends PeerReply>(script: string): Promise<JsonLinesPeer<R> | string> {
    const proc = spawn(PYTHON, ['-I', script, '--serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const peer = new JsonLinesPeer<R>(proc);
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    createInterface({ input: proc.stdout! }).on('line', (line) => peer.waiting.shift()?.(JSON.parse(line) as R));
    proc.once('exit', (code, signal) => {
      peer.exited = `${PYTHON} ${script} exited (${code ?? signal}): ${stderr.trim().split('\n').pop() ?? ''}`;
      for (const w of peer.waiting.splice(0)) w({ ok: false, ready: false, stage: 'process', error: peer.exited } as R);
    });
    const hello = await new Promise<R>((resolve) => {
      peer.waiting.push(resolve);
      proc.once('error', (err) => resolve({ ok: false, ready: false, error: err.message } as R));
    });
    if (!hello.ready) {
      proc.kill();
      return `${PYTHON} cannot run Stem (${hello.error ?? 'no greeting'})`;
    }
    peer.version = `Stem ${hello.stem} on Python ${hello.python}${hello.openssl ? ` (${hello.openssl})` : ''}`;
    return peer;
  }

  /** Sends one request and waits for its reply (replies come in order). */
  request(req: object): Promise<R> {
    if (this.exited) return Promise.resolve({ ok: false, stage: 'process', error: this.exited } as R);
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.proc.stdin!.write(JSON.stringify(req) + '\n');
    });
  }

  /** Ends the peer (killed if it doesn't exit within 2 s). */
  close(): void {
    this.proc.stdin!.end();
    setTimeout(() => this.proc.kill(), 2000).unref();
  }
}
