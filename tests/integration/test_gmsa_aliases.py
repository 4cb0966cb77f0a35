"""winkube.gmsa.gmsa accepts microsoft.ad.service_account's option names where the meaning is the same
(``dns_hostname``, ``spn``): against the real Samba AD DC, the values given under those names are what the
directory holds afterwards, and the second run with the same names changes nothing."""

from __future__ import annotations

import secrets

# run_module is a fixture of test_gmsa, used here by its name
from test_gmsa import gmsa_entry, run_module  # noqa: F401 pylint: disable=unused-import


def test_service_account_option_names(run_module, samba_lab):  # noqa: F811 pylint: disable=redefined-outer-name
    name = 'ga%s' % secrets.token_hex(3)
    host = '%s.contoso.test' % name
    spns = ['HTTP/%s' % host, 'host/%s' % host]
    try:
        res = run_module(name=name, dns_hostname=host, spn={'set': spns})
        assert res.get('changed') is True, res
        assert res['accounts'][0]['dns_host_name'] == host
        entry = gmsa_entry(samba_lab, name + '$')
        assert entry is not None
        raw = entry['raw_attributes']
        assert [v.decode() for v in raw['dNSHostName']] == [host]
        assert sorted(v.decode() for v in raw['servicePrincipalName']) == sorted(spns)
        again = run_module(accounts=[{'name': name, 'dns_hostname': host, 'spn': {'set': spns}}])
        assert again.get('changed') is False and again['ldap_operations']['writes'] == 0, again
    finally:
        run_module(name=name, state='absent')
