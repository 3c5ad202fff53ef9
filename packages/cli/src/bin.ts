#!/usr/bin/env node
import { main } from './program.js';

const code = await main(process.argv.slice(2));
// stdin may still hold the event loop open (connect), so exit explicitly once the
// output has been handed over.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
