/**
 * client/wait — bounded waits: every wait of the client layer has a timeout and
 * honours an AbortSignal, and cleans up its timer and listener however it ends.
 */
import { AbortError, BadArgumentError, OrportError, TimeoutError } from '../errors.js';

export interface WaitOptions {
  /** Give up after this many milliseconds (a TimeoutError). */
  timeoutMs?: number;
  /** Give up when this signal aborts (an AbortError). */
  signal?: AbortSignal;
}

/**
 * One 'abort' listener per signal, shared by every wait on it: many concurrent waits on
 * one AbortSignal would otherwise trip Node's MaxListenersExceededWarning.
 */
const abortWatchers = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `onAbort` when `signal` aborts; returns the function that stops watching. */
export function watchAbort(signal: AbortSignal, onAbort: () => void): () => void {
  let watchers = abortWatchers.get(signal);
  if (!watchers) {
    const set = new Set<() => void>();
    watchers = set;
    abortWatchers.set(signal, set);
    signal.addEventListener(
      'abort',
      () => {
        abortWatchers.delete(signal);
        for (const watcher of [...set]) watcher();
      },
      { once: true },
    );
  }
  const set = watchers;
  set.add(onAbort);
  return () => set.delete(onAbort);
}

/** How many waits are watching `signal` right now (0 once they have all ended): for leak checks. */
export function abortWatcherCount(signal: AbortSignal): number {
  return abortWatchers.get(signal)?.size ?? 0;
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
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    return Promise.reject(new BadArgumentError(`timeoutMs must be a positive number of milliseconds, not ${timeoutMs}`));
  }
  const signal = options.signal;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let cancel: ((error: OrportError) => void) | void;
    let timer: NodeJS.Timeout | undefined;
    let unwatch: (() => void) | undefined;
    const cleanup = () => {
      done = true;
      if (timer) clearTimeout(timer);
      unwatch?.();
    };
    const fail = (error: OrportError) => {
      if (done) return;
      cleanup();
      try {
        cancel?.(error);
      } finally {
        reject(error);
      }
    };
    const onAbort = () => fail(new AbortError(what, signal?.reason));
    if (signal?.aborted) {
      reject(new AbortError(what, signal.reason));
      return;
    }
    if (signal) unwatch = watchAbort(signal, onAbort);
    timer = setTimeout(() => fail(new TimeoutError(what, timeoutMs)), timeoutMs);
    try {
      cancel = start({
        resolve: (value) => {
          if (done) return;
          cleanup();
          resolve(value);
        },
        reject: (error) => {
          if (done) return;
          cleanup();
          reject(error);
        },
      });
    } catch (err) {
      cleanup();
      reject(err);
    }
  });
}
