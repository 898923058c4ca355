/**
 * test/support/failure — for fault rows: awaits an operation's rejection and checks that
 * it is a typed OrportError, with how long it took.
 */
import assert from 'node:assert/strict';
import { OrportError } from '../../src/errors.js';

export interface Failure {
  error: OrportError;
  ms: number;
}

/** Starts `operation` and awaits its rejection; returns the error and how long it took. */
export async function failure(operation: () => Promise<unknown>): Promise<Failure> {
  const since = performance.now();
  try {
    await operation();
  } catch (error) {
    assert.ok(error instanceof OrportError, `expected a typed OrportError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    return { error, ms: performance.now() - since };
  }
  assert.fail('expected a rejection, but it resolved');
}
