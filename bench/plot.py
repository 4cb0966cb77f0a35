"""Plot a benchmark JSON (bench/results/*.json): wall time per gMSA against N, one line per side and phase.

usage: python bench/plot.py REPORT.json OUT.svg

Writes a self-contained SVG (no plotting library: a few lines of our own) with one panel per phase, both axes
logarithmic. A flat line means the cost per gMSA does not grow with N. Runs that did not finish in the
budget are left out of the lines and listed under the panels.
"""

from __future__ import annotations

import json
import math
import sys
from xml.sax.saxutils import escape

COLOURS = {'ours': '#d62728', 'ours_serial': '#ff9896', 'baseline': '#7f7f7f', 'k8s_loop_apply': '#8c564b', 'k8s_list_apply': '#1f77b4',
           'k8s_list_ssa': '#17becf', 'ldap_cg': '#2ca02c', 'best_peers': '#9467bd',
           'floor': '#bcbd22'}
PHASES = ('converge', 'noop', 'change1')
W, H, LEFT, TOP, PW, PH = 1130, 470, 70, 40, 300, 300


def series(report):
    """{phase: {side: [(n, ms per gMSA)]}} from the rows, best_peers included; and the not-finished list."""
    out = dict((phase, {}) for phase in PHASES)
    missing = []
    for row in report['rows']:
        n, phase = row['n'], row['phase']
        figs = dict(row['sides'])
        if row.get('best_peers'):
            figs['best_peers'] = row['best_peers']
        for side, fig in figs.items():
            if fig and 'wall_s' in fig:
                out[phase].setdefault(side, []).append((n, 1000.0 * fig['wall_s'] / n))
            elif fig:
                missing.append('%s N=%d %s: %s' % (side, n, phase, fig.get('reason')))
    for size_n, size in report['sizes'].items():
        for side, reason in size.get('skipped_sides', {}).items():
            missing.append('%s N=%s: %s' % (side, size_n, reason))
    return out, missing


def _log_ticks(lo, hi):
    ticks = []
    for exp in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1):
        for mult in (1, 2, 5):
            value = mult * 10 ** exp
            if lo <= value <= hi:
                ticks.append(value)
    return ticks


def render(report):
    data, missing = series(report)
    points = [p for phase in data.values() for line in phase.values() for p in line]
    if not points:
        raise SystemExit('no finished run in the report')
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_lo, x_hi = min(xs) / 1.3, max(xs) * 1.3
    y_lo, y_hi = min(ys) / 1.5, max(ys) * 1.5

    def px(n, left):
        return left + PW * (math.log10(n) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo))

    def py(v):
        return TOP + PH - PH * (math.log10(v) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))

    sides = []
    for phase in data.values():
        sides.extend(s for s in phase if s not in sides)
    height = H + 16 * (len(missing) + 1)
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (W, height), '<rect width="100%" height="100%" fill="white"/>']
    for i, phase in enumerate(PHASES):
        left = LEFT + i * (PW + 55)
        svg.append('<text x="%d" y="%d" font-size="13" font-weight="bold">%s: ms per gMSA (log) vs N (log)</text>'
                   % (left, TOP - 14, phase))
        svg.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>' % (left, TOP, PW, PH))
        for tick in _log_ticks(x_lo, x_hi):
            x = px(tick, left)
            svg.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (x, TOP, x, TOP + PH))
            svg.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>' % (x, TOP + PH + 14, tick))
        for tick in _log_ticks(y_lo, y_hi):
            y = py(tick)
            svg.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (left, y, left + PW, y))
            svg.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (left - 4, y + 4, tick))
        svg.append('<text x="%d" y="%d" text-anchor="middle">N (gMSAs)</text>' % (left + PW / 2, TOP + PH + 30))
        for side, line in sorted(data[phase].items()):
            line = sorted(line)
            colour = COLOURS.get(side, '#000')
            dash = ' stroke-dasharray="5,3"' if side == 'best_peers' else ''
            coords = ' '.join('%.1f,%.1f' % (px(n, left), py(v)) for n, v in line)
            svg.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>' % (coords, colour, dash))
            for n, v in line:
                svg.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s N=%d: %.1f ms per gMSA</title>'
                           '</circle>' % (px(n, left), py(v), colour, escape(side), n, v))
    legend_y = TOP + PH + 50
    for j, side in enumerate(sides):
        x = LEFT + j * 150
        svg.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>'
                   % (x, legend_y, x + 20, legend_y, COLOURS.get(side, '#000')))
        svg.append('<text x="%d" y="%d">%s</text>' % (x + 24, legend_y + 4, escape(side)))
    y = legend_y + 26
    loads = [fig['loadavg_before'][0] for row in report['rows'] for fig in row['sides'].values()
             if fig and fig.get('loadavg_before')]
    svg.append('<text x="%d" y="%d">%s, %s cores; 1-minute load average at the start of the runs: %.1f to %.1f '
               '(wall times grow with it)</text>' % (LEFT, y, escape(report['date']), report['machine']['nproc'],
                                                     min(loads), max(loads)))
    for text in missing:
        y += 16
        svg.append('<text x="%d" y="%d" fill="#a00">not plotted: %s</text>' % (LEFT, y, escape(text)))
    svg.append('</svg>')
    return '\n'.join(svg) + '\n'


def main():
    with open(sys.argv[1]) as handle:
        report = json.load(handle)
    with open(sys.argv[2], 'w') as handle:
        handle.write(render(report))


if __name__ == '__main__':
    main()
