#!/usr/bin/env node
// Fails when a source line is longer than .editorconfig's max_line_length (120 columns).
// Biome's formatter wraps code at 120 but cannot break strings and comments; this catches those.
// Markdown is exempt (tables cannot wrap; see .editorconfig).
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LIMIT = 120;
const DIRS = ['src', 'test', 'bench', 'examples', 'scripts'];
const EXTENSIONS = new Set(['.ts', '.mts', '.js', '.mjs', '.cjs', '.json', '.html', '.css']);

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (EXTENSIONS.has(extname(entry.name))) yield path;
  }
}

const long = [];
for (const dir of DIRS) {
  for (const file of files(join(ROOT, dir))) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        // Characters, not UTF-16 units: an emoji or a typographic quote is one column.
        const columns = [...line].length;
        if (columns > LIMIT) long.push(`${relative(ROOT, file)}:${i + 1}: ${columns} columns`);
      });
  }
}
if (long.length > 0) {
  console.error(`${long.length} line(s) longer than ${LIMIT} columns; wrap the string or comment:`);
  for (const line of long) console.error(`  ${line}`);
  process.exit(1);
}
