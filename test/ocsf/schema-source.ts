/**
 * Reads OCSF's schema source form (the ocsf-schema repository's layout: dictionary.json, categories.json, events/,
 * objects/, profiles/) and compiles what the validator needs for the classes this project emits, as plain data: a
 * class is its file plus what it `extends` down to base_event, the profiles it `$include`s (their attributes tagged
 * with the profile, since they count only when the event names it in metadata.profiles), and the dictionary's
 * definition of each attribute (type, array, requirement, enum, sibling); objects resolve the same way, and every
 * object reachable from the classes is compiled too. `npm run ocsf:extract` writes the result to
 * test/ocsf/ocsf-data.json; the tests read only that file, and compare it with a source when one is at hand.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface OcsfAttribute {
  readonly type: string;
  readonly isArray?: true;
  readonly requirement: string;
  /** Enum ids with their captions. */
  readonly enum?: Readonly<Record<string, string>>;
  readonly sibling?: string;
  /** The profile the attribute belongs to, when it is part of the class only with that profile. */
  readonly profile?: string;
}

export interface OcsfConstraints {
  readonly at_least_one?: readonly string[];
  readonly just_one?: readonly string[];
}

export interface OcsfObjectData {
  readonly caption: string;
  readonly attributes: Readonly<Record<string, OcsfAttribute>>;
  readonly constraints: OcsfConstraints;
}

export interface OcsfClassData extends OcsfObjectData {
  readonly uid: number;
  readonly categoryUid: number;
  readonly categoryCaption: string;
}

export interface OcsfTypeData {
  readonly caption: string;
  readonly type?: string;
  readonly regex?: string;
  readonly max_len?: number;
  readonly range?: readonly [number, number];
}

/** What the validator knows of OCSF: the emitted classes, the objects reachable from them and the primitive types. */
export interface OcsfData {
  readonly version: string;
  readonly classes: Readonly<Record<string, OcsfClassData>>;
  readonly objects: Readonly<Record<string, OcsfObjectData>>;
  readonly types: Readonly<Record<string, OcsfTypeData>>;
}

/**
 * The OCSF schema source to compare with or extract from: OCSF_SCHEMA_DIR, a checkout of the ocsf-schema repository
 * at the version the data says. Never a path beside this checkout: the tests read nothing outside it unless told.
 */
export function schemaSourceDirectory(): string | undefined {
  const dir = process.env['OCSF_SCHEMA_DIR'];
  return dir === undefined || dir === '' ? undefined : resolve(dir);
}

export function isSchemaSource(dir: string): boolean {
  return existsSync(join(dir, 'dictionary.json')) && existsSync(join(dir, 'version.json'));
}

function readJson(path: string): Json {
  return JSON.parse(readFileSync(path, 'utf8')) as Json;
}

function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = value && typeof value === 'object' && !Array.isArray(value) && out[key] && typeof out[key] === 'object' ? deepMerge(out[key], value) : value;
  }
  return out;
}

