"""Samba's own NDR code (python3-samba in Debian's /usr/bin/python3) as an independent reader of the security
descriptors the collection and the tests write: the test venv has no python3-samba, so each check runs the
system interpreter. A missing python3-samba fails the caller; nothing is skipped."""

from __future__ import annotations

import json
import subprocess

SAMBA_READ = r"""
import json, sys
from samba.dcerpc import security
from samba.ndr import ndr_pack, ndr_unpack
out = {}
for name, hexed in json.load(sys.stdin).items():
    raw = bytes.fromhex(hexed)
    sd = ndr_unpack(security.descriptor, raw)
    aces = sd.dacl.aces if sd.dacl is not None else []
    out[name] = {'repacked': ndr_pack(sd).hex(), 'sddl': sd.as_sddl(),
                 'allowed': [str(a.trustee) for a in aces if a.type == security.SEC_ACE_TYPE_ACCESS_ALLOWED]}
json.dump(out, sys.stdout)
"""


def samba_read(values):
    """{name: {'repacked': hex of Samba's ndr_pack(ndr_unpack(value)), 'sddl', 'allowed': SIDs of allow ACEs}}."""
    proc = subprocess.run(['/usr/bin/python3', '-c', SAMBA_READ], input=json.dumps({k: v.hex() for k, v in values.items()}),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, 'python3-samba is needed to read the descriptors back: %s' % proc.stderr[-2000:]
    return json.loads(proc.stdout)


def samba_allowed_sids(values):
    """{name: SIDs with an allow ACE}, decoded by Samba's NDR code, not by the collection's codec."""
    return {name: seen['allowed'] for name, seen in samba_read(values).items()}


def assert_samba_reads_back(raw):
    """Samba decodes ``raw`` and packs it back to the same bytes; returns its SDDL."""
    seen = samba_read({'sd': raw})['sd']
    assert seen['repacked'] == raw.hex(), 'Samba packs the descriptor differently:\n%s\n%s' % (seen['repacked'], raw.hex())
    return seen['sddl']
