#!/usr/bin/python3
"""
bench/stem_descriptor — Stem's side of bench/directory.ts: parsing (and, where Stem can,
verifying) a microdesc consensus, the authorities' key certificates and the
microdescriptors with Python Stem 1.8's stem.descriptor, run by Debian's /usr/bin/python3.
Every time is measured here with time.perf_counter, so Python's start-up, reading the
files and the JSON round trips are not part of it.

Layer: a benchmark peer (reads files, writes JSON; starts nothing, opens no socket).

  /usr/bin/python3 -I bench/stem_descriptor.py DIR [--rounds 11] [--warmup 2]
      times the documents in DIR (below) for --warmup untimed rounds, then --rounds
      rounds, and prints one JSON object: {"stem", "python", "rounds": [round, ...]}
  /usr/bin/python3 -I bench/stem_descriptor.py --serve
      prints {"ready": true, "stem": ..., "python": ..., "cryptography": ...}, then answers
      JSON lines, one per request (how bench/directory.ts interleaves its rounds with ours):
      {"op": "round", "dir": DIR} -> {"ok": true, ...one round...}
      Any exception -> {"ok": false, "stage": ..., "error": "..."}

DIR holds `consensus` (required; a microdesc or ns flavour consensus), and optionally
`certs` (key certificates, concatenated) and `microdescs` (microdescriptors,
concatenated, as a directory cache serves them). Leading `@type` annotation lines (as in
CollecTor's files) are dropped before timing, as bench/directory.ts drops them for orport.

One round, each step timed on its own (ms):
  consensus_ms     stem.descriptor.networkstatus.NetworkStatusDocumentV3(text, validate=True)
                   (Stem picks the flavour from `network-status-version 3 microdesc`: the
                   router entries are RouterStatusEntryMicroV3; the same as parse_file(...,
                   'network-status-microdesc-consensus-3 1.0', DocumentHandler.DOCUMENT,
                   validate=True), which the first round checks)
  certs_ms         list(stem.descriptor.parse_file(certs, 'dir-key-certificate-3 1.0',
                   validate=True)): parsing only; Stem 1.8.1 checks neither the
                   certification nor the cross-certificate of a key certificate
  stem_signatures_ms   document.validate_signatures(key_certs), Stem's own check, as it is.
                   Stem 1.8.1 digests the document with SHA-1 whatever the signature's
                   algorithm; a microdesc consensus is signed over SHA-256 (tor signs only
                   the ns flavour over SHA-1), so it rejects it. Its outcome is reported.
  signatures_ms    the same check done right with Stem's own pieces: the signed range from
                   document._content_range('network-status-version', 'directory-signature '),
                   hashed with each signature's algorithm (sha1 / sha256), and each
                   signature opened by document._digest_for_signature(signing_key,
                   signature) (Stem's RSA); valid_signatures counts those that match
  microdescs_ms    list(stem.descriptor.parse_file(microdescs, 'microdescriptor 1.0',
                   validate=True)), each one's digest() (SHA-256, base64: the `m` value),
                   and the match against the consensus' digests (kept / dropped)
Also per round, to check that both sides read the same documents: router and signature
counts, the flavour, and sha256 over the sorted "fingerprint digest" lines of the routers
(`m` digest, or the descriptor digest in hex for the ns flavour) and over the sorted
microdescriptor digests.
"""

import hashlib
import io
import json
import sys
import time

_state = {}


def emit(obj):
  sys.stdout.write(json.dumps(obj) + '\n')
  sys.stdout.flush()


def describe(exc):
  return '%s: %s' % (type(exc).__name__, str(exc).split('\n')[0][:200])


def strip_annotations(data):
  """Drops leading '@...' annotation lines (CollecTor's @type)."""

  while data.startswith(b'@'):
    nl = data.find(b'\n')
    data = b'' if nl < 0 else data[nl + 1:]

  return data


def read_dir(path):
  docs = {}

  for name in ('consensus', 'certs', 'microdescs'):
    try:
      with open('%s/%s' % (path, name), 'rb') as f:
        docs[name] = strip_annotations(f.read())
    except FileNotFoundError:
      pass

  if 'consensus' not in docs:
    raise ValueError('%s has no consensus file' % path)

  return docs


def sorted_digest(lines):
  return hashlib.sha256('\n'.join(sorted(lines)).encode('ascii')).hexdigest()


