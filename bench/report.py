"""Render a benchmark JSON (bench/results/*.json) as the Markdown used in bench/RESULTS.md.

usage: python bench/report.py bench/results/bench-<time>.json
"""

from __future__ import annotations

import json
import sys


def _fig(fig, key, fmt='%s'):
    if not fig:
        return '-'
    if key not in fig:
        return 'DNF' if fig.get('did_not_finish') else 'failed'
    return fmt % fig[key]


def _load(fig):
    if not fig or 'loadavg_before' not in fig or not fig['loadavg_before']:
        return '-'
    busy = fig.get('machine_cpu_busy')
    return '%.1f-%.1f%s' % (fig['loadavg_before'][0], fig['loadavg_after'][0],
                            ' (%d%%)' % round(100 * busy) if busy is not None else '')


def per_item_budget(report):
    budget = report.get('per_item_budget_s')
    if budget is None or budget == report.get('budget_s'):
        return ''
    return ' (%d s for the per-item sides)' % budget


def render(report):
    out = []
    m, v = report['machine'], report['versions']
    out.append('Date: %s. Machine: %s cores (`nproc`), %s GB memory, %s, kernel %s, Python %s; ansible-core %s, '
               'kubernetes.core %s, community.general %s, kubernetes client %s, ldap3 %s, python-ldap %s. '
               'Load average (1 min) at start %.2f, at end %s. Budget per peer run: %d s%s.'
               % (report['date'], m['nproc'], m['memory_gb'], m['cpu'], m['kernel'], m['python'],
                  v.get('ansible_core'), v.get('kubernetes.core'), v.get('community.general'),
                  v.get('kubernetes_client'), v.get('ldap3'), v.get('python_ldap'), m['loadavg_at_start'][0],
                  '%.2f' % m['loadavg_at_end'][0] if m.get('loadavg_at_end') else '(run cut short)',
                  report.get('budget_s', 0), per_item_budget(report)))
    out.append('')
    out.append('| N | phase | side | wall s | CPU s | k8s requests | k8s writes | LDAP ops | LDAP writes '
               '| tree PSS MB | load 1 min before-after (machine CPU busy) |')
    out.append('|' + '---|' * 11)
    for r in report['rows']:
        figs = dict(r['sides'])
        for side, fig in figs.items():
            out.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
                r['n'], r['phase'], side, _fig(fig, 'wall_s', '%.1f'), _fig(fig, 'cpu_s', '%.1f'),
                _fig(fig, 'k8s_requests'), _fig(fig, 'k8s_writes'), _fig(fig, 'ldap_ops'), _fig(fig, 'ldap_writes'),
                _fig(fig, 'tree_peak_pss_mb', '%.0f'), _load(fig)))
        best = r.get('best_peers')
        if best:
            out.append('| %s | %s | **best peers** (%s) | %.1f | %.1f | %s | %s | %s | %s | %.0f | summed |' % (
                r['n'], r['phase'], ' + '.join(best['sides']), best['wall_s'], best['cpu_s'], best['k8s_requests'],
                best['k8s_writes'], best['ldap_ops'], best['ldap_writes'], best['tree_peak_pss_mb']))
    out.append('')
    out.append('| N | phase | ours s | best peers s | ours faster than best peers (wall) | (CPU) | typical playbook s '
               '| ours faster than typical |')
    out.append('|' + '---|' * 8)
    for r in report['rows']:
        best = r.get('best_peers')
        out.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
            r['n'], r['phase'], '%.1f' % r['ours_wall_s'] if r['ours_wall_s'] is not None else '-',
            '%.1f' % best['wall_s'] if best else '-',
            '%.1fx' % r['speedup_vs_best_peers'] if r.get('speedup_vs_best_peers') else '-',
            '%.1fx' % r['cpu_ratio_vs_best_peers'] if r.get('cpu_ratio_vs_best_peers') else '-',
            _fig(r['sides'].get('baseline'), 'wall_s', '%.1f'),
            '%.1fx' % r['speedup'] if r.get('speedup') else '-'))
    skipped = [(n, side, reason) for n, size in report['sizes'].items()
               for side, reason in size.get('skipped_sides', {}).items()]
    dnf = [(r['n'], side, r['phase'], fig.get('reason'), fig.get('done_before_kill'))
           for r in report['rows'] for side, fig in r['sides'].items() if fig and 'wall_s' not in fig]
    if skipped or dnf:
        out.append('')
        out.append('Not measured:')
        out.append('')
        for n, side, phase, reason, done in dnf:
            progress = ''
            if done:
                progress = ('; until then %d k8s requests (%d writes), %d LDAP operations (%d writes), load %.1f-%.1f'
                            % (done['k8s_requests'], done['k8s_writes'], done['ldap_ops'], done['ldap_writes'],
                               done['loadavg_before'][0], done['loadavg_after'][0]))
            out.append('- %s, N=%s, %s: %s%s' % (side, n, phase, reason, progress))
        for n, side, reason in skipped:
            out.append('- %s, N=%s: %s' % (side, n, reason))
    out.append('')
    out.append('| N | ours no-op ms/gMSA | ours converge ms/gMSA | no-op LISTs per resource | zero writes on no-op '
               '(k8s, LDAP) | peak tree PSS MB | targets of issue 19 checked at this N |')
    out.append('|' + '---|' * 7)
    for n, size in report['sizes'].items():
        t = size.get('targets') or {}
        if not t.get('noop_lists_by_resource') and t.get('measured') is False:
            continue
        checks = ', '.join('%s: %s' % (k, t[k]) for k in (
            'noop_under_3s', 'converge_under_15s', 'noop_under_8s', 'noop_at_least_5x_faster_than_best_peers',
            'converge_at_least_2x_faster_than_best_peers', 'memory_under_300mb') if k in t)
        out.append('| %s | %s | %s | %s | %s, %s | %s | %s |' % (
            n, t.get('noop_ms_per_gmsa'), t.get('converge_ms_per_gmsa'),
            ', '.join('%s %d' % kv for kv in sorted(t.get('noop_lists_by_resource', {}).items())),
            t.get('noop_zero_k8s_writes'), t.get('noop_zero_ldap_writes'), t.get('peak_tree_pss_mb'), checks))
    out.extend(render_parts(report))
    out.extend(render_floor(report))
    return '\n'.join(out)


