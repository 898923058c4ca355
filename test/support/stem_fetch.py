#!/usr/bin/python3
"""Fetches one directory document with Python Stem's client (the reference peer).

usage: stem_fetch.py HOST ORPORT PATH  -> the raw HTTP response on stdout.
Stem's client pops one cell per read and fails now and then ("wrong size for a LONG
field"); a failed attempt is retried a few times on a fresh connection.
"""
import sys

import stem.client

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
last = None
for attempt in range(5):
    try:
        with stem.client.Relay.connect(host, port, [3, 4, 5]) as relay:
            circ = relay.create_circuit()
            response = circ.directory('GET %s HTTP/1.0\r\n\r\n' % path, 1)
        sys.stdout.buffer.write(response)
        sys.exit(0)
    except Exception as exc:  # Stem raises ValueError, ProtocolError, SocketError…
        last = exc
sys.stderr.write('stem failed 5 times: %r\n' % (last,))
sys.exit(1)
