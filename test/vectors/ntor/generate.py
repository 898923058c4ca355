#!/usr/bin/env python3
"""
test/vectors/ntor/generate.py: regenerates tor-ref-ntor.json and tor-ref-ntorv3.json
by running C tor's own reference implementations of the handshakes (src/test/ntor_ref.py
and src/test/ntor_v3_ref.py from a tor checkout) with fixed keys.

Layer: test data tooling (not run by the tests). It contains no handshake maths: it fixes
the key pairs the reference scripts draw, and stands in for the libraries they import
(curve25519 / donna25519 / pycryptodome) with the `cryptography` package's X25519 and
AES-CTR. See PROVENANCE.md.

    python3 test/vectors/ntor/generate.py /path/to/tor/src/test
"""
import hashlib
import json
import sys
import types

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# Secret keys handed out, in order, whenever a reference script generates a key pair.
QUEUE = []


def next_secret():
    assert QUEUE, 'a reference script drew more key pairs than the vector fixes'
    return QUEUE.pop(0)


def public_of(secret):
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()


def exchange(secret, public):
    return X25519PrivateKey.from_private_bytes(secret).exchange(X25519PublicKey.from_public_bytes(public))


# --- stand-in for python-curve25519's `curve25519.keys` (what ntor_ref.py imports) ---
class _Public:
    def __init__(self, raw):
        self.raw = bytes(raw)

    def serialize(self):
        return self.raw


class _Private:
    def __init__(self, secret=None):
        self.secret = next_secret() if secret is None else secret

    def serialize(self):
        return self.secret

    def get_public(self):
        return _Public(public_of(self.secret))

    def get_shared_key(self, public, hashfunc):
        return hashfunc(exchange(self.secret, public.raw))


keys = types.ModuleType('curve25519.keys')
keys.Private = _Private
keys.Public = _Public
curve = types.ModuleType('curve25519')
curve.keys = keys
sys.modules['curve25519'] = curve
sys.modules['curve25519.keys'] = keys


# --- stand-in for donna25519 (what ntor_v3_ref.py imports) ---
class _DonnaPublic:
    def __init__(self, public):
        self.public = bytes(public)


class _DonnaPrivate:
    def __init__(self, secret=None):
        self.private = next_secret() if secret is None else secret

    @staticmethod
    def load(secret):
        return _DonnaPrivate(bytes(secret))

    def get_public(self):
        return _DonnaPublic(public_of(self.private))

    def do_exchange(self, public):
        return exchange(self.private, public.public)


donna = types.ModuleType('donna25519')
donna.PrivateKey = _DonnaPrivate
donna.PublicKey = _DonnaPublic
sys.modules['donna25519'] = donna


# --- stand-in for pycryptodome's AES-CTR with a 128-bit counter starting at 0 ---
class _Ctr:
    def __init__(self, key):
        self.key = key

    def encrypt(self, data):
        enc = Cipher(algorithms.AES(self.key), modes.CTR(bytes(16))).encryptor()
        return enc.update(data) + enc.finalize()


crypto = types.ModuleType('Crypto')
cipher_pkg = types.ModuleType('Crypto.Cipher')
aes = types.ModuleType('Crypto.Cipher.AES')
aes.MODE_CTR = 'ctr'
aes.new = lambda key, mode, counter=None: _Ctr(key)
cipher_pkg.AES = aes
util_pkg = types.ModuleType('Crypto.Util')
counter = types.ModuleType('Crypto.Util.Counter')
counter.new = lambda bits, initial_value=0: (bits, initial_value)
util_pkg.Counter = counter
for name, mod in {'Crypto': crypto, 'Crypto.Cipher': cipher_pkg, 'Crypto.Cipher.AES': aes, 'Crypto.Util': util_pkg, 'Crypto.Util.Counter': counter}.items():
    sys.modules[name] = mod

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else '.')
QUEUE[:] = [bytes(32)]  # ntor_ref.py draws one key pair at import (demo()'s default argument); unused
import ntor_ref  # noqa: E402  (tor's src/test/ntor_ref.py)
import ntor_v3_ref  # noqa: E402  (tor's src/test/ntor_v3_ref.py)

ntor_v3_ref.p = lambda names, local_vars: None  # the script prints intermediates; keep stdout clean


def label_bytes(label, n=32):
    """Deterministic 'random' bytes for a vector: SHAKE-256 of a label."""
    return hashlib.shake_256(label.encode()).digest(n)


def hexs(b):
    return b.hex()


