/** The committed OCSF data (written by `npm run ocsf:extract`), which the validator reads. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OcsfData } from './schema-source.ts';

export const ocsfDataFile = join(import.meta.dirname, 'ocsf-data.json');

export function readOcsfData(file = ocsfDataFile): OcsfData {
  return JSON.parse(readFileSync(file, 'utf8')) as OcsfData;
}

/** One attribute (or type) a line, so that a schema change reads as a small diff. */
export function serializeOcsfData(data: OcsfData): string {
  const section = (record: Readonly<Record<string, unknown>>, inner: (value: any) => string) => // eslint-disable-line @typescript-eslint/no-explicit-any
    `{\n${Object.entries(record).map(([name, value]) => `    ${JSON.stringify(name)}: ${inner(value)}`).join(',\n')}\n  }`;
  const definition = (value: { attributes: Record<string, unknown> }) => {
    const { attributes, ...rest } = value;
    const head = JSON.stringify(rest).slice(0, -1);
    const lines = Object.entries(attributes).map(([name, attribute]) => `      ${JSON.stringify(name)}: ${JSON.stringify(attribute)}`);
    return `${head}${head.length > 1 ? ',' : ''}"attributes": {\n${lines.join(',\n')}\n    }}`;
  };
  return `{\n  "version": ${JSON.stringify(data.version)},\n`
    + `  "classes": ${section(data.classes, definition)},\n`
    + `  "objects": ${section(data.objects, definition)},\n`
    + `  "types": ${section(data.types, (value) => JSON.stringify(value))}\n}\n`;
}
