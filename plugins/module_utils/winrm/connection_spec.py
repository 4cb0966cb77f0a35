# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WinRM connection options under their former name; they live in module_utils/connection/winrm.py."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.winrm import (  # noqa: F401 pylint: disable=unused-import
    CLUSTER_OPTION,
    WINRM_CONNECTION_OPTIONS,
    WINRM_CONNECTION_SPEC,
    check_connection,
    winrm_argument_spec,
    winrm_module_kwargs,
)