def one_round(path):
  import stem.descriptor
  from stem.descriptor import DocumentHandler
  from stem.descriptor.networkstatus import NetworkStatusDocumentV3

  clock = time.perf_counter
  docs = _state.get(path)

  if docs is None:
    docs = _state[path] = read_dir(path)

  out = {'ok': True}
  stage = 'consensus'

  try:
    t0 = clock()
    doc = NetworkStatusDocumentV3(docs['consensus'], validate=True)
    out['consensus_ms'] = (clock() - t0) * 1000
    micro = bool(doc.is_microdescriptor)
    out['flavor'] = 'microdesc' if micro else 'ns'
    out['routers'] = len(doc.routers)
    out['signatures'] = len(doc.signatures)

    if micro:
      digests = set(r.microdescriptor_digest for r in doc.routers.values())
      out['routers_sha256'] = sorted_digest('%s %s' % (r.fingerprint, r.microdescriptor_digest) for r in doc.routers.values())
    else:
      digests = set()
      out['routers_sha256'] = sorted_digest('%s %s' % (r.fingerprint, r.digest.upper()) for r in doc.routers.values())

    if not _state.get(('checked', path)):
      # Once: parse_file with the flavour's type and DocumentHandler.DOCUMENT reads it alike.
      stage = 'consensus via parse_file'
      kind = 'network-status-microdesc-consensus-3 1.0' if micro else 'network-status-consensus-3 1.0'
      same = list(stem.descriptor.parse_file(io.BytesIO(docs['consensus']), descriptor_type=kind, document_handler=DocumentHandler.DOCUMENT, validate=True))
      out['parse_file_routers'] = len(same[0].routers) if same else 0
      _state[('checked', path)] = True

    if 'certs' in docs:
      stage = 'certs'
      t0 = clock()
      certs = list(stem.descriptor.parse_file(io.BytesIO(docs['certs']), descriptor_type='dir-key-certificate-3 1.0', validate=True))
      out['certs_ms'] = (clock() - t0) * 1000
      out['certs'] = len(certs)

      stage = 'validate_signatures'
      t0 = clock()

      try:
        doc.validate_signatures(certs)
        out['stem_signatures_outcome'] = 'accepted'
      except Exception as exc:  # noqa: BLE001 - Stem's verdict, reported as it is
        out['stem_signatures_outcome'] = 'rejected (%s)' % describe(exc)

      out['stem_signatures_ms'] = (clock() - t0) * 1000

      stage = 'signatures'
      t0 = clock()
      content = doc._content_range('network-status-version', 'directory-signature ')
      local = {'sha1': hashlib.sha1(content).hexdigest().upper(), 'sha256': hashlib.sha256(content).hexdigest().upper()}
      keys = dict((c.fingerprint, c.signing_key) for c in certs)
      valid, errors = 0, []

      for sig in doc.signatures:
        method = (sig.method or 'sha1').lower()

        if sig.identity not in keys or method not in local:
          continue

        try:
          if doc._digest_for_signature(keys[sig.identity], sig.signature) == local[method]:
            valid += 1
        except ValueError as exc:
          errors.append(describe(exc))

      out['signatures_ms'] = (clock() - t0) * 1000
      out['valid_signatures'] = valid

      if errors:
        out['signature_errors'] = errors[:3]

    if 'microdescs' in docs:
      stage = 'microdescs'
      t0 = clock()
      mds = list(stem.descriptor.parse_file(io.BytesIO(docs['microdescs']), descriptor_type='microdescriptor 1.0', validate=True))
      md_digests = [md.digest() for md in mds]
      kept = [d for d in md_digests if d in digests]
      out['microdescs_ms'] = (clock() - t0) * 1000
      out['microdescs'] = len(mds)
      out['kept'] = len(kept)
      out['dropped'] = len(md_digests) - len(kept)
      out['microdescs_sha256'] = sorted_digest(md_digests)

    return out
  except Exception as exc:  # noqa: BLE001 - reported to the caller
    return {'ok': False, 'stage': stage, 'error': describe(exc)}


def versions():
  import stem

  info = {'stem': stem.__version__, 'python': '%i.%i.%i' % sys.version_info[:3]}

  try:
    import cryptography
    info['cryptography'] = cryptography.__version__
  except Exception:  # noqa: BLE001 - informational
    info['cryptography'] = None

  return info


def serve():
  try:
    info = versions()
    import stem.descriptor.networkstatus  # noqa: F401 - fail here, not in the first round
  except Exception as exc:  # noqa: BLE001 - any import failure means "no Stem"
    emit({'ready': False, 'error': describe(exc)})
    sys.exit(3)

  emit(dict(ready=True, **info))

  for line in sys.stdin:
    line = line.strip()

    if not line:
      continue

    try:
      req = json.loads(line)

      if req.get('op') != 'round':
        raise ValueError('unknown op %r' % (req.get('op'),))

      reply = one_round(req['dir'])
    except Exception as exc:  # noqa: BLE001 - reported to the caller
      reply = {'ok': False, 'stage': 'request', 'error': describe(exc)}

    emit(reply)


def main():
  args = sys.argv[1:]

  if args == ['--serve']:
    return serve()

  usage = 'usage: /usr/bin/python3 -I bench/stem_descriptor.py DIR [--rounds N] [--warmup N] | --serve\n'
  path, rounds, warmup = None, 11, 2
  i = 0

  while i < len(args):
    if args[i] in ('--rounds', '--warmup') and i + 1 < len(args) and args[i + 1].isdigit():
      if args[i] == '--rounds':
        rounds = int(args[i + 1])
      else:
        warmup = int(args[i + 1])
      i += 2
    elif args[i] in ('-h', '--help'):
      sys.stdout.write(usage)
      return 0
    elif path is None and not args[i].startswith('-'):
      path = args[i]
      i += 1
    else:
      sys.stderr.write(usage)
      return 2

  if path is None:
    sys.stderr.write(usage)
    return 2

  for _ in range(warmup):
    one_round(path)

  results = [one_round(path) for _ in range(rounds)]
  emit(dict(rounds=results, **versions()))
  return 0 if all(r.get('ok') for r in results) else 1


if __name__ == '__main__':
  sys.exit(main())
