/**
 * An OCSF validator over the committed OCSF data (test/ocsf/ocsf-data.json, compiled from the schema source by
 * `npm run ocsf:extract`: the classes the mappings emit, resolved through their extends chain, profiles and the
 * dictionary, and every object reachable from them). An event is checked for required attributes, unknown
 * attributes, types (primitive types with their regex, length and range, objects recursively), enum ids with their
 * captions in the sibling, `at_least_one` / `just_one` constraints, and the classification: class_uid,
 * category_uid, type_uid = class_uid * 100 + activity_id, and their names.
 */
import { readOcsfData } from './ocsf-data.ts';
import type { OcsfAttribute, OcsfClassData, OcsfData, OcsfObjectData } from './schema-source.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Attribute extends OcsfAttribute {
  readonly name: string;
}

interface Resolved {
  readonly name: string;
  readonly caption: string;
  readonly attributes: ReadonlyMap<string, Attribute>;
  readonly constraints: { readonly at_least_one?: readonly string[]; readonly just_one?: readonly string[] };
}

export interface ResolvedClass extends Resolved {
  readonly uid: number;
  readonly categoryUid: number;
  readonly categoryCaption: string;
}

function resolved<T extends OcsfObjectData>(name: string, definition: T): Omit<T, 'attributes'> & Resolved {
  const attributes = new Map(Object.entries(definition.attributes).map(([attribute, value]) => [attribute, { ...value, name: attribute }]));
  return { ...definition, name, attributes };
}

export class OcsfSchema {
  readonly version: string;
  readonly #data: OcsfData;
  readonly #classes = new Map<string, ResolvedClass>();
  readonly #objects = new Map<string, Resolved>();

  constructor(data: OcsfData = readOcsfData()) {
    this.#data = data;
    this.version = data.version;
  }

  object(name: string): Resolved {
    let object = this.#objects.get(name);
    if (!object) {
      const definition = this.#data.objects[name];
      if (!definition) throw new Error(`OCSF object "${name}" is not in the committed OCSF data: run npm run ocsf:extract`);
      object = resolved(name, definition);
      this.#objects.set(name, object);
    }
    return object;
  }

  class(name: string): ResolvedClass {
    let ocsfClass = this.#classes.get(name);
    if (!ocsfClass) {
      const definition: OcsfClassData | undefined = this.#data.classes[name];
      if (!definition) throw new Error(`OCSF class "${name}" is not in the committed OCSF data: run npm run ocsf:extract`);
      ocsfClass = resolved(name, definition);
      this.#classes.set(name, ocsfClass);
    }
    return ocsfClass;
  }

  /** The class whose uid (category_uid * 1000 + class uid) is `classUid`, among those the data holds. */
  classByUid(classUid: number): ResolvedClass | undefined {
    for (const name of Object.keys(this.#data.classes)) {
      const ocsfClass = this.class(name);
      if (ocsfClass.categoryUid * 1000 + ocsfClass.uid === classUid) return ocsfClass;
    }
    return undefined;
  }

  /** Every problem with `event`, as "path: what is wrong"; none when it is a valid event of its class. */
  validate(event: Json): string[] {
    const problems: string[] = [];
    const ocsfClass = typeof event['class_uid'] === 'number' ? this.classByUid(event['class_uid']) : undefined;
    if (!ocsfClass) return [`class_uid: ${String(event['class_uid'])} is no class of OCSF ${this.version} that the committed OCSF data holds`];
    const profiles = new Set<string>(Array.isArray(event['metadata']?.['profiles']) ? event['metadata']['profiles'] : []);
    this.#check(ocsfClass, event, '', profiles, problems);
    const activity = ocsfClass.attributes.get('activity_id')!;
    const expect = (path: string, actual: unknown, wanted: unknown) => { if (actual !== wanted) problems.push(`${path}: ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`); };
    expect('category_uid', event['category_uid'], ocsfClass.categoryUid);
    expect('category_name', event['category_name'], ocsfClass.categoryCaption);
    expect('class_name', event['class_name'], ocsfClass.caption);
    expect('type_uid', event['type_uid'], event['class_uid'] * 100 + event['activity_id']);
    const activityCaption = activity.enum?.[String(event['activity_id'])];
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
    const present = (names: readonly string[]) => names.filter((name) => value[name] !== undefined && value[name] !== null);
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
        } else if (sibling !== undefined && sibling !== entry) {
          problems.push(`${prefix}${attribute.sibling}: ${JSON.stringify(sibling)}, the caption of ${attribute.name} ${String(item)} is ${JSON.stringify(entry)}`);
        }
      }
    }
  }

  /** Undefined when `value` is a valid `type`, else the problem. */
  #primitive(type: string, value: unknown): string | undefined {
    const definition = this.#data.types[type];
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
