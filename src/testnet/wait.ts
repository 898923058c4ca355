/**
 * testnet/wait — abortable sleeps for the network launcher.
 *
 * Every wait in src/testnet goes through these, so each one has a bound and
 * honours an AbortSignal, and none leaves a timer or a listener behind once it
 * settles. No I/O here.
 */
import { AbortError } from '../errors.js';

/** Resolves after `ms`; rejects with the signal's reason (or an AbortError) if it fires first. */
export function sleep(ms: number, signal?: AbortSignal, waitingFor = 'a pause between polls'): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal, waitingFor));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal, waitingFor));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The error to reject with once `signal` has fired: its reason if that is an Error, else an AbortError. */
export function abortReason(signal: AbortSignal, waitingFor: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && !(reason instanceof DOMException)) return reason;
  return new AbortError(waitingFor, reason);
}

/** Races `promise` against `signal`; the promise itself is not cancelled (callers clean it up). */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, waitingFor: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal, waitingFor));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal, waitingFor));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
