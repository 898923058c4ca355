#!/usr/bin/python3
"""
bench/stem_relay — Stem's side of bench/relay.ts: connect, CREATE_FAST and directory
fetches through a relay's ORPort with Python Stem 1.8's client (stem.client), run by
Debian's /usr/bin/python3. Every time is measured here, with time.perf_counter, so
Python's start-up and the JSON round trips are not part of it.

  /usr/bin/python3 -I bench/stem_relay.py --serve
      prints {"ready": true, "stem": ..., "python": ..., "openssl": ...}, then answers
      JSON lines, one per request:

      {"op": "session", "host": "127.0.0.1", "port": 15003, "paths": ["/tor/server/authority", ...]}
          stem.client.Relay.connect(host, port, [3, 4, 5])   -> connect_ms
          relay.create_circuit()                             -> create_ms
          circ.directory('GET <path> HTTP/1.0\\r\\n\\r\\n', n)   -> one fetch per path, stream
                                                                 ids 1, 2, ... (fresh streams)
          relay.close()                                      (not timed)
        -> {"ok": true, "connect_ms", "create_ms", "tls", "link_protocol",
            "fetches": [{"path", "ms", "status", "raw_bytes", "body_bytes", "sha256"}]}
           (sha256 of the body, inflated for deflate / .z responses)

      {"op": "batch", "host", "port", "path": "/tor/server/authority", "count": 100}
          connect + create_circuit (not timed), then `count` fetches one after another
          on that circuit (stream ids 1..count), timed as a whole
        -> {"ok": true, "total_ms", "fetch_ms": [...], "statuses": [...], "body_bytes": [...], "sha256s": [...]}

      Any exception -> {"ok": false, "stage": "connect"|"create"|"fetch"|..., "error": "..."}
      (the connection is closed; the caller retries on a fresh one and counts the failure).

Stem's client reads one cell per recv() and discards "unread data" before each
CREATE_FAST, so it fails now and then ("wrong size for a LONG field", "We should get a
CREATED_FAST response ..."): bench/relay.ts reports those failures and retries.
"""

import hashlib
import json
import ssl
import sys
import time
import zlib

LINK_PROTOCOLS = [3, 4, 5]


def emit(obj):
  sys.stdout.write(json.dumps(obj) + '\n')
  sys.stdout.flush()


def parse_response(raw, path):
  """(status, body bytes) of a raw HTTP/1.0 response; the body inflated if deflated."""

  end = raw.find(b'\r\n\r\n')

  if end < 0:
    raise ValueError('no end of HTTP headers in a %i byte response' % len(raw))

  head = raw[:end].decode('latin-1').split('\r\n')
  status = int(head[0].split(' ')[1])
  headers = {}

  for line in head[1:]:
    name, _, value = line.partition(':')
    headers[name.strip().lower()] = value.strip()

  body = raw[end + 4:]
  encoding = headers.get('content-encoding', '').lower()

  if encoding in ('deflate', 'x-deflate') or (path.endswith('.z') and encoding != 'identity'):
    body = zlib.decompress(body)

  return status, body


def describe(exc):
  return '%s: %s' % (type(exc).__name__, exc)


def close_quietly(relay):
  if relay is not None:
    try:
      relay.close()
    except Exception:  # noqa: BLE001 - the connection is being thrown away
      pass


def tls_version(relay):
  try:
    return relay._orport._socket.version()
  except Exception:  # noqa: BLE001 - private attribute; informational only
    return None


def session(client, host, port, paths):
  clock = time.perf_counter
  relay = None
  stage = 'connect'

  try:
    t0 = clock()
    relay = client.Relay.connect(host, port, LINK_PROTOCOLS)
    t1 = clock()
    stage = 'create'
    circ = relay.create_circuit()
    t2 = clock()
    fetches = []

    for i, path in enumerate(paths):
      stage = 'fetch %s' % path
      request = 'GET %s HTTP/1.0\r\n\r\n' % path
      s = clock()
      raw = circ.directory(request, i + 1)
      e = clock()
      status, body = parse_response(raw, path)
      fetches.append({
        'path': path,
        'ms': (e - s) * 1000,
        'status': status,
        'raw_bytes': len(raw),
        'body_bytes': len(body),
        'sha256': hashlib.sha256(body).hexdigest(),
      })

    return {
      'ok': True,
      'connect_ms': (t1 - t0) * 1000,
      'create_ms': (t2 - t1) * 1000,
      'tls': tls_version(relay),
      'link_protocol': int(relay.link_protocol),
      'fetches': fetches,
    }
  except Exception as exc:  # noqa: BLE001 - reported to the caller
    return {'ok': False, 'stage': stage, 'error': describe(exc)}
  finally:
    close_quietly(relay)


def batch(client, host, port, path, count):
  clock = time.perf_counter
  relay = None
  stage = 'connect'

  try:
    relay = client.Relay.connect(host, port, LINK_PROTOCOLS)
    stage = 'create'
    circ = relay.create_circuit()
    request = 'GET %s HTTP/1.0\r\n\r\n' % path
    fetch_ms, statuses, sizes, digests = [], [], [], []
    responses = []
    stage = 'fetch'
    start = clock()

    for i in range(count):
      stage = 'fetch #%i' % (i + 1)
      s = clock()
      responses.append(circ.directory(request, i + 1))
      fetch_ms.append((clock() - s) * 1000)

    total = clock() - start

    for i, raw in enumerate(responses):  # parsed after the clock stopped, as bench/relay.ts does
      stage = 'response #%i' % (i + 1)  # Stem returned something that isn't an HTTP response
      status, body = parse_response(raw, path)
      statuses.append(status)
      sizes.append(len(body))
      digests.append(hashlib.sha256(body).hexdigest())

    return {'ok': True, 'total_ms': total * 1000, 'fetch_ms': fetch_ms, 'statuses': statuses, 'body_bytes': sizes, 'sha256s': digests}
  except Exception as exc:  # noqa: BLE001 - reported to the caller
    return {'ok': False, 'stage': stage, 'error': describe(exc)}
  finally:
    close_quietly(relay)


def main():
  if '--serve' not in sys.argv[1:]:
    sys.stderr.write('usage: /usr/bin/python3 -I bench/stem_relay.py --serve  (driven by bench/relay.ts)\n')
    sys.exit(2)

  try:
    import stem
    import stem.client as client
  except Exception as exc:  # noqa: BLE001 - any import failure means "no Stem"
    emit({'ready': False, 'error': describe(exc)})
    sys.exit(3)

  emit({'ready': True, 'stem': stem.__version__, 'python': '%i.%i.%i' % sys.version_info[:3], 'openssl': ssl.OPENSSL_VERSION})

  for line in sys.stdin:
    line = line.strip()

    if not line:
      continue

    try:
      req = json.loads(line)
      op = req.get('op')

      if op == 'session':
        reply = session(client, req['host'], req['port'], req['paths'])
      elif op == 'batch':
        reply = batch(client, req['host'], req['port'], req['path'], req['count'])
      else:
        raise ValueError('unknown op %r' % (op,))
    except Exception as exc:  # noqa: BLE001 - reported to the caller
      reply = {'ok': False, 'stage': 'request', 'error': describe(exc)}

    emit(reply)


if __name__ == '__main__':
  main()
