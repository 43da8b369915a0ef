import { describe, expect, it } from 'vitest';
import { contentRecords, type RejectedElement } from '../../../../connector/sources/activity-api/content-records.ts';
import { ActivityApiError } from '../../../../connector/sources/activity-api/af-errors.ts';
import type { RawRecord } from '../../../../connector/core/records.ts';
import { seededRandom } from '../../../emulator/faults.ts';

const bom = Buffer.from([0xef, 0xbb, 0xbf]);

/** Records whose bytes change when parsed and serialized again, each with the Id/CreationTime it must yield. */
const tricky: ReadonlyArray<{ text: string; id: string | undefined; creationTime?: string | undefined }> = [
  { text: '{"10":1,"2":2,"Id":"integer-like keys out of order"}', id: 'integer-like keys out of order' },
  { text: '{"Id":"numbers","a":1.0,"b":1e3,"c":-0,"d":1E+3,"e":0.50e-10,"f":-0.0}', id: 'numbers' },
  { text: '{"Id":"escapes","Name":"Caf\\u00e9 \\/ \\"quoted\\" back\\\\slash \\ud83d\\ude00 \\b\\f\\n\\r\\t"}', id: 'escapes' },
  { text: '{"Id":"big","Size":12345678901234567890,"Neg":-98765432109876543210}', id: 'big' },
  { text: '{"Id":"raw separators","Text":"a\u2028b\u2029c «é» 報告書 😀"}', id: 'raw separators' },
  { text: '{"Nested":{"Id":"inner","CreationTime":"1999-01-01T00:00:00"},"Items":[{"Id":"item"}],"Id":"outer","CreationTime":"2026-11-25T10:00:00"}', id: 'outer', creationTime: '2026-11-25T10:00:00' },
  { text: '{"Id":"first","CreationTime":"2026-11-25T10:00:00","Id":"second"}', id: 'second', creationTime: '2026-11-25T10:00:00' },
  { text: '{"Id":"a string first","Id":7,"CreationTime":20261125}', id: undefined, creationTime: undefined },
  { text: '{"\\u0049d":"\\u0041bc\\/d\\"e","Creation\\u0054ime":"2026-11-25T10:00:00\\u005a"}', id: 'Abc/d"e', creationTime: '2026-11-25T10:00:00Z' },
  { text: '{}', id: undefined },
  { text: '{"Id":null,"Extra":[true,false,null,[],{},[[{"Id":"deep"}]]]}', id: undefined },
];

function ofBody(records: RawRecord[]) {
  return records.map((r) => ({ id: r.id, creationTime: r.creationTime, text: r.bytes.toString('utf8') }));
}

/** Whether `bytes` is a view into `body` (no copy) starting at `offset`. */
function viewAt(bytes: Buffer, body: Buffer, offset: number): boolean {
  return bytes.buffer === body.buffer && bytes.byteOffset === body.byteOffset + offset;
}

