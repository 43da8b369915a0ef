/**
 * A unit's lag over the last hours as an inline SVG polyline (no script, no external asset). The grid draws few
 * points per cell so that a page of a hundred tenants stays small; the tenant's own page draws them all.
 */
import { Markup } from './html.ts';
import type { LagPoint } from './lag-history.ts';

export interface SparklineOptions {
  readonly width: number;
  readonly height: number;
  /** At most this many points are drawn (the samples are thinned evenly, the newest always kept). */
  readonly maxPoints: number;
  /** A lag at or above this is drawn in the warning colour (the status's threshold). */
  readonly thresholdSeconds: number;
}

export function sparkline(points: readonly LagPoint[], options: SparklineOptions): Markup {
  const { width, height } = options;
  if (points.length === 0) {
    return new Markup(`<svg class="spark" width="${width}" height="${height}" role="img" aria-label="no lag yet"><text x="1" y="${Math.min(height - 2, 12)}">no lag yet</text></svg>`);
  }
  const drawn = thinned(points, options.maxPoints);
  const first = drawn[0]!.at;
  const span = Math.max(1, drawn.at(-1)!.at - first);
  const top = Math.max(options.thresholdSeconds, ...drawn.map((point) => point.lagSeconds));
  const x = (at: number) => (drawn.length === 1 ? width - 1 : ((at - first) / span) * (width - 2) + 1);
  const y = (lag: number) => height - 1 - (lag / top) * (height - 2);
  const coordinates = drawn.map((point) => `${Math.round(x(point.at))},${Math.round(y(point.lagSeconds))}`).join(' ');
  const latest = drawn.at(-1)!;
  const over = latest.lagSeconds >= options.thresholdSeconds;
  const threshold = Math.round(y(options.thresholdSeconds));
  return new Markup(
    `<svg class="spark" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="lag over the last ${hoursOf(points)}">`
    + `<line x1="0" x2="${width}" y1="${threshold}" y2="${threshold}" class="limit"/>`
    + `<polyline points="${coordinates}" class="${over ? 'over' : 'under'}"/>`
    + (drawn.length === 1 ? `<circle cx="${Math.round(x(latest.at))}" cy="${Math.round(y(latest.lagSeconds))}" r="1.5" class="${over ? 'over' : 'under'}"/>` : '')
    + '</svg>',
  );
}

/** At most `max` points, evenly spread over the samples, the newest kept. */
function thinned(points: readonly LagPoint[], max: number): readonly LagPoint[] {
  if (points.length <= max) return points;
  const step = (points.length - 1) / (max - 1);
  return Array.from({ length: max }, (_, i) => points[Math.round(i * step)]!);
}

function hoursOf(points: readonly LagPoint[]): string {
  const minutes = Math.round((points.at(-1)!.at - points[0]!.at) / 60_000);
  return minutes < 120 ? `${minutes} min` : `${(minutes / 60).toFixed(1)} h`;
}
