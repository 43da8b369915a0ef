// `npm run ocsf:extract -- <ocsf-schema checkout>` (or OCSF_SCHEMA_DIR): compiles what the OCSF validator of the tests
// checks (the classes the mappings emit, the objects reachable from them, the primitive types) from an OCSF schema
// source into test/ocsf/ocsf-data.json, which is committed.
import { writeFileSync } from 'node:fs';
import { classes } from '../connector/sinks/ocsf/event.ts';
import { ocsfDataFile, serializeOcsfData } from '../test/ocsf/ocsf-data.ts';
import { extractOcsfData, schemaSourceDirectory } from '../test/ocsf/schema-source.ts';

const dir = process.argv[2] ?? schemaSourceDirectory();
if (dir === undefined) {
  process.stderr.write('error: name an OCSF schema source: npm run ocsf:extract -- <checkout of the ocsf-schema repository at 1.8.0> (or set OCSF_SCHEMA_DIR)\n');
  process.exit(2);
}
try {
  const data = extractOcsfData(dir, Object.values(classes).map((ocsfClass) => ocsfClass.name));
  writeFileSync(ocsfDataFile, serializeOcsfData(data));
  process.stdout.write(`OCSF ${data.version}: ${Object.keys(data.classes).length} classes, ${Object.keys(data.objects).length} objects from ${dir} written to ${ocsfDataFile}\n`);
} catch (error) {
  process.stderr.write(`error: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
