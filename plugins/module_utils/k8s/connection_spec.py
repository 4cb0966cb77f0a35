# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes connection options under their former name; they live in module_utils/connection/k8s.py."""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import (  # noqa: F401 pylint: disable=unused-import
    K8S_CONNECTION_OPTIONS,
    K8S_CONNECTION_SPEC,
    k8s_argument_spec,
)
