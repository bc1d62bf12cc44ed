// report.html in a real browser (Debian's Chromium): it loads from a file with no console error
// and no network request, every chart draws its series, and its numbers are those of --json.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { formatValue } from '../../src/cli/format.js';
import { renderReportHtml } from '../../src/cli/report-html.js';
import { PALETTE } from '../../src/cli/report-script.js';
import type { RunJson } from '../../src/cli/run-json.js';
import { type PageLog, browserSkip, launchChromium, recordPage } from '../helpers/browser.js';
import { runMain, tempDir } from '../helpers/cli-run.js';
import { runOf, variant } from '../helpers/run-fixture.js';

interface Loaded {
  readonly page: Page;
  readonly log: PageLog;
  /** Every URL the page requested, the file itself included. */
  readonly requests: string[];
}

/** Opens `file`, recording console, errors and requests, and waits for the page script to draw. */
async function open(browser: Browser, file: string): Promise<Loaded> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const log = recordPage(page, 'file://');
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  await page.waitForSelector('body[data-charts-drawn]', { timeout: 10_000 });
  return { page, log, requests };
}

/** The little of the DOM the in-page check uses (the tests compile without the DOM library). */
interface PageCanvas {
  readonly width: number;
  readonly height: number;
  getContext(
    kind: '2d',
  ): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}
interface PageElement {
  readonly id: string;
  readonly dataset: Readonly<Record<string, string | undefined>>;
  querySelector(selector: 'canvas'): PageCanvas | null;
  querySelectorAll(selector: string): { readonly length: number };
}

/** Per chart: its id, whether it drew, and how many canvas pixels have one of the series colours. */
function chartPixels(page: Page): Promise<{ id: string; drawn: boolean; seriesPixels: number; series: number }[]> {
  return page.evaluate((palette: string[]) => {
    const rgb = palette.map((hex) => [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)));
    const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): Iterable<PageElement> } })
      .document;
    return [...doc.querySelectorAll('.chart')].map((el) => {
      const canvas = el.querySelector('canvas');
      const legendSeries = el.querySelectorAll('.u-legend .u-series').length - 1;
      let seriesPixels = 0;
      if (canvas !== null) {
        const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        for (let p = 0; p < data.length; p += 4) {
          if (data[p + 3]! < 200) continue;
          const near = rgb.some(
            ([r, g, b]) =>
              Math.abs(data[p]! - r!) < 30 && Math.abs(data[p + 1]! - g!) < 30 && Math.abs(data[p + 2]! - b!) < 30,
          );
          if (near) seriesPixels++;
        }
      }
      return { id: el.id, drawn: el.dataset['drawn'] === 'true', seriesPixels, series: legendSeries };
    });
  }, PALETTE as string[]);
}

