/**
 * The script of `report.html`: draws the report's charts with uPlot from the page's JSON data.
 *
 * Overview: the report embeds its data as `<script type="application/json" id="dmabuf-data">`
 * holding {@link ReportPageData}: one entry per chart, with the id of the element to draw into.
 * This script (plain browser JavaScript, no module, no network) reads it and creates one uPlot per
 * chart: lines, stacked areas (the data arrive already summed, the legend shows each layer's own
 * value), bars, and histograms (stepped areas over log-scale buckets). Axis and legend values are
 * formatted by unit (bytes, µs, counts, percent), as the summary writes them.
 *
 * Why a string: the script runs in the browser, where nothing of the package is loaded; keeping
 * it as one small self-contained text (rather than a serialised TypeScript function) keeps it the
 * same under every build tool. The browser test (`test/cli/report-html.test.ts`) runs it in
 * Chromium and checks that every chart drew its series.
 *
 * @example
 * ```ts
 * import { REPORT_SCRIPT } from './report-script.js';
 * console.log(REPORT_SCRIPT.includes('new uPlot')); // true
 * ```
 */

import type { Unit } from './format.js';

/** Series colours, in order; the browser test looks for the first one's pixels. */
export const PALETTE: readonly string[] = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
];

/** One chart as the page script draws it. */
export interface PageChart {
  /** Id of the `<div>` to draw into. */
  readonly element: string;
  readonly kind: 'lines' | 'stacked' | 'bars' | 'histogram';
  readonly title: string;
  readonly unit: Unit;
  /** x values: seconds for time series, bucket lower edges for histograms. */
  readonly x: readonly number[];
  /** For a histogram, the last bucket's upper edge (the x axis ends there). */
  readonly xEnd?: number;
  /** Unit of the y values when it is not `unit` (a histogram's counts: `count` or `percent`). */
  readonly yUnit?: Unit;
  readonly series: readonly {
    readonly label: string;
    /** What is drawn (for `stacked`: the running sum). */
    readonly values: readonly (number | null)[];
    /** For `stacked`: each layer's own values, for the legend. */
    readonly own?: readonly (number | null)[];
  }[];
  readonly limit?: { readonly label: string; readonly value: number };
}

export interface ReportPageData {
  readonly palette: readonly string[];
  readonly charts: readonly PageChart[];
}

/** The page script (see the module overview). */
export const REPORT_SCRIPT = `(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('dmabuf-data').textContent);

  function three(v) {
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  }
  function format(v, unit) {
    if (v === null || v === undefined || isNaN(v)) return '-';
    var a = Math.abs(v);
    switch (unit) {
      case 'bytes':
        if (a < 1024) return v.toFixed(0) + ' B';
        if (a < 1048576) return three(v / 1024) + ' KiB';
        if (a < 1073741824) return three(v / 1048576) + ' MiB';
        return three(v / 1073741824) + ' GiB';
      case 'ms':
        return format(v * 1000, 'us');
      case 'us':
        if (a < 1) return (v * 1000).toFixed(0) + ' ns';
        if (a < 1000) return three(v) + ' µs';
        if (a < 1e6) return three(v / 1000) + ' ms';
        return three(v / 1e6) + ' s';
      case 'percent':
        return three(v) + ' %';
      case 'ratio':
        return three(v) + 'x';
      case 'per_s':
        return format(v, 'count') + '/s';
      default:
        if (a < 1e4) return String(Math.round(v * 100) / 100);
        if (a < 1e6) return three(v / 1e3) + 'k';
        return three(v / 1e6) + 'M';
    }
  }

  function draw(chart) {
    var el = document.getElementById(chart.element);
    if (!el) throw new Error('report: no element ' + chart.element);
    var histogram = chart.kind === 'histogram';
    var series = [{ label: histogram ? 'bucket from' : 'time', value: function (u, v) {
      return histogram ? format(v, chart.unit) : v === null ? '-' : v.toFixed(2) + ' s';
    } }];
    var columns = [chart.x.slice()];
    var layers = chart.series.slice();
    // Stacked areas: the largest sum first, so each smaller layer is painted over it.
    if (chart.kind === 'stacked') layers.reverse();
    layers.forEach(function (s) {
      var i = chart.series.indexOf(s);
      var color = data.palette[i % data.palette.length];
      var spec = {
        label: s.label,
        stroke: color,
        width: 1.5,
        value: function (u, v, si, idx) {
          if (histogram) return format(v, chart.yUnit);
          var shown = s.own && idx !== null && idx !== undefined ? s.own[idx] : v;
          return format(shown, chart.unit);
        },
      };
      // Stacked layers are painted over each other: nearly opaque, so each keeps its colour.
      if (chart.kind === 'stacked') spec.fill = color + 'cc';
      if (histogram) spec.fill = color + '44';
      if (chart.kind === 'bars') {
        spec.fill = color + 'aa';
        spec.paths = uPlot.paths.bars({ size: [0.9 / chart.series.length, 40], align: 0 });
      }
      if (histogram) spec.paths = uPlot.paths.stepped({ align: 1 });
      series.push(spec);
      columns.push(s.values.slice());
    });
    if (chart.limit) {
      series.push({ label: chart.limit.label, stroke: '#555', width: 1, dash: [6, 4], value: function () {
        return format(chart.limit.value, chart.unit);
      } });
      columns.push(chart.x.map(function () { return chart.limit.value; }));
    }
    if (histogram) {
      // The last bucket's right edge, so the last step has a width.
      columns[0].push(chart.xEnd);
      for (var c = 1; c < columns.length; c++) columns[c].push(null);
    }
    var width = Math.max(320, Math.min(el.clientWidth || 600, 900));
    var opts = {
      title: chart.title,
      width: width,
      height: 220,
      series: series,
      scales: { x: histogram ? { time: false, distr: 3 } : { time: false } },
      axes: [
        { values: function (u, ticks) {
          // A log axis passes null for the ticks it leaves unlabelled.
          return ticks.map(function (t) { return t === null ? '' : histogram ? format(t, chart.unit) : t + ' s'; });
        } },
        { size: 70, values: function (u, ticks) {
          return ticks.map(function (t) { return t === null ? '' : format(t, chart.yUnit || chart.unit); });
        } },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
    new uPlot(opts, columns, el);
    el.setAttribute('data-drawn', 'true');
  }

  var failures = 0;
  data.charts.forEach(function (chart) {
    try {
      draw(chart);
    } catch (err) {
      failures++;
      console.error('report: chart ' + chart.element + ' (' + chart.title + '): ' + err.message);
    }
  });
  document.body.setAttribute('data-charts-drawn', String(data.charts.length - failures));
})();
`;
