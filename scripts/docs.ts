// `npm run docs`: rewrites the README's generated sections (the settings table) from the code that defines them.
import { readFile, writeFile } from 'node:fs/promises';
import { withSettingsTable } from '../connector/config/settings.ts';

const readme = new URL('../README.md', import.meta.url);
const before = await readFile(readme, 'utf8');
const after = withSettingsTable(before);
if (after === before) {
  process.stdout.write('README.md is up to date\n');
} else {
  await writeFile(readme, after);
  process.stdout.write('README.md: settings table rewritten\n');
}
