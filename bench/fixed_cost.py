"""Fixed cost of one module call, piece by piece: CPU time of fresh Python processes that import more and more.

usage: python bench/fixed_cost.py [--python PY] [--repeat 7] [--output FILE.json]

Each step is a new interpreter (as every Ansible module call is) that imports what the steps before it did
plus one more thing; the figure is the user+system CPU time of that process (getrusage of the waited-for
child), the minimum of --repeat runs, so a busy machine inflates it less than wall time. The Kubernetes step
loads a kubeconfig (a token user and inline CA data, written to a temporary folder) and builds the transport
the way every Kubernetes module call does, and records whether that imported the kubernetes package (it should
not: only exec plugins, auth-provider and malformed kubeconfigs need it; its cost is the step after). Also
measured in one process: decoding a msDS-GroupMSAMembership descriptor (the security-descriptor code every gmsa
and host_group call runs once per existing account).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MU = 'ansible_collections.winkube.gmsa.plugins.module_utils'
K8S_CALL = ('from %s.k8s import engine, client as kc; from %s.models import crd, rbac; '
            'kc.connect({"kubeconfig": KUBECONFIG}); import sys; K8S_IMPORTED = "kubernetes" in sys.modules'
            % (MU, MU))
STEPS = [
    ('python start-up (python -c pass)', ''),
    ('+ ansible.module_utils.basic (every module)', 'import ansible.module_utils.basic'),
    ('+ urllib3, yaml (our Kubernetes transport)', 'import urllib3, yaml'),
    ('+ our Kubernetes engine and models, a kubeconfig loaded (a Kubernetes module call)', K8S_CALL),
    ('+ kubernetes (client and config: only the fallback loads the kubeconfig with it)',
     'from kubernetes import client, config'),
    ('+ ldap3 (the AD modules)', 'import ldap3'),
    ('+ our AD code and the security-descriptor model',
     'from %s.ad import engine as ade, ldap_client; from %s.models import security_descriptor' % (MU, MU)),
]


def write_kubeconfig(folder):
    path = folder / 'kubeconfig'
    path.write_text(json.dumps({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'bench',
        'clusters': [{'name': 'bench', 'cluster': {'server': 'https://127.0.0.1:6443', 'certificate-authority-data':
                                                   base64.b64encode(b'not a certificate').decode()}}],
        'users': [{'name': 'bench', 'user': {'token': 'bench-token'}}],
        'contexts': [{'name': 'bench', 'context': {'cluster': 'bench', 'user': 'bench'}}]}))
    return path


def cpu_of(python, code, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([python, '-c', code or 'pass'], check=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--python', default=sys.executable)
    parser.add_argument('--repeat', type=int, default=7)
    parser.add_argument('--output')
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix='winkube-fixedcost-'))
    (workdir / 'ansible_collections' / 'winkube').mkdir(parents=True)
    (workdir / 'ansible_collections' / 'winkube' / 'gmsa').symlink_to(BENCH.parent)
    env = dict(os.environ, PYTHONPATH=str(workdir), PYTHONDONTWRITEBYTECODE='')
    code = ['KUBECONFIG = %r' % str(write_kubeconfig(workdir))]
    rows, previous = [], 0.0
    for label, step in STEPS:
        if step:
            code.append(step)
        cpu = min(cpu_of(args.python, '; '.join(code), env) for dummy in range(args.repeat))
        rows.append({'step': label, 'cpu_s_total': round(cpu, 3), 'cpu_s_added': round(cpu - previous, 3)})
        previous = cpu
    probe = subprocess.run([args.python, '-c', '; '.join(code[:code.index(K8S_CALL) + 1] + ['print(K8S_IMPORTED)'])],
                           capture_output=True, text=True, check=True, env=env)
    decode = subprocess.run([args.python, '-c', (
        'import timeit\n'
        'from %s.models.security_descriptor import GroupMSAMembership as G\n'
        'raw = G.for_principals(["S-1-5-21-1-2-3-%%d" %% i for i in range(1100, 1103)]).to_bytes()\n'
        'n = 2000\n'
        'print(min(timeit.repeat(lambda: G.from_bytes(raw), number=n, repeat=5)) / n)\n') % MU],
        capture_output=True, text=True, check=True, env=env)
    report = {'loadavg': list(os.getloadavg()), 'repeat': args.repeat, 'steps': rows,
              'kubernetes_imported_by_module_call': probe.stdout.strip() == 'True',
              'sd_decode_ms': round(1000 * float(decode.stdout.strip()), 4)}
    for row in rows:
        print('%-84s %6.3f s  (+%.3f s)' % (row['step'], row['cpu_s_total'], row['cpu_s_added']))
    print('a Kubernetes module call imported the kubernetes package: %s' % report['kubernetes_imported_by_module_call'])
    print('decoding one msDS-GroupMSAMembership (3 ACEs): %.4f ms' % report['sd_decode_ms'])
    print('load average: %s' % report['loadavg'])
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
