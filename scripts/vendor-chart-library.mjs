// Copies the chart library's browser build into dist/cli/vendor/uplot/ after `tsc` (npm run build).
//
// Why vendor it: `dmabuf run` only ever reads uPlot's minified script and stylesheet, to inline
// them into report.html. Depending on the `uplot` package would install its 0.55 MB of sources,
// typings and alternative builds into every consumer's node_modules for 50 KB of it; copying the
// two files (and the licence that must travel with them) keeps `npm i dmabuf` under its size
// budget. From the repository, `src/cli/report-html.ts` reads the same files from node_modules.
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = dirname(require.resolve('uplot/package.json'));
const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'vendor', 'uplot');
mkdirSync(target, { recursive: true });
for (const file of ['dist/uPlot.iife.min.js', 'dist/uPlot.min.css', 'LICENSE']) {
  copyFileSync(join(root, file), join(target, file.split('/').pop()));
}
