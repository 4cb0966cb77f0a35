# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AnsibleModule every module of the collection uses: text options refuse lists and dicts.

Ansible's ``type='str'`` converts any value to text, so ``description: [a, b]`` would reach Active Directory
as the string ``['a', 'b']``. :class:`AnsibleModule` here keeps the argument specs as they are (``type:
str`` in the spec and in DOCUMENTATION, which ``ansible-test sanity`` compares; a callable ``type`` would
not pass that check) and, after Ansible's own validation and before the module does anything, compares
the values as the user gave them with the spec: a list or dict where the spec wants text (``str``,
``path``, or ``list`` of ``str``/``path`` elements) fails the module with the option's full name, also
inside nested ``options`` (``winrm.username``, ``service_accounts[0].name``). Numbers and booleans are
still accepted as text, as Ansible does everywhere.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule as _AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.secrets import mask_structured_secrets

TEXT_TYPES = ('str', 'path')


def _kind(value):
    if isinstance(value, dict):
        return 'a dict'
    if isinstance(value, (list, tuple, set)):
        return 'a list'
    return None


def wrong_types(spec, params, prefix=''):
    """[(option, message)] for every text option of ``spec`` given a list or dict in ``params``."""
    errors = []
    if not isinstance(params, dict):
        return errors
    for name, option in spec.items():
        for key in [name] + list(option.get('aliases') or []):
            if key not in params or params[key] is None:
                continue
            value = params[key]
            where = prefix + key
            wanted = option.get('type', 'str')
            elements = option.get('elements')
            if wanted in TEXT_TYPES and _kind(value):
                errors.append((where, 'option %s must be a single text value (%s), but %s was given; write it as '
                               'one string, quoted if needed' % (where, wanted, _kind(value))))
            elif wanted == 'list' and elements in TEXT_TYPES and isinstance(value, list):
                for index, item in enumerate(value):
                    if _kind(item):
                        errors.append(('%s[%d]' % (where, index), 'option %s[%d] must be a text value (a list of %s), '
                                       'but %s was given' % (where, index, elements, _kind(item))))
            elif option.get('options') and wanted == 'dict' and isinstance(value, dict):
                errors.extend(wrong_types(option['options'], value, where + '.'))
            elif option.get('options') and wanted == 'list' and elements == 'dict' and isinstance(value, list):
                for index, item in enumerate(value):
                    errors.extend(wrong_types(option['options'], item, '%s[%d].' % (where, index)))
    return errors


class AnsibleModule(_AnsibleModule):
    """ansible.module_utils.basic.AnsibleModule that refuses lists and dicts for text options (see above) and
    narrows the masking of structured options (secrets.mask_structured_secrets) once, before anything is logged
    or returned."""

    _structured_secrets_masked = False

    def _mask_structured_secrets(self):
        if not self._structured_secrets_masked:
            mask_structured_secrets(self)
            self._structured_secrets_masked = True

    def _log_invocation(self):
        # before Ansible logs the invocation, not only after: masking each of the thousands of strings of 2,000
        # credential specs in that log line one by one took seconds
        self._mask_structured_secrets()
        super(AnsibleModule, self)._log_invocation()

    def _load_params(self):
        super(AnsibleModule, self)._load_params()
        # checked on the values as given, before Ansible's validation turns a list into its text form, and
        # reported after it (Ansible's own errors come first); a deep copy of the parameters for a later check
        # cost a module called with 500 credential specs about 0.1 s
        self._wrong_types = wrong_types(self.argument_spec, self.params)

    def __init__(self, *args, **kwargs):
        super(AnsibleModule, self).__init__(*args, **kwargs)
        self._mask_structured_secrets()  # a no_log task skips the invocation log
        errors = getattr(self, '_wrong_types', None) or []
        if errors:
            self.fail_json(msg='; '.join(message for _name, message in errors) + '. Nothing was changed.',
                           failed_option=errors[0][0])