describe('report.html in Chromium', { skip: browserSkip() }, () => {
  let browser: Browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  it('sanity: a churn comparison loads offline with no console error and no request but the file itself', async () => {
    const r = await runMain([
      'run',
      'churn',
      '--duration',
      '300ms',
      '--budget',
      '16M',
      '--clients',
      '2',
      '--compare',
      'deferred-free=on,off',
      '--json',
      '--no-progress',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as RunJson;
    const file = doc.outputs.report!;
    const { page, log, requests } = await open(browser, file);
    try {
      log.assertClean();
      assert.deepEqual(
        log.console.filter((c) => c.type === 'warning'),
        [],
        'no console warning either',
      );
      assert.deepEqual(requests, [pathToFileURL(file).href], 'the page fetched nothing but itself');
      assert.doesNotMatch(
        readFileSync(file, 'utf8'),
        /<script[^>]+src=|<link[^>]+href=/,
        'no external script or style',
      );

      // Every chart drew, and drew its series (pixels in the series colours, not just the axes).
      const charts = await chartPixels(page);
      // A very slow run (the validator pass on a loaded machine) may free nothing in its 300 ms:
      // a chart without samples is a note, not an empty canvas, and the rest still draw.
      const empty = await page.$$eval('.chart-empty', (els) => els.length);
      assert.ok(charts.length >= 6, `${charts.length} charts drawn (${empty} without samples)`);
      assert.equal(charts.length + empty, 12, 'memory, reclaim, 2 histograms per variant, and 4 overlays');
      for (const c of charts) {
        assert.ok(c.drawn, `${c.id} drawn`);
        assert.ok(c.seriesPixels > 30, `${c.id} has ${c.seriesPixels} pixels of its series' colours`);
      }

      // The numbers in the page are the numbers of --json, written as the summary writes them.
      const cells = await page.$$eval('td[data-metric]', (tds) =>
        tds.map((td) => ({
          scenario: td.getAttribute('data-scenario'),
          variant: td.getAttribute('data-variant'),
          metric: td.getAttribute('data-metric'),
          value: td.getAttribute('data-value'),
          text: td.textContent,
        })),
      );
      let checked = 0;
      for (const s of doc.scenarios) {
        for (const v of s.variants) {
          for (const m of v.metrics) {
            const cell = cells.find((c) => c.scenario === s.name && c.variant === v.label && c.metric === m.key);
            assert.ok(cell !== undefined, `no cell for ${s.name} ${v.label} ${m.key}`);
            assert.equal(cell.value === 'NaN' ? null : Number(cell.value), m.value, `${v.label} ${m.key} value`);
            assert.equal(cell.text, formatValue(m.value ?? Number.NaN, m.unit), `${v.label} ${m.key} text`);
            checked++;
          }
        }
      }
      assert.equal(checked, cells.length, 'every cell is a --json metric');
      assert.ok(checked >= 20, `${checked} numbers compared`);
    } finally {
      await page.close();
    }
  });

  it('draws occupancy, stacked memory, bars and histograms from any scenario; marks an interrupted run', async () => {
    const file = path.join(tempDir(), 'report.html');
    const occupancy = {
      kind: 'lines' as const,
      id: 'engine-occupancy',
      title: 'engine occupancy',
      unit: 'percent' as const,
      x: [0.1, 0.2, 0.3],
      series: [
        { label: 'gfx', values: [50, 100, 25] },
        { label: 'compute', values: [0, 40, 80] },
      ],
    };
    const memory = {
      kind: 'stacked' as const,
      id: 'memory',
      title: 'memory',
      unit: 'bytes' as const,
      x: [0.1, 0.2, 0.3],
      series: [
        { label: 'vram', values: [1e6, 2e6, 3e6] },
        { label: 'system', values: [5e5, 5e5, 1e6] },
      ],
      limit: { label: 'budget', value: 4e6 },
    };
    const histogram = {
      kind: 'histogram' as const,
      id: 'latency',
      title: 'frame latency',
      unit: 'us' as const,
      edges: [100, 119, 141, 168, 200],
      series: [{ label: 'default', counts: [3, 10, 4, 1] }],
    };
    const run = runOf(
      [
        {
          name: 'render',
          title: 'frames',
          status: 'interrupted',
          variants: [variant('default', [], { status: 'interrupted', charts: [occupancy, memory, histogram] })],
        },
      ],
      { interrupted: true },
    );
    writeFileSync(file, renderReportHtml(run));
    const { page, log } = await open(browser, file);
    try {
      log.assertClean();
      const charts = await chartPixels(page);
      assert.deepEqual(
        charts.map((c) => [c.drawn, c.series]),
        [
          [true, 2],
          [true, 3],
          [true, 1],
        ],
        'three charts with their series (and the budget line) in the legend',
      );
      for (const c of charts) assert.ok(c.seriesPixels > 30, `${c.id}: ${c.seriesPixels} series pixels`);
      assert.match((await page.textContent('.banner')) ?? '', /Interrupted/);
    } finally {
      await page.close();
    }
  });
});

describe('renderReportHtml (no browser)', () => {
  it('sanity: a chart without samples becomes a note, not an empty canvas', () => {
    const empty = {
      kind: 'histogram' as const,
      id: 'free-latency',
      title: 'free latency',
      unit: 'us' as const,
      edges: [],
      series: [{ label: 'default', counts: [] }],
    };
    const html = renderReportHtml(
      runOf([{ name: 'churn', title: 'churn', status: 'ok', variants: [variant('default', [], { charts: [empty] })] }]),
    );
    assert.match(
      html,
      /<div class="chart-empty" data-chart-id="free-latency"><b>free latency<\/b>: no samples in this run<\/div>/,
    );
    assert.doesNotMatch(html, /<div class="chart" /);
  });

  it('inlines uPlot and forbids every fetch with a Content-Security-Policy', () => {
    const html = renderReportHtml(runOf([]));
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
    assert.ok(html.includes('uPlot'), 'the chart library is in the page');
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=/);
  });
});
