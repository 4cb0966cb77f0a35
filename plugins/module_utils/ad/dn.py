# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Distinguished names as text: split, parent, comparison key, DNS name. Pure, no I/O."""

from __future__ import annotations


def split_dn(dn):
    """The RDNs of a DN, first to last; escaped commas (``\\,``) stay inside their RDN."""
    if isinstance(dn, (bytes, bytearray)):
        dn = bytes(dn).decode('utf-8')
    parts, current, escaped = [], '', False
    for char in dn:
        if escaped:
            current += char
            escaped = False
        elif char == '\\':
            current += char
            escaped = True
        elif char == ',':
            parts.append(current)
            current = ''
        else:
            current += char
    if current:
        parts.append(current)
    return parts


def parent_dn(dn):
    """The DN without its first RDN ('' for a single RDN)."""
    return ','.join(split_dn(dn)[1:])


def normalize_dn(dn):
    """Comparison key of a DN: lower case, no blanks around separators (escapes kept)."""
    out = []
    for part in split_dn(dn):
        key, sep, value = part.partition('=')
        out.append(key.strip().lower() + sep + value.strip().lower())
    return ','.join(out)


def dn_to_dns(dn):
    """'DC=contoso,DC=com' -> 'contoso.com' (only the DC= components)."""
    labels = []
    for part in split_dn(dn):
        key, _sep, value = part.partition('=')
        if key.strip().lower() == 'dc':
            labels.append(value.strip())
    return '.'.join(labels).lower()