def render_floor(report):
    """Ours against Ansible's floor (side `floor`: the same four tasks and arguments, modules doing nothing)."""
    rows = [r for r in report['rows'] if r.get('ours_above_floor_s') is not None]
    if not rows:
        return []
    out = ['', '| N | phase | ours wall s | floor wall s | ours above floor s | ours CPU s | floor CPU s '
           '| ours above floor CPU s |', '|' + '---|' * 8]
    for r in rows:
        ours, floor = r['sides']['ours'], r['sides']['floor']
        out.append('| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |' % (
            r['n'], r['phase'], ours['wall_s'], floor['wall_s'], r['ours_above_floor_s'], ours['cpu_s'],
            floor['cpu_s'], r['ours_above_floor_cpu_s']))
    return out


def render_parts(report):
    """Each half alone, from the benchmark callback's task times (no ansible-playbook start-up): our two
    Kubernetes tasks against the one-task kubernetes.core sides, our two AD tasks against community.general."""
    out = ['', '| N | phase | ours k8s tasks s | k8s_list_apply s | k8s_list_ssa s | faster peer / ours '
           '| ours AD tasks s | ldap_cg s | ldap_cg / ours |', '|' + '---|' * 9]
    for r in report['rows']:
        sides = r['sides']
        ours = sides.get('ours') or {}

        def task_s(side, key):
            return (sides.get(side) or {}).get(key)
        k8s_ours, ad_ours = ours.get('k8s_tasks_s'), ours.get('ad_tasks_s')
        peers = [v for v in (task_s('k8s_list_apply', 'k8s_tasks_s'), task_s('k8s_list_ssa', 'k8s_tasks_s')) if v]
        ldap_cg = task_s('ldap_cg', 'ad_tasks_s')
        out.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            r['n'], r['phase'], _num(k8s_ours), _num(task_s('k8s_list_apply', 'k8s_tasks_s')),
            _num(task_s('k8s_list_ssa', 'k8s_tasks_s')),
            '%.1fx' % (min(peers) / k8s_ours) if peers and k8s_ours else '-', _num(ad_ours), _num(ldap_cg),
            '%.0fx' % (ldap_cg / ad_ours) if ldap_cg and ad_ours else '-'))
    return out


def _num(value):
    return '%.1f' % value if value is not None else '-'


def main():
    with open(sys.argv[1]) as handle:
        print(render(json.load(handle)))


if __name__ == '__main__':
    main()
