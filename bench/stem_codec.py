#!/usr/bin/python3
"""
bench/stem_codec — Stem's side of bench/codec.ts: RELAY cell pack / unpack throughput
with Python Stem 1.8 (stem.client.cell), run by Debian's /usr/bin/python3.

Two ways to run it:

  /usr/bin/python3 -I bench/stem_codec.py --rounds 5 --seconds 0.25
      runs every measurement and prints one JSON object (cells/s per round).

  /usr/bin/python3 -I bench/stem_codec.py --serve
      prints {"ready": true, ...}, then answers JSON lines, one measurement each:
        {"op": "measure", "mode": "roundtrip"|"pack"|"unpack", "data_len": 498, "lp": 5, "seconds": 0.25}
          -> {"ok": true, "cells": n, "seconds": t, "rate": n / t}
        {"op": "sample", "data_len": 498, "lp": 5} -> {"ok": true, "hex": "<the packed cell>"}
      bench/codec.ts uses this to interleave Stem's rounds with orport's.

What is timed (the same as bench/codec.ts does with orport):
  pack       RelayCell(circ_id, 'RELAY_DATA', data, digest, stream_id).pack(lp)
  unpack     Cell.pop(packed, lp) on a packed cell
  roundtrip  both, one after the other
"""

import argparse
import binascii
import json
import sys
import time

CIRC_ID = 0x80000001
STREAM_ID = 1
DIGEST = 0x12345678
MODES = ('roundtrip', 'pack', 'unpack')
DATA_LENS = (498, 16)


def data_of(length):
  return bytes((i * 7 + 3) & 0xff for i in range(length))


def measure(cell_mod, mode, data_len, lp, seconds):
  RelayCell = cell_mod.RelayCell
  pop = cell_mod.Cell.pop
  data = data_of(data_len)
  packed = RelayCell(CIRC_ID, 'RELAY_DATA', data, DIGEST, STREAM_ID).pack(lp)
  chunk = 200
  count = 0
  sink = 0
  clock = time.perf_counter
  start = clock()
  deadline = start + seconds

  if mode == 'pack':
    while True:
      for _ in range(chunk):
        sink += len(RelayCell(CIRC_ID, 'RELAY_DATA', data, DIGEST, STREAM_ID).pack(lp))
      count += chunk
      if clock() >= deadline:
        break
  elif mode == 'unpack':
    while True:
      for _ in range(chunk):
        cell, _rest = pop(packed, lp)
        sink += len(cell.data)
      count += chunk
      if clock() >= deadline:
        break
  elif mode == 'roundtrip':
    while True:
      for _ in range(chunk):
        cell, _rest = pop(RelayCell(CIRC_ID, 'RELAY_DATA', data, DIGEST, STREAM_ID).pack(lp), lp)
        sink += len(cell.data)
      count += chunk
      if clock() >= deadline:
        break
  else:
    raise ValueError('unknown mode %r' % (mode,))

  elapsed = clock() - start

  if sink <= 0:
    raise AssertionError('nothing was measured')

  return {'ok': True, 'cells': count, 'seconds': elapsed, 'rate': count / elapsed}


def main():
  parser = argparse.ArgumentParser(description = __doc__.strip().splitlines()[0])
  parser.add_argument('--serve', action = 'store_true', help = 'answer JSON-line requests on stdin')
  parser.add_argument('--rounds', type = int, default = 5)
  parser.add_argument('--seconds', type = float, default = 0.25)
  parser.add_argument('--lp', type = int, default = 5)
  args = parser.parse_args()

  def emit(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()

  try:
    import stem
    import stem.client.cell as cell_mod
  except Exception as exc:  # noqa: BLE001 - any import failure means "no Stem"
    emit({'ready': False, 'error': '%s: %s' % (type(exc).__name__, exc)})
    sys.exit(3)

  info = {'ready': True, 'stem': stem.__version__, 'python': '%i.%i.%i' % sys.version_info[:3]}

  if not args.serve:
    results = {}
    for data_len in DATA_LENS:
      for mode in MODES:
        measure(cell_mod, mode, data_len, args.lp, min(args.seconds, 0.1))  # warm up
        rates = [measure(cell_mod, mode, data_len, args.lp, args.seconds)['rate'] for _ in range(args.rounds)]
        results['%s/%i' % (mode, data_len)] = rates
    info['lp'] = args.lp
    info['rates'] = results
    emit(info)
    return

  emit(info)

  for line in sys.stdin:
    line = line.strip()
    if not line:
      continue
    try:
      req = json.loads(line)
      if req.get('op') == 'measure':
        reply = measure(cell_mod, req['mode'], req['data_len'], req.get('lp', 5), req.get('seconds', 0.25))
      elif req.get('op') == 'sample':
        packed = cell_mod.RelayCell(CIRC_ID, 'RELAY_DATA', data_of(req['data_len']), DIGEST, STREAM_ID).pack(req.get('lp', 5))
        reply = {'ok': True, 'hex': binascii.hexlify(packed).decode('ascii')}
      else:
        raise ValueError('unknown op %r' % (req.get('op'),))
    except Exception as exc:  # noqa: BLE001 - reported to the caller
      reply = {'ok': False, 'error': '%s: %s' % (type(exc).__name__, exc)}
    emit(reply)


if __name__ == '__main__':
  main()
