/**
 * Log lines for people, on a terminal: `12:04:31 WARN  retrying Management Activity API call  component=api code=AF429`.
 * The JSON line pino wrote (secrets already redacted by key) becomes time, level, message and the fields that say what
 * it is about; when stderr is a file or a pipe the JSON line is kept as it is. Synchronous, in the process: a pino
 * transport would run in a worker thread loaded from a file, which the one-file bundle does not have.
 */

/** Fields first, when present, in this order: what a line is about. Any other field follows them. */
const leading = ['tenant', 'contentType', 'component', 'sink', 'code', 'reason'];
/** pino's own fields, shown in the line's head or not at all. */
const head = new Set(['time', 'level', 'msg', 'pid', 'hostname']);

export function logLineForPeople(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof entry['time'] === 'string' ? entry['time'].slice(11, 19) : '';
  const level = String(entry['level'] ?? '').toUpperCase().padEnd(5);
  const names = [...leading.filter((name) => name in entry), ...Object.keys(entry).filter((name) => !head.has(name) && !leading.includes(name))];
  const fields = names.map((name) => `${name}=${show(entry[name])}`);
  const text = [time, level, String(entry['msg'] ?? '')].filter(Boolean).join(' ');
  return `${fields.length > 0 ? `${text}  ${fields.join(' ')}` : text}\n`;
}

function show(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value) ?? String(value);
}
