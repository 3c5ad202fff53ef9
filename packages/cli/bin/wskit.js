#!/usr/bin/env node
// The `wskit` command. A committed file (not dist/bin.js itself), so package managers link
// the bin in a fresh clone before the first build; it runs the compiled program.
try {
  await import('../dist/bin.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/bin.js')) {
    process.stderr.write('wskit: not built yet; run `npm run setup` at the root of the clone first\n');
    process.exit(1);
  }
  throw err;
}
