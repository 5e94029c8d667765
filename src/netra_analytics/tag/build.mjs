// Minifies netra-analytics.js into netra-analytics.min.js (committed, so that the service
// needs no Node.js). Run: npm run build:tag. tests/tag/tag.test.mjs checks it is up to date.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

const here = (name) => fileURLToPath(new URL(name, import.meta.url));

export async function build() {
  const source = readFileSync(here('netra-analytics.js'), 'utf8');
  const result = await minify(source, {
    compress: { passes: 2 },
    mangle: true,
    format: { comments: /^!/ },
  });
  return result.code + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(here('netra-analytics.min.js'), await build());
}
