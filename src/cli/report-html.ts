/**
 * `report.html`: the run as one self-contained page, with charts drawn by uPlot.
 *
 * Overview: {@link renderReportHtml} writes one HTML document holding everything it shows: the
 * summary tables (the same numbers as the terminal summary and `--json`), then per scenario its
 * charts per variant (engine occupancy, memory by type over time, latency histograms, whatever
 * the scenario recorded) and, under `--compare`, overlay views that put the variants on the same
 * axes. uPlot's script and stylesheet are read at run time and inlined (from `vendor/uplot/` beside the
 * compiled CLI, where `npm run build` copies them, or from the `uplot` package in the repository), the
 * chart data is inlined as JSON, and a Content-Security-Policy forbids every fetch, so the file
 * works offline and makes no network request.
 *
 * Contract:
 * - The page loads no resource: one document, inline styles and scripts only.
 * - Every summary cell carries `data-scenario`, `data-variant`, `data-metric` and `data-value`
 *   (the raw number, as in `--json`); its text is `formatValue` of it, as in the summary.
 * - Each chart is a `<div class="chart" data-chart-id="…">`; the page script draws into it and
 *   sets `data-drawn="true"`. A chart without samples (a latency nobody measured in a short run)
 *   is a `<div class="chart-empty">` saying so instead.
 *
 * @example
 * ```ts
 * import { renderReportHtml } from './report-html.js';
 * import type { RunResult } from './run-result.js';
 * const html = (run: RunResult) => renderReportHtml(run); // write it to report.html
 * ```
 */

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { formatValue } from './format.js';
import { PALETTE, REPORT_SCRIPT, type PageChart, type ReportPageData } from './report-script.js';
import type {
  Chart,
  HistogramChart,
  Metric,
  RunResult,
  ScenarioResult,
  SeriesChart,
  VariantResult,
} from './run-result.js';
import { KNOBS } from './scenario.js';

/** Points of an overlay chart's common time grid. */
const OVERLAY_POINTS = 200;

/**
 * The chart library: the copy the package build vendors beside this module, else the `uplot`
 * development dependency (running from the repository's sources).
 * @throws Error saying what to do when neither is there.
 */
export function loadChartLibrary(): { readonly script: string; readonly css: string } {
  const vendored = new URL('./vendor/uplot/', import.meta.url);
  if (existsSync(new URL('uPlot.iife.min.js', vendored))) {
    return {
      script: readFileSync(new URL('uPlot.iife.min.js', vendored), 'utf8'),
      css: readFileSync(new URL('uPlot.min.css', vendored), 'utf8'),
    };
  }
  const require = createRequire(import.meta.url);
  try {
    return {
      script: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
      css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    };
  } catch (err) {
    throw new Error(
      `cannot read the chart library uPlot (${err instanceof Error ? err.message : String(err)}); ` +
        'in the repository run `npm ci`; in an installed package reinstall dmabuf (its dist/cli/vendor/ ' +
        'is missing); or run with --no-report',
      { cause: err },
    );
  }
}

