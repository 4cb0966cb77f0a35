"""Pure parts of the LDAP client and the KDS root key logic (no server)."""

from __future__ import annotations

import datetime
import os
import struct
import subprocess
import sys

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.ad import dn, kds
from ansible_collections.winkube.gmsa.plugins.module_utils.ad import ldap_client as lc
from ansible_collections.winkube.gmsa.plugins.module_utils.models import security_descriptor as sd

UTC = datetime.timezone.utc


def test_escape_filter_value_is_rfc4515():
    assert lc.escape_filter_value('a*b(c)d\\e\x00') == 'a\\2ab\\28c\\29d\\5ce\\00'
    assert lc.escape_filter_value(b'\x01\xff') == '\\01\\ff'
    assert lc.escape_filter_value(5) == '5'


def test_escape_rdn_value():
    assert lc.escape_rdn_value('Smith, John') == 'Smith\\, John'
    assert lc.escape_rdn_value('#x') == '\\#x'


def test_sid_round_trip():
    sid = 'S-1-5-21-2126449477-2524075714-3094792973'
    assert sd.sid_from_bytes(sd.sid_to_bytes(sid)) == sid
    assert sd.sid_from_bytes(sd.sid_to_bytes('S-1-5-32-544')) == 'S-1-5-32-544'


def test_guid_and_dn_helpers():
    raw = bytes.fromhex('ae184824ac87cd4f92ece79e5252348a')
    assert lc.guid_to_str(raw) == '244818ae-87ac-4fcd-92ec-e79e5252348a'
    assert dn.dn_to_dns('DC=Contoso,DC=com') == 'contoso.com'
    assert dn.dn_to_dns('CN=a\\,b,OU=x,DC=emea,DC=contoso,DC=com') == 'emea.contoso.com'


def test_entry_decoding_and_case_insensitive_lookup():
    entry = lc.Entry('CN=x', {'objectSid': [sd.sid_to_bytes('S-1-5-32-544')], 'sAMAccountName': [b'web$'],
                              'servicePrincipalName': [b'HTTP/a', b'HTTP/b']})
    assert entry.get('samaccountname') == 'web$'
    assert entry.values('SERVICEPRINCIPALNAME') == ['HTTP/a', 'HTTP/b']
    assert isinstance(entry.get('objectsid'), bytes) and entry.sid() == 'S-1-5-32-544'
    assert entry.values('missing') == [] and entry.get('missing', 1) == 1


def test_open_directory_refuses_clear_text_simple_bind():
    with pytest.raises(lc.ADConnectionError) as err:
        lc.open_directory(dict(server='127.0.0.1', encryption='none', auth_method='simple', username='u', password='p'))
    assert err.value.field == 'encryption'


def test_open_directory_missing_ca_file(tmp_path):
    with pytest.raises(lc.ADConnectionError, match='ca_file .* does not exist') as err:
        lc.open_directory(dict(server='127.0.0.1', username='u', password='secret', ca_file=str(tmp_path / 'no.pem')))
    assert err.value.field == 'ca_file' and 'secret' not in str(err.value)


def test_unreachable_message():
    with pytest.raises(lc.ADConnectionError, match=r'cannot reach 127\.0\.0\.1:1 within 2s') as err:
        lc.open_directory(dict(server='127.0.0.1', port=1, timeout=2, username='u', password='p'))
    assert err.value.field == 'server'


def test_kds_blobs():
    blob = kds.ffc_dh_parameters_blob()
    assert len(blob) == 524 and blob[4:8] == b'DHPM' and struct.unpack('<I', blob[:4])[0] == 524
    assert kds.kdf_parameters_blob().hex() == '00000000010000000e000000000000005300480041003500310032000000'
    assert kds.kdf_hash_name(kds.kdf_parameters_blob()) == 'SHA512'
    assert kds.kdf_hash_name(b'junk') is None


def test_nt_time_round_trip_and_interval():
    moment = datetime.datetime(2026, 11, 26, 11, 5, 53, 669694, tzinfo=UTC)
    assert kds.from_nt_time(kds.nt_time(moment)) == moment
    start = kds.interval_start(moment)
    assert start <= moment < start + kds.KEY_CYCLE
    assert kds.nt_time(start) % (36000 * 10**7) == 0