describe('content records: each record is the bytes Microsoft sent', () => {
  it('keeps the tricky encodings byte for byte, as views into the body, with Id and CreationTime of the record itself', () => {
    const body = Buffer.from(`[${tricky.map((t) => t.text).join(',')}]`);
    const { records, rejected } = contentRecords(body);
    const withId = tricky.filter((t) => t.id !== undefined);
    expect(ofBody(records)).toEqual(withId.map((t) => ({ id: t.id, creationTime: t.creationTime, text: t.text })));
    // Those whose own Id is not a string are no audit records: set apart, as their bytes.
    expect(rejected.map((r) => r.bytes.toString())).toEqual(tricky.filter((t) => t.id === undefined).map((t) => t.text));
    let offset = 1;
    for (const [i, t] of tricky.entries()) {
      const bytes = t.id === undefined ? rejected.find((r) => r.index === i)!.bytes : records[withId.indexOf(t)]!.bytes;
      expect(bytes.equals(Buffer.from(t.text))).toBe(true);
      expect(viewAt(bytes, body, offset)).toBe(true);
      offset += bytes.length + 1;
    }
  });

  it('skips a leading UTF-8 BOM', () => {
    const body = Buffer.concat([bom, Buffer.from(`[${tricky[0]!.text}]`)]);
    const [record] = contentRecords(body).records;
    expect(record!.bytes.toString()).toBe(tricky[0]!.text);
    expect(viewAt(record!.bytes, body, 4)).toBe(true);
  });

  it('keeps records whose whitespace has no line break exactly, whitespace included', () => {
    const text = '{ "10" : 1 ,\t"Id":"spaced", "a": [ 1.0 , "x  y" ] }';
    const body = Buffer.from(` \t[ ${text} ,\t${tricky[1]!.text} ] `);
    const { records } = contentRecords(body);
    expect(ofBody(records).map((r) => r.text)).toEqual([text, tricky[1]!.text]);
    expect(records[0]!.id).toBe('spaced');
    expect(viewAt(records[0]!.bytes, body, 4)).toBe(true);
  });

  it('compacts a pretty-printed record to one line, leaving its strings and numbers as they were', () => {
    const body = Buffer.from('[\r\n  {\r\n    "10": 1,\n    "2" : 2.50,\n    "Id": "pretty\\u00e9",\n    "Text": "two  spaces\\nand \\"quotes\\" \\\\"\n  },\n  {"Id":"compact"}\n]\n');
    const { records } = contentRecords(body);
    expect(ofBody(records)).toEqual([
      { id: 'prettyé', creationTime: undefined, text: '{"10":1,"2":2.50,"Id":"pretty\\u00e9","Text":"two  spaces\\nand \\"quotes\\" \\\\"}' },
      { id: 'compact', creationTime: undefined, text: '{"Id":"compact"}' },
    ]);
    expect(records[1]!.bytes.buffer).toBe(body.buffer);
  });

  it('reads an empty array (with or without whitespace) as no records', () => {
    expect(contentRecords(Buffer.from('[]'))).toEqual({ records: [], rejected: [] });
    expect(contentRecords(Buffer.from(' [ \r\n ] \n'))).toEqual({ records: [], rejected: [] });
    expect(contentRecords(Buffer.concat([bom, Buffer.from('[]')]))).toEqual({ records: [], rejected: [] });
  });

  it('sets apart, as their bytes, the elements that are not objects with a string Id, and keeps the records around them', () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const elements = ['null', '5', '"a string"', '[1,2]', 'true', '{"NoId":1}', '{"Id":5}', deep, '{"Id":"kept","CreationTime":"2026-11-25T10:00:00"}', '{}'];
    const body = Buffer.from(`[${elements.join(', ')}]`);
    const { records, rejected } = contentRecords(body);
    expect(ofBody(records)).toEqual([{ id: 'kept', creationTime: '2026-11-25T10:00:00', text: elements[8] }]);
    expect(rejected.map((r) => ({ index: r.index, reason: r.reason, text: r.bytes.toString() }))).toEqual([
      { index: 0, reason: 'not a JSON object', text: 'null' },
      { index: 1, reason: 'not a JSON object', text: '5' },
      { index: 2, reason: 'not a JSON object', text: '"a string"' },
      { index: 3, reason: 'not a JSON object', text: '[1,2]' },
      { index: 4, reason: 'not a JSON object', text: 'true' },
      { index: 5, reason: 'no string Id', text: '{"NoId":1}' },
      { index: 6, reason: 'no string Id', text: '{"Id":5}' },
      { index: 7, reason: 'not a JSON object', text: deep },
      { index: 9, reason: 'no string Id', text: '{}' },
    ]);
  });

  it('accepts any depth JSON.parse accepts', () => {
    const depth = 100_000;
    const text = `{"Id":"deep","a":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    expect(ofBody(contentRecords(Buffer.from(`[${text}]`)).records)).toEqual([{ id: 'deep', creationTime: undefined, text }]);
    expect(() => contentRecords(Buffer.from(`[{"a":${'['.repeat(depth)}${']'.repeat(depth - 1)}}]`))).toThrow(/not valid JSON/);
  });
});

describe('content records: refusing what is not a complete array of records', () => {
  const refusal = (body: string | Buffer) => {
    try {
      contentRecords(typeof body === 'string' ? Buffer.from(body) : body);
    } catch (error) {
      return error as ActivityApiError;
    }
    throw new Error('accepted');
  };

  it.each([
    ['a body cut mid-record', '[{"Id":"secret-1","Name":"secret', /not complete JSON: the body ends early, at byte 32 \(connection cut mid-body\?\)/],
    ['a body cut after a record', '[{"Id":"secret-1"},', /the body ends early, at byte 19/],
    ['an empty body', '', /the body ends early, at byte 0/],
    ['a proxy page', '<html>secret</html>', /not valid JSON: an unexpected character \(expected a value\) at byte 0 of 19/],
    ['trailing junk', '[{"Id":"secret-1"}]\n<!-- secret -->', /not valid JSON: data after the end of the JSON value at byte 20 of 35/],
    ['a trailing comma', '[{"Id":"secret-1"},]', /unexpected character \(expected a value\) at byte 19 of 20/],
    ['a raw newline inside a string', '[{"Id":"secret\n1"}]', /a control character inside a string at byte 14/],
    ['an invalid escape', '[{"Id":"secret\\x"}]', /an invalid escape in a string at byte 14/],
    ['a leading zero', '[{"Id":"secret","n":012}]', /expected , or \}\) at byte 21 of 25/],
    ['a BOM that is not at the start', ' \ufeff[]', /unexpected character \(expected a value\) at byte 1/],
  ])('%s: INVALID_BODY, retryable, naming where and not what', (_what, body, message) => {
    const error = refusal(body);
    expect(error).toBeInstanceOf(ActivityApiError);
    expect(error).toMatchObject({ code: 'INVALID_BODY', status: 200, retryable: true });
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/secret/);
  });

  it.each([
    ['an object', '{"Id":"secret"}', 'the top level is not an array (byte 0)'],
    ['null', ' null', 'the top level is not an array (byte 1)'],
    ['a string', '"secret"', 'the top level is not an array (byte 0)'],
  ])('%s: a shape error', (_what, body, where) => {
    const error = refusal(body);
    expect(error).toMatchObject({ code: 'INVALID_BODY', retryable: true });
    expect(error.message).toBe(`the content answer did not have the documented shape, an array of records: ${where}`);
  });

  it('reports broken JSON before a shape problem that comes earlier', () => {
    expect(refusal('[1, {"a":}]').message).toMatch(/not valid JSON/);
  });
});

/** A JSON value as text pieces, so it can be written with or without whitespace between its tokens. */
type Node = { readonly text: string } | { readonly items: Node[] } | { readonly entries: Array<readonly [string, Node]> };

function generator(next: () => number) {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const stringPieces = ['a', 'Id', 'x y', 'é', '報告', '😀', '\u2028', '\u2029', '\\n', '\\"', '\\\\', '\\/', '\\u00e9', '\\u0049', '\\ud83d\\ude00', '\\ud800', '\\t', '<>', '{[,:]}', '0'];
  const numbers = ['0', '-0', '1', '1.0', '1e3', '1E+3', '-2.5e-3', '12345678901234567890', '-98765432109876543210', '0.0001', '3.14159', '42'];
  const keys = ['Id', 'Id', 'CreationTime', '\\u0049d', 'Creation\\u0054ime', '10', '2', '0', 'Operation', 'UserId', 'a', '', 'é', 'I d'];
  const string = () => `"${Array.from({ length: Math.floor(next() * 5) }, () => pick(stringPieces)).join('')}"`;
  const value = (depth: number): Node => {
    const roll = next();
    if (depth < 4 && roll < 0.12) return { items: Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1)) };
    if (depth < 4 && roll < 0.24) return object(depth + 1);
    if (roll < 0.6) return { text: string() };
    if (roll < 0.85) return { text: pick(numbers) };
    return { text: pick(['true', 'false', 'null']) };
  };
  const object = (depth: number): Node => ({ entries: Array.from({ length: Math.floor(next() * 6) }, () => [`"${pick(keys)}"`, value(depth)] as const) });
  const top = (): Node => {
    const roll = next();
    if (roll < 0.9) return { items: Array.from({ length: Math.floor(next() * 6) }, () => object(1)) };
    if (roll < 0.95) return { items: Array.from({ length: 1 + Math.floor(next() * 3) }, () => value(1)) };
    return value(0);
  };
  return { top, pick };
}

function render(node: Node, ws: () => string): string {
  if ('text' in node) return node.text;
  if ('items' in node) return `[${ws()}${node.items.map((item) => render(item, ws)).join(`${ws()},${ws()}`)}${ws()}]`;
  return `{${ws()}${node.entries.map(([key, item]) => `${key}${ws()}:${ws()}${render(item, ws)}`).join(`${ws()},${ws()}`)}${ws()}}`;
}

type Outcome = { kind: 'records'; values: Array<Record<string, unknown>>; rejected: Array<{ index: number; value: unknown }> } | { kind: 'syntax' } | { kind: 'shape' };

/** What JSON.parse says about the body (after a leading BOM), and the shape check. */
function reference(body: Buffer): Outcome {
  const start = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  let value: unknown;
  try {
    value = JSON.parse(body.subarray(start).toString('utf8'));
  } catch {
    return { kind: 'syntax' };
  }
  if (!Array.isArray(value)) return { kind: 'shape' };
  // An audit record is an object with a string Id; any other element is set apart.
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as Record<string, unknown>)['Id'] === 'string';
  return { kind: 'records', values: value.filter(isRecord), rejected: value.flatMap((v, index) => (isRecord(v) ? [] : [{ index, value: v as unknown }])) };
}

function outcome(body: Buffer): Outcome & { records?: RawRecord[]; rejectedElements?: RejectedElement[] } {
  try {
    const { records, rejected } = contentRecords(body);
    return {
      kind: 'records', values: records.map((r) => JSON.parse(r.bytes.toString('utf8')) as Record<string, unknown>), records,
      rejected: rejected.map((r) => ({ index: r.index, value: JSON.parse(r.bytes.toString('utf8')) as unknown })), rejectedElements: rejected,
    };
  } catch (error) {
    if (!(error instanceof ActivityApiError) || error.code !== 'INVALID_BODY') throw error;
    return { kind: /documented shape/.test(error.message) ? 'shape' : 'syntax' };
  }
}

describe('content records against JSON.parse, on generated documents', () => {
  it('agrees on accept/reject for thousands of documents, their truncations and mutations, and yields the same records', () => {
    const next = seededRandom(0x0365); // the same documents on every run
    const { top, pick } = generator(next);
    const spacing = { compact: [''], spaced: ['', '', ' ', '\t', '  '], pretty: ['', ' ', '\n', '\r\n', '\n  ', '\t'] };
    const junk = ['{', '}', '[', ']', ',', ':', '"', '\\', '0', '-', '.', 'e', '+', 't', 'n', ' ', '\n', '\x01', '\x7f', 'é', '\u2028'].map((c) => Buffer.from(c));
    const counts = { records: 0, syntax: 0, shape: 0, compacted: 0 };

    const check = (body: Buffer) => {
      const expected = reference(body);
      const actual = outcome(body);
      expect(actual.kind, body.toString('latin1')).toBe(expected.kind);
      counts[actual.kind] += 1;
      if (expected.kind !== 'records' || actual.kind !== 'records') return undefined;
      expect(actual.values).toEqual(expected.values);
      expect(actual.rejected).toEqual(expected.rejected);
      for (const [i, record] of actual.records!.entries()) {
        const value = expected.values[i]!;
        expect(record.id).toBe(typeof value['Id'] === 'string' ? value['Id'] : undefined);
        expect(record.creationTime).toBe(typeof value['CreationTime'] === 'string' ? value['CreationTime'] : undefined);
        expect(record.bytes.includes(0x0a) || record.bytes.includes(0x0d)).toBe(false);
      }
      // Which element of the array each record was: those not set apart, in order.
      const setApart = new Set(actual.rejectedElements!.map((r) => r.index));
      const indexes = Array.from({ length: actual.records!.length + setApart.size }, (_, i) => i).filter((i) => !setApart.has(i));
      return actual.records!.map((record, i) => ({ record, element: indexes[i]! }));
    };

    for (let n = 0; n < 3000; n += 1) {
      const node = top();
      const style = pick(['compact', 'compact', 'spaced', 'pretty'] as const);
      const ws = () => (next() < 0.5 ? '' : pick(spacing[style]));
      const withBom = next() < 0.1;
      // Elements are rendered one by one so that each one's text is known.
      const elements = 'items' in node ? node.items.map((item) => render(item, ws)) : undefined;
      const text = elements ? `[${ws()}${elements.join(`${ws()},${ws()}`)}${ws()}]` : render(node, ws);
      const body = Buffer.concat([withBom ? bom : Buffer.alloc(0), Buffer.from(`${ws()}${text}${ws()}`)]);
      const records = check(body);
      for (const { record, element: i } of records ?? []) {
        // Exactly the element's bytes, as a view into the body; or, when its whitespace broke lines, its compact form.
        const element = elements![i]!;
        if (/[\r\n]/.test(element)) {
          counts.compacted += 1;
          expect(record.bytes.toString()).toBe(render((node as { items: Node[] }).items[i]!, () => ''));
        } else {
          expect(record.bytes.toString()).toBe(element);
          expect(record.bytes.buffer).toBe(body.buffer);
        }
      }
      // A cut, a replaced, an inserted and a removed byte.
      const at = Math.floor(next() * body.length);
      check(body.subarray(0, at));
      const mutated = Buffer.concat([body.subarray(0, at), pick(junk), body.subarray(at + 1)]);
      check(mutated);
      check(Buffer.concat([body.subarray(0, at), pick(junk), body.subarray(at)]));
      check(Buffer.concat([body.subarray(0, at), body.subarray(at + 1)]));
    }
    // The generator reached every outcome often enough for the agreement to mean something.
    expect(counts.records).toBeGreaterThan(3000);
    expect(counts.syntax).toBeGreaterThan(3000);
    expect(counts.shape).toBeGreaterThan(100);
    expect(counts.compacted).toBeGreaterThan(200);
  });
});
