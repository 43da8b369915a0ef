/**
 * An OCSF validator built at test time from the schema's source form (`../shared/ocsf-1.8.0` beside the repository,
 * or OCSF_SCHEMA_DIR): a class is its file plus what it `extends` down to base_event, the profiles it `$include`s
 * (their attributes count only when the event names the profile in metadata.profiles), and the dictionary's
 * definition of each attribute (type, array, enum, sibling); objects resolve the same way. An event is checked for
 * required attributes, unknown attributes, types (primitive types with their regex, length and range, objects
 * recursively), enum ids with their captions in the sibling, `at_least_one` / `just_one` constraints, and the
 * classification: class_uid, category_uid, type_uid = class_uid * 100 + activity_id, and their names.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const repositoryRoot = resolve(import.meta.dirname, '../..');

export function schemaDirectory(): string {
  return process.env['OCSF_SCHEMA_DIR'] ?? resolve(repositoryRoot, '../shared/ocsf-1.8.0');
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Attribute {
  readonly name: string;
  readonly type: string;
  readonly isArray: boolean;
  readonly requirement: string;
  readonly enum: Readonly<Record<string, { caption: string }>> | undefined;
  readonly sibling: string | undefined;
  /** The profile the attribute belongs to, when it is only part of the class with that profile. */
  readonly profile: string | undefined;
}

interface Resolved {
  readonly name: string;
  readonly caption: string;
  readonly attributes: ReadonlyMap<string, Attribute>;
  readonly constraints: { at_least_one?: string[]; just_one?: string[] };
}

export interface ResolvedClass extends Resolved {
  readonly uid: number;
  readonly categoryUid: number;
  readonly categoryCaption: string;
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

export class OcsfSchema {
  readonly dir: string;
  readonly version: string;
  readonly #dictionary: Json;
  readonly #types: Json;
  readonly #categories: Json;
  readonly #events = new Map<string, Json>();
  readonly #objects = new Map<string, Json>();
  readonly #resolvedObjects = new Map<string, Resolved>();
  readonly #resolvedClasses = new Map<string, ResolvedClass>();

  constructor(dir = schemaDirectory()) {
    if (!existsSync(join(dir, 'dictionary.json'))) throw new Error(`no OCSF schema at ${dir}: put the schema source beside the repository (../shared/ocsf-1.8.0) or set OCSF_SCHEMA_DIR`);
    this.dir = dir;
    this.version = readJson(join(dir, 'version.json'))['version'];
    const dictionary = readJson(join(dir, 'dictionary.json'));
    this.#dictionary = dictionary['attributes'];
    this.#types = dictionary['types']['attributes'];
    this.#categories = readJson(join(dir, 'categories.json'))['attributes'];
    const walk = (folder: string) => {
      for (const entry of readdirSync(folder, { withFileTypes: true })) {
        const path = join(folder, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.json')) { const json = readJson(path); this.#events.set(json['name'], json); }
      }
    };
    walk(join(dir, 'events'));
    for (const file of readdirSync(join(dir, 'objects'))) {
      const json = readJson(join(dir, 'objects', file));
      this.#objects.set(json['name'], json);
    }
  }

  /** A definition's own attributes with its `$include`d profiles' (tagged with the profile) under them. */
  #ownAttributes(definition: Json): Json {
    let attributes: Json = {};
    for (const include of definition['attributes']?.['$include'] ?? []) {
      const included = readJson(join(this.dir, include));
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
  }

  #resolve(name: string, table: Map<string, Json>, kind: string): Resolved & { definition: Json; category: string | undefined } {
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
      const own = this.#ownAttributes(definition);
      for (const [attribute, value] of Object.entries(own)) merged[attribute] = deepMerge(merged[attribute] ?? {}, value as Json);
      if (definition['constraints']) constraints = definition['constraints'];
    }
    const attributes = new Map<string, Attribute>();
    for (const [attribute, local] of Object.entries(merged)) {
      const dictionary = this.#dictionary[attribute];
      if (!dictionary) throw new Error(`attribute "${attribute}" of ${kind} ${name} is not in the dictionary`);
      const definition = deepMerge(dictionary, local as Json);
      attributes.set(attribute, {
        name: attribute, type: definition['type'], isArray: definition['is_array'] === true, requirement: definition['requirement'] ?? 'optional',
        enum: definition['enum'], sibling: definition['sibling'], profile: definition['profile'] ?? undefined,
      });
    }
    const leaf = chain[chain.length - 1]!;
    return { name, caption: leaf['caption'], attributes, constraints, definition: leaf, category };
  }

