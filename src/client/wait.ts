/**
 * client/wait — bounded waits: every wait of the client layer has a timeout and
 * honours an AbortSignal, and releases its timer and its abort listener however it ends.
 */
import { AbortError, BadArgumentError, OrportError, TimeoutError } from '../errors.js';

export interface WaitOptions {
  /** Give up after this many milliseconds (a TimeoutError). */
  timeoutMs?: number;
  /** Give up when this signal aborts (an AbortError). */
  signal?: AbortSignal;
}

/**
 * One 'abort' listener per signal, shared by every wait on it (many concurrent waits on
 * one AbortSignal would otherwise trip Node's MaxListenersExceededWarning), and removed
 * again when the last wait stops watching.
 */
const abortWatchers = new WeakMap<AbortSignal, { watchers: Set<() => void>; listener: () => void }>();

/** Calls `onAbort` when `signal` aborts; returns the function that stops watching. */
export function watchAbort(signal: AbortSignal, onAbort: () => void): () => void {
  let entry = abortWatchers.get(signal);
  if (!entry) {
    const watchers = new Set<() => void>();
    const listener = () => {
      abortWatchers.delete(signal);
      for (const watcher of [...watchers]) watcher();
    };
    entry = { watchers, listener };
    abortWatchers.set(signal, entry);
    signal.addEventListener('abort', listener, { once: true });
  }
  const { watchers, listener } = entry;
  watchers.add(onAbort);
  return () => {
    if (!watchers.delete(onAbort) || watchers.size > 0) return;
    if (abortWatchers.get(signal)?.watchers === watchers) abortWatchers.delete(signal);
    signal.removeEventListener('abort', listener);
  };
}

function checkTimeout(timeoutMs: number): BadArgumentError | undefined {
  return timeoutMs > 0 && Number.isFinite(timeoutMs) ? undefined : new BadArgumentError(`timeoutMs must be a positive number of milliseconds, not ${timeoutMs}`);
}

/** A running deadline: `restart` starts the timeout over, `pause` suspends it, `dispose` ends it. */
export interface Deadline {
  restart(): void;
  pause(): void;
  dispose(): void;
}

/**
 * Calls `expire` with a TimeoutError after `timeoutMs` (or with an AbortError when
 * `signal` aborts, at once if it already has), unless disposed first. Throws a
 * BadArgumentError for a timeout that isn't a positive finite number.
 */
export function startDeadline(what: string, options: WaitOptions, defaultTimeoutMs: number, expire: (error: OrportError) => void): Deadline {
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const bad = checkTimeout(timeoutMs);
  if (bad) throw bad;
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  let unwatch: (() => void) | undefined;
  const fire = (error: OrportError) => {
    if (done) return;
    deadline.dispose();
    expire(error);
  };
  const deadline: Deadline = {
    restart() {
      if (done) return;
      if (timer) timer.refresh();
      else timer = setTimeout(() => fire(new TimeoutError(what, timeoutMs)), timeoutMs);
    },
    pause() {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
    dispose() {
      done = true;
      if (timer) clearTimeout(timer);
      unwatch?.();
    },
  };
  const signal = options.signal;
  if (signal?.aborted) {
    queueMicrotask(() => fire(new AbortError(what, signal.reason)));
    return deadline;
  }
  if (signal) unwatch = watchAbort(signal, () => fire(new AbortError(what, signal.reason)));
  deadline.restart();
  return deadline;
}

export interface Settle<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/**
 * Runs `start` and waits for it to settle, for at most `timeoutMs` (or until `signal`
 * aborts). `start` may return a cancel function: it runs when the wait ends by timeout
 * or abort (with that error), so the operation can undo itself (close a stream, …).
 */
export function boundedWait<T>(
  what: string,
  options: WaitOptions,
  defaultTimeoutMs: number,
  start: (settle: Settle<T>) => ((error: OrportError) => void) | void,
): Promise<T> {
  const bad = checkTimeout(options.timeoutMs ?? defaultTimeoutMs);
  if (bad) return Promise.reject(bad);
  if (options.signal?.aborted) return Promise.reject(new AbortError(what, options.signal.reason));
  return new Promise<T>((resolve, reject) => {
    let cancel: ((error: OrportError) => void) | void;
    let settled = false;
    const deadline = startDeadline(what, options, defaultTimeoutMs, (error) => {
      if (settled) return;
      settled = true;
      try {
        cancel?.(error);
      } finally {
        reject(error);
      }
    });
    const settle = <A extends unknown[]>(fn: (...args: A) => void) => (...args: A) => {
      if (settled) return;
      settled = true;
      deadline.dispose();
      fn(...args);
    };
    try {
      cancel = start({ resolve: settle(resolve), reject: settle(reject) });
    } catch (err) {
      settle(reject)(err);
    }
  });
}
