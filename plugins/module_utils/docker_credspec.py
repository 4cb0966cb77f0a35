# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docker_credential_spec's logic, shared by both of its forms: the module (controller-side WinRM sessions,
deprecated) and the action plugin (an inventory host's own connection).

The checks of names, data roots and content, the file's exact bytes, the script's data, the Swarm form and the
Swarm file on the machine that runs the code. The Swarm file is written here from the bytes themselves (never
through a template or ansible.builtin.copy, which may re-serialise JSON text), so it is byte-identical to the
files on the hosts on every ansible-core.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile

from ansible_collections.winkube.gmsa.plugins.module_utils.models.credential_spec import (
    CredentialSpecError,
    build_credential_spec,
    to_bytes,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.models.crd import (
    parse_credspec_content,
    validate_credspec_content,
)

DEFAULT_DATA_ROOT = 'C:\\ProgramData\\Docker'
DAEMON_CONFIG = 'C:\\ProgramData\\docker\\config\\daemon.json'
MAX_BEFORE = 262144  # an existing file up to this size comes back for the diff
SWARM_FILE_MODE = 0o644  # the file holds no secret; a pipeline's docker config create reads it
# Docker's (swarmkit's) rule for config names, which is also safe as a Windows file name.
_NAME = re.compile(r'^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$')
_DEVICE = re.compile(r'^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?$', re.IGNORECASE)
_WINDOWS_PATH = re.compile(r'^([A-Za-z]:[\\/]|\\\\[^\\/]+\\[^\\/]+)')
_BAD_PATH_CHARS = re.compile(r'[\x00-\x1f"<>|?*:]')

# The options of both forms (the module adds the WinRM connection options of its deprecated form).
OPTIONS = dict(
    name=dict(type='str', required=True),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    credspec=dict(type='raw', no_log=True),  # PluginInput may be a secret (secrets.py)
    domain=dict(type='dict'),
    account=dict(type='str'),
    additional_accounts=dict(type='list', elements='raw', default=[]),
    host_account_config=dict(type='dict', no_log=True),
    data_root=dict(type='str'),
    discover_data_root=dict(type='bool', default=False),
    swarm_config_name=dict(type='str'),
    swarm_file=dict(type='path'),
)
OPTION_RULES = dict(mutually_exclusive=[('credspec', 'domain')], required_together=[('domain', 'account')])


def name_error(option, value):
    """Why ``value`` cannot be a credential spec / Swarm config name (None when it can)."""
    if not isinstance(value, str) or not _NAME.match(value) or '..' in value or _DEVICE.match(value):
        return ('%s: %r is not a valid credential spec name; use 1 to 64 letters, digits, "-", "_" and ".", '
                'starting and ending with a letter or digit, without "..", path separators or a Windows device '
                'name (CON, NUL, COM1, ...); it becomes the file name <name>.json and the Swarm config name'
                % (option, value))
    return None


def data_root_error(value):
    """Why ``value`` cannot be Docker's data root (None when it can)."""
    if value is None:
        return None
    if not _WINDOWS_PATH.match(value) or _BAD_PATH_CHARS.search(value[2:]) or \
            any(part == '..' for part in re.split(r'[\\/]', value)):
        return ('data_root: %r is not an absolute Windows path such as D:\\docker (a drive letter and a '
                'backslash, or \\\\server\\share; no "..", quotes, :, <, >, |, ?, * or control characters '
                'after the drive)' % (value,))
    return None


def credential_spec_from(params):
    """The credential spec dict from O(credspec) or O(domain)+O(account); raises ValueError naming the option."""
    if params['credspec'] is not None:
        try:
            spec = parse_credspec_content(params['credspec'])
        except ValueError as exc:
            raise ValueError('credspec: %s' % exc)
        problems = validate_credspec_content(spec, 'credspec')
        if problems:
            raise ValueError('; '.join(problems))
        return spec
    try:
        return build_credential_spec(params['domain'], params['account'],
                                     additional_accounts=params['additional_accounts'],
                                     host_account=params['host_account_config'])
    except CredentialSpecError as exc:
        raise ValueError('domain/account: %s' % exc)


def check_params(params):
    """(name, Swarm config name, content bytes or None, problems) of both forms' options, before anything runs."""
    name = params['name']
    if isinstance(name, str) and name.lower().endswith('.json'):
        name = name[:-5]
    config_name = params.get('swarm_config_name') or name
    problems = [p for p in (name_error('name', name), data_root_error(params['data_root'])) if p]
    if params.get('swarm_config_name') is not None and name_error('swarm_config_name', config_name):
        problems.append(name_error('swarm_config_name', config_name))
    if params['data_root'] and params['discover_data_root']:
        problems.append('data_root and discover_data_root=true exclude each other: give one of them')
    content = None
    if params['state'] == 'present':
        if params['credspec'] is None and params['domain'] is None:
            problems.append('state=present needs the credential spec: give credspec, or domain and account')
        else:
            try:
                content = to_bytes(credential_spec_from(params))
            except ValueError as exc:
                problems.append(str(exc))
    return name, config_name, content, problems


def script_data(state, file_name, data_root, discover, content, check_mode):
    """The $Data of the docker_credential_spec script (content: bytes, or None with state=absent)."""
    return {
        'state': state,
        'file_name': file_name,
        'data_root': data_root,
        'discover': discover,
        'daemon_config': DAEMON_CONFIG,
        'default_root': DEFAULT_DATA_ROOT,
        'content': base64.b64encode(content).decode('ascii') if content is not None else None,
        'sha256': hashlib.sha256(content).hexdigest() if content is not None else None,
        'max_before': MAX_BEFORE,
        'check_mode': check_mode,
    }


def text(raw):
    """Bytes as text for results and diffs."""
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        return '<%d bytes, not UTF-8>' % len(raw)


def before_text(answer):
    """The diff's 'before' of one host from the script's answer."""
    if answer.get('before_content') is not None:
        return text(base64.b64decode(answer['before_content']))
    if answer.get('existed'):
        return '<%s bytes, SHA-256 %s>' % (answer.get('before_size'), answer.get('before_sha256'))
    return ''


def read_back_error(path, answer, sha256):
    """Why a written file does not hold the wanted bytes (None when it does)."""
    if answer.get('after_sha256') != sha256:
        return '%s was written but reads back with SHA-256 %s instead of %s' % (path, answer.get('after_sha256'), sha256)
    return None


def swarm_form(config_name, file_name, content, swarm_file):
    """The RV(swarm) result before the Swarm file is looked at."""
    return {
        'config_name': config_name,
        'content': text(content) if content is not None else None,
        'config_create': 'docker config create %s %s' % (config_name, file_name),
        'credential_spec_argument': '--credential-spec="config://%s"' % config_name,
        'file': swarm_file,
        'file_changed': False,
    }


def write_swarm_file(path, content, check_mode):
    """Make the local file ``path`` hold exactly ``content`` (bytes), or remove it (content None).

    Returns (changed, before text). In check mode nothing is created, written or removed. A write goes to a
    temporary file in the same folder and is renamed over the old one; missing folders are created."""
    before = None
    if os.path.isfile(path):
        with open(path, 'rb') as handle:
            before = handle.read()
    changed = before != content
    if changed and not check_mode:
        if content is None:
            os.remove(path)
        else:
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                os.makedirs(folder)
            fd, temp = tempfile.mkstemp(dir=folder, prefix='.%s.' % os.path.basename(path))
            try:
                with os.fdopen(fd, 'wb') as handle:
                    handle.write(content)
                os.chmod(temp, SWARM_FILE_MODE)
                os.replace(temp, path)
            except BaseException:
                if os.path.exists(temp):
                    os.remove(temp)
                raise
    return changed, '' if before is None else text(before)
