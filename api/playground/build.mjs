// Bundles the playground (GraphiQL, React, the sign-in box and the managers' example
// operations) into dist/playground.js and dist/playground.css, which the wuye binary
// embeds (api/build.rs). Run by deploy/playground.sh, deploy/test.sh, deploy/dev.sh and
// the Dockerfile; a clone without dist/ still compiles and serves a page saying so.
import { build } from 'esbuild';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const opsDir = join(here, '..', '..', 'schema', 'operations', 'manager');

// schema/operations/manager/*.graphql, in name order, become the playground's first tabs
const operations = {
  name: 'wuye-operations',
  setup(b) {
    b.onResolve({ filter: /^wuye:operations$/ }, () => ({ path: 'operations', namespace: 'wuye' }));
    b.onLoad({ filter: /.*/, namespace: 'wuye' }, () => {
      const files = readdirSync(opsDir).filter((f) => f.endsWith('.graphql')).sort();
      const ops = files.map((f) => ({ name: f, text: readFileSync(join(opsDir, f), 'utf8') }));
      return { contents: `export default ${JSON.stringify(ops)};`, loader: 'js', watchFiles: files.map((f) => join(opsDir, f)) };
    });
  },
};

await build({
  entryPoints: [join(here, 'src', 'main.jsx')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  outfile: join(here, 'dist', 'playground.js'),
  loader: { '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl', '.svg': 'dataurl' },
  define: { 'process.env.NODE_ENV': '"production"' },
  jsx: 'automatic',
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [operations],
});
console.log('playground bundled into', join(here, 'dist'));
