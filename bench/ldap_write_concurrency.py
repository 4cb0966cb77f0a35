"""Does the Samba DC take LDAP writes faster when several are in flight at once? (issue 19, measured, not assumed)

usage (inside scripts/isolated, with a running Samba lab):
    python bench/ldap_write_concurrency.py --samba-env $WINKUBE_LAB_STATE/samba/env [--count 200]
        [--concurrency 1,2,4,8] [--rounds 2] [--classes COUNT] [--output FILE.json]

For each concurrency c, `count` gMSAs are added (the attributes winkube.gmsa.gmsa writes: object class,
sAMAccountName, dNSHostName, encryption types, password interval, a msDS-GroupMSAMembership descriptor),
then each gets one modify (its description), then all are deleted, each phase spread over c threads with one
LDAPS connection each (bound before the clock starts). Rounds alternate the order of the concurrencies, so a
change of the machine's load does not favour one. Prints and writes wall time and writes per second per
phase, with the load average and the machine's CPU share busy during each phase.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench import _busy_jiffies, read_env  # noqa: E402  pylint: disable=wrong-import-position


def connect(samba):
    import ldap3

    ca_file = samba['SAMBA_CA_FILE']

    class _Tls(ldap3.Tls):
        def wrap_socket(self, connection, do_handshake=False):
            context = ssl.create_default_context(cafile=ca_file)
            connection.socket = context.wrap_socket(connection.socket, server_hostname=connection.server.host,
                                                    do_handshake_on_connect=do_handshake)

    server = ldap3.Server(samba['SAMBA_SERVER'], port=int(samba['SAMBA_LDAPS_PORT']), use_ssl=True, tls=_Tls(),
                          get_info=ldap3.NONE, connect_timeout=10)
    conn = ldap3.Connection(server, user=samba['SAMBA_ADMIN_UPN'],
                            password=Path(samba['SAMBA_PASSWORD_FILE']).read_text(), receive_timeout=120,
                            raise_exceptions=False)
    if not conn.bind():
        raise RuntimeError('bind failed: %s' % conn.result)
    return conn


def run_parallel(conns, items, work):
    """work(conn, item) for every item, spread over the connections (one thread each); returns (seconds,
    failures)."""
    chunks = [items[i::len(conns)] for i in range(len(conns))]
    failures = []

    def worker(conn, chunk):
        for item in chunk:
            if not work(conn, item):
                failures.append((item, conn.result))

    threads = [threading.Thread(target=worker, args=(c, chunk)) for c, chunk in zip(conns, chunks)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started, failures


def measure(samba, membership, count, concurrency, prefix):
    base = samba['SAMBA_BASE_DN']
    dns = samba['SAMBA_DNS_DOMAIN']
    names = ['%s%04d' % (prefix, i) for i in range(count)]
    dn = dict((n, 'CN=%s,CN=Managed Service Accounts,%s' % (n, base)) for n in names)
    conns = [connect(samba) for dummy in range(concurrency)]
    phases = {}
    try:
        for phase, work in (
            ('add', lambda c, n: c.add(dn[n], ['top', 'msDS-GroupManagedServiceAccount'], {
                'sAMAccountName': n + '$', 'dNSHostName': '%s.%s' % (n.lower(), dns),
                'msDS-SupportedEncryptionTypes': '24', 'msDS-ManagedPasswordInterval': '30',
                'msDS-GroupMSAMembership': membership})),
            ('modify', lambda c, n: c.modify(dn[n], {'description': [('MODIFY_REPLACE', ['changed'])]})),
            ('delete', lambda c, n: c.delete(dn[n])),
        ):
            load = os.getloadavg()[0]
            busy_before = _busy_jiffies()
            seconds, failures = run_parallel(conns, names, work)
            busy_after = _busy_jiffies()
            total = busy_after[1] - busy_before[1]
            phases[phase] = {'seconds': round(seconds, 3), 'per_second': round(count / seconds, 1),
                             'failures': len(failures), 'first_failure': str(failures[0]) if failures else None,
                             'loadavg_before': round(load, 2),
                             'machine_cpu_busy': round((busy_after[0] - busy_before[0]) / float(total), 3)
                             if total else None}
    finally:
        for conn in conns:
            conn.unbind()
    return phases


def add_cost_by_class(samba, membership, count):
    """Milliseconds per add, on one connection, of a gMSA (the attributes winkube.gmsa.gmsa writes) against
    the simplest group, user and computer: how much of a gMSA add is the DC's own work for that class."""
    base, dns = samba['SAMBA_BASE_DN'], samba['SAMBA_DNS_DOMAIN']
    kinds = (
        ('gmsa', 'CN=Managed Service Accounts', ['top', 'msDS-GroupManagedServiceAccount'],
         lambda n: {'sAMAccountName': n + '$', 'dNSHostName': '%s.%s' % (n.lower(), dns),
                    'msDS-SupportedEncryptionTypes': '24', 'msDS-ManagedPasswordInterval': '30',
                    'msDS-GroupMSAMembership': membership}),
        ('gmsa_minimal', 'CN=Managed Service Accounts', ['top', 'msDS-GroupManagedServiceAccount'],
         lambda n: {'sAMAccountName': n + '$', 'msDS-ManagedPasswordInterval': '30'}),
        ('group', 'CN=Users', ['top', 'group'], lambda n: {'sAMAccountName': n}),
        ('user', 'CN=Users', ['top', 'person', 'organizationalPerson', 'user'], lambda n: {'sAMAccountName': n}),
        ('computer', 'CN=Computers', ['top', 'person', 'organizationalPerson', 'user', 'computer'],
         lambda n: {'sAMAccountName': n + '$'}),
    )
    conn = connect(samba)
    costs = {}
    try:
        for kind, container, classes, attributes in kinds:
            prefix = 'wkk' + secrets.token_hex(2)[:3]
            dns_of = ['CN=%s%04d,%s,%s' % (prefix, i, container, base) for i in range(count)]
            started = time.monotonic()
            for index, dn in enumerate(dns_of):
                if not conn.add(dn, classes, attributes('%s%04d' % (prefix, index))):
                    raise RuntimeError('add of %s failed: %s' % (dn, conn.result))
            costs[kind] = round((time.monotonic() - started) * 1000.0 / count, 1)
            for dn in dns_of:
                conn.delete(dn)
    finally:
        conn.unbind()
    return costs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--samba-env', required=True)
    parser.add_argument('--count', type=int, default=200)
    parser.add_argument('--concurrency', default='1,2,4,8')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--classes', type=int, default=0, metavar='COUNT',
                        help='also add COUNT objects of each class (gMSA, group, user, computer) on one connection '
                             'and report milliseconds per add')
    parser.add_argument('--output')
    args = parser.parse_args()
    samba = read_env(args.samba_env)
    # the descriptor our modules write, built by the collection's model code
    workdir = Path(tempfile.mkdtemp(prefix='winkube-ldapconc-'))
    (workdir / 'ansible_collections' / 'winkube').mkdir(parents=True)
    (workdir / 'ansible_collections' / 'winkube' / 'gmsa').symlink_to(BENCH.parent)
    sys.path.insert(0, str(workdir))
    from ansible_collections.winkube.gmsa.plugins.module_utils.models.security_descriptor import GroupMSAMembership
    membership = GroupMSAMembership.for_principals(['S-1-5-32-544']).to_bytes()
    levels = [int(c) for c in args.concurrency.split(',')]
    report = {'count': args.count, 'rounds': [], 'loadavg_at_start': list(os.getloadavg()),
              'nproc': os.cpu_count()}
    for round_no in range(args.rounds):
        order = levels if round_no % 2 == 0 else list(reversed(levels))
        for level in order:
            prefix = 'wkc' + secrets.token_hex(2)[:3]
            phases = measure(samba, membership, args.count, level, prefix)
            report['rounds'].append({'round': round_no, 'concurrency': level, 'phases': phases})
            shown = ['%s %.1f s (%.0f/s, load %.1f, cpu busy %s)'
                     % (name, v['seconds'], v['per_second'], v['loadavg_before'], v['machine_cpu_busy'])
                     for name, v in phases.items()]
            print('round %d concurrency %d: %s' % (round_no, level, ', '.join(shown)), flush=True)
    if args.classes:
        report['add_ms_by_class'] = add_cost_by_class(samba, membership, args.classes)
        print('ms per add on one connection: %s' % json.dumps(report['add_ms_by_class']), flush=True)
    report['loadavg_at_end'] = list(os.getloadavg())
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
