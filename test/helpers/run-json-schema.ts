/** A field-by-field check of a `dmabuf run --json` document against the RunJson type. */
import { UNITS } from '../../src/cli/format.js';
import { RUN_JSON_SCHEMA } from '../../src/cli/run-json.js';

export /** Every way `doc` departs from {@link RunJson} (an empty list: it conforms). */
function schemaProblems(doc: unknown): string[] {
  const problems: string[] = [];
  const is = (what: string, ok: boolean): void => {
    if (!ok) problems.push(what);
  };
  const d = doc as Record<string, unknown>;
  is('schema', d['schema'] === RUN_JSON_SCHEMA);
  is('tool', d['tool'] === 'dmabuf run');
  is('date', typeof d['date'] === 'string' && !Number.isNaN(Date.parse(d['date'] as string)));
  is('command', typeof d['command'] === 'string');
  const o = d['options'] as Record<string, unknown>;
  is('options.seed', Number.isInteger(o?.['seed']));
  is('options.budgetBytes', Number.isInteger(o?.['budgetBytes']));
  is('options.device', o?.['device'] === 'soft' || o?.['device'] === 'webgpu');
  is('options.clients', o?.['clients'] === undefined || Number.isInteger(o['clients']));
  is('options.durationMs', o?.['durationMs'] === undefined || typeof o['durationMs'] === 'number');
  const c = d['compare'] as { knob?: unknown; values?: unknown } | null;
  is('compare', c === null || (typeof c.knob === 'string' && Array.isArray(c.values)));
  const m = d['machine'] as Record<string, unknown>;
  is('machine', typeof m?.['cpu'] === 'string' && Number.isInteger(m['cores']) && typeof m['node'] === 'string');
  is('wallMs', typeof d['wallMs'] === 'number');
  is('interrupted', typeof d['interrupted'] === 'boolean');
  is('exitCode', [0, 1, 130].includes(d['exitCode'] as number));
  const out = d['outputs'] as Record<string, unknown>;
  is(
    'outputs',
    ['report', 'trace'].every((k) => out?.[k] === null || typeof out?.[k] === 'string'),
  );
  is('scenarios', Array.isArray(d['scenarios']));
  for (const [i, s] of ((d['scenarios'] as Record<string, unknown>[]) ?? []).entries()) {
    is(`scenarios[${i}].name`, typeof s['name'] === 'string' && typeof s['title'] === 'string');
    is(`scenarios[${i}].status`, ['ok', 'failed', 'interrupted', 'skipped'].includes(s['status'] as string));
    for (const [j, v] of ((s['variants'] as Record<string, unknown>[]) ?? []).entries()) {
      const at = `scenarios[${i}].variants[${j}]`;
      is(`${at}.label`, typeof v['label'] === 'string');
      is(
        `${at}.knobs`,
        typeof v['knobs'] === 'object' && Object.values(v['knobs'] as object).every((x) => typeof x === 'string'),
      );
      is(`${at}.status`, ['ok', 'failed', 'interrupted'].includes(v['status'] as string));
      is(`${at}.error`, v['error'] === undefined || typeof v['error'] === 'string');
      is(`${at}.notes`, Array.isArray(v['notes']) && (v['notes'] as unknown[]).every((n) => typeof n === 'string'));
      const keys = new Set<string>();
      for (const metric of (v['metrics'] as Record<string, unknown>[]) ?? []) {
        const mk = `${at}.metrics.${String(metric['key'])}`;
        is(`${mk} key unique`, typeof metric['key'] === 'string' && !keys.has(metric['key']));
        keys.add(String(metric['key']));
        is(`${mk}.label`, typeof metric['label'] === 'string');
        is(
          `${mk}.value`,
          metric['value'] === null || (typeof metric['value'] === 'number' && Number.isFinite(metric['value'])),
        );
        is(`${mk}.unit`, (UNITS as readonly unknown[]).includes(metric['unit']));
        is(
          `${mk}.better`,
          metric['better'] === undefined || metric['better'] === 'lower' || metric['better'] === 'higher',
        );
      }
    }
  }
  const known = new Set([
    'schema',
    'tool',
    'date',
    'command',
    'options',
    'compare',
    'machine',
    'wallMs',
    'interrupted',
    'exitCode',
    'outputs',
    'scenarios',
  ]);
  for (const key of Object.keys(d)) is(`unknown field ${key}`, known.has(key));
  return problems;
}
