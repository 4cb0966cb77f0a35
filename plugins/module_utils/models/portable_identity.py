# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The portable identity of non-domain-joined Windows nodes (pure: no I/O).

Non-domain-joined nodes run ``ccg.exe`` with a plugin that fetches the credentials of a standard domain
user (the "portable identity") from a secret store and uses them to retrieve the gMSA's password. This
module holds what can be decided without a server:

* ``generate_password(length)``: a random password (``secrets``) meeting AD's complexity rule, without the
  characters that break the secret formats below or Ansible templating (``: ; \\ " ' { } % $`` and blanks);
* ``unicode_pwd(password)``: the value AD's ``unicodePwd`` takes (the password in double quotes, UTF-16LE);
* the secret values each vendor plugin reads: ``key_vault_secret_value`` (Azure Key Vault plugin:
  ``<domain FQDN>\\<user>:<password>``) and ``secrets_manager_secret_value`` (AWS plugin: JSON with
  ``username``, ``password``, ``domainName``);
* ``check_user_sam`` for a user's sAMAccountName (20 characters, the characters AD refuses).
"""

from __future__ import annotations

import json
import secrets
import string

USER_SAM_MAX_LENGTH = 20
SAM_FORBIDDEN = '"/\\[]:;|=,+*?<>@'
SYMBOLS = '-_.!+=@~^*()[]'  # no : ; \ " ' { } % $ # or blanks (secret formats, YAML, Jinja)
MIN_GENERATED_LENGTH = 16
MAX_PASSWORD_LENGTH = 256


class IdentityError(ValueError):
    """An input for the portable identity is not acceptable."""


def generate_password(length=32):
    """A random password of ``length`` characters with upper and lower case letters, digits and symbols."""
    length = int(length)
    if not MIN_GENERATED_LENGTH <= length <= MAX_PASSWORD_LENGTH:
        raise IdentityError('password_length must be between %d and %d (got %d)'
                            % (MIN_GENERATED_LENGTH, MAX_PASSWORD_LENGTH, length))
    alphabet = string.ascii_letters + string.digits + SYMBOLS
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits, SYMBOLS)
    while True:
        value = ''.join(secrets.choice(alphabet) for dummy in range(length))
        # AD complexity needs three of the four classes; ask for all four, and start with a letter
        if all(any(c in cls for c in value) for cls in classes) and value[0].isalpha():
            return value


def check_password(value):
    """A password given by the user: non-empty, no NUL or line breaks, at most 256 characters."""
    if not isinstance(value, str) or not value:
        raise IdentityError('password must be a non-empty string')
    if any(c in value for c in '\x00\r\n'):
        raise IdentityError('password must not contain NUL or line breaks')
    if len(value) > MAX_PASSWORD_LENGTH:
        raise IdentityError('password is longer than %d characters' % MAX_PASSWORD_LENGTH)


def unicode_pwd(password):
    """The value of unicodePwd: the password in double quotes, encoded UTF-16LE ([MS-ADTS] 3.1.1.3.1.5)."""
    return ('"%s"' % password).encode('utf-16-le')


def check_user_sam(value):
    """Raise IdentityError naming the rule a user's sAMAccountName breaks."""
    if not value or value != value.strip():
        raise IdentityError('sAMAccountName %r must be non-empty without leading or trailing blanks' % (value,))
    if len(value) > USER_SAM_MAX_LENGTH:
        raise IdentityError('sAMAccountName %r has %d characters; a user sAMAccountName has at most %d; set '
                            'sam_account_name to a shorter name' % (value, len(value), USER_SAM_MAX_LENGTH))
    bad = sorted(set(c for c in value if c in SAM_FORBIDDEN or ord(c) < 32 or ord(c) == 127))
    if bad:
        raise IdentityError('sAMAccountName %r contains characters not allowed: %s (not allowed: %s and control '
                            'characters)' % (value, ' '.join(repr(c) for c in bad), ' '.join(SAM_FORBIDDEN)))
    if value.endswith('$'):
        raise IdentityError('sAMAccountName %r ends with $, which marks computer accounts and gMSAs, not users'
                            % value)
    if value.strip('.') == '' or value.endswith('.'):
        raise IdentityError('sAMAccountName %r must not end with a dot or consist only of dots' % value)


def check_cn(value):
    """The object's cn: non-empty, no control characters, no blanks around it, at most 64 characters."""
    if not value or value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise IdentityError('name %r must be non-empty, without control characters and without leading or '
                            'trailing blanks' % (value,))
    if len(value) > 64:
        raise IdentityError('name %r is longer than 64 characters (the limit of cn)' % value)


def key_vault_secret_value(domain_dns, sam, password):
    """The secret value the Azure Key Vault ccg plugin reads: ``<domain FQDN>\\<user>:<password>``."""
    return '%s\\%s:%s' % (domain_dns, sam, password)


def secrets_manager_secret_value(domain_dns, sam, password):
    """The SecretString the AWS ccg plugin reads from Secrets Manager: JSON username, password, domainName."""
    return json.dumps({'username': sam, 'password': password, 'domainName': domain_dns})


def credentials(domain_dns, netbios, sam, password):
    """Every form of the identity's credentials a store may want (see docs/portable-identity.md)."""
    return {
        'username': sam,
        'password': password,
        'domain_name': domain_dns,
        'netbios_name': netbios,
        'user_principal_name': '%s@%s' % (sam, domain_dns),
        'azure_key_vault_secret': key_vault_secret_value(domain_dns, sam, password),
        'aws_secrets_manager_secret': secrets_manager_secret_value(domain_dns, sam, password),
    }


def secret_data(creds):
    """The keys of the Kubernetes Secret written by the module (string values; the caller encodes them)."""
    return {
        'username': creds['username'],
        'password': creds['password'],
        'domainName': creds['domain_name'],
        'azureKeyVaultSecret': creds['azure_key_vault_secret'],
        'awsSecretsManagerSecret': creds['aws_secrets_manager_secret'],
    }
