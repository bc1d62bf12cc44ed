/**
 * A checker for Chrome trace-event files, as Perfetto and chrome://tracing read them: required
 * fields, thread-scoped instants, numeric counters, timestamps that never go back on a track, and
 * balanced slices (on a track, complete events nest and never cross).
 */

/** Every problem of `doc` as a trace-event file (an empty list: valid). */
export function traceProblems(doc: unknown): string[] {
  const problems: string[] = [];
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { traceEvents?: unknown }).traceEvents)) {
    return ['not an object with a traceEvents array'];
  }
  const events = (doc as { traceEvents: Record<string, unknown>[] }).traceEvents;
  const lastTs = new Map<string, number>();
  const open = new Map<string, number[]>();
  const names = new Map<string, string>();
  events.forEach((e, i) => {
    const where = `event ${i} (${String(e['name'])})`;
    for (const field of ['name', 'ph', 'pid', 'tid'] as const) {
      if (e[field] === undefined) problems.push(`${where}: no ${field}`);
    }
    if (typeof e['pid'] !== 'number' || typeof e['tid'] !== 'number') problems.push(`${where}: pid/tid not numbers`);
    const key = `${e['pid']}/${e['tid']}`;
    if (e['ph'] === 'M') {
      if (e['name'] === 'thread_name') {
        const name = (e['args'] as { name?: unknown } | undefined)?.name;
        if (typeof name !== 'string') problems.push(`${where}: thread_name without args.name`);
        if (names.has(key)) problems.push(`${where}: track ${key} named twice`);
        names.set(key, String(name));
      }
      return;
    }
    const ts = e['ts'];
    if (typeof ts !== 'number' || !Number.isFinite(ts) || ts < 0) {
      problems.push(`${where}: bad ts ${String(ts)}`);
      return;
    }
    const last = lastTs.get(key) ?? -1;
    if (ts < last) problems.push(`${where}: ts ${ts} goes back on track ${key} (last ${last})`);
    lastTs.set(key, ts);
    if (e['ph'] === 'X') {
      const dur = e['dur'];
      if (typeof dur !== 'number' || dur < 0) problems.push(`${where}: complete event without a dur >= 0`);
      // Balanced: a slice ends within every slice still open on its track (they nest, never cross).
      const stack = open.get(key) ?? [];
      while (stack.length > 0 && stack[stack.length - 1]! <= ts) stack.pop();
      const end = ts + Number(dur);
      if (stack.length > 0 && end > stack[stack.length - 1]!)
        problems.push(`${where}: crosses the slice ending ${stack.at(-1)}`);
      stack.push(end);
      open.set(key, stack);
      if (!names.has(key)) problems.push(`${where}: slice on unnamed track ${key}`);
    } else if (e['ph'] === 'i') {
      if (e['s'] !== 't' && e['s'] !== 'p' && e['s'] !== 'g') problems.push(`${where}: instant without a scope`);
    } else if (e['ph'] === 'C') {
      const args = e['args'];
      if (typeof args !== 'object' || args === null || !Object.values(args).every((v) => typeof v === 'number')) {
        problems.push(`${where}: counter args must be numbers`);
      }
    } else problems.push(`${where}: unexpected phase ${String(e['ph'])}`);
  });
  return problems;
}
