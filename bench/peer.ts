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

/**
 * The peer process. A bench subclasses it with its own requests (`measure`, `session`…)
 * and starts it with `Subclass.start(script)`.
 */
export class JsonLinesPeer<R extends PeerReply> {
  private readonly waiting: ((reply: R) => void)[] = [];
  private exited = '';
  /** "Stem 1.8.1 on Python 3.11.2", from the greeting. */
  version = '';

  constructor(private readonly proc: ChildProcess) {}

  /** Starts `script --serve` as this class; resolves to the peer, or to why it cannot run. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any reply type: JsonLinesPeer is invariant in R
  static async start<P extends JsonLinesPeer<any>>(this: new (proc: ChildProcess) => P, script: string): Promise<P | string> {
    type R = P extends JsonLinesPeer<infer T> ? T : never;
    const proc = spawn(PYTHON, ['-I', script, '--serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const peer: JsonLinesPeer<R> = new this(proc);
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
    return peer as P;
  }

  /** Starts the peer, or says why it isn't measured: `{ peer, note }` (note: its version, or the reason). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as in start()
  static async startOrSay<P extends JsonLinesPeer<any>>(this: new (proc: ChildProcess) => P, script: string): Promise<{ peer: P | undefined; note: string }> {
    const started = await JsonLinesPeer.start.call<new (proc: ChildProcess) => P, [string], Promise<P | string>>(this, script);
    return typeof started === 'string' ? { peer: undefined, note: `Stem not measured: ${started}` } : { peer: started, note: started.version };
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
