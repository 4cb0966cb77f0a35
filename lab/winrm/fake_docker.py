"""Imitation of plugins/module_utils/winrm/docker_scripts.py for the lab WinRM endpoint (loaded by server.py).

Not Windows: each fake host keeps a small file system in its state, ``host['files']`` (Windows path -> base64
of the file's bytes, paths compared case-insensitively like NTFS), and ``host['file_ops']``, the file
operations done, so tests can see the temporary file and the move. Docker's daemon configuration is a file
like any other (``C:\\ProgramData\\docker\\config\\daemon.json``); tests put it there through the control port
(PUT /state/<host> {"files": {...}}).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import uuid

_SERVER = sys.modules.get('__main__')


class _FakeError(Exception):
    def __init__(self, error):
        super(_FakeError, self).__init__(error.get('message'))
        self.error = error


# server.py turns FakePowerShellError into the bootstrap's structured error result.
FakePowerShellError = getattr(_SERVER, 'FakePowerShellError', _FakeError)


def _key(files, path):
    """The stored key of ``path`` (case-insensitive), or None."""
    lowered = path.lower()
    for key in files:
        if key.lower() == lowered:
            return key
    return None


def _join(parent, child):
    """Join-Path: one backslash between, none added after a trailing separator."""
    return parent + child if parent.endswith(('\\', '/')) else parent + '\\' + child


def _sha256(raw):
    return hashlib.sha256(raw).hexdigest()


def fake_docker_credential_spec(host, data):
    files = host.setdefault('files', {})
    ops = host.setdefault('file_ops', [])
    root = str(data.get('data_root') or '')
    source = 'option'
    if not root:
        root, source = str(data['default_root']), 'default'
        config_key = _key(files, str(data['daemon_config']))
        if data.get('discover') and config_key is not None:
            raw = base64.b64decode(files[config_key])
            try:
                settings = json.loads(raw.decode('utf-8-sig'))
            except ValueError:
                raise FakePowerShellError({'message': 'Invalid JSON primitive: %s.' % raw[:20].decode('utf-8', 'replace'),
                                           'category': 'NotSpecified', 'command': 'ConvertFrom-Json',
                                           'error_id': 'System.ArgumentException,Microsoft.PowerShell.Commands.'
                                                       'ConvertFromJsonCommand',
                                           'exception': 'System.ArgumentException'})
            found = settings.get('data-root') if isinstance(settings, dict) else None
            if found:
                root, source = str(found), 'daemon.json'
    folder = _join(root, 'CredentialSpecs')
    path = _join(folder, str(data['file_name']))
    key = _key(files, path)
    existed = key is not None
    before_sha = before_content = before_size = None
    if existed:
        old = base64.b64decode(files[key])
        before_sha, before_size = _sha256(old), len(old)
        if len(old) <= int(data['max_before']):
            before_content = files[key]
    if data.get('state') == 'absent':
        changed = existed
        after_sha = None
        if changed and not data.get('check_mode'):
            del files[key]
            ops.append(['remove', path])
    else:
        want = str(data['sha256'])
        changed = before_sha != want
        after_sha = want
        if changed and not data.get('check_mode'):
            raw = base64.b64decode(str(data['content']))
            if _sha256(raw) != want:
                raise FakePowerShellError({'message': 'the content arrived damaged (SHA-256 mismatch); nothing was written'})
            temp = _join(folder, '.%s.tmp' % uuid.uuid4().hex)
            files[temp] = base64.b64encode(raw).decode('ascii')
            ops.append(['write', temp])
            files.pop(key, None)
            files[key or path] = files.pop(temp)
            ops.append(['replace' if existed else 'move', temp, key or path])
            after_sha = _sha256(base64.b64decode(files[key or path]))
    return {
        'computer_name': host['computer_name'],
        'data_root': root,
        'data_root_source': source,
        'path': path,
        'existed': existed,
        'before_sha256': before_sha,
        'before_size': before_size,
        'before_content': before_content,
        'after_sha256': after_sha,
        'changed': changed,
        'written': bool(changed and not data.get('check_mode')),
    }


FAKE_SCRIPTS = {'docker_credential_spec': fake_docker_credential_spec}