  object(name: string): Resolved {
    let resolved = this.#resolvedObjects.get(name);
    if (!resolved) {
      resolved = this.#resolve(name, this.#objects, 'object');
      this.#resolvedObjects.set(name, resolved);
    }
    return resolved;
  }

  class(name: string): ResolvedClass {
    let resolved = this.#resolvedClasses.get(name);
    if (!resolved) {
      const base = this.#resolve(name, this.#events, 'class');
      const category = base.category === undefined ? undefined : this.#categories[base.category];
      if (!category) throw new Error(`class ${name} names no known category`);
      // As the schema server compiles a class: class_uid and category_uid have this class's and category's value only.
      const uid = category['uid'] * 1000 + base.definition['uid'];
      const attributes = new Map(base.attributes);
      attributes.set('class_uid', { ...attributes.get('class_uid')!, enum: { [uid]: { caption: base.caption } } });
      attributes.set('category_uid', { ...attributes.get('category_uid')!, enum: { [category['uid']]: { caption: category['caption'] } } });
      resolved = { ...base, attributes, uid: base.definition['uid'], categoryUid: category['uid'], categoryCaption: category['caption'] };
      this.#resolvedClasses.set(name, resolved);
    }
    return resolved;
  }

  /** The class whose uid (category_uid * 1000 + class uid) is `classUid`. */
  classByUid(classUid: number): ResolvedClass | undefined {
    for (const [name, definition] of this.#events) {
      if (definition['uid'] === undefined) continue;
      const resolved = this.class(name);
      if (resolved.categoryUid * 1000 + resolved.uid === classUid) return resolved;
    }
    return undefined;
  }

  /** Every problem with `event`, as "path: what is wrong"; none when it is a valid event of its class. */
  validate(event: Json): string[] {
    const problems: string[] = [];
    const ocsfClass = typeof event['class_uid'] === 'number' ? this.classByUid(event['class_uid']) : undefined;
    if (!ocsfClass) return [`class_uid: ${String(event['class_uid'])} is no class of OCSF ${this.version}`];
    const profiles = new Set<string>(Array.isArray(event['metadata']?.['profiles']) ? event['metadata']['profiles'] : []);
    this.#check(ocsfClass, event, '', profiles, problems);
    const activity = ocsfClass.attributes.get('activity_id')!;
    const expect = (path: string, actual: unknown, wanted: unknown) => { if (actual !== wanted) problems.push(`${path}: ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`); };
    expect('category_uid', event['category_uid'], ocsfClass.categoryUid);
    expect('category_name', event['category_name'], ocsfClass.categoryCaption);
    expect('class_name', event['class_name'], ocsfClass.caption);
    expect('type_uid', event['type_uid'], event['class_uid'] * 100 + event['activity_id']);
    const activityCaption = activity.enum?.[String(event['activity_id'])]?.caption;
    if (event['type_name'] !== undefined) expect('type_name', event['type_name'], `${ocsfClass.caption}: ${activityCaption}`);
    expect('metadata.version', event['metadata']?.['version'], this.version);
    return problems;
  }