def ntor_vector(name, b, x, y, node_id, key_bytes=92):
    QUEUE[:] = [x]
    x_key, create = ntor_ref.client_part1(node_id, _Private(b).get_public())
    QUEUE[:] = [y]
    skeys, created = ntor_ref.server(_Private(b), node_id, create, key_bytes)
    ckeys = ntor_ref.client_part2(x_key, created, node_id, _Private(b).get_public(), key_bytes)
    assert skeys == ckeys and not QUEUE
    return dict(name=name, b=hexs(b), B=hexs(public_of(b)), x=hexs(x), X=hexs(public_of(x)), y=hexs(y), Y=hexs(public_of(y)),
                id=hexs(node_id), client_handshake=hexs(create), server_handshake=hexs(created), keys=hexs(ckeys))


def ntorv3_vector(name, b, x, y, node_id, cm, sm, ver, key_bytes=256):
    B = public_of(b)
    QUEUE[:] = [x]
    c_handshake, c_state = ntor_v3_ref.client_phase1(cm, ver, B, node_id)
    cm_got, s_state = ntor_v3_ref.server_part1(c_handshake, ver, b, B, node_id)
    assert cm_got == cm
    QUEUE[:] = [y]
    s_handshake, s_keys = ntor_v3_ref.server_part2(s_state, sm)
    c_keys, sm_got = ntor_v3_ref.client_phase2(c_state, s_handshake)
    assert sm_got == sm and not QUEUE
    keystream = c_keys.take(key_bytes)
    assert keystream == s_keys.take(key_bytes)
    return dict(name=name, b=hexs(b), B=hexs(B), x=hexs(x), X=hexs(public_of(x)), y=hexs(y), Y=hexs(public_of(y)), id=hexs(node_id),
                client_message=hexs(cm), server_message=hexs(sm), verification=hexs(ver),
                client_handshake=hexs(c_handshake), server_handshake=hexs(s_handshake), keystream=hexs(keystream))


# Arti's ntor test vector inputs (crates/tor-proto/src/crypto/handshake/ntor.rs `testvec`),
# re-run for 92 bytes so that KH (bytes 72..92) is covered too.
ARTI_B = bytes.fromhex('4820544f4c4420594f5520444f474954204b454550532048415050454e494e47')
ARTI_X = bytes.fromhex('706f6461792069207075742e2e2e2e2e2e2e2e4a454c4c59206f6e2074686973')
ARTI_Y = bytes.fromhex('70686520737175697272656c2e2e2e2e2e2e2e2e686173206869732067616d65')
ARTI_ID = bytes.fromhex('69546f6c64596f7541626f75745374616972732e')

ntor = [
    ntor_vector('arti-testvec-inputs-92', ARTI_B, ARTI_X, ARTI_Y, ARTI_ID),
    ntor_vector('labelled-keys-92', label_bytes('orport ntor b'), label_bytes('orport ntor x'), label_bytes('orport ntor y'), label_bytes('orport ntor id', 20)),
]

# prop332 X.2's inputs (b, x, y, ID), with tor's circuit-extension verification string and
# real extension lists as messages.
P_B = bytes.fromhex('4051daa5921cfa2a1c27b08451324919538e79e788a81b38cbed097a5dff454a')
P_ID = bytes.fromhex('9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2')
P_X = bytes.fromhex('b825a3719147bcbe5fb1d0b0fcb9c09e51948048e2e3283d2ab7b45b5ef38b49')
P_Y = bytes.fromhex('4865a5b7689dafd978f529291c7171bc159be076b92186405d13220b80e2a053')
VER = b'circuit extend'

ntorv3 = [
    ntorv3_vector('prop332-x2-replayed', P_B, P_X, P_Y, P_ID, b'hello world', b'Hola Mundo', b'xyzzy'),
    ntorv3_vector('circuit-extend-empty-lists', P_B, P_X, P_Y, P_ID, bytes([0]), bytes([0]), VER),
    ntorv3_vector('circuit-extend-cc', label_bytes('orport ntorv3 b'), label_bytes('orport ntorv3 x'), label_bytes('orport ntorv3 y'),
                  label_bytes('orport ntorv3 id'), bytes([1, 1, 0]), bytes([1, 2, 1, 31]), VER),
    ntorv3_vector('circuit-extend-cc-cgo', label_bytes('orport ntorv3 b2'), label_bytes('orport ntorv3 x2'), label_bytes('orport ntorv3 y2'),
                  label_bytes('orport ntorv3 id2'), bytes([2, 1, 0, 3, 2, 2, 6]), bytes([1, 2, 1, 31]), VER),
]

out = sys.argv[2] if len(sys.argv) > 2 else '.'
for fname, vectors in (('tor-ref-ntor.json', ntor), ('tor-ref-ntorv3.json', ntorv3)):
    with open(f'{out}/{fname}', 'w') as f:
        json.dump(vectors, f, indent=2)
        f.write('\n')
