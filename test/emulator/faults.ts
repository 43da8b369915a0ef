/**
 * Faults on demand for the activity feed, by rate (a seeded PRNG, so a run repeats for the same seed and request
 * order) or by schedule (request numbers from..to, every Nth, optionally only on some routes).
 */

export type FeedRoute =
  | 'subscriptions/start' | 'subscriptions/stop' | 'subscriptions/list' | 'subscriptions/content'
  | 'subscriptions/notifications' | 'audit' | 'resources/dlpSensitiveTypes' | 'other';

export type FaultKind =
  /** AF429 (status from `throttleStatus`, Retry-After from `retryAfterSeconds`). */
  | 'throttle'
  /** 5xx with `serverErrorCode` (default AF50000, HTTP 500). */
  | 'server-error'
  /** Headers and part of the body sent, then the connection destroyed. */
  | 'drop'
  /** The blob answers AF20051 as if it had expired (blob fetches only). */
  | 'expired'
  /** Every token issued so far is revoked before this request is checked (so it gets 401). */
  | 'revoke'
  /** `scheduledLatencyMs` (default 2 s) added to this request. */
  | 'latency';

export interface FaultRule {
  readonly fault: FaultKind;
  /** First request number (1-based) the rule applies to; default 1. */
  readonly from?: number;
  /** Last request number; default: no end. */
  readonly to?: number;
  /** Only every Nth request inside from..to (N, 2N, ... counted from `from`). */
  readonly every?: number;
  /** Routes the rule counts and applies to; default all activity-feed routes. Numbers count these routes only. */
  readonly routes?: readonly FeedRoute[];
}

export interface Faults {
  /** Share of API requests answered AF429. */
  throttleRate?: number;
  /** AF429 has been seen as 429 and as 403. */
  throttleStatus?: 429 | 403;
  /** Seconds to put in Retry-After on AF429; none when undefined (the documented case). */
  retryAfterSeconds?: number;
  /** Share of API requests answered with a 5xx. */
  serverErrorRate?: number;
  /** Which internal error: AF50000 (500, default), AF50005 or AF50006 (500), or 503 without an AF body. */
  serverErrorCode?: 'AF50000' | 'AF50005' | 'AF50006' | '503';
  /** Share of blob fetches whose connection is cut after part of the body. */
  dropMidBodyRate?: number;
  /** Share of blob fetches answered AF20051, as if the blob expired between listing and fetching. */
  expiredRate?: number;
  /** Milliseconds added before each API answer. */
  latencyMs?: number;
  /** Milliseconds a scheduled 'latency' fault adds; default 2000. */
  scheduledLatencyMs?: number;
  /** Faults by request number, whatever the rates. Numbers count from when the faults were set (or resetCounters). */
  schedule?: ReadonlyArray<FaultRule>;
}

/** mulberry32: small, fast, and the same sequence for the same seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FaultDecision {
  throttle: boolean;
  serverError: boolean;
  drop: boolean;
  expired: boolean;
  revoke: boolean;
  latencyMs: number;
}

export class FaultPlan {
  #faults: Faults = {};
  #counts: number[] = [];
  readonly #random: () => number;

  constructor(seed: number, faults: Faults = {}) {
    this.#random = seededRandom(seed ^ 0x5eed);
    this.set(faults);
  }

  get faults(): Faults {
    return this.#faults;
  }

  set(faults: Faults): void {
    this.#faults = { ...faults };
    this.#counts = (faults.schedule ?? []).map(() => 0);
  }

  restartNumbering(): void {
    this.#counts = this.#counts.map(() => 0);
  }

  /** Decides the faults of one activity-feed request. Rates draw from the PRNG in a fixed order. */
  decide(route: FeedRoute): FaultDecision {
    const scheduled = new Set<FaultKind>();
    (this.#faults.schedule ?? []).forEach((rule, position) => {
      if (rule.routes && !rule.routes.includes(route)) return;
      const number = (this.#counts[position] ?? 0) + 1;
      this.#counts[position] = number;
      const from = rule.from ?? 1;
      if (number < from || (rule.to !== undefined && number > rule.to)) return;
      if (rule.every !== undefined && (number - from + 1) % rule.every !== 0) return;
      scheduled.add(rule.fault);
    });
    const faults = this.#faults;
    const blob = route === 'audit';
    const draw = (rate: number | undefined) => (rate ? this.#random() < rate : false);
    const throttle = draw(faults.throttleRate);
    const serverError = draw(faults.serverErrorRate);
    const drop = blob && draw(faults.dropMidBodyRate);
    const expired = blob && draw(faults.expiredRate);
    return {
      throttle: throttle || scheduled.has('throttle'),
      serverError: serverError || scheduled.has('server-error'),
      drop: drop || scheduled.has('drop'),
      expired: expired || (blob && scheduled.has('expired')),
      revoke: scheduled.has('revoke'),
      latencyMs: (faults.latencyMs ?? 0) + (scheduled.has('latency') ? (faults.scheduledLatencyMs ?? 2000) : 0),
    };
  }
}

const faultKinds: readonly FaultKind[] = ['throttle', 'server-error', 'drop', 'expired', 'revoke', 'latency'];
const feedRoutes: readonly FeedRoute[] = ['subscriptions/start', 'subscriptions/stop', 'subscriptions/list', 'subscriptions/content', 'subscriptions/notifications', 'audit', 'resources/dlpSensitiveTypes'];

/** Reads `kind@from-to`, `kind@N`, `kind@from-`, `kind@every:N` or `kind@from-to,every:N`, optionally `/route,route`. */
export function parseFaultRule(spec: string): FaultRule {
  const match = /^([a-z-]+)@([^/]+)(?:\/(.+))?$/.exec(spec);
  const kind = match?.[1] as FaultKind | undefined;
  if (!match || !kind || !faultKinds.includes(kind)) {
    throw new Error(`"${spec}": expected kind@from-to, kind@N or kind@every:N, with kind one of ${faultKinds.join(', ')}`);
  }
  const rule: { fault: FaultKind; from?: number; to?: number; every?: number; routes?: FeedRoute[] } = { fault: kind };
  for (const part of match[2]!.split(',')) {
    const range = /^(\d+)(-(\d+)?)?$/.exec(part);
    const every = /^every:(\d+)$/.exec(part);
    if (range && Number(range[1]) > 0) {
      rule.from = Number(range[1]);
      if (range[2] === undefined) rule.to = rule.from;
      else if (range[3] !== undefined) rule.to = Number(range[3]);
    } else if (every && Number(every[1]) > 0) {
      rule.every = Number(every[1]);
    } else {
      throw new Error(`"${spec}": "${part}" is neither from-to nor every:N`);
    }
  }
  if (match[3]) {
    const routes = match[3].split(',');
    const unknown = routes.filter((route) => !feedRoutes.includes(route as FeedRoute));
    if (unknown.length > 0) throw new Error(`"${spec}": unknown route ${unknown.join(', ')}; routes are ${feedRoutes.join(', ')}`);
    rule.routes = routes as FeedRoute[];
  }
  return rule;
}