  #check(definition: Resolved, value: Json, path: string, profiles: ReadonlySet<string>, problems: string[]): void {
    const applies = (attribute: Attribute) => attribute.profile === undefined || profiles.has(attribute.profile);
    for (const [name, attribute] of definition.attributes) {
      if (attribute.requirement === 'required' && applies(attribute) && (value[name] === undefined || value[name] === null)) problems.push(`${path}${name}: required by ${definition.name}, missing`);
    }
    for (const [name, item] of Object.entries(value)) {
      const attribute = definition.attributes.get(name);
      if (!attribute || !applies(attribute)) {
        problems.push(`${path}${name}: not an attribute of ${definition.name}${attribute ? ` without the ${attribute.profile} profile` : ''}`);
        continue;
      }
      if (attribute.isArray) {
        if (!Array.isArray(item)) problems.push(`${path}${name}: expected an array`);
        else item.forEach((element, index) => this.#checkValue(attribute, element, `${path}${name}[${index}]`, value, profiles, problems));
      } else {
        this.#checkValue(attribute, item, `${path}${name}`, value, profiles, problems);
      }
    }
    const present = (names: string[]) => names.filter((name) => value[name] !== undefined && value[name] !== null);
    const { at_least_one: atLeastOne, just_one: justOne } = definition.constraints;
    const where = path === '' ? '(event)' : path.slice(0, -1);
    if (atLeastOne && present(atLeastOne).length === 0) problems.push(`${where}: ${definition.name} needs at least one of ${atLeastOne.join(', ')}`);
    if (justOne && present(justOne).length !== 1) problems.push(`${where}: ${definition.name} needs exactly one of ${justOne.join(', ')}`);
  }

  #checkValue(attribute: Attribute, item: unknown, path: string, parent: Json, profiles: ReadonlySet<string>, problems: string[]): void {
    const type = attribute.type;
    if (type === 'object') {
      if (!item || typeof item !== 'object' || Array.isArray(item)) problems.push(`${path}: expected a JSON object`);
    } else if (type.endsWith('_t')) {
      const problem = this.#primitive(type, item);
      if (problem) problems.push(`${path}: ${problem}`);
    } else if (!item || typeof item !== 'object' || Array.isArray(item)) {
      problems.push(`${path}: expected a ${type} object`);
    } else {
      this.#check(this.object(type), item as Json, `${path}.`, profiles, problems);
    }
    if (attribute.enum && !attribute.isArray) {
      const entry = attribute.enum[String(item)];
      if (!entry) {
        problems.push(`${path}: ${JSON.stringify(item)} is not one of ${Object.keys(attribute.enum).join(', ')}`);
      } else if (attribute.sibling) {
        const sibling = parent[attribute.sibling];
        const prefix = path.slice(0, path.length - attribute.name.length);
        if (String(item) === '99') {
          if (typeof sibling !== 'string' || sibling === '') problems.push(`${prefix}${attribute.sibling}: required with ${attribute.name} 99 (Other), to say what it is`);
        } else if (sibling !== undefined && sibling !== entry.caption) {
          problems.push(`${prefix}${attribute.sibling}: ${JSON.stringify(sibling)}, the caption of ${attribute.name} ${String(item)} is ${JSON.stringify(entry.caption)}`);
        }
      }
    }
  }

  /** Undefined when `value` is a valid `type`, else the problem. */
  #primitive(type: string, value: unknown): string | undefined {
    const definition = this.#types[type];
    if (!definition) return `unknown type ${type}`;
    if (definition['type']) {
      const base = this.#primitive(definition['type'], value);
      if (base) return base;
    }
    switch (type) {
      case 'string_t': return typeof value === 'string' ? undefined : `expected a string, got ${JSON.stringify(value)}`;
      case 'integer_t': case 'long_t': return Number.isInteger(value) ? undefined : `expected an integer, got ${JSON.stringify(value)}`;
      case 'float_t': return typeof value === 'number' ? undefined : `expected a number, got ${JSON.stringify(value)}`;
      case 'boolean_t': return typeof value === 'boolean' ? undefined : `expected true or false, got ${JSON.stringify(value)}`;
      case 'json_t': return undefined;
    }
    if (definition['regex'] && typeof value === 'string' && !new RegExp(definition['regex']).test(value)) return `${JSON.stringify(value)} is not a valid ${definition['caption']} (${type})`;
    if (definition['max_len'] && typeof value === 'string' && value.length > definition['max_len']) return `longer than ${definition['max_len']} (${type})`;
    if (definition['range'] && typeof value === 'number' && (value < definition['range'][0] || value > definition['range'][1])) return `${value} is outside ${definition['range'].join('..')} (${type})`;
    return undefined;
  }
}
