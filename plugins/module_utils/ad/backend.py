# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that picks the AD backend: ``connect(module)`` returns a bound ``ldap_client.Directory``
(``backend: ldap``) or a ``winrm_directory.WinRMDirectory`` (``backend: winrm``), which have the same interface."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.ad import ldap_client
from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import check_backend


def connect(module):
    """Check the connection options against the backend, then connect; fails the module with a clear message."""
    errors = check_backend(module.params)
    if errors:
        module.fail_json(msg='; '.join(message for _option, message in errors) + ' (nothing was changed)',
                         failed_options=sorted(set(option for option, _message in errors)))
    if module.params.get('backend') == 'winrm':
        from ansible_collections.winkube.gmsa.plugins.module_utils.ad import winrm_directory
        return winrm_directory.connect(module)
    return ldap_client.connect(module)
