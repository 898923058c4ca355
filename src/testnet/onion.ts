/**
 * testnet/onion — reading what the test network's onion service (a tor with
 * HiddenServiceDir, run by the client node) has done: its address from tor's `hostname`
 * file, and its descriptor uploads from its rend-domain info log.
 *
 * The lines tor 0.4.9 writes (hs_service.c `upload_descriptor_to_hsdir`, dirclient.c
 * `handle_response_upload_hsdesc`), matched here:
 *
 *   Service <addr> current descriptor of revision <n> initiated upload request to <hsdir> with index <hex> (<hex>)
 *   Uploaded hidden service descriptor (status 200 ("OK"))
 *   Uploading hidden service descriptor: finished with status 200 ("OK")
 *
 * `onionUploadState` counts them; the launcher waits (bounded) until at least one upload
 * of the current descriptor was accepted and every upload started has been answered.
 * Pure but for `readOnionHostname` (one file read). It does not start tor or wait.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface OnionUploadState {
  /** Upload requests started, per descriptor ("current" = this time period's, "next" = the following one's). */
  readonly initiated: { readonly current: number; readonly next: number };
  /** Upload responses, whatever their status. */
  readonly answered: number;
  /** Responses with status 200. */
  readonly accepted: number;
  /** The last rend-domain line, for progress messages. */
  readonly lastLine: string | undefined;
}

const INITIATED = /Service \S+ (current|next) descriptor of revision \d+ initiated upload request to /;
const ANSWERED = /Uploaded hidden service descriptor \(status (\d+)/;
const ACCEPTED = /Uploading hidden service descriptor: finished with status 200\b/;

/** Counts the service's descriptor upload lines in `logText`. */
export function onionUploadState(logText: string): OnionUploadState {
  let current = 0;
  let next = 0;
  let answered = 0;
  let accepted = 0;
  let lastLine: string | undefined;
  for (const line of logText.split('\n')) {
    if (line.trim() === '') continue;
    lastLine = line;
    const started = INITIATED.exec(line);
    if (started) {
      if (started[1] === 'current') current++;
      else next++;
    } else if (ANSWERED.test(line)) answered++;
    else if (ACCEPTED.test(line)) accepted++;
  }
  return { initiated: { current, next }, answered, accepted, lastLine };
}

/** The descriptor is out: an upload of the current descriptor was started, one upload was accepted, and none is still unanswered. */
export function onionPublished(state: OnionUploadState): boolean {
  return state.initiated.current > 0 && state.accepted > 0 && state.answered >= state.initiated.current + state.initiated.next;
}

/** The service's address from `<hiddenServiceDir>/hostname`, or undefined while tor has not written it. */
export async function readOnionHostname(hiddenServiceDir: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(join(hiddenServiceDir, 'hostname'), 'latin1');
  } catch {
    return undefined;
  }
  const address = text.trim();
  return /^[a-z2-7]{56}\.onion$/.test(address) ? address : undefined;
}