function sortedRecord<T>(entries: Iterable<[string, T]>): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Compiles the named classes (and every object reachable from them) from the schema source at `dir`. */
export function extractOcsfData(dir: string, classNames: readonly string[]): OcsfData {
  if (!isSchemaSource(dir)) throw new Error(`no OCSF schema source at ${dir}: set OCSF_SCHEMA_DIR to a copy of the ocsf-schema repository`);
  const dictionary = readJson(join(dir, 'dictionary.json'));
  const attributesDictionary: Json = dictionary['attributes'];
  const categories: Json = readJson(join(dir, 'categories.json'))['attributes'];
  const events = new Map<string, Json>();
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.json')) { const json = readJson(path); events.set(json['name'], json); }
    }
  };
  walk(join(dir, 'events'));
  const objects = new Map<string, Json>();
  for (const file of readdirSync(join(dir, 'objects'))) {
    const json = readJson(join(dir, 'objects', file));
    objects.set(json['name'], json);
  }

  /** A definition's own attributes with its `$include`d profiles' (tagged with the profile) under them. */
  const ownAttributes = (definition: Json): Json => {
    let attributes: Json = {};
    for (const include of definition['attributes']?.['$include'] ?? []) {
      const included = readJson(join(dir, include));
      const profile = included['meta'] === 'profile' ? included['name'] : undefined;
      for (const [name, attribute] of Object.entries(included['attributes'] as Json)) {
        attributes[name] = deepMerge(attributes[name] ?? {}, { ...attribute, ...(profile ? { profile } : {}) });
      }
    }
    for (const [name, attribute] of Object.entries(definition['attributes'] ?? {})) {
      if (name === '$include') continue;
      attributes = { ...attributes, [name]: deepMerge(attributes[name] ?? {}, attribute as Json) };
    }
    return attributes;
  };

  const resolveDefinition = (name: string, table: Map<string, Json>, kind: string) => {
    const chain: Json[] = [];
    for (let current: string | undefined = name; current !== undefined;) {
      const definition = table.get(current);
      if (!definition) throw new Error(`OCSF ${kind} "${current}" is not in the schema`);
      chain.unshift(definition);
      current = definition['extends'];
    }
    let merged: Json = {};
    let constraints: Json = {};
    let category: string | undefined;
    for (const definition of chain) {
      category = definition['category'] ?? category;
      for (const [attribute, value] of Object.entries(ownAttributes(definition))) merged[attribute] = deepMerge(merged[attribute] ?? {}, value as Json);
      if (definition['constraints']) constraints = definition['constraints'];
    }
    const attributes: Array<[string, OcsfAttribute]> = [];
    for (const [attribute, local] of Object.entries(merged)) {
      const definition = attributesDictionary[attribute];
      if (!definition) throw new Error(`attribute "${attribute}" of ${kind} ${name} is not in the dictionary`);
      const merged = deepMerge(definition, local as Json);
      const enumeration = merged['enum'] as Json | undefined;
      attributes.push([attribute, {
        type: merged['type'],
        ...(merged['is_array'] === true ? { isArray: true } : {}),
        requirement: merged['requirement'] ?? 'optional',
        ...(enumeration ? { enum: sortedRecord(Object.entries(enumeration).map(([id, entry]) => [id, (entry as Json)['caption'] as string])) } : {}),
        ...(merged['sibling'] ? { sibling: merged['sibling'] } : {}),
        ...(merged['profile'] ? { profile: merged['profile'] } : {}),
      }]);
    }
    const leaf = chain[chain.length - 1]!;
    const kept: OcsfConstraints = {
      ...(constraints['at_least_one'] ? { at_least_one: constraints['at_least_one'] } : {}),
      ...(constraints['just_one'] ? { just_one: constraints['just_one'] } : {}),
    };
    return { caption: leaf['caption'] as string, uid: leaf['uid'] as number | undefined, category, attributes: sortedRecord(attributes), constraints: kept };
  };

  const classes: Array<[string, OcsfClassData]> = [];
  for (const name of classNames) {
    const base = resolveDefinition(name, events, 'class');
    const category = base.category === undefined ? undefined : categories[base.category];
    if (!category || base.uid === undefined) throw new Error(`class ${name} names no known category or has no uid`);
    // As the schema server compiles a class: class_uid and category_uid take only this class's and category's value.
    const classUid = category['uid'] * 1000 + base.uid;
    const attributes = {
      ...base.attributes,
      class_uid: { ...base.attributes['class_uid']!, enum: { [classUid]: base.caption } },
      category_uid: { ...base.attributes['category_uid']!, enum: { [category['uid']]: category['caption'] as string } },
    };
    classes.push([name, { caption: base.caption, uid: base.uid, categoryUid: category['uid'], categoryCaption: category['caption'], attributes, constraints: base.constraints }]);
  }

  const types: Json = dictionary['types']['attributes'];
  const compiledObjects = new Map<string, OcsfObjectData>();
  const pending = classes.flatMap(([, compiled]) => Object.values(compiled.attributes).map((attribute) => attribute.type));
  for (let type = pending.pop(); type !== undefined; type = pending.pop()) {
    if (type === 'object' || types[type] || compiledObjects.has(type)) continue;
    const { caption, attributes, constraints } = resolveDefinition(type, objects, 'object');
    compiledObjects.set(type, { caption, attributes, constraints });
    pending.push(...Object.values(attributes).map((attribute) => attribute.type));
  }

  const compiledTypes = Object.entries(types).map(([name, type]): [string, OcsfTypeData] => [name, {
    caption: type['caption'],
    ...(type['type'] ? { type: type['type'] } : {}),
    ...(type['regex'] ? { regex: type['regex'] } : {}),
    ...(type['max_len'] ? { max_len: type['max_len'] } : {}),
    ...(type['range'] ? { range: type['range'] } : {}),
  }]);

  return {
    version: readJson(join(dir, 'version.json'))['version'],
    classes: sortedRecord(classes),
    objects: sortedRecord(compiledObjects),
    types: sortedRecord(compiledTypes),
  };
}
