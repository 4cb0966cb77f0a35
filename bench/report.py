"""Render a benchmark JSON (bench/results/*.json) as the Markdown used in bench/RESULTS.md.

usage: python bench/report.py bench/results/bench-<time>.json
"""

from __future__ import annotations

import json
import sys


def fmt(value, digits=1, star=''):
    if value is None:
        return '-'
    if isinstance(value, float):
        return ('%.' + str(digits) + 'f%s') % (value, star)
    return '%s%s' % (value, star)


def render(report):
    out = []
    m = report['machine']
    out.append('Date: %s. Machine: %s cores (`nproc`), %s GB memory, %s, kernel %s, Python %s; ansible-core %s, '
               'ldap3 %s, kubernetes client %s. Load average (1 min) at start: %.2f.'
               % (report['date'], m['nproc'], m['memory_gb'], m['cpu'], m['kernel'], m['python'],
                  report['versions'].get('ansible_core'), report['versions'].get('ldap3'),
                  report['versions'].get('kubernetes_client'), m['loadavg_at_start'][0]))
    out.append('')
    out.append('| N | phase | ours s | baseline s | ours / baseline | speed-up | AD speed-up | k8s speed-up '
               '| k8s requests ours / baseline | k8s writes ours / baseline | LDAP ops ours / baseline '
               '| LDAP writes ours / baseline | tree PSS MB ours / baseline | max RSS MB ours / baseline |')
    out.append('|' + '---|' * 14)
    for r in report['rows']:
        star = '*' if r['baseline_extrapolated'] else ''
        out.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s |' % (
            r['n'], r['phase'], fmt(r['ours_wall_s']), fmt(r['baseline_wall_s'], 1, star),
            fmt(r['ours_over_baseline'], 4), fmt(r['speedup'], 1, star), fmt(r.get('ad_speedup'), 1, star),
            fmt(r.get('k8s_speedup'), 1, star),
            r['ours_k8s_requests'], fmt(r['baseline_k8s_requests'], 0, star),
            r['ours_k8s_writes'], fmt(r['baseline_k8s_writes'], 0, star),
            r['ours_ldap_ops'], fmt(r['baseline_ldap_ops'], 0, star),
            r['ours_ldap_writes'], fmt(r['baseline_ldap_writes'], 0, star),
            fmt(r['ours_tree_peak_pss_mb'], 0), fmt(r['baseline_tree_peak_pss_mb'], 0),
            fmt(r['ours_max_rss_mb'], 0), fmt(r['baseline_max_rss_mb'], 0)))
    if any(r['baseline_extrapolated'] for r in report['rows']):
        out.append('')
        out.append('`*` the baseline ran on the first %d gMSAs (and their 4 objects each) and is scaled linearly to N.'
                   % report['baseline_sample'])
    out.append('')
    out.append('| N | no-op LISTs per resource (ours) | no-op k8s req / object | no-op LDAP ops / object '
               '| zero writes on no-op (k8s, LDAP) | no-op < 20 s | >= 20x baseline | tree PSS < 300 MB |')
    out.append('|' + '---|' * 8)
    for n, size in report['sizes'].items():
        t = size['targets']
        out.append('| %s | %s | %s | %s | %s, %s | %s | %s | %s (peak %s MB) |' % (
            n, ', '.join('%s %d' % kv for kv in sorted(t['noop_lists_by_resource'].items())),
            t['k8s_requests_per_object_noop'], t['ldap_ops_per_object_noop'],
            t['noop_zero_k8s_writes'], t['noop_zero_ldap_writes'],
            'n/a (N<500)' if t['noop_wall_under_20s'] is None else t['noop_wall_under_20s'],
            t.get('noop_at_least_20x_faster_than_baseline', '-'), t['memory_under_300mb'], t['peak_tree_pss_mb']))
    return '\n'.join(out)


def main():
    with open(sys.argv[1]) as handle:
        print(render(json.load(handle)))


if __name__ == '__main__':
    main()
