# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The errors of every AD backend (LDAP and the AD cmdlets): one class per failure a caller handles differently,
and the right an account lacks when an operation is refused (for the message)."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.ad.dn import parent_dn


class ADError(Exception):
    """An LDAP operation failed. ``code`` is the LDAP result code, ``dn`` the object concerned."""

    def __init__(self, message, code=None, dn=None, server_message=None):
        super(ADError, self).__init__(message)
        self.message = message
        self.code = code
        self.dn = dn
        self.server_message = server_message

    def __str__(self):
        return self.message


class ADNoSuchObject(ADError):
    pass


class ADAlreadyExists(ADError):
    pass


class ADInsufficientAccess(ADError):
    pass


class ADConstraintViolation(ADError):
    pass


class ADConnectionError(ADError):
    """Connecting or binding failed. ``field`` names the module option most likely at fault."""

    def __init__(self, message, field=None, **kwargs):
        super(ADConnectionError, self).__init__(message, **kwargs)
        self.field = field


def needed_right(operation, dn, object_class=None, attributes=''):
    """The right an account lacks when ``operation`` on ``dn`` is refused (for the error message)."""
    parent = parent_dn(dn or '') or 'the parent container'
    return {
        'add': 'the right Create Child of %s objects on %s' % (object_class or 'this class of', parent),
        'modify': 'Write Property on %s' % (attributes or 'the attributes'),
        'delete': 'Delete on the object or Delete Child on %s' % parent,
        'search': 'Read Property / List Contents',
    }.get(operation, 'the needed right')