/** A chart with nothing to draw: no samples, or a histogram whose buckets are all empty. */
function isEmpty(chart: Chart): boolean {
  if (chart.kind === 'histogram') return !chart.series.some((s) => s.counts.some((n) => n > 0));
  return chart.x.length === 0;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Text safe inside a `<script>` element (no `</script`, no `<!--`). */
function scriptText(text: string): string {
  return text.replace(/<(\/script|!--)/gi, '<\\$1');
}

/** Last value at or before each grid time (a step), `null` before the first sample. */
function resample(x: readonly number[], values: readonly number[], grid: readonly number[]): (number | null)[] {
  const out: (number | null)[] = [];
  let j = -1;
  for (const t of grid) {
    while (j + 1 < x.length && x[j + 1]! <= t) j++;
    out.push(j < 0 ? null : (values[j] ?? null));
  }
  return out;
}

/** A page chart from a recorded chart (stacked series summed, histograms with their edges). */
function pageChart(element: string, chart: Chart): PageChart {
  if (chart.kind === 'histogram') {
    return {
      element,
      kind: 'histogram',
      title: chart.title,
      unit: chart.unit,
      x: chart.edges.slice(0, -1),
      xEnd: chart.edges[chart.edges.length - 1] ?? 1,
      yUnit: chart.share === true ? 'percent' : 'count',
      series: chart.series.map((s) => ({ label: s.label, values: s.counts })),
    };
  }
  let running: number[] = chart.x.map(() => 0);
  const series = chart.series.map((s) => {
    if (chart.kind !== 'stacked') return { label: s.label, values: s.values };
    running = running.map((sum, i) => sum + (s.values[i] ?? 0));
    return { label: s.label, values: running, own: s.values };
  });
  return {
    element,
    kind: chart.kind,
    title: chart.title,
    unit: chart.unit,
    x: chart.x,
    series,
    ...(chart.limit === undefined ? {} : { limit: chart.limit }),
  };
}

/**
 * One histogram with a series per variant, on the union of their (shared-grid) buckets, each in
 * percent of its own samples: variants of one duration run different numbers of operations.
 */
function overlayHistogram(charts: readonly HistogramChart[], labels: readonly string[]): HistogramChart {
  const step = (edge: number): number => Math.round(Math.log2(edge) * 4);
  const present = charts.filter((c) => c.edges.length > 1);
  if (present.length === 0) return { ...charts[0]!, edges: [], series: labels.map((label) => ({ label, counts: [] })) };
  const lo = Math.min(...present.map((c) => step(c.edges[0]!)));
  const hi = Math.max(...present.map((c) => step(c.edges[c.edges.length - 1]!)));
  const edges = Array.from({ length: Math.max(0, hi - lo) + 1 }, (_, i) => 2 ** ((lo + i) / 4));
  const series = charts.map((c, v) => {
    const counts = new Array<number>(Math.max(0, edges.length - 1)).fill(0);
    const own = c.series[0]?.counts ?? [];
    const total = Math.max(
      1,
      own.reduce((a, b) => a + b, 0),
    );
    own.forEach((n, i) => {
      const at = step(c.edges[i]!) - lo;
      if (at >= 0 && at < counts.length) counts[at]! += (100 * n) / total;
    });
    return { label: labels[v]!, counts };
  });
  return { ...charts[0]!, title: `${charts[0]!.title} (share of each variant's samples)`, edges, series, share: true };
}

/** One time chart with each variant's lines (a stacked chart: each variant's total). */
function overlaySeries(charts: readonly SeriesChart[], labels: readonly string[]): SeriesChart {
  const first = charts[0]!;
  const end = Math.max(...charts.map((c) => c.x[c.x.length - 1] ?? 0));
  const grid = Array.from({ length: OVERLAY_POINTS + 1 }, (_, i) => (end * i) / OVERLAY_POINTS);
  const series = charts.flatMap((c, v) => {
    if (c.kind === 'stacked') {
      const total = c.x.map((_, i) => c.series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
      return [{ label: labels[v]!, values: resample(c.x, total, grid).map((n) => n ?? Number.NaN) }];
    }
    return c.series.map((s) => ({
      label: `${labels[v]}: ${s.label}`,
      values: resample(c.x, s.values, grid).map((n) => n ?? Number.NaN),
    }));
  });
  return {
    kind: 'lines',
    id: first.id,
    title: first.kind === 'stacked' ? `${first.title}: total per variant` : `${first.title} per variant`,
    unit: first.unit,
    x: grid,
    series,
    ...(first.limit === undefined ? {} : { limit: first.limit }),
  };
}

/** The overlay charts of a compared scenario: one per chart id every variant has. */
function overlays(variants: readonly VariantResult[], knob: string): Chart[] {
  const labels = variants.map((v) => v.label.replace(`${knob}=`, ''));
  const ids = variants[0]?.charts.map((c) => c.id) ?? [];
  const out: Chart[] = [];
  for (const id of ids) {
    const charts = variants.map((v) => v.charts.find((c) => c.id === id));
    if (charts.some((c) => c === undefined)) continue;
    const all = charts as Chart[];
    if (all.every((c) => c.kind === 'histogram')) {
      out.push(overlayHistogram(all, labels));
    } else if (all.every((c) => c.kind !== 'histogram')) {
      if (all.reduce((n, c) => n + (c.kind === 'stacked' ? 1 : c.series.length), 0) <= PALETTE.length) {
        out.push(overlaySeries(all, labels));
      }
    }
  }
  return out;
}

function metricCell(scenario: string, variant: string, metric: Metric | undefined): string {
  if (metric === undefined) return '<td>-</td>';
  return (
    `<td class="num" data-scenario="${escapeHtml(scenario)}" data-variant="${escapeHtml(variant)}" ` +
    `data-metric="${escapeHtml(metric.key)}" data-value="${metric.value}">` +
    `${escapeHtml(formatValue(metric.value, metric.unit))}</td>`
  );
}

function summaryTable(scenario: ScenarioResult): string {
  const variants = scenario.variants;
  if (variants.length === 0) return '<p class="status">not run (the run was interrupted before it)</p>';
  const keys: Metric[] = [];
  for (const v of variants) for (const m of v.metrics) if (!keys.some((k) => k.key === m.key)) keys.push(m);
  const head = variants.map((v) => `<th>${escapeHtml(v.label === 'default' ? 'value' : v.label)}</th>`).join('');
  const rows = keys.map((key) => {
    const cells = variants.map((v) =>
      metricCell(
        scenario.name,
        v.label,
        v.metrics.find((m) => m.key === key.key),
      ),
    );
    return `<tr><th scope="row">${escapeHtml(key.label)}</th>${cells.join('')}</tr>`;
  });
  return `<table class="metrics"><thead><tr><th>metric</th>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function variantNotes(v: VariantResult, compared: boolean): string {
  const items: string[] = [];
  const who = compared ? `${v.label}: ` : '';
  if (v.status === 'failed') items.push(`<li class="failed">FAILED ${escapeHtml(who + (v.error ?? ''))}</li>`);
  if (v.status === 'interrupted') items.push(`<li class="failed">${escapeHtml(who)}interrupted: partial numbers</li>`);
  for (const note of v.notes) items.push(`<li>${escapeHtml(who + note)}</li>`);
  return items.join('');
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1900px; padding: 1em 2em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
.meta, .status { color: #555; } .banner { background: #fde2e1; padding: 0.5em 1em; border-left: 4px solid #d62728; }
table.metrics { border-collapse: collapse; margin: 0.5em 0 1em; }
table.metrics th, table.metrics td { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: left; }
table.metrics td.num { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: flex; flex-wrap: wrap; gap: 1em 2em; align-items: flex-start; }
.variant { flex: 1 1 480px; min-width: 340px; } .numbers { flex: 0 1 auto; max-width: 600px; }
.chart { min-height: 260px; margin-bottom: 1.2em; } .chart-empty { color: #555; margin: 1em 0; }
li.failed { color: #b00; } code { background: #f4f4f4; padding: 0 3px; }
`;

/** The report of `run` (see the module contract). */
export function renderReportHtml(run: RunResult, library = loadChartLibrary()): string {
  const charts: PageChart[] = [];
  const chartDiv = (chart: Chart): string => {
    if (isEmpty(chart)) {
      const title = `<b>${escapeHtml(chart.title)}</b>`;
      return `<div class="chart-empty" data-chart-id="${escapeHtml(chart.id)}">${title}: no samples in this run</div>`;
    }
    const element = `chart-${charts.length + 1}`;
    charts.push(pageChart(element, chart));
    return `<div class="chart" id="${element}" data-chart-id="${escapeHtml(chart.id)}"></div>`;
  };
  const o = run.options;
  const meta = [
    run.date,
    `seed ${o.seed}`,
    `budget ${formatValue(o.budgetBytes, 'bytes')}`,
    o.clients === undefined ? null : `${o.clients} clients`,
    o.durationMs === undefined ? null : `${formatValue(o.durationMs, 'ms')} per scenario`,
    `device ${o.device}`,
    `wall time ${formatValue(run.wallMs, 'ms')}`,
  ].filter((s) => s !== null);
  const body: string[] = [];
  body.push('<header><h1>dmabuf run</h1>');
  body.push(`<p class="meta">${escapeHtml(meta.join(' · '))}</p>`);
  body.push(`<p class="meta">run it again: <code>${escapeHtml(run.command)}</code></p>`);
  if (run.interrupted) body.push('<p class="banner">Interrupted (Ctrl-C): the results are partial.</p>');
  if (run.compare !== null) {
    const knob = KNOBS[run.compare.knob as keyof typeof KNOBS];
    body.push(
      `<p>Comparing <b>${escapeHtml(run.compare.knob)}</b> = ${escapeHtml(run.compare.values.join(', '))}` +
        (knob === undefined ? '' : `: ${escapeHtml(knob.question)}`) +
        '</p>',
    );
  }
  body.push('</header>');
  // A contents line, then one section per scenario: its numbers next to its first charts.
  body.push(
    `<nav class="meta">${run.scenarios
      .map((s) => {
        const status = s.status === 'ok' ? '' : ` (${s.status})`;
        return `<a href="#scenario-${escapeHtml(s.name)}">${escapeHtml(s.name)}</a>${status}`;
      })
      .join(' · ')}</nav>`,
  );
  for (const s of run.scenarios) {
    const compared = s.variants.length > 1 && run.compare !== null;
    const status = s.status === 'ok' ? '' : ` <span class="status">[${s.status}]</span>`;
    body.push(`<section class="scenario" id="scenario-${escapeHtml(s.name)}"><h2>${escapeHtml(s.name)}${status}</h2>`);
    body.push(`<p>${escapeHtml(s.title)}</p>`);
    body.push('<div class="grid">');
    const notes = s.variants.map((v) => variantNotes(v, compared)).join('');
    body.push(`<div class="numbers">${summaryTable(s)}<ul>${notes}</ul></div>`);
    if (compared && run.compare !== null) {
      for (const c of overlays(s.variants, run.compare.knob)) body.push(`<div class="variant">${chartDiv(c)}</div>`);
      body.push('</div><div class="grid">');
      for (const v of s.variants) {
        body.push(`<div class="variant"><h3>${escapeHtml(v.label)}</h3>`);
        for (const c of v.charts) body.push(chartDiv(c));
        body.push('</div>');
      }
    } else {
      for (const c of s.variants[0]?.charts ?? []) body.push(`<div class="variant">${chartDiv(c)}</div>`);
    }
    body.push('</div></section>');
  }
  const m = run.machine;
  body.push(
    `<footer class="meta"><p>${escapeHtml(`${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.platform}`)}</p></footer>`,
  );
  const data: ReportPageData = { palette: PALETTE, charts };
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta http-equiv="Content-Security-Policy" ' +
      `content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">`,
    `<title>dmabuf run ${escapeHtml(run.date)}</title>`,
    `<style>${library.css}${STYLE}</style>`,
    '</head><body>',
    ...body,
    `<script type="application/json" id="dmabuf-data">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>`,
    `<script>${scriptText(library.script)}</script>`,
    `<script>${scriptText(REPORT_SCRIPT)}</script>`,
    '</body></html>',
  ].join('\n');
}
