// `npm run docs`: rewrites the generated sections of docs/ (the settings table of docs/settings.md) from the code that defines them.
import { readFile, writeFile } from 'node:fs/promises';
import { withSettingsTable } from '../connector/config/settings.ts';

const page = new URL('../docs/settings.md', import.meta.url);
const before = await readFile(page, 'utf8');
const after = withSettingsTable(before);
if (after === before) {
  process.stdout.write('docs/settings.md is up to date\n');
} else {
  await writeFile(page, after);
  process.stdout.write('docs/settings.md: settings table rewritten\n');
}
