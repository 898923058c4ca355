/**
 * dir/http — parses the raw HTTP/1.0 responses that tor's directory server sends
 * through BEGIN_DIR streams: status line, headers, body; inflates tor's deflate
 * compression (`.z` URLs, `Content-Encoding: deflate`).
 *
 * Layer: codec core. No I/O.
 */
import { inflateSync } from 'node:zlib';
import { DecodeError, LimitError } from '../errors.js';
import { latin1 } from '../codec/bytes.js';

export interface HttpResponse {
  /** e.g. 'HTTP/1.0' */
  version: string;
  statusCode: number;
  statusMessage: string;
  /** Header names in lower case; repeated headers joined with ', '. */
  headers: Record<string, string>;
  /** The body as sent (before decompression). */
  rawBody: Uint8Array;
  /** The body, inflated if it was deflate-compressed. */
  body: Uint8Array;
}

const CRLFCRLF = Uint8Array.of(13, 10, 13, 10);

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Largest inflated body `parseHttpResponse` produces unless told otherwise (64 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * Parses a whole response. `compressed` forces inflating (for `.z` URLs whose server
 * omits the header); an inflated body over `maxBodyBytes` is a LimitError (a deflate bomb
 * grows ~1000-fold).
 */
export function parseHttpResponse(raw: Uint8Array, options: { compressed?: boolean; maxBodyBytes?: number } = {}): HttpResponse {
  const end = indexOf(raw, CRLFCRLF);
  if (end < 0) throw new DecodeError('HTTP response', raw.length, 'no end of headers (CRLF CRLF) found');
  const head = latin1.decode(raw.subarray(0, end)).split('\r\n');
  const status = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(head[0] ?? '');
  if (!status) throw new DecodeError('HTTP response', 0, `bad status line ${JSON.stringify((head[0] ?? '').slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new DecodeError('HTTP response', 0, `bad header line ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  const rawBody = raw.subarray(end + 4);
  const encoding = (headers['content-encoding'] ?? '').toLowerCase();
  let body = rawBody;
  if (encoding === 'deflate' || encoding === 'x-deflate' || (options.compressed && encoding !== 'identity')) {
    const max = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    try {
      body = new Uint8Array(inflateSync(rawBody, { maxOutputLength: max }));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new LimitError(`the inflated HTTP body exceeds maxBodyBytes (${max} bytes)`, max);
      throw new DecodeError('HTTP response body', end + 4, `cannot inflate deflate-compressed body: ${(err as Error).message}`);
    }
  } else if (encoding && encoding !== 'identity') {
    throw new DecodeError('HTTP response', 0, `unsupported Content-Encoding '${encoding}' (orport asks for identity or deflate)`);
  }
  return { version: status[1]!, statusCode: Number(status[2]), statusMessage: status[3] ?? '', headers, rawBody, body };
}
