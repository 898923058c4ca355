#!/usr/bin/python3
"""
stem_peer — Python Stem (1.8.x, stem.client) as a reference peer for orport's tests.

Run with Debian's interpreter, isolated from the caller's environment:

  /usr/bin/python3 -I test/support/stem_peer.py

Protocol: JSON lines. The first line written is a greeting,
  {"ready": true, "stem": "1.8.1", "python": "3.11.2"}
or {"ready": false, "error": "..."} (then exit status 3) when stem.client does
not import. Then one JSON object per input line, in order; every request may
carry an "id" which is echoed back.

  {"op": "pack", "cell": "RELAY", "lp": 3, "fields": {...}}
    -> {"ok": true, "hex": "<Stem's packed cell>"}
  {"op": "pop", "lp": 3, "hex": "<bytes>"}
    -> {"ok": true, "cell": {<decoded fields>}, "rest": "<hex>"}
  failures -> {"ok": false, "error": "<ExceptionType>: <message>"}

Fields (snake_case, as Stem names them; bytes are hex strings):
  PADDING        payload
  RELAY          circ_id, command (int or name), data (hex) | data_text (str),
                 digest: {"int": n} | {"bytes": hex} | {"sha1": hex of what to hash},
                 stream_id, recognized, unused
  DESTROY        circ_id, reason (int or name), unused
  CREATE_FAST    circ_id, key_material, unused
  CREATED_FAST   circ_id, derivative_key, key_material, unused
  VERSIONS       versions (list of int)
  NETINFO        timestamp_ms (int, UTC), receiver_address, sender_addresses, unused
                 where an address is {"type": int|name|null, "text": str} or
                 {"type": int|name, "hex": hex}
  VPADDING       size (int) and/or payload
  CERTS          certificates: [{"type": int|name, "value": hex}], unused
  AUTH_CHALLENGE methods (list of int), challenge, unused

Decoded cells are reported as Stem's public attributes (vars(), minus "_"-prefixed
caches) plus "name": bytes as hex, datetimes as integer unix seconds, Address and
Certificate objects as dicts of their attributes.
"""

import binascii
import datetime
import hashlib
import json
import sys


def main():
  out = sys.stdout

  def emit(obj):
    out.write(json.dumps(obj, separators=(',', ':')))
    out.write('\n')

  try:
    import stem
    import stem.client.cell as cell_mod
    import stem.client.datatype as dt
    import stem.util
  except Exception as exc:  # noqa: BLE001 - any import failure means "no Stem"
    emit({'ready': False, 'error': '%s: %s' % (type(exc).__name__, exc)})
    out.flush()
    sys.exit(3)

  EPOCH = datetime.datetime(1970, 1, 1)

  def b(hex_value):
    return binascii.unhexlify(hex_value) if hex_value is not None else None

  def address(spec):
    if 'text' in spec:
      return dt.Address(spec['text'], spec.get('type'))
    return dt.Address(b(spec['hex']), spec['type'])

  def relay_digest(spec):
    if 'int' in spec:
      return spec['int']
    if 'bytes' in spec:
      return b(spec['bytes'])
    if 'sha1' in spec:
      return hashlib.sha1(b(spec['sha1']))
    raise ValueError('bad digest spec %r' % (spec,))

  def build(name, f):
    unused = b(f.get('unused', '')) or b''
    if name == 'PADDING':
      return cell_mod.PaddingCell(b(f.get('payload')))
    if name == 'RELAY':
      data = f['data_text'] if 'data_text' in f else b(f.get('data', ''))
      return cell_mod.RelayCell(f['circ_id'], f['command'], data, relay_digest(f.get('digest', {'int': 0})), f.get('stream_id', 0), f.get('recognized', 0), unused)
    if name == 'DESTROY':
      return cell_mod.DestroyCell(f['circ_id'], f.get('reason', dt.CloseReason.NONE), unused)
    if name == 'CREATE_FAST':
      return cell_mod.CreateFastCell(f['circ_id'], b(f.get('key_material')), unused)
    if name == 'CREATED_FAST':
      return cell_mod.CreatedFastCell(f['circ_id'], b(f['derivative_key']), b(f.get('key_material')), unused)
    if name == 'VERSIONS':
      return cell_mod.VersionsCell(list(f['versions']))
    if name == 'NETINFO':
      ts = f.get('timestamp_ms')
      timestamp = EPOCH + datetime.timedelta(milliseconds = ts) if ts is not None else None
      return cell_mod.NetinfoCell(address(f['receiver_address']), [address(a) for a in f['sender_addresses']], timestamp, unused)
    if name == 'VPADDING':
      return cell_mod.VPaddingCell(f.get('size'), b(f.get('payload')))
    if name == 'CERTS':
      return cell_mod.CertsCell([dt.Certificate(c['type'], b(c['value'])) for c in f['certificates']], unused)
    if name == 'AUTH_CHALLENGE':
      return cell_mod.AuthChallengeCell(list(f['methods']), b(f.get('challenge')), unused)
    raise NotImplementedError('stem_peer cannot build %s cells' % name)

  def plain(value):
    if isinstance(value, (bytes, bytearray)):
      return binascii.hexlify(value).decode('ascii')
    if isinstance(value, datetime.datetime):
      return int(stem.util.datetime_to_unix(value))
    if isinstance(value, (list, tuple)):
      return [plain(v) for v in value]
    if isinstance(value, (dt.Address, dt.Certificate, dt.LinkSpecifier)):
      return dict((k, plain(v)) for k, v in vars(value).items() if not k.startswith('_'))
    if isinstance(value, dt.LinkProtocol):
      return int(value)
    return value

  def describe(cell):
    fields = dict((k, plain(v)) for k, v in vars(cell).items() if not k.startswith('_'))
    fields['name'] = type(cell).NAME
    return fields

  def handle(req):
    op = req.get('op')
    if op == 'pack':
      return {'ok': True, 'hex': binascii.hexlify(build(req['cell'], req.get('fields', {})).pack(req['lp'])).decode('ascii')}
    if op == 'pop':
      cell, rest = cell_mod.Cell.pop(b(req['hex']), req['lp'])
      return {'ok': True, 'cell': describe(cell), 'rest': binascii.hexlify(rest).decode('ascii')}
    if op == 'ping':
      return {'ok': True}
    raise ValueError('unknown op %r' % (op,))

  emit({'ready': True, 'stem': stem.__version__, 'python': '%i.%i.%i' % sys.version_info[:3]})
  out.flush()

  for line in sys.stdin:
    line = line.strip()
    if not line:
      continue
    req = None
    try:
      req = json.loads(line)
      reply = handle(req)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, not fatal
      reply = {'ok': False, 'error': '%s: %s' % (type(exc).__name__, exc)}
    if isinstance(req, dict) and 'id' in req:
      reply['id'] = req['id']
    emit(reply)
    if req is not None and isinstance(req, dict) and req.get('flush', False):
      out.flush()
  out.flush()


if __name__ == '__main__':
  main()
