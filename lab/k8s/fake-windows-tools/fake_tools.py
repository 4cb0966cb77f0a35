"""Imitations of nltest.exe and nslookup.exe inside a gMSA pod, for the lab's kwok exec.

Not Windows: kwok runs `kubectl exec` commands of pods on the fake nodes as local processes (its
ClusterExec rules in $WINKUBE_LAB_STATE/k8s/kwok-exec.yaml); this folder is first on kwok's PATH, so
`nltest.exe` and `nslookup.exe` land here. The output is shaped like the real tools' (the examples of the
Kubernetes "Configure GMSA for Windows Pods" troubleshooting section and Microsoft's nltest docs).

The behaviour comes from the container name (kwok selects the rule, and so WINKUBE_FAKE_SCENARIO, by it):
  healthy            every step succeeds (also any container without a scenario rule)
  no-credspec        nltest /parentdomain fails with 1722 RPC_S_SERVER_UNAVAILABLE
  dns-broken         the credential spec reached the pod, nslookup cannot find the domain
  trust-broken       the secure channel is down (nltest /query 1722) and /sc_reset does not repair it
  trust-reset-fixes  the secure channel is down until nltest /sc_reset:<domain> ran once (state file)
The fake domain is WINKUBE_FAKE_DOMAIN (default contoso.test); its DC dc1.<domain> at 10.245.0.10.
"""

import os
import sys

SUCCESS = 'The command completed successfully'
SCENARIO = os.environ.get('WINKUBE_FAKE_SCENARIO') or 'healthy'
DOMAIN = os.environ.get('WINKUBE_FAKE_DOMAIN') or 'contoso.test'
STATE_DIR = os.environ.get('WINKUBE_FAKE_STATE') or '/tmp'
DC = 'dc1.' + DOMAIN
DC_ADDRESS = '10.245.0.10'


def out(lines, code):
    sys.stdout.write('\r\n'.join(lines) + '\r\n')
    sys.stdout.flush()
    return code


def reset_marker():
    return os.path.join(STATE_DIR, 'fake-nltest-%s.reset' % SCENARIO)


def channel_up():
    if SCENARIO == 'trust-broken':
        return False
    if SCENARIO == 'trust-reset-fixes':
        return os.path.exists(reset_marker())
    return True


def nltest(args):
    if not args:
        return out(['Usage: nltest [/OPTIONS]'], 87)
    option = args[0]
    lower = option.lower()
    if SCENARIO == 'no-credspec':
        if lower == '/parentdomain':
            return out(['Getting parent domain failed: Status = 1722 0x6ba RPC_S_SERVER_UNAVAILABLE'], 1722)
        return out(['I_NetLogonControl failed: Status = 1722 0x6ba RPC_S_SERVER_UNAVAILABLE'], 1722)
    if lower == '/parentdomain':
        return out(['%s. (1)' % DOMAIN, SUCCESS], 0)
    if lower == '/query':
        if channel_up():
            return out(['Flags: 0', 'Connection Status = 0 0x0 NERR_Success', SUCCESS], 0)
        return out(['I_NetLogonControl failed: Status = 1722 0x6ba RPC_S_SERVER_UNAVAILABLE'], 1722)
    if lower.startswith('/sc_reset:'):
        if option.split(':', 1)[1].lower().rstrip('.') != DOMAIN:
            return out(['I_NetLogonControl failed: Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN'], 1355)
        if SCENARIO == 'trust-broken':
            return out(['Flags: 0', 'Trusted DC Name ', 'Trusted DC Connection Status Status = 1311 0x51f '
                        'ERROR_NO_LOGON_SERVERS', SUCCESS], 0)
        if SCENARIO == 'trust-reset-fixes':
            with open(reset_marker(), 'w') as handle:
                handle.write('reset\n')
        return out(['Flags: 30 HAS_IP  HAS_TIMESERV', 'Trusted DC Name \\\\%s' % DC,
                    'Trusted DC Connection Status Status = 0 0x0 NERR_Success', SUCCESS], 0)
    return out(['The parameter is incorrect.'], 87)


def nslookup(args):
    name = (args[0] if args else '').rstrip('.').lower()
    header = ['Server:  %s' % DC, 'Address:  %s' % DC_ADDRESS, '']
    if SCENARIO == 'dns-broken':
        return out(['Server:  UnKnown', 'Address:  10.96.0.10', '',
                    "*** UnKnown can't find %s: Non-existent domain" % name], 1)
    if name in (DOMAIN, DC):
        return out(header + ['Name:    %s' % name, 'Address:  %s' % DC_ADDRESS, ''], 0)
    return out(header + ["*** %s can't find %s: Non-existent domain" % (DC, name)], 1)


def main():
    tool = os.path.basename(sys.argv[1]).lower()
    args = sys.argv[2:]
    if tool.startswith('nltest'):
        return nltest(args)
    if tool.startswith('nslookup'):
        return nslookup(args)
    return out(["'%s' is not recognized as an internal or external command" % tool], 9009)


if __name__ == '__main__':
    sys.exit(main())