def test_parse_time():
    assert kds.parse_time('2026-01-31T08:00:00Z') == datetime.datetime(2026, 1, 31, 8, tzinfo=UTC)
    assert kds.parse_time('2026-01-31 09:00:00+01:00') == datetime.datetime(2026, 1, 31, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match='ISO 8601'):
        kds.parse_time('next tuesday')


def _key(cn, start, create, **extra):
    raw = {'cn': [cn.encode()], 'msKds-Version': [b'1'], 'msKds-KDFAlgorithmID': [b'SP800_108_CTR_HMAC'],
           'msKds-KDFParam': [kds.kdf_parameters_blob()], 'msKds-RootKeyData': [b'k' * 64],
           'msKds-UseStartTime': [str(kds.nt_time(start)).encode()],
           'msKds-CreateTime': [str(kds.nt_time(create)).encode()]}
    raw.update(extra)
    return lc.Entry('CN=%s,CN=Master Root Keys' % cn, raw)


def test_describe_key_usable_pending_malformed():
    now = datetime.datetime(2026, 11, 26, 12, 34, 56, tzinfo=UTC)
    assert kds.interval_start(now) < now
    lab = kds.describe_key(_key('eb06f79c-e17e-c9ba-a899-4f6c4bda51c8', now - kds.LAB_BACKDATE, now), now)
    assert lab['usable'] and lab['well_formed'] and lab['effective']
    fresh = kds.describe_key(_key('0f25c1b5-2a3d-4a68-8f7e-8f1fb5fd9d6e', now, now), now)
    assert fresh['effective'] and not fresh['usable'] and fresh['well_formed']
    assert kds.parse_time(fresh['usable_from']) > now
    bad = kds.describe_key(_key('not-a-guid', now - kds.LAB_BACKDATE, now, **{'msKds-RootKeyData': [b'x']}), now)
    assert not bad['usable'] and len(bad['problems']) == 2


def test_current_key_is_newest_created_usable():
    now = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    old = kds.describe_key(_key('00000000-0000-0000-0000-000000000001', now - datetime.timedelta(days=30),
                                now - datetime.timedelta(days=30)), now)
    new = kds.describe_key(_key('00000000-0000-0000-0000-000000000002', now - datetime.timedelta(hours=11),
                                now - datetime.timedelta(hours=1)), now)
    future = kds.describe_key(_key('00000000-0000-0000-0000-000000000003', now + datetime.timedelta(days=1), now), now)
    keys = sorted([old, new, future], key=lambda k: k['_create_ticks'], reverse=True)
    assert kds.current_key(keys)['id'].endswith('2')
    assert kds.pending_key(keys)['id'].endswith('3')
    assert kds.current_key([future]) is None
    assert '_start' not in kds.public(new)


def test_kerberos_without_gssapi_names_the_package(monkeypatch):
    # gssapi is imported only when a Kerberos bind is asked for; where it is missing the error says so
    monkeypatch.setitem(sys.modules, 'gssapi', None)  # makes `import gssapi` raise ImportError
    with pytest.raises(lc.ADConnectionError, match='gssapi') as err:
        lc.open_directory(dict(server='127.0.0.1', auth_method='kerberos', encryption='ldaps',
                               username='svc@CONTOSO.TEST', password='secret'))
    assert err.value.field == 'auth_method' and 'secret' not in str(err.value)


def test_ad_modules_import_neither_gssapi_nor_yaml():
    # every AD module call pays its imports again (a new interpreter, sources compiled from the AnsiballZ zip):
    # gssapi (Kerberos only) and yaml (inline YAML documents only) are imported where they are used
    code = ('import sys\n'
            'from ansible_collections.winkube.gmsa.plugins.modules import gmsa, host_group, kds_root_key\n'
            # what AnsibleModule's invocation log imports when a module runs
            'from ansible_collections.winkube.gmsa.plugins.module_utils import secrets\n'
            'print(sorted(m for m in ("gssapi", "yaml") if m in sys.modules))\n')
    out = subprocess.run([sys.executable, '-c', code], check=True, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    assert out.stdout.strip() == '[]'
